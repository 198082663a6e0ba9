/* test_policy.c - the policies/ module: globs, precedence, every key, redaction,
 * the built-in default and the canonical dump. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "policies/policy.h"

/* Load a policy from a string, failing the test on error. */
static struct pol *load(const char *text)
{
    struct pol *p = NULL;
    struct pol_error e;
    int rc = pol_load_buf(&p, "t.yaml", text, strlen(text), &e);
    if (rc)
        fail_msg("load failed: %s", pv_errmsg());
    return p;
}

/* Expect a load error at line:col whose message contains `sub`. */
static void load_bad(const char *text, size_t len, int line, int col, const char *sub)
{
    struct pol *p = (struct pol *)1;
    struct pol_error e;
    int rc = pol_load_buf(&p, "t.yaml", text, len, &e);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    assert_int_equal(rc, -EINVAL);
    assert_null(p);
    if (e.line != line || e.col != col || !strstr(e.msg, sub))
        fail_msg("for %.60s: got %d:%d: %s; want %d:%d: ...%s...", text, e.line, e.col,
                 e.msg, line, col, sub);
    char want[64];
    snprintf(want, sizeof want, "t.yaml:%d:%d: ", line, col);
    assert_true(!strncmp(pv_errmsg(), want, strlen(want)));
}

static void bad(const char *text, int line, int col, const char *sub)
{
    load_bad(text, strlen(text), line, col, sub);
}

/* --- globs --------------------------------------------------------------- */

static void test_glob_table(void **state)
{
    (void)state;
    static const struct { const char *pat, *path; int want; } t[] = {
        /* unanchored: basename at any depth */
        { "*.pyc", "a.pyc", 1 }, { "*.pyc", "x/y/a.pyc", 1 }, { "*.pyc", "a.py", 0 },
        { "foo", "foo", 1 }, { "foo", "a/b/foo", 1 }, { "foo", "afoo", 0 },
        { "foo", "foo/bar.txt", 1 },            /* a matched directory covers its contents */
        /* anchored: leading or middle '/' */
        { "/foo", "foo", 1 }, { "/foo", "a/foo", 0 }, { "a/foo", "a/foo", 1 },
        { "a/foo", "b/a/foo", 0 }, { "a/*.csv", "a/x.csv", 1 }, { "a/*.csv", "a/b/x.csv", 0 },
        /* '*' and '?' never cross '/' */
        { "a*b", "a/b", 0 }, { "a?b", "a/b", 0 }, { "a?b", "axb", 1 }, { "/*", "x/y", 1 },
        { "a/*", "a/x/y", 1 },                  /* a/x matches, so below it too */
        /* '**' */
        { "**/foo", "foo", 1 }, { "**/foo", "a/b/foo", 1 }, { "a/**/b", "a/b", 1 },
        { "a/**/b", "a/x/y/b", 1 }, { "a/**/b", "a/x/y/c", 0 }, { "a/**", "a/x", 1 },
        { "a/**", "a/x/y", 1 }, { "a/**", "a", 0 }, { "a/**", "a/", 0 }, { "**", "x", 1 },
        { "**", "x/y", 1 }, { "a/**/*.csv", "a/b/c/d.csv", 1 }, { "**/b/**", "a/b/c", 1 },
        { "**/b/**", "a/b", 0 },
        /* trailing '/': directories and what is below them */
        { "build/", "build", 0 }, { "build/", "build/", 1 }, { "build/", "build/x.o", 1 },
        { "build/", "src/build/x.o", 1 }, { "/build/", "src/build/x.o", 0 },
        { "data/", "data/raw.csv", 1 }, { "data/", "mydata/raw.csv", 0 },
        /* dotfiles: '*' matches a leading dot */
        { "*", ".env", 1 }, { "*.swp", ".train.py.swp", 1 }, { ".#*", ".#notes", 1 },
        { "*~", "notes~", 1 }, { "/*", ".git", 1 },
        /* classes and escapes */
        { "[a-c].txt", "b.txt", 1 }, { "[a-c].txt", "d.txt", 0 }, { "[!a-c].txt", "d.txt", 1 },
        { "[^a-c].txt", "a.txt", 0 }, { "[]x].txt", "].txt", 1 }, { "\\*.txt", "*.txt", 1 },
        { "\\*.txt", "a.txt", 0 }, { "x[/]y", "x/y", -EINVAL },
        /* UTF-8: '?' is one character */
        { "caf?.csv", "café.csv", 1 }, { "[é].csv", "é.csv", 1 },
        /* query normalization */
        { "a/b", "a//b", 1 },
        /* backtracking across stars */
        { "*a*b*c*", "xxaxxbxxcxx", 1 }, { "*a*b*c*", "xxaxxcxxbxx", 0 },
        { "a/**/b/**/c", "a/x/b/y/b/z/c", 1 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int got = pol_glob_match(t[i].pat, t[i].path);
        if (got != t[i].want)
            fail_msg("glob '%s' vs '%s': got %d want %d", t[i].pat, t[i].path, got, t[i].want);
    }
}

static void test_glob_errors(void **state)
{
    (void)state;
    static const char *const badp[] = { "", "a//b", "a**", "**b/c", "a/../b", "./a",
                                        "[abc", "[z-a]", "x\\", "/", "!x" };
    for (size_t i = 0; i < sizeof badp / sizeof *badp; i++)
        if (pol_glob_match(badp[i], "x") != -EINVAL)
            fail_msg("pattern '%s' accepted", badp[i]);
}

/* --- precedence ------------------------------------------------------------ */

static void test_ignore_precedence(void **state)
{
    (void)state;
    struct pol *p = load("inherit: false\n"
                         "ignore: [\"build/\", \"!build/keep/\", \"build/keep/*.tmp\", \"*.log\", \"!important.log\"]\n");
    assert_true(pol_is_ignored(p, "build/x.o"));
    assert_true(pol_is_ignored(p, "build/"));
    assert_false(pol_is_ignored(p, "build/keep/model.pkl"));   /* negation re-includes */
    assert_true(pol_is_ignored(p, "build/keep/a.tmp"));        /* ...and a later rule wins again */
    assert_true(pol_is_ignored(p, "logs/run.log"));
    assert_false(pol_is_ignored(p, "logs/important.log"));
    assert_false(pol_is_ignored(p, "src/build.py"));
    assert_false(pol_is_ignored(p, ""));
    /* provfs's own directories, whatever the policy */
    assert_true(pol_is_ignored(p, ".provfs/data.mdb"));
    assert_true(pol_is_ignored(p, ".prov/README"));
    pol_free(p);
}

static void test_track(void **state)
{
    (void)state;
    struct pol *p = load("track: [\"src/\", \"data/**/*.csv\"]\n");
    assert_false(pol_is_ignored(p, "src/train.py"));
    assert_false(pol_is_ignored(p, "data/a/b.csv"));
    assert_true(pol_is_ignored(p, "data/a/b.json"));
    assert_true(pol_is_ignored(p, "README.md"));
    assert_true(pol_is_ignored(p, "src/__pycache__/x.pyc"));  /* ignore still applies */
    pol_free(p);
    p = load("version: 1\n");
    assert_false(pol_is_ignored(p, "README.md"));               /* empty track = all */
    pol_free(p);
}

static void test_default_policy(void **state)
{
    (void)state;
    struct pol *p;
    assert_int_equal(pol_load_default(&p), 0);
    static const struct { const char *path; int ign; enum pol_kind k; } t[] = {
        { ".git/HEAD", 1, POL_OTHER }, { "src/__pycache__/m.cpython-311.pyc", 1, POL_OTHER },
        { "notebooks/.ipynb_checkpoints/a.ipynb", 1, POL_CODE }, { ".train.py.swp", 1, POL_OTHER },
        { "notes.txt~", 1, POL_OTHER }, { ".#train.py", 1, POL_CODE }, { ".DS_Store", 1, POL_OTHER },
        { "data/raw.csv", 0, POL_DATASET }, { "data/raw/part-0", 0, POL_DATASET },
        { "x/y.parquet", 0, POL_DATASET }, { "models/model.pkl", 0, POL_MODEL },
        { "out/net.pt", 0, POL_MODEL }, { "m.onnx", 0, POL_MODEL }, { "train.py", 0, POL_CODE },
        { "run.sh", 0, POL_CODE }, { "Makefile", 0, POL_CODE }, { "a.ipynb", 0, POL_CODE },
        { "params.yaml", 0, POL_CONFIG }, { "conf/x.toml", 0, POL_CONFIG }, { "params", 0, POL_CONFIG },
        { "metrics/eval.json", 0, POL_METRICS }, { "eval_metrics.json", 0, POL_METRICS },
        { "README.md", 0, POL_OTHER }, { "provfs.yaml", 0, POL_CONFIG },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (pol_is_ignored(p, t[i].path) != t[i].ign)
            fail_msg("%s: ignored=%d", t[i].path, !t[i].ign);
        if (pol_kind_of(p, t[i].path) != t[i].k)
            fail_msg("%s: kind %s want %s", t[i].path, pol_kind_name(pol_kind_of(p, t[i].path)),
                     pol_kind_name(t[i].k));
    }
    assert_int_equal(pol_snapshot_mode(p, "data/raw.csv", 100), POL_SNAP_FULL);
    assert_int_equal(pol_snapshot_mode(p, "data/raw.csv", 2ull << 30), POL_SNAP_FULL);
    assert_int_equal(pol_snapshot_mode(p, "data/raw.csv", (2ull << 30) + 1), POL_SNAP_HASH_ONLY);
    assert_true(pol_env_allowed(p, "PATH"));
    assert_true(pol_env_allowed(p, "CUDA_VISIBLE_DEVICES"));
    assert_false(pol_env_allowed(p, "AWS_SECRET_ACCESS_KEY"));
    assert_false(pol_env_allowed(p, "path"));
    assert_true(pol_env_secret(p, "GITHUB_TOKEN"));
    assert_true(pol_env_secret(p, "aws_access_key_id"));
    assert_true(pol_env_secret(p, "MY_SECRET_THING"));
    assert_false(pol_env_secret(p, "PATH"));
    assert_true(pol_proc_ignored(p, "/usr/bin/updatedb.plocate", "updatedb.plocat"));
    assert_true(pol_proc_ignored(p, NULL, "tracker-miner-f"));
    assert_false(pol_proc_ignored(p, "/usr/bin/python3.11", "python3"));
    assert_int_equal(pol_scope(p), POL_SCOPE_PROCESS);
    assert_int_equal(pol_retention(p)->keep_last, 50);
    assert_int_equal(pol_retention(p)->keep_within, 0);
    assert_int_equal(pol_retention(p)->lineage_of, (1u << POL_MODEL) | (1u << POL_METRICS));
    assert_false(pol_prov_listed(p));
    assert_string_equal(pol_name(p), "<default>");
    pol_free(p);
}

/* --- every key ------------------------------------------------------------- */

static void test_keys(void **state)
{
    (void)state;
    struct pol *p = load(
        "version: 1\n"
        "kinds:\n"
        "  - dataset: [\"*.json\"]\n"       /* appended after the default: wins */
        "  - other: [\"scratch/\"]\n"
        "snapshot:\n"
        "  max_size: 10MiB\n"
        "  hash_only: [\"data/big/\"]\n"
        "  never: [\"*.tmp\", \"!keep.tmp\"]\n"
        "env:\n"
        "  allow: [\"LC_*\", \"!LC_ALL\", MYVAR]\n"
        "redact:\n"
        "  env: [\"!MY_KEY\"]\n"
        "  flags: [\"--db-pass*\"]\n"
        "  patterns: [\"sk-[a-z0-9]{8,}\"]\n"
        "processes:\n"
        "  ignore_comm: [backup]\n"
        "  ignore_exe: [\"/opt/*/bin/indexer\"]\n"
        "lineage: {scope: job}\n"
        "retention: {keep_last: 3, keep_within: 2w, keep_lineage_of: [dataset]}\n"
        "prov: {listed: true}\n");
    assert_int_equal(pol_kind_of(p, "x.json"), POL_DATASET);
    assert_int_equal(pol_kind_of(p, "scratch/a.py"), POL_OTHER);
    assert_int_equal(pol_kind_of(p, "a.py"), POL_CODE);
    assert_int_equal(pol_snapshot_mode(p, "a.bin", 10 << 20), POL_SNAP_FULL);
    assert_int_equal(pol_snapshot_mode(p, "a.bin", (10 << 20) + 1), POL_SNAP_HASH_ONLY);
    assert_int_equal(pol_snapshot_mode(p, "data/big/x.csv", 1), POL_SNAP_HASH_ONLY);
    assert_int_equal(pol_snapshot_mode(p, "x.tmp", 1), POL_SNAP_NONE);
    assert_int_equal(pol_snapshot_mode(p, "keep.tmp", 1), POL_SNAP_FULL);
    assert_true(pol_env_allowed(p, "LC_CTYPE"));
    assert_false(pol_env_allowed(p, "LC_ALL"));
    assert_true(pol_env_allowed(p, "MYVAR"));
    assert_true(pol_env_allowed(p, "PATH"));                   /* inherited */
    assert_false(pol_env_secret(p, "MY_KEY"));
    assert_true(pol_env_secret(p, "OTHER_KEY"));
    assert_true(pol_proc_ignored(p, NULL, "backup"));
    assert_true(pol_proc_ignored(p, "/opt/x/bin/indexer", "indexer"));
    assert_true(pol_proc_ignored(p, NULL, "updatedb"));        /* inherited */
    assert_int_equal(pol_scope(p), POL_SCOPE_JOB);
    assert_int_equal(pol_retention(p)->keep_last, 3);
    assert_int_equal(pol_retention(p)->keep_within, 14 * 86400);
    assert_int_equal(pol_retention(p)->lineage_of,
                     (1u << POL_MODEL) | (1u << POL_METRICS) | (1u << POL_DATASET));
    assert_true(pol_prov_listed(p));
    char out[128];
    pol_redact_argv(p, "x\0--db-password\0hunter2\0key=sk-abcdef1234", 41, out, sizeof out);
    assert_memory_equal(out, "x\0--db-password\0[REDACTED]\0key=[REDACTED]", 41);
    pol_free(p);

    p = load("inherit: false\nversion: 1\n");
    assert_false(pol_is_ignored(p, ".git/HEAD"));
    assert_int_equal(pol_kind_of(p, "a.py"), POL_OTHER);
    assert_false(pol_env_allowed(p, "PATH"));
    assert_int_equal(pol_retention(p)->lineage_of, 0);
    assert_int_equal(pol_retention(p)->keep_last, 50);        /* scalars still default */
    pol_free(p);
}

static void test_units(void **state)
{
    (void)state;
    static const struct { const char *v; uint64_t want; } sz[] = {
        { "0", 0 }, { "123", 123 }, { "4B", 4 }, { "2K", 2048 }, { "2KiB", 2048 },
        { "3M", 3 << 20 }, { "1G", 1 << 30 }, { "5GiB", 5ull << 30 }, { "1TiB", 1ull << 40 } };
    char buf[128];
    for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) {
        snprintf(buf, sizeof buf, "snapshot: {max_size: %s}\n", sz[i].v);
        struct pol *p = load(buf);
        assert_int_equal(pol_snapshot_mode(p, "f", sz[i].want), POL_SNAP_FULL);
        assert_int_equal(pol_snapshot_mode(p, "f", sz[i].want + 1), POL_SNAP_HASH_ONLY);
        pol_free(p);
    }
    static const struct { const char *v; uint64_t want; } du[] = {
        { "0", 0 }, { "90", 90 }, { "90s", 90 }, { "5m", 300 }, { "2h", 7200 },
        { "30d", 30 * 86400 }, { "1w", 604800 } };
    for (size_t i = 0; i < sizeof du / sizeof *du; i++) {
        snprintf(buf, sizeof buf, "retention: {keep_within: %s}\n", du[i].v);
        struct pol *p = load(buf);
        assert_int_equal(pol_retention(p)->keep_within, du[i].want);
        pol_free(p);
    }
}

