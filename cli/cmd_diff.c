/*
 * cmd_diff.c - `provfs diff A [B]`: why do two versions differ?  A and B are
 * PATH[@N] specs; with one, the version named is compared with the one
 * before it.  Shown: content ids; the writers' argv, exe, cwd and env; the
 * direct inputs (store/lineage.h) that changed, appeared or disappeared,
 * with a unified diff when both sides are small text (config, script); and
 * the other ancestors whose versions differ.
 *
 * A version that arose by rename, link or restore is compared through the
 * version it came from (models/model.pkl@2 <- rename <- .model.pkl.tmp@2):
 * the interesting facts are those of the write, not of the rename.
 *
 * The line diff is `diff -u` run on two temporary files: diffutils is on
 * every system provfs runs on, its output is the format people read, and a
 * hand-written Myers diff would be more code to trust for no gain.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/json.h"
#include "store/lineage.h"
#include "store/lineage_render.h"
#include "store/render.h"
#include "store/store.h"

#define DIFF_USAGE "provfs diff A[@N] [B[@M]] [--scope process|job] [--json]"
#define DIFF_TEXT_MAX (64 * 1024)   /* larger inputs are compared by id only */
#define DIFF_CHAIN_MAX 64           /* rename chains longer than this are loops */

extern char **environ;

struct diff_ref { uint64_t file_id; uint32_t vno; };

struct diff_side {
    struct cat_version v, prod;     /* as named; the write it came from */
    struct diff_ref *in, *anc;      /* direct inputs; all ancestors */
    size_t n_in, n_anc, cap_in, cap_anc;
};

struct diff_ctx {
    struct store *st;
    struct cat_reader *rd;
    enum lineage_scope scope;
    int json, first;
    struct diff_side a, b;
};

static int diff_push(struct diff_ref **a, size_t *n, size_t *cap, uint64_t f, uint32_t v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *p = realloc(*a, nc * sizeof **a);
        if (!p)
            return pv_err(-ENOMEM, "out of memory");
        *a = p;
        *cap = nc;
    }
    (*a)[(*n)++] = (struct diff_ref){ f, v };
    return 0;
}

static int diff_in_cb(void *arg, uint64_t f, uint32_t v)
{
    struct diff_side *s = arg;
    return diff_push(&s->in, &s->n_in, &s->cap_in, f, v);
}

static int diff_ref_cmp(const void *x, const void *y)
{
    const struct diff_ref *a = x, *b = y;
    if (a->file_id != b->file_id)
        return a->file_id < b->file_id ? -1 : 1;
    return a->vno < b->vno ? -1 : a->vno > b->vno;
}

/* Follow renames, links and restores back to the version that was written. */
static int diff_producer(struct cat_reader *rd, const struct cat_version *v, struct cat_version *out)
{
    *out = *v;
    for (int i = 0; i < DIFF_CHAIN_MAX; i++) {
        if (out->origin != CAT_ORIGIN_RENAMED && out->origin != CAT_ORIGIN_LINKED &&
            out->origin != CAT_ORIGIN_RESTORED)
            return 0;
        if (!out->src_file_id || cat_version_get(rd, out->src_file_id, out->src_vno, out))
            return 0;
    }
    return 0;
}

static int diff_load(struct diff_ctx *c, struct diff_side *s)
{
    struct lineage_graph *g = NULL;
    int rc = diff_producer(c->rd, &s->v, &s->prod);
    if (!rc)
        rc = lineage_inputs(c->rd, s->prod.file_id, s->prod.vno, c->scope, diff_in_cb, s);
    if (!rc)
        rc = lineage_walk(c->rd, s->prod.file_id, s->prod.vno, 0, -1, c->scope, &g);
    for (size_t i = 1; !rc && i < g->n_nodes; i++)
        rc = diff_push(&s->anc, &s->n_anc, &s->cap_anc, g->nodes[i].file_id, g->nodes[i].vno);
    lineage_graph_free(g);
    if (s->n_in)
        qsort(s->in, s->n_in, sizeof *s->in, diff_ref_cmp);
    if (s->n_anc)
        qsort(s->anc, s->n_anc, sizeof *s->anc, diff_ref_cmp);
    return rc;
}

/* --- output helpers --------------------------------------------------------- */

static void diff_path(struct diff_ctx *c, uint64_t file_id)
{
    struct cat_str p = { "?", 1 };
    cat_file_path(c->rd, file_id, &p);
    if (c->json)
        json_str(stdout, p.p, p.n);
    else
        cli_put_bytes(stdout, p.p, p.n);
}

