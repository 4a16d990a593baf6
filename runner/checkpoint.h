/* checkpoint.h - a graph's parameters in HDF5 files: saved and loaded back
 * (checkpoint.c). A run's models go through run.h (rn_run_save_model,
 * rn_run_load_model, rn_run_open_model for another run's file).
 *
 * A model is stored as /models/<model>/<node>.<param> in PyTorch's layout
 * and rank (results.h). Loading checks every tensor's shape exactly, as
 * PyTorch's load_state_dict does: a transposed weight is refused even when
 * its element count fits.
 */
#ifndef RN_CHECKPOINT_H
#define RN_CHECKPOINT_H

#include "error.h"
#include "graph.h"
#include "results.h"

/* Writes every parameter and buffer of g (from the host; a device graph is
 * copied back first) as /models/<model>/<node>.<param> into r, with the
 * attributes architecture and epochs. */
int rn_checkpoint_save(const struct rn_graph *g, struct rn_results *r, const char *model,
                       const char *architecture, int epochs, struct rn_error *err);

/* Loads /models/<model>/ of a run file (path: run.h5 or its run directory)
 * into g, which must be on the host. Every parameter of the graph must be
 * there with exactly its shape: errors name the file, the key and both shapes
 * ("load: F: /models/main/fc.weight has shape (128, 10); the model expects
 * (10, 128)"). */
int rn_checkpoint_load(struct rn_graph *g, const char *path, const char *model,
                       struct rn_error *err);

#endif
