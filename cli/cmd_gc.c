/*
 * cmd_gc.c - `provfs gc [--keep-last N] [--keep-within DURATION] [--dry-run]
 * [--prune-lineage] [--json]`: apply retention, then free what no version
 * needs any more.
 *
 * Which versions stay: the rules come from the flags, or, when no rule flag
 * is given, from the workspace policy (retention.keep_last/keep_within).
 * A version is kept if any rule keeps it:
 *  - it is one of the newest keep_last versions of its path;
 *  - it is younger than keep_within;
 *  - it is the current version of its path, or the newest version with
 *    content (so a deleted file, or one whose last snapshot failed, can
 *    still be restored);
 *  - unless --prune-lineage, it is an ancestor (lineage.h, recursively) of a
 *    kept version.
 * With no rule at all nothing is dropped (gc only frees unreferenced
 * chunks).
 *
 * Memory: the catalog is walked with cursors, one file at a time.  What is
 * held: a set of the versions kept only for lineage (with the traversal
 * stack), a bounded cache of per-file summaries, and one batch of
 * GC_BATCH versions to drop, committed per transaction
 * (maint_drop_versions).  Then content_gc frees the chunks and punches their
 * bytes out of the packs.
 *
 * Works mounted (through the daemon's descriptor, cli_ws_open_store) or not:
 * LMDB serializes writers across processes, the daemon re-reads a content
 * in full when the one it would increment from was dropped, and pack
 * recovery never cuts a tail another process holds locked.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "policies/policy.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/json.h"
#include "store/lineage.h"
#include "store/maint.h"
#include "store/render.h"
#include "store/store.h"

#define GC_USAGE "provfs gc [--keep-last N] [--keep-within DURATION] [--dry-run] " \
                 "[--prune-lineage] [--json]"
#define GC_BATCH 256                /* versions dropped per transaction */
#define GC_FCACHE_MAX (1u << 20)    /* file summaries cached at most */

struct gc_rules {
    uint64_t keep_last, keep_within;    /* 0: rule off; keep_within in s */
    int from_policy, prune_lineage, dry_run, json;
    enum lineage_scope scope;
};

/* What the rules need to know about a file, computed once. */
struct gc_file {
    uint64_t id;            /* 0: empty slot */
    uint32_t last;          /* current version */
    uint32_t head_stored;   /* newest version with content (0: none) */
    uint32_t cutoff;        /* keep_last keeps vno >= cutoff */
};

/* An open-addressing set of (file id, vno); file ids start at 1. */
struct gc_set {
    struct maint_vref *v;
    size_t cap, n;
};

struct gc {
    struct store *st;
    struct cat_reader *rd;
    struct gc_rules r;
    uint64_t now;
    struct gc_file *fc;
    size_t fcap, fn;
    struct gc_set lineage;      /* kept only because a kept version needs them */
    struct maint_vref *stk;     /* traversal stack */
    size_t nstk, capstk;
    struct maint_vref batch[GC_BATCH];
    size_t nbatch;
    struct maint_drop_result res;
    uint64_t would_drop, would_bytes;
    const char *path;           /* file being swept */
    size_t path_len;
    int listed;
};

/* --- small containers ------------------------------------------------------ */

static size_t gc_hash(uint64_t a, uint32_t b)
{
    uint64_t h = (a * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)b * 0xc2b2ae3d27d4eb4full);
    return (size_t)(h ^ h >> 29);
}

static struct maint_vref *gc_set_slot(struct gc_set *s, uint64_t f, uint32_t v)
{
    size_t i = gc_hash(f, v) & (s->cap - 1);
    while (s->v[i].file_id && !(s->v[i].file_id == f && s->v[i].vno == v))
        i = (i + 1) & (s->cap - 1);
    return &s->v[i];
}

static int gc_set_has(const struct gc_set *s, uint64_t f, uint32_t v)
{
    return s->cap && gc_set_slot((struct gc_set *)s, f, v)->file_id;
}

/* Add; 1 if added, 0 if present, negative on error. */
static int gc_set_add(struct gc_set *s, uint64_t f, uint32_t v)
{
    if ((s->n + 1) * 2 > s->cap) {
        struct gc_set ns = { calloc(s->cap ? s->cap * 2 : 1024, sizeof *ns.v),
                             s->cap ? s->cap * 2 : 1024, 0 };
        if (!ns.v)
            return pv_err(-ENOMEM, "out of memory");
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i].file_id)
                *gc_set_slot(&ns, s->v[i].file_id, s->v[i].vno) = s->v[i];
        ns.n = s->n;
        free(s->v);
        *s = ns;
    }
    struct maint_vref *e = gc_set_slot(s, f, v);
    if (e->file_id)
        return 0;
    *e = (struct maint_vref){ f, v };
    s->n++;
    return 1;
}

