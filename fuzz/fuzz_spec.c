/* fuzz_spec.c - libFuzzer harness: YAML text -> validated spec -> graph build.
 *
 * One input holds a few files and overrides: the text up to the first line
 * "#@file NAME" is the experiment (exp.yaml); each such line starts the file
 * NAME (up to 7 more, for extends: and model: {include:}); a line "#@set
 * a.b=c" adds an override. Everything is resolved in memory
 * (rn_spec_load_files). A spec that loads is built into its graph, its train
 * section and analyses checked against it (rn_cli_check_model, batch 1: no
 * training), and its resolved YAML must load again to the same text: a
 * resolved spec that does not reload is a bug, reported as a crash.
 * RN_MEM_LIMIT_MB=4 keeps the models it builds small and fast (ResNet-18 is
 * refused part-way by the graph's memory check: under ASan its build took
 * seconds, and timed out when the machine was loaded); one OpenMP thread
 * keeps the convolutions' per-thread workspace to one.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "spec.h"

#define MAX_FILES 8
#define MAX_SETS 4

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("RN_MEM_LIMIT_MB", "4", 0);
    omp_set_num_threads(1);
    return 0;
}

static struct rn_spec spec, again;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    struct rn_spec_file files[MAX_FILES] = {{"exp.yaml", text, 0}};
    int n_files = 1;
    const char *sets[MAX_SETS + 1] = {0};
    int n_sets = 0;
    char *cur = text; /* start of the current file's text */
    for (char *p = text; p < text + size;) {
        char *eol = memchr(p, '\n', (size_t)(text + size - p));
        char *next = eol ? eol + 1 : text + size;
        int is_file = !strncmp(p, "#@file ", 7) && n_files < MAX_FILES;
        int is_set = !strncmp(p, "#@set ", 6) && n_sets < MAX_SETS;
        if (is_file || is_set) {
            files[n_files - 1].len = (size_t)(p - cur);
            if (eol)
                *eol = 0;
            if (is_file)
                files[n_files++] = (struct rn_spec_file){p + 7, next, 0};
            else
                sets[n_sets++] = p + 6;
            cur = next;
        }
        p = next;
    }
    files[n_files - 1].len = (size_t)(text + size - cur);

    struct rn_error err;
    int n_errors = 0;
    if (rn_spec_load_files(&spec, files, n_files, sets, NULL, &n_errors, &err) == 0) {
        struct rn_cli_model_info info;
        (void)rn_cli_check_model(&spec, NULL, &info, &err);
        if (rn_spec_load_text(&again, spec.resolved, spec.file, NULL, NULL, NULL, NULL, &err)) {
            fprintf(stderr, "fuzz_spec: the resolved spec does not load: %s\n%s\n", err.msg,
                    spec.resolved);
            abort();
        }
        if (strcmp(again.resolved, spec.resolved) != 0) {
            fprintf(stderr, "fuzz_spec: the resolved spec resolves differently:\n%s\n---\n%s\n",
                    spec.resolved, again.resolved);
            abort();
        }
        rn_spec_free(&again);
    }
    rn_spec_free(&spec);
    free(text);
    return 0;
}
