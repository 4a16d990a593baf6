/* The inputs of an analysis (runner/analyses/inputs.c, check_analyses.c):
 *  - split inputs filtered by digit, colour (as the split stores it),
 *    predicted (any, correct, wrong, a class, follows_colour) and index,
 *    each against the selection made by hand from an unfiltered reference
 *    (the labels, colours and Grad-CAM predictions of all 300 test images
 *    of the fixture data, with the fixture model);
 *  - fewer images than n is an error naming the filters and counts, exactly;
 *  - a case's `predicted` condition: the first image of the digit whose
 *    re-coloured version passes (against every such image made by hand as
 *    explicit cases), and an explicit index whose condition fails;
 *  - the canonical text of cases with and without `predicted`, and its
 *    round trip through the resolved spec;
 *  - the loader's one-line errors (did-you-mean, no model, filters beside
 *    cases);
 *  - an old spec (no filters, cases without predicted) makes the inputs it
 *    always made: the split's first n images, byte for byte.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner/analysis.h"
#include "runner/data.h"
#include "runner/results.h"
#include "runner/spec.h"
#include "runner/train.h"

#define REF RN_FIXTURES "/interp_ref.h5"
#define N_TEST 300 /* test images of the fixture data */
#define HW 784

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/rn_inputs_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(inputs, .init = make_dir, .fini = remove_dir, .timeout = 300);

/* The fixture's data and model; the analyses start at line 6. */
static const char *head = "name: inputs\n"
                          "data: {dir: " RN_FIXTURES "/mnist, colouring: background}\n"
                          "model: {include: " RN_FIXTURES "/interp_model.yaml}\n"
                          "load: {run: " REF "}\n"
                          "analyses:\n";

/* Loads <spec_head><analyses> from <dir>/<file>; loader errors into errs.
 * Returns the error count. */
static int load(struct rn_spec *s, const char *spec_head, const char *analyses, const char *file,
                char *errs, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fprintf(f, "%s%s", spec_head, analyses);
    fclose(f);
    memset(s, 0, sizeof *s);
    FILE *ef = fmemopen(errs, cap, "w");
    int n = 0;
    struct rn_error err = {0};
    rn_spec_load(s, path, NULL, ef, &n, &err);
    fclose(ef);
    return n;
}

/* Runs the analyses in <dir>/run; the first error into msg ("" when none). */
static int run_spec(const char *analyses, char *msg, size_t cap)
{
    char errs[4096] = "", out[128];
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    cr_assert_eq(load(s, head, analyses, "x.yaml", errs, sizeof errs), 0, "%s", errs);
    snprintf(out, sizeof out, "rm -rf '%s/run'", dir);
    cr_assert_eq(system(out), 0);
    snprintf(out, sizeof out, "%s/run", dir);
    struct rn_run_options opt = {.out_dir = out, .quiet = 1, .log = stderr};
    struct rn_run *run = calloc(1, sizeof *run);
    cr_assert_not_null(run);
    struct rn_error err = {0};
    int rc = rn_run_open(run, s, &opt, &err);
    if (!rc)
        rc = rn_run_analyses(run, &err);
    rn_run_close(run, rc ? "failed" : "completed");
    free(run);
    rn_spec_free(s);
    free(s);
    snprintf(msg, cap, "%s", rc ? err.msg : "");
    return rc;
}

/* Dataset <group>/<name> of the last run as int32 (*n values). */
static int32_t *read_i32(struct rn_results *r, const char *group, const char *name, int *n)
{
    char path[256];
    int nd, dims[4];
    int32_t *v = NULL;
    struct rn_error err = {0};
    snprintf(path, sizeof path, "/analyses/%s/%s", group, name);
    cr_assert_eq(rn_results_read(r, path, RN_DTYPE_I32, (void **)&v, &nd, dims, &err), 0, "%s",
                 err.msg);
    *n = dims[0];
    return v;
}