/* --- errors ---------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    bad("", 1, 1, "policy is empty");
    bad("# only a comment\n", 1, 1, "policy is empty");
    bad("- a\n", 1, 1, "a policy is a mapping");
    bad("version: 2\n", 1, 10, "policy version 1");
    bad("version: 1\nbogus: 3\n", 2, 1, "unknown key 'bogus'");
    bad("snapshot:\n  max_sise: 1\n", 2, 3, "unknown key 'max_sise' in snapshot");
    bad("ignore: \"*.pyc\"\n", 1, 9, "expected a list");
    bad("ignore:\n  - ok\n  - [x]\n", 3, 5, "expected a string");
    bad("ignore:\n  - \"a**\"\n", 2, 5, "'**' must be a whole path component");
    bad("ignore: [\"[abc\"]\n", 1, 10, "character class");
    bad("ignore: [*.csv]\n", 1, 10, "quote patterns that start with '*'");
    bad("ignore: [!keep]\n", 1, 10, "quote patterns that start with '!'");
    bad("ignore: [\"a\", \"a\"]\ntrack: []\ntrack: []\n", 3, 1, "duplicate key 'track' (first at line 2)");
    bad("version: 1\n\tignore: []\n", 2, 1, "tab character");
    bad("version: 1\nignore: [\"caf\xe9\"]\n", 2, 14, "invalid UTF-8");
    bad("version: 1 # \xc3\x28\n", 1, 14, "invalid UTF-8");
    bad("version: 1\nx: \"\x01\"\n", 2, 5, "control character U+0001");
    bad("retention: {keep_last: -1}\n", 1, 24, "must not be negative");
    bad("retention: {keep_last: \"5\"}\n", 1, 24, "expected a whole number, found a quoted string");
    bad("retention: {keep_last: 99999999999999999999}\n", 1, 24, "too large");
    bad("retention: {keep_within: 3 days}\n", 1, 26, "expected a duration");
    bad("snapshot: {max_size: 2GB}\n", 1, 22, "expected a size");
    bad("prov: {listed: yes}\n", 1, 16, "expected true or false");
    bad("inherit: 0\n", 1, 10, "expected true or false");
    bad("lineage: {scope: session}\n", 1, 18, "expected process or job");
    bad("lineage: process\n", 1, 10, "lineage: expected a mapping");
    bad("kinds: {dataset: [x]}\n", 1, 8, "expected a list of 'KIND: [patterns]'");
    bad("kinds:\n  - weights: [x]\n", 2, 5, "unknown kind 'weights'");
    bad("kinds:\n  - model: [\"!x\"]\n", 2, 13, "negation");
    bad("kinds:\n  - model: [a]\n    code: [b]\n", 2, 5, "several keys");
    bad("redact: {patterns: [\"(unclosed\"]}\n", 1, 21, "bad regular expression");
    bad("redact: {patterns: [\"(a)\\\\1\"]}\n", 1, 21, "back-references");
    bad("redact: {flags: [token]}\n", 1, 18, "does not start with '-'");
    bad("env: {allow: [\"\"]}\n", 1, 15, "empty pattern");
    bad("env: {allow: [~]}\n", 1, 15, "expected a string, found nothing");
    bad("a: &x 1\n", 1, 4, "anchors");
    bad("version: 1\n---\nversion: 1\n", 2, 1, "only one YAML document");
    bad("version: !!int 1\n", 1, 10, "tags");
    bad("ignore: [\"a\"\n", 2, 1, "YAML syntax");
    bad("ignore: [[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]\n", 1, 16, "nesting deeper than 8");
}

static void test_limits(void **state)
{
    (void)state;
    /* Too big: rejected before parsing. */
    size_t n = POL_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, '#', n);
    load_bad(big, n, 1, 1, "larger than");
    free(big);
    /* Billion laughs: refused at the first anchor, nothing expands. */
    bad("a: &a [\"x\", \"x\"]\nb: &b [*a, *a]\nc: [*b, *b]\n", 1, 4, "anchors");
    bad("ignore: [*a, *a]\n", 1, 10, "aliases");
    /* Deep nesting in block style. */
    char deep[4096] = "";
    for (int i = 0; i < 40; i++)
        snprintf(deep + strlen(deep), sizeof deep - strlen(deep), "%*sk:\n", 2 * i, "");
    struct pol *p;
    assert_int_equal(pol_load_buf(&p, "d", deep, strlen(deep), NULL), -EINVAL);
    /* A long string. */
    char *ls = malloc(POL_MAX_SCALAR + 64);
    int len = snprintf(ls, 64, "ignore: [\"");
    memset(ls + len, 'a', POL_MAX_SCALAR + 1);
    strcpy(ls + len + POL_MAX_SCALAR + 1, "\"]\n");
    load_bad(ls, strlen(ls), 1, 10, "longer than");
    free(ls);
}

static void test_files(void **state)
{
    (void)state;
    struct pol *p = (struct pol *)1;
    struct pol_error e;
    assert_int_equal(pol_load_file(&p, "/nonexistent/provfs.yaml", &e), -ENOENT);
    assert_null(p);
    assert_int_equal(e.line, 0);
    assert_non_null(strstr(pv_errmsg(), "/nonexistent/provfs.yaml: "));
    assert_int_equal(pol_load_file(&p, "/", &e), -EINVAL);
    char tmp[] = "/tmp/test_policy.XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    const char *t = "version: 1\nignore: [\"x/\"]\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    assert_int_equal(pol_load_file(&p, tmp, &e), 0);
    assert_true(pol_is_ignored(p, "x/y"));
    pol_free(p);
    unlink(tmp);
}

/* Where a workspace's policy comes from, and a reload that fails. */
static void test_workspace_and_reload(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_policy_ws.XXXXXX";
    assert_non_null(mkdtemp(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    struct pol *cur, *next = NULL, *def;
    struct pol_error e;
    assert_int_equal(pol_load_default(&def), 0);
    /* No provfs.yaml: the built-in default. */
    assert_int_equal(pol_load_workspace(&cur, dfd, NULL, &e), 0);
    assert_memory_equal(pol_content_id(cur), pol_content_id(def), 32);
    pol_free(cur);
    /* A provfs.yaml: layered on the default. */
    int fd = openat(dfd, POL_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "ignore: [\"scratch/\"]\n", 21), 21);
    close(fd);
    assert_int_equal(pol_load_workspace(&cur, dfd, NULL, &e), 0);
    assert_string_equal(pol_name(cur), POL_FILE);
    assert_true(pol_is_ignored(cur, "scratch/x"));
    /* A bad edit: the load fails with a position, the old one still works. */
    fd = openat(dfd, POL_FILE, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "ignore: [\"scratch/\"]\nbogus: 1\n", 30), 30);
    close(fd);
    assert_int_equal(pol_load_workspace(&next, dfd, NULL, &e), -EINVAL);
    assert_null(next);
    assert_string_equal(e.file, POL_FILE);
    assert_int_equal(e.line, 2);
    assert_int_equal(e.col, 1);
    assert_true(pol_is_ignored(cur, "scratch/x"));
    /* An override wins over provfs.yaml; a missing one is an error. */
    char over[sizeof dir + 16];
    snprintf(over, sizeof over, "%s/other.yaml", dir);
    assert_int_equal(pol_load_workspace(&next, dfd, over, &e), -ENOENT);
    fd = open(over, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "prov: {listed: true}\n", 21), 21);
    close(fd);
    assert_int_equal(pol_load_workspace(&next, dfd, over, &e), 0);
    assert_true(pol_prov_listed(next));
    /* References: the policy lives until its last holder lets go. */
    struct pol *held = pol_ref(cur);
    pol_free(cur);
    assert_true(pol_is_ignored(held, "scratch/x"));
    pol_free(held);
    pol_free(next);
    pol_free(def);
    unlinkat(dfd, POL_FILE, 0);
    unlink(over);
    close(dfd);
    rmdir(dir);
}

