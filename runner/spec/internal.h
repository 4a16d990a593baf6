/* spec/internal.h - what the files of runner/spec/ share; not for other modules.
 *
 * The spec loader (spec.h) works in three phases on a small tree of our own
 * (mappings, lists, scalars, each carrying the file and 1-based line:col it
 * came from):
 *  1. load (tree.c, extends.c): libyaml events -> tree for the experiment file
 *     (or text), then every file it extends (deep merge) and the model file it
 *     includes. A syntax error, a missing file or an extends cycle stops here:
 *     checking a half-loaded spec would only add errors that are consequences
 *     of the first.
 *  2. overrides (overrides.c): "a.b.3.c=value" edits the tree; the nodes they
 *     create carry the override text instead of a position, so later errors
 *     name it.
 *  3. check (values.c, check*.c): every mapping is checked against a key
 *     schema (struct rn_key: the section schemas of schemas.c, the layer and
 *     analysis registries' tables), collecting every error (diag.c), and
 *     converted into struct rn_spec.
 * The resolved YAML (resolved.c) is written from the struct and the same
 * schemas, so it holds every default; the reference (reference.c) is written
 * from the same schemas too. load.c holds the entry points.
 *
 * The names below are global only within the runner library (nothing else
 * declares them); files outside runner/spec/ use spec.h.
 */
#ifndef RN_SPEC_INTERNAL_H
#define RN_SPEC_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <yaml.h>

#include "spec.h"

#define MAX_DEPTH 64             /* nesting of YAML collections */
#define MAX_EXTENDS 16           /* files in one extends chain */
#define MAX_NODES 100000         /* YAML nodes (scalars, lists, mappings) in all files of a spec */
#define MAX_FILE_BYTES (1 << 20) /* one spec or model file */
#define UNBOUNDED 1e9            /* a schema max at or above this reads as "no upper bound" */
#define SEED_MAX 18446744073709551615.0

/* ---- the tree ------------------------------------------------------------ */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
    enum node_kind kind;
    const char *file;   /* interned path (struct loader), NULL for override values */
    const char *origin; /* the override this node came from, or NULL */
    int line, col;      /* 1-based */
    char *text;         /* scalar text, owned */
    int is_null;        /* plain empty, ~ or null */
    int n, cap;
    struct node **keys;  /* map: the key scalars */
    struct node **items; /* map: values; seq: items */
};

struct frame {
    char *real;          /* realpath, for cycle detection; owned */
    const char *display; /* the path as resolved, for messages (interned) */
};

/* One collected error; they are sorted before printing (overrides in
 * command-line order, then by file, line and column). */
struct diag {
    int override; /* index of the override, or INT_MAX for file errors */
    int file;     /* index in loader.files, -1 when not a loaded file */
    int line, col, seq;
    char *text;
};