static int gc_push(struct gc *g, uint64_t f, uint32_t v)
{
    if (g->nstk == g->capstk) {
        size_t cap = g->capstk ? g->capstk * 2 : 256;
        struct maint_vref *p = realloc(g->stk, cap * sizeof *p);
        if (!p)
            return pv_err(-ENOMEM, "out of memory");
        g->stk = p;
        g->capstk = cap;
    }
    g->stk[g->nstk++] = (struct maint_vref){ f, v };
    return 0;
}

/* --- the rules --------------------------------------------------------------- */

struct gc_sum_walk {
    struct gc_file *f;
    uint64_t seen, keep_last;
};

static int gc_sum_one(void *ctx, const struct cat_version *v)
{
    struct gc_sum_walk *w = ctx;
    if (!w->seen++)
        w->f->last = v->vno;
    if (!w->f->head_stored && maint_version_stored(v))
        w->f->head_stored = v->vno;
    if (w->seen == w->keep_last)
        w->f->cutoff = v->vno;
    /* Stop once all three are known. */
    return w->f->head_stored && w->seen >= w->keep_last;
}

static int gc_file_get(struct gc *g, uint64_t id, struct gc_file *out)
{
    if (g->fn * 2 >= g->fcap) {
        size_t cap = g->fcap ? g->fcap * 2 : 1024;
        if (cap > GC_FCACHE_MAX) {
            memset(g->fc, 0, g->fcap * sizeof *g->fc);  /* bounded: start over */
            g->fn = 0;
        } else {
            struct gc_file *n = calloc(cap, sizeof *n);
            if (!n)
                return pv_err(-ENOMEM, "out of memory");
            for (size_t i = 0; i < g->fcap; i++) {
                if (!g->fc[i].id)
                    continue;
                size_t j = gc_hash(g->fc[i].id, 0) & (cap - 1);
                while (n[j].id)
                    j = (j + 1) & (cap - 1);
                n[j] = g->fc[i];
            }
            free(g->fc);
            g->fc = n;
            g->fcap = cap;
        }
    }
    size_t i = gc_hash(id, 0) & (g->fcap - 1);
    while (g->fc[i].id && g->fc[i].id != id)
        i = (i + 1) & (g->fcap - 1);
    if (!g->fc[i].id) {
        struct gc_file f = { .id = id };
        struct gc_sum_walk w = { &f, 0, g->r.keep_last };
        int rc = cat_versions_scan(g->rd, id, 1, gc_sum_one, &w);
        if (rc < 0)
            return rc;
        g->fc[i] = f;
        g->fn++;
    }
    *out = g->fc[i];
    return 0;
}

/* Kept by a rule (not counting lineage)?  1 yes, 0 no, negative on error. */
static int gc_kept_by_rules(struct gc *g, const struct cat_version *v)
{
    struct gc_file f = { 0 };
    int rc = gc_file_get(g, v->file_id, &f);
    if (rc)
        return rc;
    if (v->vno == f.last || v->vno == f.head_stored)
        return 1;
    if (g->r.keep_last && v->vno >= f.cutoff)
        return 1;
    return g->r.keep_within && v->wall_ns + g->r.keep_within * 1000000000ull >= g->now;
}

/* --- lineage: mark the dropped-by-rules ancestors of kept versions ---------- */

static int gc_input(void *ctx, uint64_t file_id, uint32_t vno)
{
    struct gc *g = ctx;
    struct cat_version v;
    if (gc_set_has(&g->lineage, file_id, vno))
        return 0;
    if (cat_version_get(g->rd, file_id, vno, &v))
        return 0;           /* already gone */
    int rc = gc_kept_by_rules(g, &v);
    if (rc)
        return rc < 0 ? rc : 0;     /* kept anyway: it is a root of its own */
    if ((rc = gc_set_add(&g->lineage, file_id, vno)) < 0)
        return rc;
    return gc_push(g, file_id, vno);
}

static int gc_inputs_of(struct gc *g, uint64_t file_id, uint32_t vno)
{
    return lineage_inputs(g->rd, file_id, vno, g->r.scope, gc_input, g);
}

/* Everything a kept version needs, depth first with an explicit stack. */
static int gc_protect_from(struct gc *g, uint64_t file_id, uint32_t vno)
{
    int rc = gc_inputs_of(g, file_id, vno);
    while (!rc && g->nstk) {
        struct maint_vref top = g->stk[--g->nstk];
        rc = gc_inputs_of(g, top.file_id, top.vno);
    }
    return rc;
}