/* --- redaction ------------------------------------------------------------- */

static void test_redact(void **state)
{
    (void)state;
    struct pol *p;
    assert_int_equal(pol_load_default(&p), 0);
    static const struct { const char *in, *want; } argv[] = {
        { "--password=hunter2", "--password=[REDACTED]" },
        { "--token", "--token" },
        { "--api-key=abc", "--api-key=[REDACTED]" },
        { "--PASSWORD=x", "--PASSWORD=[REDACTED]" },
        { "https://bob:s3cret@example.com/x", "https://bob:[REDACTED]@example.com/x" },
        { "Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED]" },
        { "curl?token=abc&x=1", "curl?token=[REDACTED]&x=1" },
        { "ghp_abcdefghijklmnop123", "ghp_[REDACTED]" },
        { "AKIAABCDEFGHIJKLMNOP", "[REDACTED]" },
        { "train.py", "train.py" },
        { "--epochs=3", "--epochs=3" },
    };
    char out[256];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++) {
        size_t n = pol_redact_argv(p, argv[i].in, strlen(argv[i].in), out, sizeof out);
        assert_string_equal(out, argv[i].want);
        assert_int_equal(n, strlen(argv[i].want));
    }
    /* "--token X": the next word goes, the one after stays. */
    const char cmd[] = "python3\0train.py\0--token\0abc\0--lr\0001";
    size_t n = pol_redact_argv(p, cmd, sizeof cmd, out, sizeof out);
    const char want[] = "python3\0train.py\0--token\0[REDACTED]\0--lr\0001";
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    /* Environment values. */
    pol_redact_env(p, "GITHUB_TOKEN", "ghp_x", out, sizeof out);
    assert_string_equal(out, "[REDACTED]");
    pol_redact_env(p, "AWS_REGION", "eu-west-1", out, sizeof out);
    assert_string_equal(out, "[REDACTED]");
    pol_redact_env(p, "DATABASE_URL", "postgres://u:pw@db/x", out, sizeof out);
    assert_string_equal(out, "postgres://u:[REDACTED]@db/x");
    pol_redact_env(p, "PATH", "/usr/bin:/bin", out, sizeof out);
    assert_string_equal(out, "/usr/bin:/bin");
    /* snprintf-style sizing and truncation. */
    const char *s = "--password=hunter2";
    n = pol_redact_argv(p, s, strlen(s), NULL, 0);
    assert_int_equal(n, strlen("--password=[REDACTED]"));
    pol_redact_argv(p, s, strlen(s), out, 8);
    assert_string_equal(out, "--passw");
    pol_redact(p, "user=x password=abc", 19, out, sizeof out);
    assert_string_equal(out, "user=x password=[REDACTED]");
    pol_free(p);
}

