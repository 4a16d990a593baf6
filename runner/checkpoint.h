/* checkpoint.h - a run's models in HDF5 files: saved, loaded back, and
 * opened from another run's file (checkpoint.c).
 *
 * A model is stored as /models/<model>/<node>.<param> in PyTorch's layout
 * and rank (results.h). Loading checks every tensor's shape exactly, as
 * PyTorch's load_state_dict does: a transposed weight is refused even when
 * its element count fits.
 */
#ifndef RN_CHECKPOINT_H
#define RN_CHECKPOINT_H

#include "run.h"

/* Writes every parameter and buffer of run->graph (from the host; a device
 * graph is copied back first) as /models/<model>/<node>.<param> into
 * run->results, with the attributes architecture and epochs. */
int rn_run_save_model(struct rn_run *run, const char *model, struct rn_error *err);

/* Loads /models/<model>/ of a run file (path: run.h5 or its run directory)
 * into run->graph, which must be on the host. Every parameter of the graph
 * must be there with exactly its shape: errors name the file, the key and
 * both shapes ("load: F: /models/main/fc.weight has shape (128, 10); the
 * model expects (10, 128)"). */
int rn_run_load_model(struct rn_run *run, const char *path, const char *model,
                      struct rn_error *err);

/* Opens model `model` recorded in another run's file for inference: builds
 * the architecture its /config yaml records (parsed into *spec) for inputs
 * of shape `in` in batches of up to max_n, takes the node its first loss
 * reads as logits (else its last node), checks they are n_classes, loads
 * /models/<model> on the host and moves the graph to `device`.
 *
 * run (overwritten) gets spec, opt (a copy of *opt), graph, logits_node and
 * probs ((max_n, n_classes) scratch) and no data, program or results file:
 * enough for rn_run_predict and the analyses' passes. rn_run_close_model
 * frees it and *spec. On error nothing is left to free and the message
 * names the file. */
int rn_run_open_model(struct rn_run *run, struct rn_spec *spec, const char *file,
                      const char *model, const struct rn_run_options *opt, struct rn_shape in,
                      int max_n, int n_classes, int device, struct rn_error *err);
void rn_run_close_model(struct rn_run *run, struct rn_spec *spec);

#endif
