/* cli.h - what the command-line commands share (main.c, sweep_cli.c): running
 * one experiment as `runner EXPERIMENT.yaml` does, and checking a spec
 * against the model it builds as `runner validate` does.
 *
 * These print progress and results to stderr like the command line; they
 * never exit. Their return value is the exit status the command line uses:
 * 0 success, 1 error (one line on stderr), 130 interrupted.
 */
#ifndef RN_CLI_H
#define RN_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "spec.h"

struct rn_cli_run_options {
    const char *out;    /* exact run directory, or NULL: <out>/<name>/<time>-s<seed> */
    const char *format; /* figures: png (NULL), pdf or svg */
    int quiet;
};

/* Trains (or loads) sp's model, evaluates it, runs its analyses, closes
 * run.h5 with its status and draws the figures. SIGINT and SIGTERM stop
 * training after the current step (status "interrupted", 130). dir (may be
 * NULL) gets the run directory, "" when none was made. sp may be changed
 * (load.if_missing decides between loading and training). */
int rn_cli_run_spec(struct rn_spec *sp, const struct rn_cli_run_options *o, char *dir,
                    size_t dir_size);

/* What rn_cli_check_model found. */
struct rn_cli_model_info {
    int has_model;
    int n_nodes;
    size_t n_trainable;
    int out_c, out_h, out_w; /* the last node's output */
};

/* Builds sp's graph (every shape), its train section's program (node names)
 * and checks what its analyses name, as `validate` does; with summary not
 * NULL prints the model table there. A spec without a model only has its
 * analyses checked. -1 with err set on the first problem. */
int rn_cli_check_model(const struct rn_spec *sp, FILE *summary, struct rn_cli_model_info *info,
                       struct rn_error *err);

/* The commands of many runs (sweep_cli.c): `runner sweep`, `runner cell`,
 * `runner table`, given main's argv (argv[1] is the command). */
/* Runs `runner exp --device device [--threads n] [out=OUT] [--quiet]` as a
 * child (this executable; out: the spec's results root, NULL: its own) and
 * waits; *status gets its wait status. 1 (said on stderr) when it cannot
 * run. */
int rn_cli_spawn_runner(const char *exp, const char *device, int threads, const char *out,
                        int quiet, int *status);
int rn_cli_sweep(int argc, char **argv);
int rn_cli_cell(int argc, char **argv);
int rn_cli_table(int argc, char **argv);
/* 1 when path looks like a sweep file (a top-level experiment(s): key). */
int rn_cli_is_sweep_file(const char *path);
/* `runner validate SWEEP.yaml`: the file and every cell checked, nothing written. */
int rn_cli_validate_sweep(const char *path);

#endif
