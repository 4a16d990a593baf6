/* sweep.c - a sweep's cells (sweep.h): expansion, checking, hashing and
 * the manifest that keeps their indices. Their states and running one cell
 * are sweep_cell.c; the launchers sweep_local.c and sweep_slurm.c. */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rn_git.h"
#include "run.h"
#include "spec.h"

const char *rn_cell_state_name(enum rn_cell_state s)
{
    static const char *const names[] = {"pending", "running", "done", "failed", "interrupted"};
    return s >= 0 && s <= RN_CELL_INTERRUPTED ? names[s] : "?";
}

/* ---- hashing ------------------------------------------------------------------------ */

int rn_sweep_spec_line_ignored(const char *line, size_t len)
{
    static const char *const keys[] = {"description: ", "threads: ", "out: ", "# "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (len >= strlen(keys[i]) && !strncmp(line, keys[i], strlen(keys[i])))
            return 1;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void rn_sweep_spec_hash(const char *resolved, const char *code, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = resolved; *p;) {
        size_t len = strcspn(p, "\n");
        if (!rn_sweep_spec_line_ignored(p, len))
            h = fnv1a(h, p, len + (p[len] == '\n'));
        p += len + (p[len] == '\n');
    }
    if (code) {
        h = fnv1a(h, "code: ", 6);
        h = fnv1a(h, code, strlen(code));
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- small file helpers ------------------------------------------------------------- */

int rn_sweep_write_file(const char *path, const char *text, struct rn_error *err)
{
    char tmp[RN_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rn_errorf(err, "%s: cannot write: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return rn_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return 0;
}

/* The whole file, malloc'd, or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t size = 0, n = 0, k;
    char chunk[4096];
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *b = realloc(buf, size + k + 1);
        if (!b) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = b;
        memcpy(buf + n, chunk, k);
        n += k;
        size += k;
        buf[n] = '\0';
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    return buf;
}

void rn_sweep_cell_dir(const struct rn_sweep_plan *plan, const struct rn_sweep_cell *c, char *out,
                       size_t size)
{
    snprintf(out, size, "%s/cells/%s", plan->dir, c->folder);
}

/* ---- the manifest ------------------------------------------------------------------- */

static void free_cell(struct rn_sweep_cell *c)
{
    for (int i = 0; i < c->n_overrides; i++)
        free(c->overrides[i]);
    free(c->overrides);
    c->overrides = NULL;
    c->n_overrides = 0;
}

void rn_sweep_plan_free(struct rn_sweep_plan *plan)
{
    if (!plan)
        return;
    for (int i = 0; i < plan->n_cells; i++)
        free_cell(&plan->cells[i]);
    free(plan->cells);
    plan->cells = NULL;
    plan->n_cells = 0;
}

static int push_cell(struct rn_sweep_plan *plan, struct rn_error *err)
{
    struct rn_sweep_cell *c = realloc(plan->cells, sizeof *c * (size_t)(plan->n_cells + 1));
    if (!c)
        return rn_errorf(err, "out of memory");
    plan->cells = c;
    memset(&c[plan->n_cells++], 0, sizeof *c);
    return 0;
}

static int add_override(struct rn_sweep_cell *c, const char *text, struct rn_error *err)
{
    char **o = realloc(c->overrides, sizeof *o * (size_t)(c->n_overrides + 2));
    if (!o)
        return rn_errorf(err, "out of memory");
    c->overrides = o;
    if (!(o[c->n_overrides] = strdup(text)))
        return rn_errorf(err, "out of memory");
    o[++c->n_overrides] = NULL;
    return 0;
}

static const char manifest_head[] =
    "# runner sweep manifest: one cell a line, never renumbered. Columns (tab-separated):\n"
    "# index, id (hash of the resolved spec), folder (cells/<folder>: spec and code "
    "version), active (1: in the sweep file now), experiment name, experiment file, "
    "label, group (the label without the seed), overrides...\n";

/* Splits line at tabs in place: up to max fields. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *t = strchr(p, '\t');
        if (!t)
            break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

int rn_sweep_plan_read(struct rn_sweep_plan *plan, const char *dir, struct rn_error *err)
{
    memset(plan, 0, sizeof *plan);
    snprintf(plan->dir, sizeof plan->dir, "%s", dir);
    const char *base = strrchr(dir, '/');
    snprintf(plan->name, sizeof plan->name, "%s", base && base[1] ? base + 1 : dir);
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cells.tsv", dir);
    char *text = read_file(path);
    if (!text)
        return rn_errorf(err,
                         "%s: cannot read: %s (is %s a sweep folder? `runner sweep "
                         "SWEEP.yaml` makes one)",
                         path, strerror(errno), dir);
    int line_no = 0, rc = 0;
    for (char *p = text, *next; *p && !rc; p = next) {
        size_t len = strcspn(p, "\n");
        next = p + len + (p[len] == '\n');
        p[len] = '\0';
        line_no++;
        if (p[0] == '#' || !p[0])
            continue;
        char *f[8 + 256];
        int n = split_tabs(p, f, 8 + 256);
        if (n < 8 || (rc = push_cell(plan, err)))
            break;
        struct rn_sweep_cell *c = &plan->cells[plan->n_cells - 1];
        c->index = atoi(f[0]);
        snprintf(c->id, sizeof c->id, "%s", f[1]);
        snprintf(c->folder, sizeof c->folder, "%s", f[2]);
        c->active = atoi(f[3]);
        snprintf(c->name, sizeof c->name, "%s", f[4]);
        snprintf(c->exp_path, sizeof c->exp_path, "%s", f[5]);
        snprintf(c->label, sizeof c->label, "%s", f[6]);
        snprintf(c->group, sizeof c->group, "%s", f[7]);
        c->exit_code = -1;
        for (int i = 8; i < n && !rc; i++)
            rc = add_override(c, f[i], err);
    }
    if (!rc && line_no && plan->n_cells == 0)
        rc = rn_errorf(err, "%s: no cells", path);
    free(text);
    if (rc)
        rn_sweep_plan_free(plan);
    return rc;
}

static int write_manifest(const struct rn_sweep_plan *plan, struct rn_error *err)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return rn_errorf(err, "out of memory");
    fputs(manifest_head, f);
    for (int i = 0; i < plan->n_cells; i++) {
        const struct rn_sweep_cell *c = &plan->cells[i];
        fprintf(f, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s", c->index, c->id, c->folder, c->active, c->name,
                c->exp_path, c->label, c->group);
        for (int k = 0; k < c->n_overrides; k++)
            fprintf(f, "\t%s", c->overrides[k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return rn_errorf(err, "out of memory");
    }
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cells.tsv", plan->dir);
    int rc = rn_sweep_write_file(path, buf, err);
    free(buf);
    return rc;
}

/* ---- expansion and checking ------------------------------------------------------- */

/* One cell of the expansion, before it is merged into the manifest. */
struct draft {
    int exp;
    const struct rn_sweep_override *src[64 + 8];
    int n;
};

/* "seed=3" is the seed; everything else belongs to the group. */
static int is_seed(const char *o)
{
    return !strncmp(o, "seed=", 5);
}

/* Prints err_line (one spec error) as the cell's: at the sweep file's
 * position of the override it names, else with the cell inserted after
 * "error: ". */
static void report_cell(FILE *errors, const struct draft *d, int k, const char *label,
                        const char *line)
{
    if (!strncmp(line, "override '", 10)) {
        for (int i = d->n - 1; i >= 0; i--) {
            size_t n = strlen(d->src[i]->text);
            if (!strncmp(line + 10, d->src[i]->text, n) && !strncmp(line + 10 + n, "': ", 3)) {
                fprintf(errors, "%s:%d:%d: error: cell %d (%s): %s\n", d->src[i]->file,
                        d->src[i]->line, d->src[i]->col, k, label, line + 10 + n + 3);
                return;
            }
        }
    }
    const char *e = strstr(line, "error: ");
    if (e)
        fprintf(errors, "%.*serror: cell %d (%s): %s\n", (int)(e - line), line, k, label, e + 7);
    else
        fprintf(errors, "error: cell %d (%s): %s\n", k, label, line);
}

/* Loads and checks one drafted cell; fills c (overrides, name, id, folder,
 * label, group). Problems go to errors; returns their count. */
static int check_cell(const struct rn_sweep_file *sw, const struct draft *d, int k,
                      struct rn_sweep_cell *c, FILE *errors, struct rn_error *err)
{
    const struct rn_sweep_experiment *e = &sw->exps[d->exp];
    snprintf(c->exp_path, sizeof c->exp_path, "%s", e->path);
    c->exit_code = -1;
    c->active = 1;
    /* the label: the experiment, then what this cell sets beyond the sweep's set */
    const char *base = strrchr(e->path, '/') ? strrchr(e->path, '/') + 1 : e->path;
    size_t lo = (size_t)snprintf(c->label, sizeof c->label, "%.*s", (int)strcspn(base, "."), base);
    size_t go = (size_t)snprintf(c->group, sizeof c->group, "%s", c->label);
    for (int i = 0; i < d->n; i++) {
        if (add_override(c, d->src[i]->text, err))
            return 1;
        if (i < sw->set.n)
            continue;
        if (lo < sizeof c->label)
            lo += (size_t)snprintf(c->label + lo, sizeof c->label - lo, " %s", d->src[i]->text);
        if (!is_seed(d->src[i]->text) && go < sizeof c->group)
            go += (size_t)snprintf(c->group + go, sizeof c->group - go, " %s", d->src[i]->text);
    }
    struct rn_spec *sp = calloc(1, sizeof *sp);
    if (!sp) {
        rn_errorf(err, "out of memory");
        return 1;
    }
    char *msgs = NULL;
    size_t msgs_len = 0;
    FILE *mf = open_memstream(&msgs, &msgs_len);
    struct rn_error e1;
    int n_err = 0, bad = 0;
    if (rn_spec_load(sp, e->path, (const char *const *)c->overrides, mf, &n_err, &e1)) {
        bad = n_err > 0 ? n_err : 1;
    } else {
        struct rn_cli_model_info info;
        if (rn_cli_check_model(sp, NULL, &info, &e1)) {
            fprintf(mf, "%s\n", e1.msg);
            bad = 1;
        }
    }
    if (mf)
        fclose(mf);
    for (char *p = msgs; p && *p;) {
        size_t len = strcspn(p, "\n");
        char line[RN_ERROR_MAX * 2];
        snprintf(line, sizeof line, "%.*s", (int)len, p);
        report_cell(errors, d, k, c->label, line);
        p += len + (p[len] == '\n');
    }
    if (!msgs && bad)
        report_cell(errors, d, k, c->label, e1.msg);
    free(msgs);
    if (!bad) {
        /* named by the spec's name (the folder's prefix), which `name:` may set */
        size_t old = strcspn(base, ".");
        char rest[sizeof c->label];
        snprintf(rest, sizeof rest, "%s", c->label + old);
        snprintf(c->label, sizeof c->label, "%s%s", sp->name, rest);
        snprintf(rest, sizeof rest, "%s", c->group + old);
        snprintf(c->group, sizeof c->group, "%s%s", sp->name, rest);
        snprintf(c->name, sizeof c->name, "%s", sp->name);
        char h[17];
        rn_sweep_spec_hash(sp->resolved, NULL, c->id);
        rn_sweep_spec_hash(sp->resolved, RN_GIT_COMMIT, h);
        snprintf(c->folder, sizeof c->folder, "%s-%s", sp->name, h);
    }
    rn_spec_free(sp);
    free(sp);
    return bad;
}

/* Every combination: experiments x list items x grid values, the last grid
 * key fastest. */
static int expand(const struct rn_sweep_file *sw, struct draft **out, int *n_out,
                  struct rn_error *err)
{
    long per = 1;
    for (int a = 0; a < sw->n_grid; a++)
        per *= sw->grid[a].values.n;
    int n_list = sw->n_list ? sw->n_list : 1;
    long total = (long)sw->n_exps * n_list * per;
    if (total > 100000)
        return rn_errorf(err, "%s: %ld cells; at most 100000", sw->file, total);
    struct draft *d = calloc((size_t)total, sizeof *d);
    if (!d)
        return rn_errorf(err, "out of memory");
    long k = 0;
    for (int e = 0; e < sw->n_exps; e++)
        for (int l = 0; l < n_list; l++)
            for (long g = 0; g < per; g++, k++) {
                struct draft *c = &d[k];
                c->exp = e;
                const struct rn_sweep_set *sets[3] = {&sw->set, &sw->exps[e].set,
                                                      sw->n_list ? &sw->list[l] : NULL};
                for (int s = 0; s < 3; s++)
                    for (int i = 0; sets[s] && i < sets[s]->n; i++)
                        if (c->n < 64)
                            c->src[c->n++] = &sets[s]->o[i];
                long rest = g;
                int first = c->n;
                for (int a = sw->n_grid - 1; a >= 0; a--) {
                    int nv = sw->grid[a].values.n;
                    c->src[first + a] = &sw->grid[a].values.o[rest % nv];
                    rest /= nv;
                }
                c->n += sw->n_grid;
                if (c->n > 64 + 8 - 1) {
                    free(d);
                    return rn_errorf(err, "%s: more than 64 overrides in a cell", sw->file);
                }
            }
    *out = d;
    *n_out = (int)total;
    return 0;
}

int rn_sweep_plan(struct rn_sweep_plan *plan, const struct rn_sweep_file *sw, FILE *errors,
                  int write, struct rn_error *err)
{
    memset(plan, 0, sizeof *plan);
    struct draft *d = NULL;
    int n = 0, bad = 0;
    if (expand(sw, &d, &n, err))
        return -1;
    struct rn_sweep_plan fresh = {0};
    for (int k = 0; k < n; k++) {
        if (push_cell(&fresh, err)) {
            free(d);
            rn_sweep_plan_free(&fresh);
            return -1;
        }
        fresh.cells[k].index = k;
        bad += check_cell(sw, &d[k], k, &fresh.cells[k], errors, err);
    }
    /* two cells that resolve to the same spec would share a folder */
    for (int k = 0; k < n && !bad; k++)
        for (int j = 0; j < k; j++)
            if (!strcmp(fresh.cells[j].id, fresh.cells[k].id)) {
                const struct rn_sweep_override *o = d[k].n ? d[k].src[d[k].n - 1] : NULL;
                fprintf(errors,
                        "%s:%d:%d: error: cell %d (%s) is the same run as cell %d "
                        "(%s): their resolved specs are equal\n",
                        sw->file, o ? o->line : 1, o ? o->col : 1, k, fresh.cells[k].label, j,
                        fresh.cells[j].label);
                bad++;
                break;
            }
    free(d);
    if (bad) {
        rn_sweep_plan_free(&fresh);
        return rn_errorf(err, "%s: %d error%s in the sweep's cells; nothing was run", sw->file, bad,
                         bad == 1 ? "" : "s");
    }

    /* merge with the manifest: known cells keep their index */
    snprintf(plan->dir, sizeof plan->dir, "%s", sw->dir);
    snprintf(plan->name, sizeof plan->name, "%s", sw->name);
    struct rn_sweep_plan old;
    struct rn_error e2;
    char path[RN_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/cells.tsv", sw->dir);
    int have_old = access(path, F_OK) == 0;
    if (have_old && rn_sweep_plan_read(&old, sw->dir, err)) {
        rn_sweep_plan_free(&fresh);
        return -1;
    }
    if (!have_old)
        memset(&old, 0, sizeof old);
    int next = 0;
    for (int i = 0; i < old.n_cells; i++) {
        next = old.cells[i].index + 1 > next ? old.cells[i].index + 1 : next;
        old.cells[i].active = 0;
    }
    for (int k = 0; k < fresh.n_cells; k++) {
        struct rn_sweep_cell *c = &fresh.cells[k], *o = NULL;
        for (int i = 0; i < old.n_cells && !o; i++)
            o = strcmp(old.cells[i].id, c->id) ? NULL : &old.cells[i];
        if (o) {
            free_cell(o);
            int index = o->index;
            *o = *c;
            o->index = index;
        } else {
            if (push_cell(&old, &e2)) {
                rn_sweep_plan_free(&fresh);
                rn_sweep_plan_free(&old);
                return rn_errorf(err, "%s", e2.msg);
            }
            old.cells[old.n_cells - 1] = *c;
            old.cells[old.n_cells - 1].index = next++;
        }
        memset(c, 0, sizeof *c); /* moved */
    }
    rn_sweep_plan_free(&fresh);
    plan->cells = old.cells;
    plan->n_cells = old.n_cells;
    if (!write)
        return 0;

    char cells[RN_PATH_MAX + 16];
    snprintf(cells, sizeof cells, "%s/cells", sw->dir);
    if (rn_make_dirs(cells, err) || write_manifest(plan, err))
        return -1;
    char *text = read_file(sw->file);
    snprintf(path, sizeof path, "%s/sweep.yaml", sw->dir);
    int rc = text ? rn_sweep_write_file(path, text, err) : 0;
    free(text);
    return rc;
}
