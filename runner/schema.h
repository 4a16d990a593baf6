/* schema.h - typed key schemas shared by layers, losses, analyses.
 *
 * A registry entry (layer type, analysis, ...) declares its keys as a
 * constant array of struct rn_key. The spec parser checks every key a user
 * writes against it (unknown key -> error with a did-you-mean suggestion,
 * wrong kind, out of range, missing required) and resolves the values into
 * struct rn_values, indexed by the key's position in the schema, with
 * defaults applied.
 */
#ifndef RN_SCHEMA_H
#define RN_SCHEMA_H

#define RN_MAX_KEYS 24
#define RN_STR_MAX 256

enum rn_kind {
    RN_KIND_INT,    /* integer number */
    RN_KIND_FLOAT,  /* real number */
    RN_KIND_BOOL,   /* true/false */
    RN_KIND_STRING, /* any scalar text */
    RN_KIND_CHOICE, /* one of the '|'-separated words in choices */
    RN_KIND_INTS,   /* a flow list of integers, e.g. [3, 28, 28] (at most 8) */
};

struct rn_key {
    const char *key;
    enum rn_kind kind;
    int required;        /* 1: must be given */
    double def;          /* default for numbers/bools when not required */
    const char *def_str; /* default for strings/choices when not required */
    double min, max;     /* inclusive range for numbers (ignored if min > max) */
    const char *choices; /* RN_KIND_CHOICE: "max|avg" */
    const char *doc;     /* one line for the README and --help */
};

/* Resolved values, one slot per schema key, schema order. */
struct rn_values {
    double num[RN_MAX_KEYS];          /* INT, FLOAT, BOOL */
    char str[RN_MAX_KEYS][RN_STR_MAX]; /* STRING, CHOICE */
    int ints[RN_MAX_KEYS][8];          /* INTS */
    int n_ints[RN_MAX_KEYS];
    int given[RN_MAX_KEYS];            /* 1 if written in the spec, 0 if defaulted */
    int line[RN_MAX_KEYS], col[RN_MAX_KEYS]; /* 1-based position when given */
};

#endif