static int gc_protect_version(void *ctx, const struct cat_version *v)
{
    struct gc *g = ctx;
    int rc = gc_kept_by_rules(g, v);
    if (rc <= 0)
        return rc;
    return gc_protect_from(g, v->file_id, v->vno);
}

static int gc_protect_file(void *ctx, uint64_t id, struct cat_str path)
{
    (void)path;
    return cat_versions_scan(((struct gc *)ctx)->rd, id, 1, gc_protect_version, ctx);
}

/* --- dropping ------------------------------------------------------------------ */

static int gc_flush(struct gc *g)
{
    int rc = 0;
    if (g->nbatch && !g->r.dry_run)
        rc = maint_drop_versions(g->st, g->batch, g->nbatch, &g->res);
    g->nbatch = 0;
    return rc;
}

static void gc_list(struct gc *g, const struct cat_version *v)
{
    char size[32];
    if (g->r.json) {
        printf("%s{\"path\":", g->listed++ ? ",\n" : "\n");
        json_str(stdout, g->path, g->path_len);
        printf(",\"version\":%" PRIu32 ",\"origin\":\"%s\",\"size\":%" PRIu64 ",\"stored\":%s}",
               v->vno, cat_origin_name(v->origin), v->size,
               maint_version_stored(v) ? "true" : "false");
        return;
    }
    render_size(size, sizeof size, v->size);
    printf("%s ", g->r.dry_run ? "would drop" : "drop");
    cli_put_bytes(stdout, g->path, g->path_len);
    printf("@%" PRIu32 " (%s, %s)\n", v->vno, cat_origin_name(v->origin),
           maint_version_stored(v) ? size : "no content");
    g->listed++;
}

static int gc_sweep_version(void *ctx, const struct cat_version *v)
{
    struct gc *g = ctx;
    int rc = gc_kept_by_rules(g, v);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!g->r.prune_lineage && gc_set_has(&g->lineage, v->file_id, v->vno))
        return 0;
    gc_list(g, v);
    g->would_drop++;
    if (maint_version_stored(v))
        g->would_bytes += v->size;
    g->batch[g->nbatch++] = (struct maint_vref){ v->file_id, v->vno };
    return g->nbatch == GC_BATCH ? gc_flush(g) : 0;
}

static int gc_sweep_file(void *ctx, uint64_t id, struct cat_str path)
{
    struct gc *g = ctx;
    g->path = path.p;
    g->path_len = path.n;
    int rc = cat_versions_scan(g->rd, id, 1, gc_sweep_version, g);
    return rc ? rc : gc_flush(g);
}

/* --- rules from flags or policy ------------------------------------------------- */

/* "90", "90s", "15m", "12h", "30d", "2w" -> seconds. */
static int gc_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (end == s || *s == '-' || errno)
        return -EINVAL;
    switch (*end) {
    case 0: case 's': break;
    case 'm': mul = 60; break;
    case 'h': mul = 3600; break;
    case 'd': mul = 86400; break;
    case 'w': mul = 7 * 86400; break;
    default: return -EINVAL;
    }
    if (*end && end[1])
        return -EINVAL;
    if (n > UINT64_MAX / 1000000000ull / mul)
        return -ERANGE;
    *out = n * mul;
    return 0;
}

/* The workspace policy: retention when no rule flag was given, and the
 * lineage scope in every case.  Read from the backing directory (the
 * parent of the store), not through the mount. */
static int gc_policy(const struct cli_ws *ws, struct gc_rules *r, int have_flags)
{
    struct pol *p;
    int rc = cli_ws_policy(ws, &p);
    if (rc)
        return rc;
    r->scope = pol_scope(p) == POL_SCOPE_JOB ? LINEAGE_SCOPE_JOB : LINEAGE_SCOPE_PROCESS;
    if (!have_flags) {
        const struct pol_retention *ret = pol_retention(p);
        r->keep_last = ret->keep_last;
        r->keep_within = ret->keep_within;
        r->from_policy = 1;
    }
    pol_free(p);
    return 0;
}

static int gc_args(int argc, char **argv, struct gc_rules *r, int *have_flags)
{
    static const struct option longopts[] = {
        { "keep-last", required_argument, NULL, 'n' },
        { "keep-within", required_argument, NULL, 'w' },
        { "dry-run", no_argument, NULL, 'd' }, { "prune-lineage", no_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int opt;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+n:w:dpjh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            errno = 0;
            r->keep_last = strtoull(optarg, &end, 10);
            if (!*optarg || *end || *optarg == '-' || errno)
                return cli_usage(GC_USAGE, "--keep-last wants a number, not '%s'", optarg);
            *have_flags = 1;
            break;
        case 'w':
            if (gc_parse_duration(optarg, &r->keep_within))
                return cli_usage(GC_USAGE, "--keep-within wants a duration (seconds, or a "
                                 "number with s, m, h, d or w), not '%s'", optarg);
            *have_flags = 1;
            break;
        case 'd': r->dry_run = 1; break;
        case 'p': r->prune_lineage = 1; break;
        case 'j': r->json = 1; break;
        case 'h': printf("usage: %s\n", GC_USAGE); return -1;
        default: return cli_usage(GC_USAGE, "bad arguments");
        }
    }
    if (optind != argc)
        return cli_usage(GC_USAGE, "no arguments expected");
    return 0;
}

/* --- running ------------------------------------------------------------------- */

static int gc_run(struct gc *g, struct content_gc_result *freed)
{
    int rc = 0;
    if (g->r.keep_last || g->r.keep_within) {
        if (!(rc = cat_read_begin(g->st, &g->rd))) {
            if (!g->r.prune_lineage)
                rc = cat_files_scan(g->rd, gc_protect_file, g);
            if (!rc)
                rc = cat_files_scan(g->rd, gc_sweep_file, g);
            if (!rc)
                rc = gc_flush(g);
            cat_read_end(g->rd);
        }
    }
    if (!rc && !g->r.dry_run)
        rc = content_gc(g->st, freed);
    return rc;
}

static void gc_summary(const struct gc *g, const struct content_gc_result *fr)
{
    const struct gc_rules *r = &g->r;
    if (r->json) {
        printf("%s],\"dry_run\":%s,\"rules\":{\"from\":\"%s\",\"keep_last\":%" PRIu64
               ",\"keep_within\":%" PRIu64 ",\"lineage\":%s},\"versions_dropped\":%" PRIu64
               ",\"bytes_released\":%" PRIu64 ",\"kept_for_lineage\":%zu,\"chunks_freed\":%"
               PRIu64 ",\"bytes_freed\":%" PRIu64 "}\n", g->listed ? "\n" : "",
               r->dry_run ? "true" : "false", r->from_policy ? "policy" : "flags",
               r->keep_last, r->keep_within, r->prune_lineage ? "false" : "true",
               r->dry_run ? g->would_drop : g->res.versions,
               r->dry_run ? g->would_bytes : g->res.bytes, g->lineage.n,
               fr->chunks_freed, fr->bytes_freed);
        return;
    }
    char a[32], b[32];
    if (!r->keep_last && !r->keep_within)
        printf("gc: no retention rule (%s): no version dropped\n",
               r->from_policy ? "the policy sets keep_last and keep_within to 0" : "flags");
    render_size(a, sizeof a, r->dry_run ? g->would_bytes : g->res.bytes);
    render_size(b, sizeof b, fr->bytes_freed);
    printf("gc: %s %" PRIu64 " version%s (%s of content), %zu kept for lineage",
           r->dry_run ? "would drop" : "dropped", r->dry_run ? g->would_drop : g->res.versions,
           (r->dry_run ? g->would_drop : g->res.versions) == 1 ? "" : "s", a, g->lineage.n);
    if (r->dry_run)
        printf("; nothing changed (--dry-run)\n");
    else
        printf("; freed %" PRIu64 " chunks, %s on disk\n", fr->chunks_freed, b);
}

int cmd_gc(int argc, char **argv)
{
    struct gc g = { 0 };
    int have_flags = 0;
    int rc = gc_args(argc, argv, &g.r, &have_flags);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct cli_ws ws;
    struct content_gc_result freed = { 0 };
    if (cli_ws_find(NULL, &ws) || gc_policy(&ws, &g.r, have_flags))
        return cli_fail("gc");
    if (cli_ws_open_store(&ws, g.r.dry_run ? STORE_RDONLY : 0, &g.st))
        return cli_fail("gc");
    g.now = store_now_ns();
    if (g.r.json)
        printf("{\"dropped\":[");
    rc = gc_run(&g, &freed);
    store_close(g.st);
    free(g.fc);
    free(g.lineage.v);
    free(g.stk);
    if (rc) {
        if (g.r.json)
            printf("]}\n");
        return cli_fail("gc");
    }
    gc_summary(&g, &freed);
    return 0;
}