static void test_env_filter(void **state)
{
    (void)state;
    struct pol *p = load("env: {allow: [\"GITHUB_TOKEN\", DB_URL]}\n");
    const char env[] = "PATH=/usr/bin\0AWS_SECRET_ACCESS_KEY=abc\0GITHUB_TOKEN=ghp_x\0"
                       "DB_URL=pg://u:pw@h/d\0TERM=xterm\0BROKEN\0HOME=/root";
    const char want[] = "PATH=/usr/bin\0GITHUB_TOKEN=[REDACTED]\0"
                        "DB_URL=pg://u:[REDACTED]@h/d\0HOME=/root";
    char out[256];
    size_t n = pol_env_filter(p, env, sizeof env - 1, out, sizeof out);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(pol_env_filter(p, env, sizeof env - 1, NULL, 0), n);
    pol_free(p);
}

/* The default patterns start with literals, so glibc's matcher stays
 * linear on long words; "[a-z][a-z0-9]*://" took 98 s on 100 KiB of 'a'.
 * Words up to Linux's MAX_ARG_STRLEN (128 KiB) of the worst characters. */
static void test_redact_long_words(void **state)
{
    (void)state;
    struct pol *p;
    assert_int_equal(pol_load_default(&p), 0);
    size_t n = 128 * 1024;
    char *w = malloc(n + 1), *out = malloc(n + 64);
    for (const char *c = "aApg: "; *c; c++) {
        memset(w, *c, n);
        w[n] = 0;
        assert_int_equal(pol_redact_argv(p, w, n, out, n + 64), n);
        assert_memory_equal(out, w, n);
    }
    free(w);
    free(out);
    pol_free(p);
}

