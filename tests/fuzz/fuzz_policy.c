/*
 * fuzz_policy.c - libFuzzer harness for the policy loader (make fuzz-policy).
 *
 * Any input must either load or fail with a positioned message, never
 * crash, leak or trip a sanitizer.  When it loads, the canonical dump must
 * load again to the same content id and dump to the same bytes, and the
 * query functions must run on it; so the fuzzer also checks that `provfs
 * policy show` always prints a policy that means what was loaded.  Inputs
 * starting "G\n" exercise the glob matcher directly (see glob_mode).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/policy.h"

static void queries(const struct pol *p)
{
    static const char *const paths[] = { "data/raw.csv", "a/b/c/d.py", ".git/HEAD",
                                         "models/", "x", "caf\xc3\xa9/\xff.bin" };
    char out[256];
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        (void)pol_is_ignored(p, paths[i]);
        (void)pol_kind_of(p, paths[i]);
        (void)pol_snapshot_mode(p, paths[i], 1u << 20);
    }
    (void)pol_env_allowed(p, "PATH");
    (void)pol_proc_ignored(p, "/usr/bin/updatedb", "updatedb");
    static const char cmd[] = "python\0--token\0abc\0https://u:p@h/\0--password=x";
    pol_redact_argv(p, cmd, sizeof cmd, out, sizeof out);
    pol_redact_env(p, "GITHUB_TOKEN", "Authorization: Bearer xyz", out, sizeof out);
}

/* "G\nPATTERN\nPATH": the matcher alone, many times faster than a load,
 * so the fuzzer can dig into classes, UTF-8 and '**' backtracking. */
static void glob_mode(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *pat = buf + 2, *path = strchr(pat, '\n');
    if (path) {
        *path++ = 0;
        int rc = pol_glob_match(pat, path);
        if (rc != 0 && rc != 1 && rc != -22)
            abort();
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pol *p, *q;
    struct pol_error e;
    if (size >= 2 && data[0] == 'G' && data[1] == '\n' && !memchr(data, 0, size)) {
        glob_mode(data, size);
        return 0;
    }
    if (pol_load_buf(&p, "fuzz", (const char *)data, size, &e)) {
        if (e.line < 1 || e.col < 1 || !e.msg[0])
            abort();    /* every rejection names a position */
        return 0;
    }
    queries(p);
    char *d1, *d2;
    size_t l1, l2;
    if (pol_dump(p, &d1, &l1))
        abort();
    if (pol_load_buf(&q, "dump", d1, l1, &e)) {
        fprintf(stderr, "dump does not reload: %d:%d: %s\n%s\n", e.line, e.col, e.msg, d1);
        abort();
    }
    if (pol_dump(q, &d2, &l2) || l1 != l2 || memcmp(d1, d2, l1) ||
        memcmp(pol_content_id(p), pol_content_id(q), 32))
        abort();
    free(d1);
    free(d2);
    pol_free(q);
    pol_free(p);
    return 0;
}