static void diff_name(struct diff_ctx *c, const struct cat_version *v)
{
    diff_path(c, v->file_id);
    printf("@%u", v->vno);
}

/* JSON: a key in the top object. */
static void diff_key(struct diff_ctx *c, const char *key)
{
    printf("%s\"%s\":", c->first ? "{" : ",\n", key);
    c->first = 0;
}

/* --- content: small text gets a unified diff ------------------------------------ */

struct diff_buf { char *p; size_t n; };

static int diff_buf_sink(void *ctx, const void *data, size_t n)
{
    struct diff_buf *b = ctx;
    if (b->n + n > DIFF_TEXT_MAX)
        return 1;
    memcpy(b->p + b->n, data, n);
    b->n += n;
    return 0;
}

static int diff_is_text(const char *p, size_t n)
{
    if (memchr(p, 0, n))
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)p[i];
        size_t len = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3
                   : (ch & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if (((unsigned char)p[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* The bytes of a version if it is small, stored text; 0 with b->p NULL if not. */
static int diff_text(struct diff_ctx *c, const struct cat_version *v, struct diff_buf *b)
{
    b->p = NULL;
    b->n = 0;
    if (v->origin == CAT_ORIGIN_DELETED || v->size > DIFF_TEXT_MAX ||
        (v->flags & (CAT_V_MISSING | CAT_V_HASH_ONLY | CAT_V_UNSTORED)))
        return 0;
    if (!(b->p = malloc(DIFF_TEXT_MAX)))
        return pv_err(-ENOMEM, "out of memory");
    int rc = content_read(c->st, v->content_id, diff_buf_sink, b);
    if (rc || !diff_is_text(b->p, b->n)) {
        free(b->p);
        b->p = NULL;
    }
    return rc < 0 ? rc : 0;
}

static int diff_tmpfile(const struct diff_buf *b, char *name)
{
    strcpy(name, "/tmp/provfs-diff.XXXXXX");
    int fd = mkstemp(name);
    if (fd < 0)
        return pv_errno(-errno, "creating a temporary file");
    int rc = cli_write_all(&fd, b->p ? b->p : "", b->p ? b->n : 0);
    close(fd);
    return rc;
}

/* Run `diff -u` on the two texts; its output is left in *out. */
static int diff_run(const struct diff_buf *x, const struct diff_buf *y, const char *lx,
                    const char *ly, struct diff_buf *out)
{
    char fx[32], fy[32], fo[32];
    struct diff_buf none = { NULL, 0 };
    int rc = diff_tmpfile(x, fx);
    if (!rc && (rc = diff_tmpfile(y, fy)))
        unlink(fx);
    if (!rc && (rc = diff_tmpfile(&none, fo))) {
        unlink(fx);
        unlink(fy);
    }
    if (rc)
        return rc;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, fo, O_WRONLY | O_TRUNC, 0);
    char *argv[] = { "diff", "-u", "--label", (char *)lx, "--label", (char *)ly, fx, fy, NULL };
    pid_t pid;
    int st = 0;
    rc = posix_spawnp(&pid, "diff", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
    FILE *f = rc ? NULL : fopen(fo, "r");
    out->p = NULL;
    out->n = 0;
    if (f) {
        out->p = malloc(4 * DIFF_TEXT_MAX + 1);
        out->n = out->p ? fread(out->p, 1, 4 * DIFF_TEXT_MAX, f) : 0;
        fclose(f);
    }
    unlink(fx);
    unlink(fy);
    unlink(fo);
    return rc ? pv_err(-rc, "cannot run diff: %s", strerror(rc)) : 0;
}

/* Print (or put in JSON) the unified diff of two versions, if both are
 * small text. */
static int diff_content(struct diff_ctx *c, const struct cat_version *x, const struct cat_version *y)
{
    struct diff_buf bx, by, out = { NULL, 0 };
    int rc = diff_text(c, x, &bx);
    if (!rc)
        rc = diff_text(c, y, &by);
    else
        by.p = NULL;
    if (!rc && bx.p && by.p) {
        char lx[PATH_MAX + 16], ly[PATH_MAX + 16];
        struct cat_str px = { "?", 1 }, py = { "?", 1 };
        cat_file_path(c->rd, x->file_id, &px);
        cat_file_path(c->rd, y->file_id, &py);
        snprintf(lx, sizeof lx, "%.*s@%u", (int)px.n, px.p, x->vno);
        snprintf(ly, sizeof ly, "%.*s@%u", (int)py.n, py.p, y->vno);
        rc = diff_run(&bx, &by, lx, ly, &out);
    }
    if (c->json) {
        printf(",\"diff\":");
        if (out.p)
            json_str(stdout, out.p, out.n);
        else
            printf("null");
    } else if (out.p) {
        fwrite(out.p, 1, out.n, stdout);
    }
    free(bx.p);
    free(by.p);
    free(out.p);
    return rc;
}

/* --- writers ---------------------------------------------------------------- */

struct diff_proc { struct cat_proc p; struct cat_str exe, argv; int ok; };

static void diff_proc_load(struct diff_ctx *c, uint64_t id, struct diff_proc *d)
{
    struct cat_image im;
    memset(d, 0, sizeof *d);
    if (!id || cat_proc_get(c->rd, id, &d->p))
        return;
    d->ok = 1;
    int img = cat_proc_last_image(c->rd, id, &im) == 0;
    d->exe = img && im.exe.n ? im.exe : d->p.exe;
    d->argv = img && im.argv.n ? im.argv : d->p.argv;
}

static int diff_str_eq(struct cat_str x, struct cat_str y)
{
    return x.n == y.n && (!x.n || !memcmp(x.p, y.p, x.n));
}

/* Print NUL-separated entries of x missing from y, each prefixed by sign. */
static void diff_env_missing(struct diff_ctx *c, struct cat_str x, struct cat_str y, char sign,
                             int *first)
{
    for (size_t i = 0; i < x.n;) {
        size_t len = strnlen(x.p + i, x.n - i);
        int found = 0;
        for (size_t k = 0; k < y.n && !found;) {
            size_t l2 = strnlen(y.p + k, y.n - k);
            found = l2 == len && !memcmp(x.p + i, y.p + k, len);
            k += l2 + 1;
        }
        if (!found && c->json) {
            printf("%s{\"change\":\"%c\",\"entry\":", *first ? "" : ",", sign);
            json_str(stdout, x.p + i, len);
            printf("}");
            *first = 0;
        } else if (!found) {
            printf("  %c ", sign);
            cli_put_bytes(stdout, x.p + i, len);
            putchar('\n');
        }
        i += len + 1;
    }
}

static void diff_writers_text(struct diff_ctx *c, const struct diff_proc *x, const struct diff_proc *y)
{
    printf("writer  ");
    render_proc_cmdline(stdout, c->rd, c->a.prod.writer);
    printf("\n     -> ");
    render_proc_cmdline(stdout, c->rd, c->b.prod.writer);
    putchar('\n');
    if (!x->ok || !y->ok)
        return;
    if (!diff_str_eq(x->argv, y->argv)) {
        printf("argv changed:\n  - ");
        cli_put_argv(stdout, x->argv.p, x->argv.n);
        printf("\n  + ");
        cli_put_argv(stdout, y->argv.p, y->argv.n);
        putchar('\n');
    }
    struct cat_str f[2][2] = { { x->exe, y->exe }, { x->p.cwd, y->p.cwd } };
    const char *names[] = { "exe", "cwd" };
    for (int i = 0; i < 2; i++) {
        if (diff_str_eq(f[i][0], f[i][1]))
            continue;
        printf("%s changed:\n  - ", names[i]);
        cli_put_bytes(stdout, f[i][0].p, f[i][0].n);
        printf("\n  + ");
        cli_put_bytes(stdout, f[i][1].p, f[i][1].n);
        putchar('\n');
    }
    if (!diff_str_eq(x->p.env, y->p.env)) {
        int first = 1;
        printf("environment changed:\n");
        diff_env_missing(c, x->p.env, y->p.env, '-', &first);
        diff_env_missing(c, y->p.env, x->p.env, '+', &first);
    }
}

static void diff_writers_json(struct diff_ctx *c, const struct diff_proc *x, const struct diff_proc *y)
{
    diff_key(c, "writer");
    printf("{\"old\":");
    if (x->ok) lineage_render_proc_json(stdout, c->rd, x->p.id); else printf("null");
    printf(",\"new\":");
    if (y->ok) lineage_render_proc_json(stdout, c->rd, y->p.id); else printf("null");
    printf(",\"argv_changed\":%s,\"exe_changed\":%s,\"cwd_changed\":%s,\"env_changes\":[",
           x->ok && y->ok && !diff_str_eq(x->argv, y->argv) ? "true" : "false",
           x->ok && y->ok && !diff_str_eq(x->exe, y->exe) ? "true" : "false",
           x->ok && y->ok && !diff_str_eq(x->p.cwd, y->p.cwd) ? "true" : "false");
    int first = 1;
    if (x->ok && y->ok) {
        diff_env_missing(c, x->p.env, y->p.env, '-', &first);
        diff_env_missing(c, y->p.env, x->p.env, '+', &first);
    }
    printf("]}");
}

/* --- inputs and ancestors ------------------------------------------------------ */

/* The newest version of file f in a sorted list, or 0. */
static uint32_t diff_find(const struct diff_ref *a, size_t n, uint64_t f)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i].file_id == f && a[i].vno > v)
            v = a[i].vno;
    return v;
}

static int diff_same_content(struct diff_ctx *c, uint64_t f, uint32_t x, uint32_t y)
{
    struct cat_version vx, vy;
    if (x == y)
        return 1;
    if (cat_version_get(c->rd, f, x, &vx) || cat_version_get(c->rd, f, y, &vy))
        return 0;
    return vx.origin != CAT_ORIGIN_DELETED && vy.origin != CAT_ORIGIN_DELETED &&
           !memcmp(vx.content_id, vy.content_id, 32) && vx.size == vy.size;
}

static const char *diff_status(struct diff_ctx *c, uint64_t f, uint32_t x, uint32_t y)
{
    return !x ? "added" : !y ? "removed" : diff_same_content(c, f, x, y) ? "same" : "changed";
}

/* One file of the union of two sorted lists. */
static int diff_entry(struct diff_ctx *c, uint64_t f, uint32_t x, uint32_t y, int with_content,
                      int *first)
{
    const char *status = diff_status(c, f, x, y);
    if (!strcmp(status, "same") && !c->json)
        return 0;
    if (c->json) {
        printf("%s{\"path\":", *first ? "\n" : ",\n");
        diff_path(c, f);
        printf(",\"old\":%u,\"new\":%u,\"status\":\"%s\"", x, y, status);
    } else {
        printf("  %-8s ", status);
        diff_path(c, f);
        if (x) printf("@%u", x);
        if (x && y) printf(" -> ");
        if (y) { if (x) diff_path(c, f); printf("@%u", y); }
        putchar('\n');
    }
    *first = 0;
    int rc = 0;
    if (with_content && !strcmp(status, "changed")) {
        struct cat_version vx, vy;
        if (!cat_version_get(c->rd, f, x, &vx) && !cat_version_get(c->rd, f, y, &vy))
            rc = diff_content(c, &vx, &vy);
        else if (c->json)
            printf(",\"diff\":null");
    } else if (c->json && with_content) {
        printf(",\"diff\":null");
    }
    if (c->json)
        printf("}");
    return rc;
}

/* Walk the union of two sorted lists, file by file. */
static int diff_lists(struct diff_ctx *c, const struct diff_ref *x, size_t nx,
                      const struct diff_ref *y, size_t ny, const struct diff_ref *skip,
                      size_t nskip, int with_content)
{
    size_t i = 0, j = 0;
    int rc = 0, first = 1;
    while (!rc && (i < nx || j < ny)) {
        uint64_t f = j >= ny || (i < nx && x[i].file_id < y[j].file_id) ? x[i].file_id : y[j].file_id;
        uint32_t vx = diff_find(x, nx, f), vy = diff_find(y, ny, f);
        while (i < nx && x[i].file_id == f) i++;
        while (j < ny && y[j].file_id == f) j++;
        if (skip && (diff_find(skip, nskip, f) || diff_find(c->b.in, c->b.n_in, f)))
            continue;   /* upstream: direct inputs were shown already */
        rc = diff_entry(c, f, vx, vy, with_content, &first);
    }
    return rc;
}

static int diff_report(struct diff_ctx *c)
{
    struct diff_proc x, y;
    diff_proc_load(c, c->a.prod.writer, &x);
    diff_proc_load(c, c->b.prod.writer, &y);
    int same = !memcmp(c->a.v.content_id, c->b.v.content_id, 32) && c->a.v.size == c->b.v.size;
    if (c->json) {
        diff_key(c, "old");
        render_version_json(stdout, c->rd, (struct cat_str){ "", 0 }, &c->a.v);
        diff_key(c, "new");
        render_version_json(stdout, c->rd, (struct cat_str){ "", 0 }, &c->b.v);
        diff_key(c, "same_content");
        printf("%s", same ? "true" : "false");
        diff_writers_json(c, &x, &y);
        diff_key(c, "inputs");
        printf("[");
    } else {
        printf("diff ");
        diff_name(c, &c->a.v);
        printf(" ");
        diff_name(c, &c->b.v);
        printf("\ncontent %s\n", same ? "identical" : "differs");
        for (int k = 0; k < 2; k++) {
            const struct diff_side *s = k ? &c->b : &c->a;
            if (s->prod.file_id == s->v.file_id && s->prod.vno == s->v.vno)
                continue;
            diff_name(c, &s->v);
            printf(" came from ");
            diff_name(c, &s->prod);
            printf(" (%s)\n", cat_origin_name(s->v.origin));
        }
        diff_writers_text(c, &x, &y);
        printf("inputs:\n");
    }
    int rc = diff_lists(c, c->a.in, c->a.n_in, c->b.in, c->b.n_in, NULL, 0, 1);
    if (c->json) {
        printf("]");
        diff_key(c, "upstream");
        printf("[");
    } else {
        printf("upstream (other ancestors):\n");
    }
    if (!rc)
        rc = diff_lists(c, c->a.anc, c->a.n_anc, c->b.anc, c->b.n_anc, c->a.in, c->a.n_in, 0);
    printf(c->json ? "]}\n" : "");
    return rc;
}

/* --- main ------------------------------------------------------------------------ */

static int diff_resolve(struct diff_ctx *c, struct cli_ws *ws, char **args, int nargs)
{
    struct cli_spec sa, sb;
    int rc = cli_spec_parse(ws, args[0], &sa);
    if (!rc && nargs == 2)
        rc = cli_spec_parse(ws, args[1], &sb);
    if (rc)
        return rc;
    if (nargs == 1) {
        sb = sa;
        if ((rc = cli_spec_resolve(c->rd, &sb, &c->b.v)))
            return rc;
        sa.vno = sb.vno > 0 ? sb.vno - 1 : sb.vno - 1;
        if (sb.vno > 0 && sa.vno < 1)
            return pv_err(-ENOENT, "%s@%ld has no previous version", sb.path, sb.vno);
        rc = cli_spec_resolve(c->rd, &sa, &c->a.v);
        return rc ? pv_err(rc, "%s: no previous version to compare with", sa.path) : 0;
    }
    rc = cli_spec_resolve(c->rd, &sa, &c->a.v);
    return rc ? rc : cli_spec_resolve(c->rd, &sb, &c->b.v);
}

static int diff_main(char **args, int nargs, enum lineage_scope scope, int json)
{
    struct cli_ws ws;
    struct diff_ctx c;
    memset(&c, 0, sizeof c);
    c.scope = scope;
    c.json = json;
    c.first = 1;
    if (cli_ws_find_path(args[0], &ws))
        return -1;
    cli_ws_scope(&ws, &c.scope);
    if (cli_ws_open_store(&ws, STORE_RDONLY | STORE_RANDOM, &c.st))
        return -1;
    int rc = cat_read_begin(c.st, &c.rd);
    if (!rc)
        rc = diff_resolve(&c, &ws, args, nargs);
    if (!rc)
        rc = diff_load(&c, &c.a);
    if (!rc)
        rc = diff_load(&c, &c.b);
    if (!rc)
        rc = diff_report(&c);
    free(c.a.in); free(c.a.anc); free(c.b.in); free(c.b.anc);
    cat_read_end(c.rd);
    store_close(c.st);
    return rc;
}

int cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "scope", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int json = 0, opt;
    enum lineage_scope scope = CLI_SCOPE_UNSET;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+js:h", longopts, NULL)) != -1) {
        if (opt == 'j') json = 1;
        else if (opt == 's') {
            if (lineage_scope_parse(optarg, &scope))
                return cli_usage(DIFF_USAGE, "%s", pv_errmsg());
        } else if (opt == 'h') { printf("usage: %s\n", DIFF_USAGE); return 0; }
        else return cli_usage(DIFF_USAGE, "bad arguments");
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2)
        return cli_usage(DIFF_USAGE, "expected one or two PATH[@N]");
    fflush(stdout);
    return diff_main(argv + optind, nargs, scope, json) ? cli_fail("diff") : 0;
}