static uint8_t *read_images(struct rn_results *r, const char *group, int *n)
{
    char path[256];
    int nd, dims[4];
    uint8_t *v = NULL;
    struct rn_error err = {0};
    snprintf(path, sizeof path, "/analyses/%s/images", group);
    cr_assert_eq(rn_results_read(r, path, RN_DTYPE_U8, (void **)&v, &nd, dims, &err), 0, "%s",
                 err.msg);
    cr_assert(nd == 4 && dims[1] == 3 && dims[2] * dims[3] == HW);
    *n = dims[0];
    return v;
}

static struct rn_results *open_run(void)
{
    char h5[128];
    struct rn_results *r = NULL;
    struct rn_error err = {0};
    snprintf(h5, sizeof h5, "%s/run/run.h5", dir);
    cr_assert_eq(rn_results_open(&r, h5, &err), 0, "%s", err.msg);
    return r;
}

/* ---- the reference: every test image, unfiltered ------------------------------ */

struct ref {
    int label[N_TEST], colour[N_TEST], pred[N_TEST];
    uint8_t *images; /* (N_TEST, 3, 28, 28) */
};

/* Grad-CAM groups r0..r4 over the test split, 64 images each from index
 * 64 j: labels, colours and the model's predictions (Grad-CAM's own
 * forward pass, not the filters'). */
#define REF_GROUPS                                                                                 \
    "  - {type: gradcam, name: r0, split: test, n: 64}\n"                                          \
    "  - {type: gradcam, name: r1, split: test, n: 64, index: 64}\n"                               \
    "  - {type: gradcam, name: r2, split: test, n: 64, index: 128}\n"                              \
    "  - {type: gradcam, name: r3, split: test, n: 64, index: 192}\n"                              \
    "  - {type: gradcam, name: r4, split: test, n: 44, index: 256}\n"

static void read_ref(struct rn_results *r, struct ref *ref)
{
    ref->images = malloc((size_t)N_TEST * 3 * HW);
    cr_assert_not_null(ref->images);
    for (int j = 0; j < 5; j++) {
        char g[8];
        int n, m;
        snprintf(g, sizeof g, "r%d", j);
        int32_t *src = read_i32(r, g, "sources", &n), *lab = read_i32(r, g, "labels", &m),
                *col = read_i32(r, g, "colours", &m), *pred = read_i32(r, g, "preds", &m);
        uint8_t *img = read_images(r, g, &m);
        cr_assert_eq(n, j < 4 ? 64 : 44);
        for (int i = 0; i < n; i++) {
            int k = 64 * j + i;
            cr_assert_eq(src[i], k, "the index filter: %s[%d] is image %d", g, i, src[i]);
            ref->label[k] = lab[i];
            ref->colour[k] = col[i];
            ref->pred[k] = pred[i];
        }
        memcpy(ref->images + (size_t)64 * j * 3 * HW, img, (size_t)n * 3 * HW);
        free(src);
        free(lab);
        free(col);
        free(pred);
        free(img);
    }
}

enum { ANY = -1, CORRECT = -2, WRONG = -3, FOLLOWS = -4 };

static int passes(const struct ref *ref, int k, int digit, int colour, int cond)
{
    if ((digit >= 0 && ref->label[k] != digit) || (colour >= 0 && ref->colour[k] != colour))
        return 0;
    int p = ref->pred[k];
    switch (cond) {
    case ANY:
        return 1;
    case CORRECT:
        return p == ref->label[k];
    case WRONG:
        return p != ref->label[k];
    case FOLLOWS:
        return p == ref->colour[k];
    default:
        return p == cond;
    }
}

