/* sae_plot.c - the figures of the sae and sae_intervene analyses. */
#include "common.h"

int rn_sae_plot(struct rn_plotter *p, const char *group, const char *name, char *const *datasets,
                int n_datasets, struct rn_error *err)
{
    return 0;
}

int rn_sae_intervene_plot(struct rn_plotter *p, const char *group, const char *name,
                          char *const *datasets, int n_datasets, struct rn_error *err)
{
    return 0;
}
