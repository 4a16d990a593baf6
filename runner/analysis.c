/* analysis.c - the analysis registry: the one list of analysis types (each
 * is a file of runner/analyses/), the checks made before training, and the
 * loop that runs a spec's analyses after it. */
#include "analysis.h"

#include <string.h>

#include "spec.h"
#include "train.h"

extern const struct rn_analysis_type rn_analysis_samples, rn_analysis_probe,
    rn_analysis_colour_stats, rn_analysis_filters, rn_analysis_activations, rn_analysis_gradcam,
    rn_analysis_saliency, rn_analysis_attention_mass, rn_analysis_attack, rn_analysis_sae,
    rn_analysis_sae_intervene;

const struct rn_analysis_type *const rn_analysis_types[] = {
    &rn_analysis_samples,  &rn_analysis_probe,          &rn_analysis_colour_stats,
    &rn_analysis_filters,  &rn_analysis_activations,    &rn_analysis_gradcam,
    &rn_analysis_saliency, &rn_analysis_attention_mass, &rn_analysis_attack,
    &rn_analysis_sae,      &rn_analysis_sae_intervene,
};
const int rn_n_analysis_types = (int)(sizeof rn_analysis_types / sizeof rn_analysis_types[0]);
_Static_assert(sizeof rn_analysis_types / sizeof rn_analysis_types[0] == 11,
               "update the README's analysis list and regenerate docs/spec.md when adding an "
               "analysis type");

const struct rn_analysis_type *rn_analysis_type_find(const char *name)
{
    for (int i = 0; i < rn_n_analysis_types; i++)
        if (strcmp(rn_analysis_types[i]->name, name) == 0)
            return rn_analysis_types[i];
    return NULL;
}

int rn_analyses_check(const struct rn_spec *spec, const struct rn_graph *g, int logits,
                      struct rn_error *err)
{
    for (int i = 0; i < spec->n_analyses; i++) {
        const struct rn_spec_analysis *a = &spec->analyses[i];
        if (a->type->check && a->type->check(spec, a, g, logits, err))
            return -1;
    }
    return 0;
}

int rn_run_analyses(struct rn_run *run, struct rn_error *err)
{
    const struct rn_spec *spec = run->spec;
    /* The analyses run where the model is: on a device graph they read
     * back only the logits, maps and gradients they write out. */
    for (int i = 0; i < spec->n_analyses; i++) {
        const struct rn_spec_analysis *a = &spec->analyses[i];
        if (a->type->run(run, a, err))
            return -1;
        if (rn_results_flush(run->results, err))
            return -1;
    }
    return 0;
}

int rn_argmax(const float *p, int k)
{
    int a = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[a])
            a = j;
    return a;
}
