/* analysis.h - declared analyses (the `analyses:` list of a spec).
 *
 * Each analysis type is a registry entry: name, key schema, and a run
 * function that computes tensors on a trained graph and writes them under
 * /analyses/<name>/ in the run's HDF5 file. Figures are drawn later from
 * that file alone (plot.h).
 */
#ifndef RN_ANALYSIS_H
#define RN_ANALYSIS_H

#include "error.h"
#include "schema.h"

struct rn_run; /* train.h */
struct rn_spec_analysis;

struct rn_analysis_type {
    const char *name;
    const char *doc;
    const struct rn_key *keys;
    int n_keys;
    int (*run)(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err);
};

extern const struct rn_analysis_type *const rn_analysis_types[];
extern const int rn_n_analysis_types;
const struct rn_analysis_type *rn_analysis_type_find(const char *name);

/* Index of key in t's schema (-1 if none): the analyses read their values
 * as a->v.num[rn_analysis_key(a->type, "n")]. */
int rn_analysis_key(const struct rn_analysis_type *t, const char *key);
/* Index of the largest of p[0..k), the first one on ties. */
int rn_argmax(const float *p, int k);

#endif
