/* tests/sh.h - running the runner binary (or any shell command) from a test
 * (header-only: the function is static; include it from a test). */
#ifndef RN_TEST_SH_H
#define RN_TEST_SH_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

/* Runs a shell command (printf-style) and returns its exit status (128 + the
 * signal when one ended it); its output, at most cap - 1 bytes of it, into
 * out as a string (out may be NULL: the output is read and dropped). */
__attribute__((format(printf, 3, 4), unused)) static int sh(char *out, size_t cap,
                                                              const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen: %s", cmd);
    char drop[512];
    size_t n = 0, k;
    while ((k = out && n + 1 < cap ? fread(out + n, 1, cap - 1 - n, p)
                                   : fread(drop, 1, sizeof drop, p)) > 0)
        if (out && n + 1 < cap)
            n += k;
    if (out)
        out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif
