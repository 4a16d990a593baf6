/* spec/diag.c - spec errors: collected, sorted, printed in compiler format;
 * did-you-mean suggestions. */
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- error reporting ----------------------------------------------------- */

static int file_index(const struct loader *L, const char *file)
{
    for (int i = 0; file && i < L->n_files; i++)
        if (L->files[i] == file || !strcmp(L->files[i], file))
            return i;
    return -1;
}

static int override_index(const struct loader *L, const char *origin)
{
    for (int i = 0; origin && L->overrides && L->overrides[i]; i++)
        if (L->overrides[i] == origin)
            return i;
    return INT_MAX;
}

/* Records one error line. If it cannot be stored it is printed at once. */
static void emit_at(struct loader *L, int override, const char *file, int line, int col,
                    const char *text)
{
    L->n_errors++;
    if (L->n_diags == L->cap_diags) {
        int cap = L->cap_diags ? 2 * L->cap_diags : 16;
        struct diag *d = realloc(L->diags, sizeof *d * (size_t)cap);
        if (d) {
            L->diags = d;
            L->cap_diags = cap;
        }
    }
    char *copy = L->n_diags < L->cap_diags ? strdup(text) : NULL;
    if (!copy) {
        if (L->n_errors == 1 && L->err)
            snprintf(L->err->msg, sizeof L->err->msg, "%s", text);
        if (L->errors)
            fprintf(L->errors, "%s\n", text);
        return;
    }
    L->diags[L->n_diags++] = (struct diag){override, file_index(L, file), line, col, L->n_diags,
                                           copy};
}

void emit(struct loader *L, const char *line)
{
    emit_at(L, INT_MAX, NULL, 0, 0, line);
}

static int diag_cmp(const void *pa, const void *pb)
{
    const struct diag *a = pa, *b = pb;
    if (a->override != b->override)
        return a->override < b->override ? -1 : 1;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    if (a->col != b->col)
        return a->col < b->col ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts, prints and frees the collected errors; the first goes into err. */
void flush_diags(struct loader *L)
{
    if (L->n_diags)
        qsort(L->diags, (size_t)L->n_diags, sizeof *L->diags, diag_cmp);
    for (int i = 0; i < L->n_diags; i++) {
        if (i == 0 && L->err && L->n_errors == L->n_diags)
            snprintf(L->err->msg, sizeof L->err->msg, "%s", L->diags[i].text);
        if (L->errors)
            fprintf(L->errors, "%s\n", L->diags[i].text);
        free(L->diags[i].text);
    }
    free(L->diags);
    L->diags = NULL;
    L->n_diags = L->cap_diags = 0;
}

static void vreport(struct loader *L, const struct node *at, const char *where, const char *fmt,
                    va_list ap)
{
    char msg[2048], line[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (at && at->origin) {
        snprintf(line, sizeof line, "override '%s': %s", at->origin, msg);
        emit_at(L, override_index(L, at->origin), NULL, 0, 0, line);
    } else if (at && at->file) {
        snprintf(line, sizeof line, "%s:%d:%d: error: %s%s%s", at->file, at->line, at->col,
                 where ? where : "", where && *where ? ": " : "", msg);
        emit_at(L, INT_MAX, at->file, at->line, at->col, line);
    } else {
        snprintf(line, sizeof line, "error: %s%s%s", where ? where : "",
                 where && *where ? ": " : "", msg);
        emit(L, line);
    }
}

/* An error at a node: "file:line:col: error: where: msg", or
 * "override 'a.b=c': msg" for nodes an override created. */
__attribute__((format(printf, 4, 5))) void report(struct loader *L, const struct node *at,
                                                         const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(L, at, where, fmt, ap);
    va_end(ap);
}

/* An error about a whole file ("x.yaml: error: ..."), or at a raw position. */
__attribute__((format(printf, 5, 6))) void report_pos(struct loader *L, const char *file,
                                                             int line, int col, const char *fmt,
                                                             ...)
{
    char msg[2048], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(out, sizeof out, "%s:%d:%d: error: %s", file, line, col, msg);
    else
        snprintf(out, sizeof out, "%s: error: %s", file, msg);
    emit_at(L, INT_MAX, file, line, col, out);
}

__attribute__((format(printf, 3, 4))) void report_override(struct loader *L,
                                                                  const char *text,
                                                                  const char *fmt, ...)
{
    char msg[2048], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof out, "override '%s': %s", text, msg);
    emit_at(L, override_index(L, text), NULL, 0, 0, out);
}

void report_oom(struct loader *L)
{
    if (!L->oom)
        emit(L, "error: out of memory while reading the spec");
    L->oom = 1;
}

/* ---- did you mean --------------------------------------------------------- */

/* " (did you mean 'x'?)" or "". */
const char *suggest(char *buf, size_t size, const char *word, const char *const *cands,
                           int n)
{
    const char *s = rn_nearest(word, cands, n);
    if (s)
        snprintf(buf, size, " (did you mean '%s'?)", s);
    else
        buf[0] = '\0';
    return buf;
}

/* Splits "a|b|c" into pointers into buf. */
int split_choices(const char *choices, char *buf, size_t size, const char **out, int max)
{
    snprintf(buf, size, "%s", choices ? choices : "");
    int n = 0;
    char *p = buf;
    while (*p && n < max) {
        out[n++] = p;
        char *bar = strchr(p, '|');
        if (!bar)
            break;
        *bar = '\0';
        p = bar + 1;
    }
    return n;
}

