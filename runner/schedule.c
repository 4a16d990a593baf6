/* schedule.c - the schedule registry and the schedules' values (schedule.h). */
#include "schedule.h"

#include <math.h>
#include <string.h>


#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define UNBOUNDED 1e9 /* a schema max at or above this reads as "no upper bound" */

static const struct rn_key constant_keys[] = {
    {"value", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "the value"},
};
static const struct rn_key linear_keys[] = {
    {"start", RN_KIND_FLOAT, 0, 0, NULL, 1, 0, NULL, "value up to p = from"},
    {"end", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "value from p = until on (the cap)"},
    {"from", RN_KIND_FLOAT, 0, 0, NULL, 0, 1, NULL, "progress where the ramp starts"},
    {"until", RN_KIND_FLOAT, 0, 1, NULL, 0, 1, NULL, "progress where the ramp reaches end"},
};
static const struct rn_key dann_keys[] = {
    {"scale", RN_KIND_FLOAT, 0, 1, NULL, 1, 0, NULL, "value approached at p = 1"},
    {"gamma", RN_KIND_FLOAT, 0, 10, NULL, 0, UNBOUNDED, NULL, "steepness (10 in the DANN paper)"},
};
static const struct rn_key step_keys[] = {
    {"at", RN_KIND_FLOAT, 1, 0, NULL, 0, 1, NULL, "progress where the value switches"},
    {"before", RN_KIND_FLOAT, 0, 0, NULL, 1, 0, NULL, "value while p < at"},
    {"after", RN_KIND_FLOAT, 1, 0, NULL, 1, 0, NULL, "value from p = at on"},
};

const struct rn_schedule_type rn_schedule_types[] = {
    {"constant", RN_SCHEDULE_CONSTANT, "value at every step", constant_keys,
     COUNT(constant_keys)},
    {"linear", RN_SCHEDULE_LINEAR,
     "start until p = from, a straight line to end at p = until, then end (a ramp with a cap)",
     linear_keys, COUNT(linear_keys)},
    {"dann_sigmoid", RN_SCHEDULE_DANN_SIGMOID,
     "scale * (2 / (1 + exp(-gamma p)) - 1), the DANN schedule", dann_keys, COUNT(dann_keys)},
    {"step", RN_SCHEDULE_STEP, "before while p < at, after from then on", step_keys,
     COUNT(step_keys)},
};
const int rn_n_schedule_types = COUNT(rn_schedule_types);
_Static_assert(COUNT(rn_schedule_types) == RN_SCHEDULE_STEP + 1,
               "one registry entry per enum rn_schedule_kind, in order");

const struct rn_schedule_type *rn_schedule_type_find(const char *name)
{
    for (int i = 0; i < rn_n_schedule_types; i++)
        if (strcmp(rn_schedule_types[i].name, name) == 0)
            return &rn_schedule_types[i];
    return NULL;
}

