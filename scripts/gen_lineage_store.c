/*
 * gen_lineage_store.c - build a large synthetic provenance store for
 * scripts/bench-lineage (built and run by scripts/gen-lineage-store).
 *
 * Shape (defaults; all through the public catalog API, one transaction per
 * pipeline, as the daemon's group commit would):
 *   P pipelines of S stages.  Pipeline p has a driver process (a `make`)
 *   whose children are its S stage processes.  Stage s reads its script
 *   scripts/stage<s>.py, its pipeline's config, every output of stage s-1
 *   EPOCHS times (a data loader re-opening shards each epoch), and writes
 *   OUTS outputs
 *   p<p>/s<s>/out<k>.bin.  Stage 0 reads data/raw/part<p % 50>.csv; the last
 *   stage also reads data/common/labels.csv (the widely used input: one
 *   reader per pipeline).  Stage S/2 is fed through a pipe by a `cat` of the
 *   config.  Each stage also records a mkdir and a few setattrs.
 *   Defaults: 400 x 25 -> 10,801 processes, 100,477 versions, 1,084,400
 *   events; p0/s24/out0.bin is 25 derivations from its origins (every
 *   path, not only the longest, so --depth and the JSON "depth" agree).
 *
 * Usage: gen-lineage-store DIR [PIPELINES [STAGES]]   (DIR/.provfs is created)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/capture.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/store.h"

#define OUTS 10
#define EPOCHS 8
#define RAW_FILES 50

struct gen {
    struct store *st;
    uint64_t seq, proc;
    struct cat_rec *recs;
    size_t n, cap;
    struct pend { char *path; struct cat_version v; } *vers;
    size_t nv, capv;
    char **strs;                /* strings owned until the batch commits */
    size_t ns, caps;
    uint64_t wall;
    uint64_t events, versions, procs;
};

static void *gen_grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return p;
    *cap = *cap ? *cap * 2 : 1024;
    p = realloc(p, *cap * size);
    if (!p) {
        perror("gen-lineage-store");
        exit(1);
    }
    return p;
}

