/* analysis.c - the analysis registry. Run functions live in analyses_*.c. */
#include "analysis.h"

#include <string.h>

extern const struct rn_analysis_type rn_analysis_samples, rn_analysis_probe,
    rn_analysis_colour_stats, rn_analysis_filters, rn_analysis_activations, rn_analysis_gradcam,
    rn_analysis_saliency, rn_analysis_attention_mass;

const struct rn_analysis_type *const rn_analysis_types[] = {
    &rn_analysis_samples,     &rn_analysis_probe,    &rn_analysis_colour_stats,
    &rn_analysis_filters,     &rn_analysis_activations, &rn_analysis_gradcam,
    &rn_analysis_saliency,    &rn_analysis_attention_mass,
};
const int rn_n_analysis_types =
    (int)(sizeof rn_analysis_types / sizeof rn_analysis_types[0]);

const struct rn_analysis_type *rn_analysis_type_find(const char *name)
{
    for (int i = 0; i < rn_n_analysis_types; i++)
        if (strcmp(rn_analysis_types[i]->name, name) == 0)
            return rn_analysis_types[i];
    return NULL;
}

int rn_analysis_key(const struct rn_analysis_type *t, const char *key)
{
    for (int i = 0; i < t->n_keys; i++)
        if (strcmp(t->keys[i].key, key) == 0)
            return i;
    return -1;
}

int rn_argmax(const float *p, int k)
{
    int a = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[a])
            a = j;
    return a;
}