/* The images group `name` must hold: the first n passing from index. */
static void expect_selection(struct rn_results *r, const struct ref *ref, const char *name,
                             int digit, int colour, int cond, int index, int n)
{
    int want[64], m = 0;
    for (int k = index; k < N_TEST && m < n; k++)
        if (passes(ref, k, digit, colour, cond))
            want[m++] = k;
    cr_assert_eq(m, n, "%s: the fixture has only %d such images", name, m);
    int got_n, q;
    int32_t *src = read_i32(r, name, "sources", &got_n), *lab = read_i32(r, name, "labels", &q),
            *col = read_i32(r, name, "colours", &q);
    uint8_t *img = read_images(r, name, &q);
    cr_expect_eq(got_n, n, "%s: %d inputs", name, got_n);
    for (int i = 0; i < n && i < got_n; i++) {
        cr_expect_eq(src[i], want[i], "%s[%d]: image %d, want %d", name, i, src[i], want[i]);
        cr_expect_eq(lab[i], ref->label[want[i]]);
        cr_expect_eq(col[i], ref->colour[want[i]]);
        cr_expect(!memcmp(img + (size_t)i * 3 * HW, ref->images + (size_t)want[i] * 3 * HW, 3 * HW),
                  "%s[%d]: not the split's image %d", name, i, want[i]);
    }
    free(src);
    free(lab);
    free(col);
    free(img);
}

/* The class predicted most often by the reference, and how often. */
static int common_pred(const struct ref *ref)
{
    int count[10] = {0}, best = 0;
    for (int k = 0; k < N_TEST; k++)
        count[ref->pred[k]]++;
    for (int c = 1; c < 10; c++)
        best = count[c] > count[best] ? c : best;
    return best;
}

Test(inputs, each_filter_takes_the_first_n_that_pass)
{
    char msg[2048], analyses[4096];
    cr_assert_eq(run_spec(REF_GROUPS, msg, sizeof msg), 0, "%s", msg);
    struct rn_results *r = open_run();
    struct ref ref;
    read_ref(r, &ref);
    rn_results_close(r);
    int cls = common_pred(&ref), n_correct = 0, n_follow = 0;
    for (int k = 0; k < N_TEST; k++) {
        n_correct += ref.pred[k] == ref.label[k];
        n_follow += ref.pred[k] == ref.colour[k];
    }
    /* the fixture model must make each condition a real choice */
    cr_assert(n_correct >= 8 && n_correct <= N_TEST - 8, "%d correct", n_correct);
    cr_assert(n_follow >= 3, "%d follow the colour", n_follow);
    snprintf(analyses, sizeof analyses,
             REF_GROUPS
             "  - {type: gradcam, name: d7, split: test, digit: 7, n: 5}\n"
             "  - {type: gradcam, name: yellow, split: test, colour: yellow, n: 4}\n"
             "  - {type: gradcam, name: d7y, split: test, digit: 7, colour: 3, n: 2}\n"
             "  - {type: gradcam, name: correct, split: test, predicted: correct, n: 6}\n"
             "  - {type: gradcam, name: wrong, split: test, predicted: wrong, index: 10, n: 6}\n"
             "  - {type: gradcam, name: cls, split: test, predicted: %d, n: 3}\n"
             "  - {type: gradcam, name: follows, split: test, predicted: follows_colour, n: 3}\n"
             "  - {type: saliency, name: sal, split: test, digit: 2, predicted: wrong, n: 2}\n"
             "  - {type: attack, name: att, split: test, digit: 7, colour: yellow, n: 1,\n"
             "     eps: \"0\", steps: 1}\n",
             cls);
    cr_assert_eq(run_spec(analyses, msg, sizeof msg), 0, "%s", msg);
    r = open_run();
    expect_selection(r, &ref, "d7", 7, -1, ANY, 0, 5);
    expect_selection(r, &ref, "yellow", -1, 3, ANY, 0, 4);
    expect_selection(r, &ref, "d7y", 7, 3, ANY, 0, 2);
    expect_selection(r, &ref, "correct", -1, -1, CORRECT, 0, 6);
    expect_selection(r, &ref, "wrong", -1, -1, WRONG, 10, 6);
    expect_selection(r, &ref, "cls", -1, -1, cls, 0, 3);
    expect_selection(r, &ref, "follows", -1, -1, FOLLOWS, 0, 3);
    expect_selection(r, &ref, "sal", 2, -1, WRONG, 0, 2);
    expect_selection(r, &ref, "att", 7, 3, ANY, 0, 1);
    rn_results_close(r);
    free(ref.images);
}