/* --- the default file and the dump ----------------------------------------- */

/* Read the repository's policies/default.yaml, found from this binary's
 * location (build/san/tests/test_policy), so the test runs from any cwd. */
static char *read_default_file(size_t *len)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    for (int up = 0; up < 4; up++)
        *strrchr(exe, '/') = 0;
    snprintf(path, sizeof path, "%s/policies/default.yaml", exe);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(POL_MAX_BYTES);
    *len = fread(buf, 1, POL_MAX_BYTES, f);
    fclose(f);
    return buf;
}

static void test_default_file(void **state)
{
    (void)state;
    size_t flen, elen;
    char *file = read_default_file(&flen);
    const char *emb = pol_default_text(&elen);
    assert_int_equal(flen, elen);
    assert_memory_equal(file, emb, flen);
    /* Loaded as a workspace file, the default means exactly the default. */
    struct pol *a, *b;
    assert_int_equal(pol_load_buf(&a, "default.yaml", file, flen, NULL), 0);
    assert_int_equal(pol_load_default(&b), 0);
    assert_memory_equal(pol_content_id(a), pol_content_id(b), 32);
    pol_free(a);
    pol_free(b);
    free(file);
}

static void roundtrip(const char *text)
{
    struct pol *a = load(text), *b;
    char *d1, *d2;
    size_t l1, l2;
    assert_int_equal(pol_dump(a, &d1, &l1), 0);
    if (pol_load_buf(&b, "dump", d1, l1, NULL))
        fail_msg("dump does not load: %s\n%s", pv_errmsg(), d1);
    assert_int_equal(pol_dump(b, &d2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, l1);
    assert_memory_equal(pol_content_id(a), pol_content_id(b), 32);
    assert_int_equal(strlen(d1), l1);
    free(d1);
    free(d2);
    pol_free(a);
    pol_free(b);
}

static void test_dump_roundtrip(void **state)
{
    (void)state;
    roundtrip("version: 1\n");
    roundtrip("inherit: false\n");
    roundtrip("ignore: [\"quo\\\"te\", \"back\\\\slash/\", \"tab\\there\", \"nel\\x85\", \"caf\xc3\xa9\"]\n"
              "kinds:\n  - dataset: [\"*.json\"]\n  - model: [m/]\n  - dataset: [d/]\n"
              "snapshot: {max_size: 1000}\nretention: {keep_within: 61}\n"
              "lineage: {scope: job}\nprov: {listed: true}\n");
    /* The id is the SHA-256 of the dump: different policies, different ids. */
    struct pol *a = load("version: 1\n"), *b = load("prov: {listed: true}\n");
    assert_memory_not_equal(pol_content_id(a), pol_content_id(b), 32);
    assert_int_equal(strlen(pol_content_hex(a)), 64);
    pol_free(a);
    pol_free(b);
}

static void test_kind_names(void **state)
{
    (void)state;
    enum pol_kind k;
    for (int i = 0; i < POL_NKINDS; i++) {
        assert_int_equal(pol_kind_parse(pol_kind_name((enum pol_kind)i), &k), 0);
        assert_int_equal(k, i);
    }
    assert_int_equal(pol_kind_parse("weights", &k), -EINVAL);
    assert_string_equal(pol_snap_name(POL_SNAP_HASH_ONLY), "hash-only");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob_table),
        cmocka_unit_test(test_glob_errors),
        cmocka_unit_test(test_ignore_precedence),
        cmocka_unit_test(test_track),
        cmocka_unit_test(test_default_policy),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_workspace_and_reload),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_redact_long_words),
        cmocka_unit_test(test_env_filter),
        cmocka_unit_test(test_default_file),
        cmocka_unit_test(test_dump_roundtrip),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
