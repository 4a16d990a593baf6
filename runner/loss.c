/* loss.c - the loss registry (loss.h); cross-entropy on logits, numerically
 * stable (log-sum-exp). */
#include "loss.h"

#include <math.h>
#include <string.h>

#include "loss.h"

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- the registries ------------------------------------------------------------- */

const struct rn_loss_type rn_loss_types[] = {
    {"cross_entropy", RN_LOSS_CE, "mean cross-entropy of the logits against the target"},
    {"neg_cross_entropy", RN_LOSS_NEG_CE,
     "minus the cross-entropy: a penalty that rewards fooling a head"},
    {"saliency", RN_LOSS_SALIENCY,
     "the input-gradient penalty of runner/saliency.h (tangent mode through the model)"},
};
const int rn_n_loss_types = COUNT(rn_loss_types);
_Static_assert(COUNT(rn_loss_types) == RN_LOSS_SALIENCY + 1,
               "one registry entry per enum rn_loss_kind, in order");

const char *const rn_target_names[] = {"digit", "colour"};
const int rn_n_targets = COUNT(rn_target_names);
_Static_assert(COUNT(rn_target_names) == RN_TARGET_COLOUR + 1,
               "one name per enum rn_target, in order");

const struct rn_loss_type *rn_loss_type_find(const char *name)
{
    for (int i = 0; i < rn_n_loss_types; i++)
        if (strcmp(rn_loss_types[i].name, name) == 0)
            return &rn_loss_types[i];
    return NULL;
}

int rn_target_find(const char *name)
{
    for (int i = 0; i < rn_n_targets; i++)
        if (strcmp(rn_target_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- cross-entropy ---------------------------------------------------------------- */

double rn_cross_entropy(const struct rn_tensor *logits, const uint8_t *targets, float weight,
                        struct rn_tensor *dlogits, int *correct, float *probs)
{
    const int n = logits->n, k = (int)rn_tensor_sample(logits);
    double total = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits->data + (size_t)i * k;
        int arg = 0;
        for (int j = 1; j < k; j++)
            if (z[j] > z[arg])
                arg = j;
        double sum = 0;
        for (int j = 0; j < k; j++)
            sum += exp((double)z[j] - z[arg]);
        double lse = z[arg] + log(sum);
        total += lse - z[targets[i]];
        right += arg == targets[i];
        for (int j = 0; j < k; j++) {
            double p = exp((double)z[j] - lse);
            if (probs)
                probs[(size_t)i * k + j] = (float)p;
            if (dlogits)
                dlogits->data[(size_t)i * k + j] +=
                    (float)(weight * (p - (j == targets[i])) / n);
        }
    }
    if (correct)
        *correct = right;
    return n ? total / n : 0;
}