Test(inputs, a_shortfall_names_the_filters_and_counts)
{
    char msg[2048], analyses[1024], want[1024];
    cr_assert_eq(run_spec(REF_GROUPS, msg, sizeof msg), 0, "%s", msg);
    struct rn_results *r = open_run();
    struct ref ref;
    read_ref(r, &ref);
    rn_results_close(r);
    int cls = common_pred(&ref), count = 0, sevens = 0;
    for (int k = 0; k < N_TEST; k++) {
        count += passes(&ref, k, 7, 3, cls);
        sevens += passes(&ref, k, 7, -1, ANY) && k >= 40;
    }
    cr_assert_lt(count, 10);
    snprintf(analyses, sizeof analyses,
             "  - {type: gradcam, name: few, split: test, digit: 7, colour: yellow, predicted: "
             "%d, n: 10}\n",
             cls);
    cr_expect_neq(run_spec(analyses, msg, sizeof msg), 0);
    snprintf(want, sizeof want,
             "%s/x.yaml:6:%d: error: analysis 'few' (gradcam): only %d of 10 test images with "
             "digit 7 on yellow predicted %d",
             dir, 88, count, cls);
    cr_expect_str_eq(msg, want);
    /* n not written (6): at the analysis; the index named */
    int wrong = 0;
    for (int k = 40; k < N_TEST; k++)
        wrong += passes(&ref, k, 7, 3, WRONG);
    cr_assert_lt(wrong, 6);
    cr_expect_neq(run_spec("  - {type: saliency, name: s, digit: 7, colour: yellow, index: 40, "
                           "predicted: wrong}\n",
                           msg, sizeof msg),
                  0);
    snprintf(want, sizeof want,
             "%s/x.yaml:6:5: error: analysis 's' (saliency): only %d of 6 test images with "
             "digit 7 on yellow predicted wrongly from index 40",
             dir, wrong);
    cr_expect_str_eq(msg, want);
    cr_expect_neq(run_spec("  - {type: attack, name: a, split: test, digit: 7, index: 40, n: "
                           "64}\n",
                           msg, sizeof msg),
                  0);
    snprintf(want, sizeof want,
             "%s/x.yaml:6:66: error: analysis 'a' (attack): only %d of 64 test images with "
             "digit 7 from index 40",
             dir, sevens);
    cr_expect_str_eq(msg, want);
    cr_expect_neq(run_spec("  - {type: gradcam, name: g, index: 300}\n", msg, sizeof msg), 0);
    snprintf(want, sizeof want,
             "%s/x.yaml:6:37: error: analysis 'g' (gradcam): index 300: split 'test' has 300 "
             "images",
             dir);
    cr_expect_str_eq(msg, want);
    free(ref.images);
}

/* ---- cases with a condition ------------------------------------------------------ */

/* Every test 7 re-coloured `colour`, as explicit cases (groups of 12: a
 * cases text holds at most 255 characters): the model's predictions and
 * the images. */
