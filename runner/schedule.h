/* schedule.h - schedules: named scalar functions of training progress
 * p = step / total_steps in [0, 1] (train.schedules), and their registry, the
 * only list of schedule types: name, kind, doc and the keys each type takes.
 * The spec checks a schedule's keys against its type's schema; program.c
 * evaluates it (rn_schedule_value, program.h). */
#ifndef RN_SCHEDULE_H
#define RN_SCHEDULE_H

#include "schema.h"

enum rn_schedule_kind {
    RN_SCHEDULE_CONSTANT,     /* value */
    RN_SCHEDULE_LINEAR,       /* start before `from`, a ramp, end from `until` on */
    RN_SCHEDULE_DANN_SIGMOID, /* scale * (2 / (1 + exp(-gamma p)) - 1) */
    RN_SCHEDULE_STEP,         /* before while p < at, after from then on */
};

struct rn_schedule_type {
    const char *name; /* as written in a spec: "linear" */
    enum rn_schedule_kind kind;
    const char *doc;
    const struct rn_key *keys; /* the keys of this type, besides name and type */
    int n_keys;
};
extern const struct rn_schedule_type rn_schedule_types[]; /* in enum order */
extern const int rn_n_schedule_types;
/* NULL when name is not a registered schedule type. */
const struct rn_schedule_type *rn_schedule_type_find(const char *name);

#endif