static struct cat_str gen_str(struct gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct cat_str gen_str(struct gen *g, const char *fmt, ...)
{
    char *s;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        exit(1);
    g->strs = gen_grow(g->strs, &g->caps, g->ns, sizeof *g->strs);
    g->strs[g->ns++] = s;
    return (struct cat_str){ s, (size_t)n };
}

static struct cat_rec *gen_rec(struct gen *g, enum cat_rec_type type)
{
    g->recs = gen_grow(g->recs, &g->cap, g->n, sizeof *g->recs);
    struct cat_rec *r = &g->recs[g->n++];
    memset(r, 0, sizeof *r);
    r->type = type;
    return r;
}

static uint64_t gen_proc(struct gen *g, uint64_t parent, uint32_t pgid, struct cat_str argv,
                         const char *exe, const char *in, const char *out)
{
    uint64_t id = ++g->proc;
    struct cat_rec *r = gen_rec(g, CAT_REC_PROC);
    struct cat_proc *p = &r->u.proc;
    memset(p->boot_id, 0x42, 16);
    p->id = id;
    p->start = id;
    p->tgid = (uint32_t)(100000 + id);
    p->pgid = pgid ? pgid : p->tgid;
    p->parent_id = parent;
    p->seq = ++g->seq;
    p->wall_ns = g->wall + p->seq * 1000;
    p->exe = gen_str(g, "%s", exe);
    p->argv = argv;
    p->cwd = gen_str(g, "/work/ws");
    p->env = gen_str(g, "HOME=/root%cLANG=C.UTF-8%cPATH=/usr/bin:/bin", 0, 0);
    p->fd[0] = gen_str(g, "%s", in);
    p->fd[1] = gen_str(g, "%s", out);
    p->fd[2] = gen_str(g, "/dev/pts/0");
    struct cat_rec *ri = gen_rec(g, CAT_REC_IMAGE);
    ri->u.image = (struct cat_image){ .proc_id = id, .n = 0, .seq = p->seq, .wall_ns = p->wall_ns,
                                      .exe = p->exe, .argv = argv };
    for (int i = 0; i < 3; i++)
        ri->u.image.fd[i] = p->fd[i];
    g->procs++;
    return id;
}

static void gen_event(struct gen *g, uint32_t op, uint64_t proc, struct cat_str path, uint64_t arg)
{
    struct cat_rec *r = gen_rec(g, CAT_REC_EVENT);
    r->u.event.seq = ++g->seq;
    r->u.event.wall_ns = g->wall + r->u.event.seq * 1000;
    r->u.event.op = op;
    r->u.event.proc_id = proc;
    r->u.event.path = path;
    r->u.event.arg = arg;
    g->events++;
}

static void gen_version(struct gen *g, struct cat_str path, uint32_t origin, uint64_t writer,
                        const char *kind)
{
    g->vers = gen_grow(g->vers, &g->capv, g->nv, sizeof *g->vers);
    struct pend *pv = &g->vers[g->nv++];
    memset(pv, 0, sizeof *pv);
    pv->path = (char *)path.p;
    struct cat_version *v = &pv->v;
    v->seq = ++g->seq;
    v->wall_ns = g->wall + v->seq * 1000;
    v->origin = origin;
    v->writer = writer;
    v->flags = CAT_V_HASH_ONLY;     /* no bytes: this store is about the graph */
    v->size = 4096 + (g->seq % 65536);
    v->mode = 0100644;
    for (int i = 0; i < 32; i++)
        v->content_id[i] = (uint8_t)((g->seq * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)i;
    v->kind = gen_str(g, "%s", kind);
    g->versions++;
}

static int gen_hook(void *ctx, struct MDB_txn *txn)
{
    struct gen *g = ctx;
    int rc = cat_commit_txn(g->st, txn, g->recs, g->n);
    for (size_t i = 0; !rc && i < g->nv; i++)
        rc = cat_version_add(g->st, txn, g->vers[i].path, strlen(g->vers[i].path), &g->vers[i].v);
    return rc;
}

/* Commit what was generated: the catalog records first, then the versions
 * (they refer to paths the events introduced), in one transaction. */
static void gen_flush(struct gen *g)
{
    struct content_batch *b;
    int rc = content_batch_begin(g->st, &b);
    if (!rc) {
        content_batch_set_hook(b, gen_hook, g);
        rc = content_batch_commit(b);
    }
    if (rc) {
        fprintf(stderr, "gen-lineage-store: commit failed (%d)\n", rc);
        exit(1);
    }
    for (size_t i = 0; i < g->ns; i++)
        free(g->strs[i]);
    g->n = g->nv = g->ns = 0;
}

/* Origins: the stage scripts, raw data, the shared labels. */
static void gen_origins(struct gen *g, int stages)
{
    for (int s = 0; s < stages; s++)
        gen_version(g, gen_str(g, "scripts/stage%d.py", s), CAT_ORIGIN_PREEXISTING, 0, "code");
    for (int i = 0; i < RAW_FILES; i++)
        gen_version(g, gen_str(g, "data/raw/part%d.csv", i), CAT_ORIGIN_PREEXISTING, 0, "dataset");
    gen_version(g, gen_str(g, "data/common/labels.csv"), CAT_ORIGIN_PREEXISTING, 0, "dataset");
    gen_version(g, gen_str(g, "Makefile"), CAT_ORIGIN_PREEXISTING, 0, "code");
    gen_flush(g);
}

static void gen_stage(struct gen *g, int p, int s, int stages, uint64_t driver, uint32_t pgid)
{
    char in[32] = "/dev/null";
    if (s == stages / 2) {      /* `cat config | stage`: a pipe feeder */
        snprintf(in, sizeof in, "pipe:[%d]", 500000 + p);
        uint64_t cat = gen_proc(g, driver, pgid, gen_str(g, "cat%cp%d/config.yaml", 0, p),
                                "/usr/bin/cat", "/dev/null", in);
        gen_event(g, CAP_OPEN_READ, cat, gen_str(g, "p%d/config.yaml", p), 0);
    }
    uint64_t me = gen_proc(g, driver, pgid,
                           gen_str(g, "python3%cscripts/stage%d.py%c--pipeline%c%d", 0, s, 0, 0, p),
                           "/usr/bin/python3.11", in, "/dev/pts/0");
    gen_event(g, CAP_OPEN_READ, me, gen_str(g, "scripts/stage%d.py", s), 0);
    gen_event(g, CAP_OPEN_READ, me, gen_str(g, "p%d/config.yaml", p), 0);
    if (s == 0)
        gen_event(g, CAP_OPEN_READ, me, gen_str(g, "data/raw/part%d.csv", p % RAW_FILES), 0);
    for (int e = 0; s > 0 && e < EPOCHS; e++)
        for (int k = 0; k < OUTS; k++)
            gen_event(g, CAP_OPEN_READ, me, gen_str(g, "p%d/s%d/out%d.bin", p, s - 1, k), 0);
    if (s == stages - 1)
        gen_event(g, CAP_OPEN_READ, me, gen_str(g, "data/common/labels.csv"), 0);
    gen_event(g, CAP_MKDIR, me, gen_str(g, "p%d/s%d", p, s), 0);
    for (int k = 0; k < OUTS; k++) {
        struct cat_str out = gen_str(g, "p%d/s%d/out%d.bin", p, s, k);
        gen_event(g, CAP_CREATE, me, out, O_WRONLY | O_CREAT | O_TRUNC);
        if (k % 2 == 0)
            gen_event(g, CAP_SETATTR, me, out, 1);
        gen_event(g, CAP_CLOSE_WRITE, me, out, 1);
        gen_version(g, out, CAT_ORIGIN_WRITTEN, me, s == stages - 1 ? "model" : "dataset");
    }
}

static void gen_pipeline(struct gen *g, int p, int stages)
{
    uint64_t driver = gen_proc(g, 1, 0, gen_str(g, "make%c-C%cp%d", 0, 0, p), "/usr/bin/make",
                               "/dev/null", "/dev/pts/0");
    uint32_t pgid = (uint32_t)(100000 + driver);
    gen_event(g, CAP_OPEN_READ, driver, gen_str(g, "Makefile"), 0);
    gen_event(g, CAP_MKDIR, driver, gen_str(g, "p%d", p), 0);
    gen_event(g, CAP_CREATE, driver, gen_str(g, "p%d/config.yaml", p), O_WRONLY | O_CREAT);
    gen_event(g, CAP_CLOSE_WRITE, driver, gen_str(g, "p%d/config.yaml", p), 1);
    gen_version(g, gen_str(g, "p%d/config.yaml", p), CAT_ORIGIN_WRITTEN, driver, "config");
    for (int s = 0; s < stages; s++)
        gen_stage(g, p, s, stages, driver, pgid);
    gen_flush(g);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen-lineage-store DIR [PIPELINES [STAGES]]\n");
        return 2;
    }
    int pipes = argc > 2 ? atoi(argv[2]) : 400, stages = argc > 3 ? atoi(argv[3]) : 25;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/.provfs", argv[1]);
    struct gen g;
    memset(&g, 0, sizeof g);
    g.wall = (uint64_t)time(NULL) * 1000000000ull - 86400ull * 1000000000ull;
    if (store_open(&g.st, dir, STORE_CREATE)) {
        fprintf(stderr, "gen-lineage-store: cannot create a store in %s\n", dir);
        return 1;
    }
    /* the login shell every driver descends from */
    gen_proc(&g, 0, 0, gen_str(&g, "bash"), "/usr/bin/bash", "/dev/pts/0", "/dev/pts/0");
    gen_origins(&g, stages);
    for (int p = 0; p < pipes; p++)
        gen_pipeline(&g, p, stages);
    store_close(g.st);
    printf("%llu processes, %llu events, %llu versions\n", (unsigned long long)g.procs,
           (unsigned long long)g.events, (unsigned long long)g.versions);
    free(g.recs);
    free(g.vers);
    free(g.strs);
    return 0;
}