static void all_sevens(const int *idx, int m, const char *colour, int *pred, uint8_t *all)
{
    char analyses[4096], msg[2048];
    size_t len = 0;
    for (int j = 0; j < m; j++)
        len += (size_t)snprintf(analyses + len, sizeof analyses - len, "%s7 %s test %d%s",
                                j % 12 ? "; " : "  - {type: gradcam, name: all_x, cases: \"",
                                colour, idx[j], j % 12 == 11 || j == m - 1 ? "\"}\n" : "");
    char q = 'a';
    for (char *g = analyses; (g = strstr(g, "all_x")); g++)
        g[4] = q++;
    cr_assert_eq(run_spec(analyses, msg, sizeof msg), 0, "%s", msg);
    struct rn_results *r = open_run();
    int n;
    for (int j = 0, g = 0; j < m; j += n, g++) {
        char name[16];
        snprintf(name, sizeof name, "all_%c", 'a' + g);
        int32_t *p = read_i32(r, name, "preds", &n);
        uint8_t *img = read_images(r, name, &n);
        memcpy(pred + j, p, sizeof(int) * (size_t)n);
        memcpy(all + (size_t)j * 3 * HW, img, (size_t)n * 3 * HW);
        free(p);
        free(img);
    }
    rn_results_close(r);
}

static int first_where(const int *pred, int m, int cls, int equal)
{
    for (int j = 0; j < m; j++)
        if ((pred[j] == cls) == equal)
            return j;
    return -1;
}

Test(inputs, a_case_takes_the_first_image_whose_recoloured_version_passes)
{
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    struct rn_data data;
    struct rn_error err = {0};
    char errs[2048] = "", msg[2048];
    cr_assert_eq(load(s, head, "", "d.yaml", errs, sizeof errs), 0, "%s", errs);
    cr_assert_eq(rn_data_load(&s->data, &data, &err), 0, "%s", err.msg);
    struct rn_split *test = rn_data_split(&data, "test");
    cr_assert_not_null(test);
    int idx[64], m = 0;
    for (int i = 0; i < test->n && m < 64; i++)
        if (test->labels[i] == 7)
            idx[m++] = i;
    rn_data_free(&data);
    rn_spec_free(s);
    free(s);
    cr_assert_gt(m, 5);
    int red[64], yellow[64];
    uint8_t *red_img = malloc((size_t)m * 3 * HW), *yellow_img = malloc((size_t)m * 3 * HW);
    cr_assert(red_img && yellow_img);
    all_sevens(idx, m, "red", red, red_img);
    all_sevens(idx, m, "yellow", yellow, yellow_img);
    /* the fixture model (its weights are not a good classifier) says 6
     * mostly, 0 for some red 7s (red is 0's colour), 1 for some yellow ones,
     * 7 for none */
    const int red_follows = first_where(red, m, 0, 1), red_wrong = first_where(red, m, 7, 0),
              yellow_1 = first_where(yellow, m, 1, 1);
    cr_assert(red_follows > 0 && yellow_1 > 0 && red_wrong >= 0,
              "the fixture model's predictions changed: %d %d %d", red_follows, yellow_1,
              red_wrong);
    cr_assert_eq(first_where(red, m, 7, 1), -1);

    /* the same choices by condition; list and compact forms */
    char analyses[2048];
    snprintf(analyses, sizeof analyses,
             "  - type: gradcam\n"
             "    name: cond\n"
             "    cases:\n"
             "      - {digit: 7, colour: red, predicted: follows_colour}\n"
             "      - {digit: 7, colour: yellow, predicted: 1}\n"
             "      - {digit: 7, colour: red, predicted: wrong}\n"
             "      - {digit: 7, colour: yellow}\n"
             "  - {type: attack, name: att, cases: \"7 yellow test -1 1\", eps: \"0\", steps: 1}\n"
             "  - {type: saliency, name: held, cases: \"7 red test %d follows_colour\"}\n",
             idx[red_follows]);
    cr_assert_eq(run_spec(analyses, msg, sizeof msg), 0, "%s", msg);
    struct rn_results *r = open_run();
    int n;
    int32_t *src = read_i32(r, "cond", "sources", &n);
    uint8_t *img = read_images(r, "cond", &n);
    cr_assert_eq(n, 4);
    const int want[4] = {red_follows, yellow_1, red_wrong, 0};
    const uint8_t *want_img[4] = {red_img, yellow_img, red_img, yellow_img};
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(src[i], idx[want[i]], "case %d: image %d, want %d", i + 1, src[i],
                     idx[want[i]]);
        cr_expect(!memcmp(img + (size_t)i * 3 * HW, want_img[i] + (size_t)want[i] * 3 * HW, 3 * HW),
                  "case %d: not the re-coloured image", i + 1);
    }
    free(src);
    free(img);
    src = read_i32(r, "att", "sources", &n);
    cr_expect(n == 1 && src[0] == idx[yellow_1]);
    free(src);
    src = read_i32(r, "held", "sources", &n);
    cr_expect(n == 1 && src[0] == idx[red_follows]);
    free(src);
    rn_results_close(r);

    /* an explicit index whose condition fails; no image that passes */
    const int j = yellow_1 - 1; /* before the first 1: not a 1 */
    snprintf(analyses, sizeof analyses,
             "  - {type: gradcam, name: bad, cases: \"1 red; 7 yellow test %d 1\"}\n", idx[j]);
    cr_expect_neq(run_spec(analyses, msg, sizeof msg), 0);
    char full[1024];
    snprintf(full, sizeof full,
             "%s/x.yaml:6:39: error: analysis 'bad' (gradcam): case 2 ('7 yellow test %d 1'): "
             "test image %d, a 7 on yellow, is predicted %d: the condition 'predicted: 1' does "
             "not hold",
             dir, idx[j], idx[j], yellow[j]);
    cr_expect_str_eq(msg, full);
    cr_expect_neq(run_spec("  - {type: gradcam, name: none, cases: \"1 red; 7 red test -1 "
                           "correct\"}\n",
                           msg, sizeof msg),
                  0);
    snprintf(full, sizeof full,
             "%s/x.yaml:6:40: error: analysis 'none' (gradcam): case 2 ('7 red test -1 "
             "correct'): none of the %d test images of digit 7, re-coloured red, is predicted "
             "correctly",
             dir, m);
    cr_expect_str_eq(msg, full);
    free(red_img);
    free(yellow_img);
}

