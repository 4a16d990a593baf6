/* analysis.h - declared analyses (the `analyses:` list of a spec).
 *
 * Each analysis type is one file of runner/analyses/ and one entry of the
 * registry (analysis.c, the only list of types): its name, its key schema,
 * a check of its keys against the model's graph (run by `runner validate`
 * and by a run before it trains), a run function that computes tensors on a
 * trained graph and writes them under /analyses/<name>/ in the run's HDF5
 * file, and a figure writer that draws them later from that file alone
 * (plot.h). The run functions read their keys through the constants of
 * their schema (a->v.str[GRADCAM_NODE]), so a misspelt key does not compile.
 */
#ifndef RN_ANALYSIS_H
#define RN_ANALYSIS_H

#include "error.h"
#include "schema.h"

struct rn_run;          /* train.h */
struct rn_spec;         /* spec.h */
struct rn_spec_analysis;
struct rn_graph;        /* graph.h */
struct rn_plotter;      /* plot.h */

struct rn_analysis_type {
    const char *name;
    const char *doc;
    const struct rn_key *keys;
    int n_keys;
    /* What can be known before training: the nodes a's keys name exist in g
     * and are of a kind it can use, a model is there when it needs one;
     * logits: the node the main cross-entropy reads. g is NULL for a spec
     * without a model. NULL: nothing to check. Errors are
     * "file:line:col: error: analysis 'x' (type): ...". */
    int (*check)(const struct rn_spec *spec, const struct rn_spec_analysis *a,
                 const struct rn_graph *g, int logits, struct rn_error *err);
    int (*run)(struct rn_run *run, const struct rn_spec_analysis *a, struct rn_error *err);
    /* Draws the figures of one analysis group ("/analyses/<name>") of the
     * file p reads; datasets: the paths under the group ("test/images"),
     * sorted. Draws nothing when the group lacks its data. */
    int (*plot)(struct rn_plotter *p, const char *group, const char *name,
                char *const *datasets, int n_datasets, struct rn_error *err);
};

extern const struct rn_analysis_type *const rn_analysis_types[];
extern const int rn_n_analysis_types;
const struct rn_analysis_type *rn_analysis_type_find(const char *name);

/* Checks every analysis of spec against g (NULL when the spec has no
 * model) before anything is trained; logits as for check above. The first
 * error goes into err. */
int rn_analyses_check(const struct rn_spec *spec, const struct rn_graph *g, int logits,
                      struct rn_error *err);

/* Index of the largest of p[0..k), the first one on ties. */
int rn_argmax(const float *p, int k);

#endif
