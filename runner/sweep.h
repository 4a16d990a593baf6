/* sweep.h - many runs: a sweep file's cells, the sweep folder, and running
 * the cells locally or as a Slurm job array (`runner sweep`, `runner cell`).
 *
 * A sweep file (YAML; every key is checked, errors are file:line:col):
 *
 *   name: task1_seeds         # default: the file's name without .yaml
 *   description: ...
 *   out: results/sweeps       # the sweep folder is <out>/<name>
 *   experiments:              # or `experiment: PATH`; relative to the sweep file
 *     - ../task4_m0_erm.yaml
 *     - {file: ../task4_m1.yaml, set: {train.epochs: 5}}
 *   set: {train.epochs: 10}   # overrides of every cell
 *   grid:                     # every combination; the last key varies fastest
 *     seed: [0, 1, 2, 3, 4]
 *   list:                     # alternatives, each crossed with the grid
 *     - {train.losses.1.weight: 0.5}
 *     - {train.losses.1.weight: 50, train.losses.1.norm: l2}
 *
 * Keys of set, grid and list are the command line's override paths
 * (`train.losses.1.weight`); values are any YAML value (a list becomes a flow
 * list: `data.texture: [[0.4, 1], [0, 1]]`). The cells are experiments x list
 * items x grid combinations, in that order; a cell's overrides are applied in
 * the order sweep set, experiment set, list item, grid (a later one wins).
 *
 * A cell's identity is a hash (64-bit FNV-1a, 16 hex digits) of its resolved
 * spec (spec.h: every default written, key order and override spelling gone)
 * without the keys that cannot change its numbers (description, threads,
 * out). Its folder is <name>-<hash of the same text and the code version
 * (git describe)>, so new code makes new folders and old results are kept.
 *
 * The sweep folder <out>/<name>/:
 *   sweep.yaml               the sweep file as last planned
 *   cells.tsv                the manifest: a line per cell ever planned, its
 *                            index (never renumbered: a cell keeps its index
 *                            for as long as its identity is in the sweep),
 *                            identity, folder, whether the sweep has it now,
 *                            experiment file and overrides
 *   cells/<folder>/          the cell's run (run.h5, plots/), cell.txt (index,
 *                            experiment, overrides), log.txt (every attempt's
 *                            full output), exit_code (of the last attempt),
 *                            done (written after run.h5 is closed and the
 *                            figures drawn; a cell with it is never rerun)
 *   slurm/                   job scripts, array-index -> cell files, Slurm's
 *                            output
 */
#ifndef RN_SWEEP_H
#define RN_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "paths.h"

#define RN_SWEEP_KEY_MAX 256
#define RN_SWEEP_NAME_MAX 96

/* ---- the sweep file (spec/sweep_file.c) ---------------------------------- */

/* One override "key.path=value", and where the sweep file wrote its value. */
struct rn_sweep_override {
    char *text;       /* owned */
    const char *file; /* the sweep file's path (rn_sweep_file.file) */
    int line, col;
};

/* A list of overrides (a `set`, a list item). */
struct rn_sweep_set {
    struct rn_sweep_override *o; /* owned */
    int n;
};

/* A grid key and its values, each as an override "key=value". */
struct rn_sweep_axis {
    char key[RN_SWEEP_KEY_MAX];
    struct rn_sweep_set values;
};

struct rn_sweep_experiment {
    char path[RN_PATH_MAX]; /* resolved against the sweep file's folder */
    struct rn_sweep_set set;
    int line, col;
};

struct rn_sweep_file {
    char file[RN_PATH_MAX];
    char name[RN_SWEEP_NAME_MAX];
    char out[RN_PATH_MAX];            /* default "results/sweeps" */
    char dir[RN_PATH_MAX];            /* <out>/<name> */
    struct rn_sweep_experiment *exps; /* owned */
    int n_exps;
    struct rn_sweep_set set;
    struct rn_sweep_axis *grid; /* owned */
    int n_grid;
    struct rn_sweep_set *list; /* owned */
    int n_list;
};

/* Parses and checks a sweep file. Every error is one line, "file:line:col:
 * error: ...", printed to errors (may be NULL); err gets the first and
 * *n_errors (may be NULL) the count. On failure *sw is still freeable. */
int rn_sweep_file_load(struct rn_sweep_file *sw, const char *path, FILE *errors, int *n_errors,
                       struct rn_error *err);
void rn_sweep_file_free(struct rn_sweep_file *sw);

/* ---- cells (sweep.c) ------------------------------------------------------ */

enum rn_cell_state {
    RN_CELL_PENDING,     /* never run (no folder) */
    RN_CELL_RUNNING,     /* a process holds its lock */
    RN_CELL_DONE,        /* its done marker exists */
    RN_CELL_FAILED,      /* the last attempt exited non-zero (not 130) */
    RN_CELL_INTERRUPTED, /* stopped (130), or killed before it could say */
};
const char *rn_cell_state_name(enum rn_cell_state s);