/* ---- the spec: canonical text, errors -------------------------------------------- */

static const char *str_of(const struct rn_spec_analysis *a, const char *key)
{
    for (int j = 0; j < a->type->n_keys; j++)
        if (!strcmp(a->type->keys[j].key, key))
            return a->v.str[j];
    cr_assert_fail("no key %s", key);
    return NULL;
}

Test(inputs, canonical_text_of_cases_round_trips)
{
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    char errs[2048] = "";
    const char *analyses = "  - type: gradcam\n"
                           "    cases:\n"
                           "      - {digit: 7, colour: yellow, predicted: wrong}\n"
                           "      - {digit: 1, colour: red}\n"
                           "      - {digit: 2, colour: 3, split: val, index: 17, predicted: any}\n"
                           "      - {digit: 7, colour: black, split: val, predicted: 7}\n"
                           "  - {type: saliency, cases: \"7 yellow test 36 3; 1 red; 0 green "
                           "test -1 any; 4 red val -1 follows_colour\"}\n"
                           "  - {type: attack, cases: \"7 yellow test\"}\n";
    const char *want[3] = {
        "7 yellow test -1 wrong; 1 red test -1; 2 3 val 17; 7 black val -1 7",
        "7 yellow test 36 3; 1 red test -1; 0 green test -1; 4 red val -1 follows_colour",
        "7 yellow test -1"};
    cr_assert_eq(load(s, head, analyses, "c.yaml", errs, sizeof errs), 0, "%s", errs);
    for (int i = 0; i < 3; i++)
        cr_expect_str_eq(str_of(&s->analyses[i], "cases"), want[i]);
    /* the resolved spec (every key, every filter at its default) loads back */
    char *resolved = strdup(s->resolved);
    rn_spec_free(s);
    cr_assert_eq(load(s, "", resolved, "r.yaml", errs, sizeof errs), 0, "%s", errs);
    for (int i = 0; i < 3; i++) {
        cr_expect_str_eq(str_of(&s->analyses[i], "cases"), want[i]);
        cr_expect_str_eq(str_of(&s->analyses[i], "predicted"), "any");
    }
    free(resolved);
    rn_spec_free(s);
    free(s);
}

