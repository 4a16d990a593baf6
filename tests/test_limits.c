/* test_limits.c - the explicit limits, each refused with one line before
 * anything large is allocated: YAML nesting depth, YAML values in a spec,
 * file size, layers, extends depth and cycles (in memory: rn_spec_load_files),
 * the memory a model needs for its batch against the machine's (RN_MEM_LIMIT_MB
 * stands for it where the number must be exact), one tensor, IDX dimensions and
 * the data an IDX header announces against the file's size. Then every input
 * the fuzzers found (tests/fixtures/fuzz/) run through the harnesses' own code. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/graph.h"
#include "runner/spec.h"
#include "runner/tensor.h"

/* Loads the in-memory files (NULL-terminated name, text pairs); the spec on
 * the heap, its first error into err. */
static int load_files(const char *const *nt, struct rn_spec **out, struct rn_error *err)
{
    struct rn_spec_file f[32];
    int n = 0;
    for (; nt[2 * n]; n++)
        f[n] = (struct rn_spec_file){nt[2 * n], nt[2 * n + 1], strlen(nt[2 * n + 1])};
    struct rn_spec *sp = calloc(1, sizeof *sp);
    cr_assert_not_null(sp);
    int rc = rn_spec_load_files(sp, f, n, NULL, NULL, NULL, err);
    if (out)
        *out = sp;
    else {
        rn_spec_free(sp);
        free(sp);
    }
    return rc;
}

static void expect_error(const char *const *nt, const char *want)
{
    struct rn_error err = {{0}};
    cr_assert_eq(load_files(nt, NULL, &err), -1, "loaded; expected: %s", want);
    cr_assert_str_eq(err.msg, want);
}

#define DATA "data: {dir: tests/fixtures/mnist}\n"

Test(limits, in_memory_files_extend_and_include_by_name)
{
    const char *nt[] = {"exp.yaml",
                        "extends: bases/b.yaml\nseed: 3\n",
                        "bases/b.yaml",
                        DATA "model: {include: ../models/m.yaml}\ntrain: {}\n",
                        "models/m.yaml",
                        "name: m\nlayers: [{type: flatten}, {type: linear, units: 10}]\n",
                        NULL};
    struct rn_spec *sp;
    struct rn_error err;
    cr_assert_eq(load_files(nt, &sp, &err), 0, "%s", err.msg);
    cr_assert_eq(sp->seed, 3);
    cr_assert_str_eq(sp->model.name, "m");
    cr_assert_eq(sp->model.n_layers, 2);
    rn_spec_free(sp);
    free(sp);
    /* nothing on disk is read: a name missing from the table is missing */
    const char *missing[] = {"exp.yaml", "extends: " RN_FIXTURES "/resume.yaml\n", NULL};
    expect_error(missing, "exp.yaml:1:10: error: cannot open '" RN_FIXTURES
                          "/resume.yaml' (resolved to " RN_FIXTURES "/resume.yaml)");
}

Test(limits, yaml_nesting_depth)
{
    char text[512] = "a: ";
    for (int i = 0; i < 70; i++)
        strcat(text, "[");
    const char *nt[] = {"exp.yaml", text, NULL};
    expect_error(nt, "exp.yaml:1:68: error: nesting deeper than 64 levels");
}

Test(limits, yaml_values_in_a_spec)
{
    /* 100001 values: the mapping, its key, the list and 99998 items */
    size_t n = 99998;
    char *text = malloc(8 + 2 * n + 4);
    strcpy(text, "x: [");
    size_t len = 4;
    for (size_t i = 0; i < n; i++) {
        text[len++] = '0';
        text[len++] = i + 1 < n ? ',' : ']';
    }
    text[len] = 0;
    const char *nt[] = {"exp.yaml", text, NULL};
    struct rn_error err;
    cr_assert_eq(load_files(nt, NULL, &err), -1);
    cr_assert_str_eq(err.msg, "exp.yaml:1:199999: error: more than 100000 YAML values in this "
                              "spec (its files together)");
    text[len - 3] = ']'; /* one item fewer: only the unknown key 'x' is wrong */
    text[len - 2] = 0;
    cr_assert_eq(load_files(nt, NULL, &err), -1);
    cr_assert(strstr(err.msg, "unknown key 'x'"), "%s", err.msg);
    free(text);
}

