/* train.h - a run: data + graph + optimizer + results file, and the loop
 * that trains and evaluates it.
 *
 * rn_run_open prepares everything and rn_run_close records the final status
 * and closes the file (run.h); rn_run_train trains for train.epochs,
 * evaluating the spec's eval splits after every epoch (eval.h) and
 * checkpointing /models/main (checkpoint.h); rn_run_analyses runs the
 * declared analyses. An interrupt (rn_interrupted, from a signal handler)
 * stops training after the current step and leaves a readable file with
 * status "interrupted".
 */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include <stdint.h>

#include "checkpoint.h"
#include "eval.h"
#include "optim.h"
#include "run.h"

int rn_run_train(struct rn_run *run, struct rn_error *err);
int rn_run_analyses(struct rn_run *run, struct rn_error *err);

/* Mean cross-entropy of logits (n, k) against targets; adds
 * weight * d(mean CE)/d logits into dlogits when non-NULL; counts correct
 * argmax predictions; probs (n, k) gets the softmax when non-NULL. */
double rn_cross_entropy(const struct rn_tensor *logits, const uint8_t *targets, float weight,
                        struct rn_tensor *dlogits, int *correct, float *probs);

#endif