/* Expects loading <spec_head><analyses> to print exactly want (with %1$s
 * for the file's path). */
static void expect_load_errors(const char *spec_head, const char *analyses, const char *want)
{
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    char errs[4096] = "", full[4096], path[128];
    snprintf(path, sizeof path, "%s/e.yaml", dir);
    cr_expect_gt(load(s, spec_head, analyses, "e.yaml", errs, sizeof errs), 0);
    snprintf(full, sizeof full, want, path);
    cr_expect_str_eq(errs, full);
    rn_spec_free(s);
    free(s);
}

Test(inputs, bad_values_are_one_line_errors)
{
    expect_load_errors(
        head,
        "  - {type: gradcam, name: g, digit: 12, colour: yelow, predicted: wrnog}\n"
        "  - {type: attack, name: a, predicted: followscolour, digit: any, colour: 10}\n"
        "  - {type: saliency, name: s, cases: \"7 yellow test -1 maybe\"}\n"
        "  - {type: gradcam, name: h, cases: \"7 yellow\", digit: 7, index: 3, colour: any}\n"
        "  - type: attack\n"
        "    cases:\n"
        "      - {digit: 7, colour: yellow, predicted: 10}\n",
        "%1$s:6:37: error: analysis 'g' (gradcam): digit: expected a digit 0-9 or any, got '12'\n"
        "%1$s:6:49: error: analysis 'g' (gradcam): colour: unknown colour 'yelow' (did you mean "
        "'yellow'?); expected a palette name (red, green, blue, ...), 0-9 or any\n"
        "%1$s:6:67: error: analysis 'g' (gradcam): predicted: expected any, correct, wrong, "
        "follows_colour or a class 0-9, got 'wrnog' (did you mean 'wrong'?)\n"
        "%1$s:7:40: error: analysis 'a' (attack): predicted: expected any, correct, wrong, "
        "follows_colour or a class 0-9, got 'followscolour' (did you mean 'follows_colour'?)\n"
        "%1$s:7:75: error: analysis 'a' (attack): colour: unknown colour '10'; expected a "
        "palette name (red, green, blue, ...), 0-9 or any\n"
        "%1$s:8:38: error: analysis 's' (saliency): cases #1: predicted: expected any, correct, "
        "wrong, follows_colour or a class 0-9, got 'maybe'\n"
        "%1$s:9:56: error: analysis 'h' (gradcam): digit: filters the images of split, and this "
        "analysis has cases (a case has its own digit, colour, index and predicted)\n"
        "%1$s:9:66: error: analysis 'h' (gradcam): index: filters the images of split, and this "
        "analysis has cases (a case has its own digit, colour, index and predicted)\n"
        "%1$s:12:9: error: analysis #5 (attack): cases #1: predicted: expected any, correct, "
        "wrong, follows_colour or a class 0-9, got '10'\n");
    /* no model to predict with: the models of a models list are not used */
    expect_load_errors(
        "name: x\ndata: {colouring: background}\nanalyses:\n",
        "  - {type: saliency, name: s, models: \"a /no/run\", predicted: wrong}\n"
        "  - {type: saliency, name: t, models: \"a /no/run\", cases: \"1 red test -1 correct\"}\n"
        "  - {type: saliency, name: u, models: \"a /no/run\", digit: 3, predicted: any}\n",
        "%1$s:4:63: error: analysis 's' (saliency): predicted: 'wrong' is decided by this run's "
        "model, and this spec has none (a models list is not used for it); add a model with "
        "train or load\n"
        "%1$s:5:59: error: analysis 't' (saliency): cases #1: predicted: 'correct' is decided by "
        "this run's model, and this spec has none (a models list is not used for it); add a "
        "model with train or load\n");
    /* the colour of uncoloured data */
    expect_load_errors(
        "name: x\ndata: {colouring: none}\nmodel: {layers: [{type: flatten}, {type: linear, "
        "units: 10}]}\ntrain: {epochs: 1}\nanalyses:\n",
        "  - {type: saliency, name: s, colour: red, predicted: follows_colour}\n",
        "%1$s:6:39: error: analysis 's' (saliency): colour: the data is not coloured "
        "(data.colouring: none); a colour filter needs background or stroke\n"
        "%1$s:6:55: error: analysis 's' (saliency): predicted: follows_colour needs coloured "
        "data (data.colouring: background or stroke)\n");
}