struct loader {
    FILE *errors;
    const char *text_name; /* rn_spec_load_text: the name the text goes by, else NULL */
    const char *text_dir;  /* and the folder its extends/include are relative to, or NULL */
    const struct rn_spec_file *vfs; /* rn_spec_load_files: the only files there are, or NULL */
    int n_vfs;
    long n_nodes; /* tree nodes made so far (all files): at most MAX_NODES */
    struct rn_error *err;
    int n_errors;
    int oom;
    char **files; /* interned paths, owned */
    int n_files, cap_files;
    struct frame stack[MAX_EXTENDS];
    int depth;
    const char *const *overrides;
    struct diag *diags;
    int n_diags, cap_diags;
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ---- error reporting and did you mean (diag.c) ---------------------------------- */

void emit(struct loader *L, const char *line);
/* Sorts, prints and frees the collected errors; the first goes into err. */
void flush_diags(struct loader *L);
/* An error at a node: "file:line:col: error: where: msg", or
 * "override 'a.b=c': msg" for nodes an override created. */
__attribute__((format(printf, 4, 5))) void report(struct loader *L, const struct node *at,
                                                  const char *where, const char *fmt, ...);
/* An error about a whole file ("x.yaml: error: ..."), or at a raw position. */
__attribute__((format(printf, 5, 6))) void report_pos(struct loader *L, const char *file, int line,
                                                      int col, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void report_override(struct loader *L, const char *text,
                                                           const char *fmt, ...);
void report_oom(struct loader *L);
/* " (did you mean 'x'?)" or "". */
const char *suggest(char *buf, size_t size, const char *word, const char *const *cands, int n);
/* Splits "a|b|c" into pointers into buf. */
int split_choices(const char *choices, char *buf, size_t size, const char **out, int max);

/* ---- the tree (tree.c) ------------------------------------------------------------ */

const char *intern(struct loader *L, const char *path);
struct node *node_new(struct loader *L, enum node_kind kind, const char *file, const char *origin,
                      int line, int col);
struct node *scalar_new(struct loader *L, const char *text, size_t len, int plain, const char *file,
                        const char *origin, int line, int col);
void node_free(struct node *n);
/* Appends item (and key, for maps). On failure frees both. */
int node_push(struct loader *L, struct node *parent, struct node *key, struct node *item);
struct node *map_get(const struct node *map, const char *key, int *index);
void map_remove(struct node *map, int i);
void set_origin(struct node *n, const char *origin);

/* libyaml events -> tree */
struct source {
    struct loader *L;
    yaml_parser_t *p;
    const char *file;   /* interned, or NULL for an override value */
    const char *origin; /* the override text, or NULL */
};
/* Parses one YAML document. need_map: the root must be a mapping (a null
 * document counts as an empty one). */
struct node *parse_stream(struct source *S, int need_map);
/* Parses path. from: the extends/include value that named it (for a
 * position), NULL for the experiment file itself. */
struct node *parse_file(struct loader *L, const char *path, const struct node *from,
                        const char *as_written);
/* Parses text (len bytes) that goes by the name L->text_name. */
struct node *parse_text(struct loader *L, const char *text, size_t len);
/* rn_spec_load_files: the file named path (lexically normalised: "a/./b",
 * "a/../b"), or NULL. norm (PATH_MAX) gets the normalised name. */
const struct rn_spec_file *vfs_find(const struct loader *L, const char *path, char *norm);

/* ---- extends, include and overrides (extends.c, overrides.c) ------------------------- */

/* Loads path (or, path NULL, L->text_name's text as root) and everything it extends. */
struct node *load_tree(struct loader *L, const char *path, const struct node *from,
                       const char *as_written);
struct node *load_text_tree(struct loader *L, const char *text, size_t len);
/* Replaces model.include by the model file's contents. */
int resolve_include(struct loader *L, struct node *root);
void pop_frame(struct loader *L);
int is_index(const char *s);
/* Applies one override to the tree. only_include: apply it only if its path is
 * model.include (those must act before the include is read); otherwise only if
 * it is not. */
void apply_override(struct loader *L, struct node *root, const char *text, int only_include);

/* ---- schemas of the spec's own sections (schemas.c) ---------------------------------- */

/* A key whose value is not one schema scalar (a section, a list, a pair, a
 * seed): checked by hand; listed so unknown-key checks and the reference
 * know it. */
struct extra_key {
    const char *key;
    const char *type;
    const char *def;
    const char *doc;
};

/* A mapping of the spec: its schema keys and its extra keys. */
struct section {
    const struct rn_key *keys;
    int n_keys;
    const struct extra_key *extra;
    int n_extra;
};

extern const struct section sec_top, sec_data, sec_model, sec_train, sec_loss, sec_optimizer,
    sec_schedule, sec_bind, sec_step, sec_augment, sec_jitter, sec_load, sec_layer, sec_analysis;

/* Augmentation types (train.augment items) and the section of their keys. */
struct augment_type {
    const char *name;
    const struct section *sec;
};
extern const struct augment_type augment_types[];
extern const int n_augment_types;

/* ---- checking values (values.c) ---------------------------------------------------- */

/* "'two'", "a list", "a mapping", "nothing" */
const char *got(const struct node *n, char *buf, size_t size);
int parse_double(const char *s, double *out);
void set_defaults(const struct rn_key *keys, int n, struct rn_values *v);
/* Checks a mapping against keys (+ extra keys handled by the caller) and
 * resolves v with defaults. map may be NULL (section absent: defaults) or a
 * null scalar (written but empty). where: "train", "layer 'conv1' (conv2d)",
 * "" for the top level; dotted: value errors read "train.epochs" rather than
 * "layer ...: filters". Returns 0 if map was usable as a mapping. */
int check_map(struct loader *L, const struct node *map, const char *where, int dotted,
              const struct rn_key *keys, int n, const struct extra_key *extra, int n_extra,
              struct rn_values *v);
/* check_map with a section's keys. */
int check_section(struct loader *L, const struct node *map, const char *where, int dotted,
                  const struct section *sec, struct rn_values *v);
int key_index(const struct rn_key *keys, int n, const char *key);
/* Sets a key's resolved value to one the check derived (a default name, a
 * default that depends on another key), so the resolved spec writes it. */
void set_value_str(struct rn_values *v, const struct section *sec, const char *key,
                   const char *text);
void set_value_num(struct rn_values *v, const struct section *sec, const char *key, double x);
#define VNUM(v, sec, key) ((v).num[key_index((sec).keys, (sec).n_keys, key)])
#define VSTR(v, sec, key) ((v).str[key_index((sec).keys, (sec).n_keys, key)])
#define VGIVEN(v, sec, key) ((v).given[key_index((sec).keys, (sec).n_keys, key)])
/* A scalar string into dst (size bytes). Null = "". */
int get_string(struct loader *L, const struct node *n, const char *label, char *dst, size_t size);
int get_seed(struct loader *L, const struct node *n, const char *label, uint64_t *out);
/* The key node of map's entry key (positions of section-level errors). */
const struct node *key_node(const struct node *map, const char *key);

/* ---- sections (check.c, check_train.c, check_analyses.c) ------------------------------ */

/* "layer 'conv1'" or "layer #3" */
void item_label(char *buf, size_t size, const char *what, const char *name, int index);
/* "loss #2" or "loss 'penalty'" when the item names itself. */
void named_label(char *buf, size_t size, const char *what, const struct node *item, int i);
/* "line 7", or "base.yaml:7" when the first one lives in another file. */
void where_first(char *buf, size_t size, const char *first_file, int first_line,
                 const struct node *second);
/* "type: unknown type 'x' (did you mean 'y'?); valid types: a, b" */
void report_unknown_type(struct loader *L, const struct node *t, const char *label,
                         const char *const *names, int n);
void set_pos(char *file, int *line, int *col, const struct node *n);
/* A list of 1..max items, or a report. */
int check_list(struct loader *L, const struct node *n, const char *label, int max,
               const char *what);
/* A number >= min, or a name (of a schedule, checked by the caller). */
int number_or_name(struct loader *L, const struct node *n, const char *label, double min,
                   double *value, char *name);
int find_name(const char *name, const char *const *names, int n);
/* An unknown reference: "unknown schedule 'lamda' (did you mean 'lambda'?)". */
int check_ref(struct loader *L, const struct node *at, const char *label, const char *what,
              const char *name, const char *const *names, int n, const char *declared_in);
void check_spec(struct loader *L, const struct node *root, struct rn_spec *s);
void check_train(struct loader *L, const struct node *n, struct rn_spec *s);
void check_analyses(struct loader *L, const struct node *n, struct rn_spec *s);

/* List-valued analysis keys (check_analyses.c): `cases`, `models`. */
struct list_key {
    const char *key;
    const struct rn_key *items;
    int n_items;
    const char *example;
};
extern const struct list_key analysis_lists[];
extern const int n_analysis_lists;

/* ---- the resolved YAML (resolved.c) --------------------------------------------------- */

void write_resolved(FILE *f, const struct rn_spec *s);

#endif
