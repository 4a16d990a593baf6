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

#endif