/* ---- an old spec ------------------------------------------------------------------ */

Test(inputs, an_old_spec_makes_the_inputs_it_always_made)
{
    char msg[2048];
    cr_assert_eq(run_spec("  - {type: gradcam, name: first, split: test, n: 8}\n"
                          "  - {type: gradcam, name: val, split: val, n: 5}\n"
                          "  - {type: attack, name: att, cases: \"7 yellow test\", eps: \"0\", "
                          "steps: 1}\n"
                          "  - {type: gradcam, name: seven, cases: \"7 yellow test 0\"}\n",
                          msg, sizeof msg),
                 0, "%s", msg);
    /* the split's first n images, byte for byte, as the data module makes them */
    struct rn_spec *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    struct rn_data data;
    struct rn_error err = {0};
    char errs[2048] = "";
    cr_assert_eq(load(s, head, "", "d.yaml", errs, sizeof errs), 0, "%s", errs);
    cr_assert_eq(rn_data_load(&s->data, &data, &err), 0, "%s", err.msg);
    struct rn_results *r = open_run();
    const char *groups[2] = {"first", "val"}, *splits[2] = {"test", "val"};
    for (int gi = 0; gi < 2; gi++) {
        const struct rn_split *sp = rn_data_split(&data, splits[gi]);
        int n, q;
        int32_t *src = read_i32(r, groups[gi], "sources", &n),
                *lab = read_i32(r, groups[gi], "labels", &q),
                *col = read_i32(r, groups[gi], "colours", &q);
        uint8_t *img = read_images(r, groups[gi], &q);
        cr_expect_eq(n, gi ? 5 : 8);
        cr_expect(!memcmp(img, sp->images, (size_t)n * 3 * HW), "%s: other images", groups[gi]);
        for (int i = 0; i < n; i++) {
            cr_expect_eq(src[i], i);
            cr_expect_eq(lab[i], sp->labels[i]);
            cr_expect_eq(col[i], sp->colours[i]);
        }
        char *kind = NULL;
        char path[64];
        snprintf(path, sizeof path, "/analyses/%s", groups[gi]);
        cr_assert_eq(rn_results_get_attr_str(r, path, "inputs", &kind, &err), 0, "%s", err.msg);
        cr_expect_str_eq(kind, "split");
        free(kind);
        free(src);
        free(lab);
        free(col);
        free(img);
    }
    /* a case without predicted: the split's first 7, re-coloured as ever
     * (the same bytes as that image named by its index) */
    const struct rn_split *test = rn_data_split(&data, "test");
    int first7 = 0;
    while (test->labels[first7] != 7)
        first7++;
    int n;
    int32_t *src = read_i32(r, "att", "sources", &n);
    cr_expect(n == 1 && src[0] == first7);
    free(src);
    uint8_t *a = read_images(r, "att", &n), *b = read_images(r, "seven", &n);
    cr_expect(!memcmp(a, b, 3 * HW));
    free(a);
    free(b);
    rn_results_close(r);
    rn_data_free(&data);
    rn_spec_free(s);
    free(s);
}