Test(limits, file_size)
{
    size_t n = (1 << 20) + 1;
    char *text = malloc(n + 1);
    memset(text, '#', n);
    text[n] = 0;
    const char *nt[] = {"exp.yaml", text, NULL};
    expect_error(nt, "exp.yaml: error: 1048577 bytes; a spec or model file holds at most 1048576");
    free(text);
}

Test(limits, layers)
{
    char *text = malloc(64 * 1024);
    strcpy(text, DATA "train: {}\nmodel:\n  layers:\n");
    for (int i = 0; i < RN_MAX_LAYERS + 1; i++)
        strcat(text, "    - {type: relu}\n");
    const char *nt[] = {"exp.yaml", text, NULL};
    expect_error(nt, "exp.yaml:5:5: error: model.layers: expected at most 128 layers, got 129");
    free(text);
}

Test(limits, extends_depth_and_cycles)
{
    /* f0 extends f1 ... extends f16: 17 files */
    char names[17][16], texts[17][32];
    const char *nt[2 * 17 + 1] = {0};
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof names[i], "f%d.yaml", i);
        if (i < 16)
            snprintf(texts[i], sizeof texts[i], "extends: f%d.yaml\n", i + 1);
        else
            snprintf(texts[i], sizeof texts[i], DATA);
        nt[2 * i] = names[i];
        nt[2 * i + 1] = texts[i];
    }
    expect_error(nt, "f15.yaml:1:10: error: more than 16 files extend each other");
    const char *cycle[] = {"a.yaml", "extends: sub/b.yaml\n", "sub/b.yaml", "extends: ../a.yaml\n",
                           NULL};
    expect_error(cycle, "sub/b.yaml:1:10: error: extends cycle: a.yaml -> sub/b.yaml -> "
                        "sub/../a.yaml");
}

/* A conv model on (3, 28, 28) inputs, max_n samples. */
static int build(int max_n, int filters, struct rn_error *err)
{
    char text[512];
    snprintf(text, sizeof text,
             DATA "train: {}\nmodel:\n  layers:\n    - {type: conv2d, filters: %d, kernel: 3, "
                  "padding: 1}\n    - {type: global_avg_pool}\n    - {type: linear, units: 10}\n",
             filters);
    const char *nt[] = {"exp.yaml", text, NULL};
    struct rn_spec *sp;
    cr_assert_eq(load_files(nt, &sp, err), 0, "%s", err->msg);
    struct rn_graph g;
    int rc = rn_graph_build(&g, &sp->model, (struct rn_shape){3, 28, 28}, max_n, err);
    if (rc == 0)
        rn_graph_free(&g);
    rn_spec_free(sp);
    free(sp);
    return rc;
}

Test(limits, model_memory_for_the_batch_against_the_machine)
{
    /* 1e9 inputs of (3, 28, 28): 8.76 TiB, more than any machine */
    struct rn_error err;
    cr_assert_eq(build(1000000000, 8, &err), -1);
    char mem[32], want[512];
    snprintf(want, sizeof want,
             "model 'model': a batch of 1000000000 inputs (3, 28, 28) needs 8761.88 GiB, more than "
             "the %s of memory this machine has; make the batch smaller",
             rn_mem_str(rn_mem_limit(), mem));
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(build(64, 64, &err), 0, "%s", err.msg);
}

Test(limits, model_memory_exact_with_a_set_limit)
{
    setenv("RN_MEM_LIMIT_MB", "10", 1);
    struct rn_error err;
    /* input 1000 x 3 x 28 x 28 x 4 = 8.97 MiB; conv1 adds 2 x 1000 x 8 x 784 x 4 = 47.9 MiB */
    cr_assert_eq(build(1000, 8, &err), -1);
    cr_assert_str_eq(err.msg, "exp.yaml:5:7: error: layer 'conv2d1' (conv2d): the model needs at "
                              "least 56.8 MiB for a batch of 1000 (parameters and gradients 0.0 "
                              "MiB, activations 56.8 MiB up to here), more than the 10.0 MiB of "
                              "memory this machine has; make the batch or the model smaller");
    cr_assert_eq(build(100, 8, &err), 0, "%s", err.msg);
    struct rn_tensor t;
    cr_assert_eq(rn_tensor_init(&t, 1000000, 1000000, 1, 1, &err), -1);
    cr_assert_str_eq(err.msg, "a (1000000, 1000000, 1, 1) tensor needs 3725.29 GiB, more than the "
                              "10.0 MiB of memory this machine has");
    unsetenv("RN_MEM_LIMIT_MB");
}

