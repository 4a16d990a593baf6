/* eval.h - a run's model applied to its data in eval mode (eval.c): batches
 * loaded into the graph's input, softmax predictions, and a whole split
 * evaluated on every head with its confusion matrix.
 */
#ifndef RN_EVAL_H
#define RN_EVAL_H

#include "run.h"

/* Copies samples idx[0..n) of split (idx NULL: 0..n) into graph->x as float
 * in [0,1] (on the graph's device; gathered there when the run's data is on
 * it); -1 only on a device error or a batch over the graph's max_n. */
int rn_run_load_batch(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                      struct rn_error *err);
/* The same batch into the host side of the graph input only, not committed
 * (the trainer augments it there, then rn_graph_input_commit). */
int rn_run_load_host(struct rn_run *run, const struct rn_split *split, const int *idx, int n,
                     struct rn_error *err);
/* Forward in eval mode on g->x's first n samples; writes softmax
 * probabilities (n, classes) into probs. */
int rn_run_predict(struct rn_run *run, int n, float *probs, struct rn_error *err);
/* Evaluates a whole split in eval mode, every head; the confusion matrix
 * counts the main head's argmax against the digit labels. */
int rn_run_evaluate(struct rn_run *run, const struct rn_split *split, struct rn_split_result *res,
                    struct rn_error *err);

#endif