struct rn_sweep_cell {
    int index;  /* stable, from the manifest */
    int active; /* 1: the sweep file has it now */
    char exp_path[RN_PATH_MAX];
    char name[128];   /* the experiment's name (resolved spec) */
    char **overrides; /* owned, n_overrides strings "key=value" */
    int n_overrides;
    char id[17];      /* hash of the resolved spec */
    char folder[160]; /* <name>-<hash of spec and code version> */
    char label[512];  /* name and the overrides that vary between cells */
    char group[512];  /* label without the seed: what a table averages over */
    enum rn_cell_state state;
    int exit_code; /* of the last attempt, -1 when unknown */
};

struct rn_sweep_plan {
    char dir[RN_PATH_MAX]; /* the sweep folder */
    char name[RN_SWEEP_NAME_MAX];
    struct rn_sweep_cell *cells; /* owned; every cell of the manifest, by index */
    int n_cells;
};

/* Expands sw into cells, loads and checks every one (spec, graph, train
 * program, analyses: what `validate` checks) and computes its hash. Every
 * problem is printed to errors as one line naming the cell and its
 * overrides, at the sweep file's position of the offending value when an
 * override caused it; -1 when any cell is bad (nothing is written then).
 * Otherwise merges the cells with the manifest of sw->dir when it has one
 * (indices of known cells kept, new ones appended, cells no longer in the
 * file kept as inactive) and, with write, writes it back with sweep.yaml
 * (creating the folder). */
int rn_sweep_plan(struct rn_sweep_plan *plan, const struct rn_sweep_file *sw, FILE *errors,
                  int write, struct rn_error *err);
/* Reads the manifest of an existing sweep folder (runner cell, runner table). */
int rn_sweep_plan_read(struct rn_sweep_plan *plan, const char *dir, struct rn_error *err);
void rn_sweep_plan_free(struct rn_sweep_plan *plan);
/* Refreshes every cell's state and exit code from its folder. */
void rn_sweep_plan_states(struct rn_sweep_plan *plan);
/* "<dir>/cells/<folder>" */
void rn_sweep_cell_dir(const struct rn_sweep_plan *plan, const struct rn_sweep_cell *c, char *out,
                       size_t size);

/* The hash of a resolved spec text without the keys that cannot change a
 * run's numbers; with code (may be NULL) appended. 16 hex digits + NUL. */
void rn_sweep_spec_hash(const char *resolved, const char *code, char out[17]);
/* 1 when a line (len bytes) of a resolved spec is one the hash leaves out: a
 * top-level key that cannot change a run's numbers (description, threads,
 * out) or a comment. */
int rn_sweep_spec_line_ignored(const char *line, size_t len);

/* Writes text to path through path.tmp and a rename (sweep*.c). */
int rn_sweep_write_file(const char *path, const char *text, struct rn_error *err);

/* ---- running cells -------------------------------------------------------- */

struct rn_sweep_run_options {
    int jobs;                      /* cells at once (local), array throttle (slurm); 0: default */
    int threads;                   /* threads per cell; 0: default */
    int retry_failed;              /* run only the cells that failed or were interrupted */
    int fail_fast;                 /* stop at the first failure */
    int dry_run;                   /* print the cells and their state, run nothing */
    int wait;                      /* slurm: follow the array to its end */
    const char *format;            /* figures: png (NULL), pdf, svg */
    const char *const *slurm_opts; /* slurm: extra sbatch arguments */
    int n_slurm_opts;
    const char *runner; /* the runner executable the cells run */
    int poll_ms;        /* slurm --wait: between squeue calls; 0: 2000 */
};

/* Whether a cell is to run under o: pending, failed or interrupted (only
 * the last two with retry_failed); never a done or running one. */
int rn_sweep_cell_wanted(const struct rn_sweep_cell *c, const struct rn_sweep_run_options *o);

/* Prints the cells, their state and folders (the dry run). */
void rn_sweep_print(FILE *f, const struct rn_sweep_plan *plan,
                    const struct rn_sweep_run_options *o);

/* Runs the wanted cells as child processes `runner cell DIR INDEX`, o->jobs
 * at once; SIGINT/SIGTERM stop them (they record "interrupted"). Returns the
 * exit status: 0 when every cell is done, 1 when some failed (each named,
 * with its overrides and log), 130 when interrupted. */
int rn_sweep_run_local(struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o, FILE *out);

/* Submits the wanted cells as one Slurm job array (several when there are
 * more than the cluster's MaxArraySize), o->jobs as its % throttle; with
 * o->wait follows them to the end and reports every cell's Slurm state and
 * exit code. Returns the exit status as rn_sweep_run_local does (0 after a
 * submission without wait). */
int rn_sweep_run_slurm(struct rn_sweep_plan *plan, const struct rn_sweep_run_options *o, FILE *out,
                       struct rn_error *err);

/* `runner cell DIR INDEX`: runs one cell of a planned sweep into its folder
 * (its output appended to the cell's log.txt; one summary line to stderr),
 * records exit_code and, on success, the done marker. A done cell is not
 * run again (0); a cell another process runs is an error. Returns the exit
 * status (0, 1, 130). */
int rn_sweep_run_cell(const char *dir, int index, int threads, const char *format);

#endif