/* An IDX header (magic, dims) followed by data bytes. */
static size_t idx(uint8_t *buf, int ndim, const uint32_t *dims, size_t data)
{
    uint8_t head[4] = {0, 0, 8, (uint8_t)ndim};
    memcpy(buf, head, 4);
    size_t n = 4;
    for (int d = 0; d < ndim; d++, n += 4) {
        buf[n] = dims[d] >> 24;
        buf[n + 1] = dims[d] >> 16;
        buf[n + 2] = dims[d] >> 8;
        buf[n + 3] = dims[d];
    }
    memset(buf + n, 7, data);
    return n + data;
}

Test(limits, idx_header_against_the_file)
{
    static uint8_t buf[1 << 16];
    struct rn_idx a;
    struct rn_error err;
    uint32_t ok[3] = {2, 28, 28};
    cr_assert_eq(rn_idx_read_mem(buf, idx(buf, 3, ok, 2 * 784), "x", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(a.dims[0], 2);
    rn_idx_free(&a);
    /* a count the file cannot hold: refused from the size, nothing allocated */
    uint32_t many[3] = {2000000000, 28, 28};
    cr_assert_eq(rn_idx_read_mem(buf, idx(buf, 3, many, 784), "x", &a, &err), -1);
    cr_assert_str_eq(err.msg, "x: truncated: 784 of 1568000000000 data bytes present");
    cr_assert_null(a.data);
    cr_assert_eq(rn_idx_read_mem(buf, idx(buf, 3, ok, 3 * 784), "x", &a, &err), -1);
    cr_assert_str_eq(err.msg, "x: 784 bytes follow the 1568 data bytes its header announces (a "
                              "wrong or damaged file)");
    uint32_t wide[3] = {1, 28, 5000};
    cr_assert_eq(rn_idx_read_mem(buf, idx(buf, 3, wide, 0), "x", &a, &err), -1);
    cr_assert_str_eq(err.msg, "x: dimension 2 is 5000; this reader allows at most 4096");
    uint32_t huge[1] = {3000000000u};
    cr_assert_eq(rn_idx_read_mem(buf, idx(buf, 1, huge, 0), "x", &a, &err), -1);
    cr_assert_str_eq(err.msg,
                     "x: dimension 0 is 3000000000; this reader allows at most 2147483647");
    idx(buf, 3, ok, 0);
    cr_assert_eq(rn_idx_read_mem(buf, 6, "x", &a, &err), -1);
    cr_assert_str_eq(err.msg, "x: truncated: IDX header ends after 6 of 16 bytes");
}

/* ---- what the fuzzers found -------------------------------------------------------------- */

#define LLVMFuzzerInitialize fuzz_spec_init
#define LLVMFuzzerTestOneInput fuzz_spec_one
#include "../fuzz/fuzz_spec.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput

/* Every file of tests/fixtures/fuzz/ named spec-* or idx-* goes through its
 * harness: it must load or be refused, without a crash, a leak (ASan) or an
 * abort (the harnesses' own checks). */
Test(fuzz_regress, every_finding_runs_clean, .timeout = 120)
{
    fuzz_spec_init(NULL, NULL);
    DIR *d = opendir(RN_FIXTURES "/fuzz");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int spec = !strncmp(e->d_name, "spec-", 5), is_idx = !strncmp(e->d_name, "idx-", 4);
        if (!spec && !is_idx)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/fuzz/%s", RN_FIXTURES, e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        cr_log_info("fuzz_regress: %s (%zu bytes)", e->d_name, len);
        (spec ? fuzz_spec_one : fuzz_idx_one)(buf, len);
        n++;
    }
    closedir(d);
    cr_assert_gt(n, 0, "no findings in tests/fixtures/fuzz");
}
