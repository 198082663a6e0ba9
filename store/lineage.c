/*
 * lineage.c - the lineage rule of lineage.h, forwards (inputs) and
 * backwards (outputs), and breadth-first walks over either.
 *
 * Everything is read through one cat_reader; strings borrowed from it stay
 * valid for the walk.  A walk keeps per-walk caches (each process's uses,
 * each file's version list, each writer's working set) so that a DAG in
 * which many versions share ancestors costs each shared fact once.  The
 * indexes used: procevents (a process's uses), children, and the lineage
 * index (a file's uses, pipe ends, process groups, writer -> versions).
 */
#include "store/lineage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fs/capture.h"
#include "store/catalog_int.h"

/* --- small containers ---------------------------------------------------- */

/* A growable array: VEC_PUSH(v, item) returns 0 or -ENOMEM. */
#define VEC(T) struct { T *a; size_t n, cap; }
#define VEC_PUSH(v, item) \
    (((v).n == (v).cap && lin_grow((void **)&(v).a, &(v).cap, sizeof *(v).a)) \
         ? pv_err(-ENOMEM, "out of memory") : ((v).a[(v).n++] = (item), 0))

static int lin_grow(void **a, size_t *cap, size_t size)
{
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*a, ncap * size);
    if (!p)
        return -1;
    *a = p;
    *cap = ncap;
    return 0;
}

/* A hash map from a pair of u64 to a size_t (open addressing).  A slot is
 * in use when its gen equals the map's: clearing is gen++, not a memset,
 * because a walk clears its per-query maps once per node. */
struct lin_map {
    struct lin_slot { uint64_t a, b; size_t val; uint32_t gen; } *s;
    size_t n, cap;
    uint32_t gen;
};

static size_t lin_hash(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ h >> 29);
}

static size_t *lin_map_find(const struct lin_map *m, uint64_t a, uint64_t b)
{
    if (!m->cap)
        return NULL;
    for (size_t i = lin_hash(a, b) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].gen != m->gen)
            return NULL;
        if (m->s[i].a == a && m->s[i].b == b)
            return &m->s[i].val;
    }
}

static int lin_map_put(struct lin_map *m, uint64_t a, uint64_t b, size_t val);

static int lin_map_rehash(struct lin_map *m)
{
    struct lin_map nm = { calloc(m->cap ? m->cap * 2 : 64, sizeof *nm.s), 0,
                          m->cap ? m->cap * 2 : 64, 1 };
    if (!nm.s)
        return pv_err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < m->cap; i++)
        if (m->s[i].gen == m->gen)
            lin_map_put(&nm, m->s[i].a, m->s[i].b, m->s[i].val);
    free(m->s);
    *m = nm;
    return 0;
}

static int lin_map_put(struct lin_map *m, uint64_t a, uint64_t b, size_t val)
{
    if ((m->n + 1) * 2 > m->cap && lin_map_rehash(m))
        return -ENOMEM;
    size_t i = lin_hash(a, b) & (m->cap - 1);
    while (m->s[i].gen == m->gen && !(m->s[i].a == a && m->s[i].b == b))
        i = (i + 1) & (m->cap - 1);
    if (m->s[i].gen != m->gen)
        m->n++;
    m->s[i] = (struct lin_slot){ a, b, val, m->gen };
    return 0;
}

/* --- per-walk caches ------------------------------------------------------ */

struct lin_use { uint64_t seq, file_id; };
struct lin_ixvec { size_t *a; size_t n, cap; };
struct lin_vinfo { uint32_t vno, origin, src_vno; uint64_t seq, src_file, writer; };
struct lin_written { uint64_t file_id, seq; uint32_t vno; };
struct lin_wvec { struct lin_written *a; size_t n, cap; };

#define LIN_IMAGES_MAX 16     /* more exec images than this: the rest ignored */

struct lin_img { uint64_t seq; struct cat_str exe, argv; };

struct lin_proc {
    uint64_t id, parent;
    uint64_t birth;             /* logical time first seen                */
    uint8_t boot[16];
    uint32_t pgid;
    struct lin_img img[LIN_IMAGES_MAX];
    int nimg;
    struct cat_str fd[2][8];    /* pipe idents on stdin/stdout, per image */
    int nfd[2];
    int uses_loaded, written_loaded;
    VEC(struct lin_use) uses;
    struct lin_wvec written;
    struct lin_ixvec set[2];         /* [0] R(P), [1] C(P) (walking down)      */
    int set_loaded[2];
};

struct lin_file {
    VEC(struct lin_vinfo) v;
};

struct lin_ctx {
    struct cat_reader *rd;
    enum lineage_scope scope;
    VEC(struct lin_proc) procs;
    struct lin_map proc_ix;     /* proc id -> index in procs              */
    VEC(struct lin_file) files;
    struct lin_map file_ix;     /* file id -> index in files              */
    struct lin_map seen;        /* per query: results already emitted      */
    struct lin_map members;     /* per working set: processes in it        */
    int prefetch;               /* warm the cache (lin_prefetch_readers)  */
};

static void lin_ctx_free(struct lin_ctx *c)
{
    for (size_t i = 0; i < c->procs.n; i++) {
        free(c->procs.a[i].uses.a);
        free(c->procs.a[i].written.a);
        free(c->procs.a[i].set[0].a);
        free(c->procs.a[i].set[1].a);
    }
    for (size_t i = 0; i < c->files.n; i++)
        free(c->files.a[i].v.a);
    free(c->procs.a);
    free(c->files.a);
    free(c->proc_ix.s);
    free(c->file_ix.s);
    free(c->seen.s);
    free(c->members.s);
}

/* Mark (a, b) in m; 1 if it already was. */
static int lin_mark(struct lin_map *m, uint64_t a, uint64_t b, int *err)
{
    if (lin_map_find(m, a, b))
        return 1;
    *err = lin_map_put(m, a, b, 1);
    return 0;
}

static void lin_map_clear(struct lin_map *m)
{
    if (++m->gen == 0) {        /* wrapped: really clear, once in 2^32 */
        if (m->s)
            memset(m->s, 0, m->cap * sizeof *m->s);
        m->gen = 1;
    }
    m->n = 0;
}

/* Start a new query: forget what was emitted. */
static void lin_new_query(struct lin_ctx *c)
{
    lin_map_clear(&c->seen);
}

static void lin_add_pipes(struct lin_proc *p, const struct cat_str fd[3])
{
    for (int i = 0; i < 2; i++) {
        if (!fd[i].p || fd[i].n < 7 || memcmp(fd[i].p, "pipe:[", 6))
            continue;
        int dup = 0;
        for (int j = 0; j < p->nfd[i]; j++)
            dup |= p->fd[i][j].n == fd[i].n && !memcmp(p->fd[i][j].p, fd[i].p, fd[i].n);
        if (!dup && p->nfd[i] < 8)
            p->fd[i][p->nfd[i]++] = fd[i];
    }
}

static int lin_image_cb(void *arg, const struct cat_image *im)
{
    struct lin_proc *p = arg;
    lin_add_pipes(p, im->fd);
    if (p->nimg < LIN_IMAGES_MAX)
        p->img[p->nimg++] = (struct lin_img){ im->seq, im->exe, im->argv };
    return 0;
}

/* The cached record of a process, loading its identity and pipe ends. */
static int lin_proc(struct lin_ctx *c, uint64_t id, size_t *out)
{
    size_t *ix = lin_map_find(&c->proc_ix, id, 0);
    if (ix) {
        *out = *ix;
        return 0;
    }
    struct cat_proc cp;
    int rc = cat_proc_get(c->rd, id, &cp);
    if (rc)
        return rc;
    struct lin_proc p;
    memset(&p, 0, sizeof p);
    p.id = id;
    p.parent = cp.parent_id;
    p.birth = cp.seq;
    memcpy(p.boot, cp.boot_id, 16);
    p.pgid = cp.pgid;
    lin_add_pipes(&p, cp.fd);
    if ((rc = cat_images_scan(c->rd, id, lin_image_cb, &p)))
        return rc;
    if ((rc = VEC_PUSH(c->procs, p)))
        return rc;
    *out = c->procs.n - 1;
    return lin_map_put(&c->proc_ix, id, 0, *out);
}

/* An open-write without O_TRUNC carries the old bytes forward: a use. */
static int lin_is_use(const struct cat_event *e)
{
    return e->op == CAP_OPEN_READ || (e->op == CAP_OPEN_WRITE && !(e->arg & O_TRUNC));
}

static int lin_use_cb(void *arg, const struct cat_event *e)
{
    struct lin_proc *p = arg;
    if (!lin_is_use(e) || !e->file_id)
        return 0;
    struct lin_use u = { e->seq, e->file_id };
    return VEC_PUSH(p->uses, u);
}

static int lin_load_uses(struct lin_ctx *c, size_t pi)
{
    struct lin_proc *p = &c->procs.a[pi];
    if (p->uses_loaded)
        return 0;
    p->uses_loaded = 1;
    return cat_proc_events(c->rd, p->id, lin_use_cb, p);
}

static int lin_ver_cb(void *arg, const struct cat_version *v)
{
    struct lin_file *f = arg;
    struct lin_vinfo vi = { v->vno, v->origin, v->src_vno, v->seq, v->src_file_id, v->writer };
    return VEC_PUSH(f->v, vi);
}

/* The versions of a file, oldest first (cached). */
static int lin_file(struct lin_ctx *c, uint64_t file_id, struct lin_file **out)
{
    size_t *ix = lin_map_find(&c->file_ix, file_id, 0);
    if (!ix) {
        struct lin_file f = { { NULL, 0, 0 } };
        int rc = cat_versions_scan(c->rd, file_id, 0, lin_ver_cb, &f);
        if (!rc)
            rc = VEC_PUSH(c->files, f);
        if (!rc)
            rc = lin_map_put(&c->file_ix, file_id, 0, c->files.n - 1);
        if (rc) {
            free(f.v.a);
            return rc;
        }
        ix = lin_map_find(&c->file_ix, file_id, 0);
    }
    *out = &c->files.a[*ix];
    return 0;
}

static int lin_is_origin(uint32_t origin)
{
    return origin == CAT_ORIGIN_PREEXISTING || origin == CAT_ORIGIN_EXTERNAL;
}

/* Index of the version a use at `seq` saw, or -1.  The origin version of a
 * file is taken at its first use, so it may carry a later seq than that
 * use: a use before any version sees an origin first version. */
static long lin_version_at(const struct lin_file *f, uint64_t seq)
{
    size_t lo = 0, hi = f->v.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->v.a[mid].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return f->v.n && lin_is_origin(f->v.a[0].origin) ? 0 : -1;
    return f->v.a[lo - 1].origin == CAT_ORIGIN_DELETED ? -1 : (long)lo - 1;
}

/* Index of version vno in f (vno 0: the last), or -1. */
static long lin_find_vno(const struct lin_file *f, uint32_t vno)
{
    if (!f->v.n)
        return -1;
    if (!vno)
        return (long)f->v.n - 1;
    size_t lo = 0, hi = f->v.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->v.a[mid].vno < vno)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->v.n && f->v.a[lo].vno == vno ? (long)lo : -1;
}

/* --- working sets ---------------------------------------------------------- */

/* Add process id to a set under construction (dedup via `seen`). */
static int lin_set_add(struct lin_ctx *c, void *setp, uint64_t id)
{
    struct lin_ixvec *set = setp;
    int err = 0;
    if (lin_mark(&c->members, id, 0, &err))
        return err;
    size_t pi;
    int rc = err ? err : lin_proc(c, id, &pi);
    if (rc == -ENOENT)
        return 0;           /* an index names a process we cannot read */
    return rc ? rc : VEC_PUSH(*set, pi);
}

struct lin_setadd { struct lin_ctx *c; void *set; const uint8_t *boot; };

static int lin_setadd_cb(void *arg, uint64_t id)
{
    struct lin_setadd *a = arg;
    size_t pi;
    if (a->boot) {          /* pipe inode numbers start over at each boot */
        int rc = lin_proc(a->c, id, &pi);
        if (rc)
            return rc == -ENOENT ? 0 : rc;
        if (memcmp(a->c->procs.a[pi].boot, a->boot, 16))
            return 0;
    }
    return lin_set_add(a->c, a->set, id);
}

/* Close the set under one step: down = children and pipe feeders (R),
 * up = parent and pipe consumers (C). */
static int lin_close(struct lin_ctx *c, void *setp, int up)
{
    struct lin_ixvec *set = setp;
    int rc = 0;
    for (size_t i = 0; i < set->n && !rc; i++) {
        struct lin_proc *p = &c->procs.a[set->a[i]];
        uint64_t parent = p->parent;
        uint8_t boot[16];
        memcpy(boot, p->boot, 16);
        struct lin_setadd a = { c, set, NULL }, pipes = { c, set, boot };
        struct cat_str fds[8];
        int nfd = p->nfd[up ? 1 : 0];
        memcpy(fds, p->fd[up ? 1 : 0], sizeof fds);
        if (up && parent)
            rc = lin_set_add(c, set, parent);
        else if (!up)
            rc = cat_proc_children(c->rd, p->id, lin_setadd_cb, &a);
        /* stdin of a member <- stdout of a feeder, and the reverse */
        for (int j = 0; j < nfd && !rc; j++)
            rc = cat_pipe_procs(c->rd, fds[j], up ? 0 : 1, lin_setadd_cb, &pipes);
    }
    return rc;
}

static int lin_add_group(struct lin_ctx *c, void *setp, size_t pi)
{
    struct lin_setadd a = { c, setp, NULL };
    uint8_t boot[16];
    memcpy(boot, c->procs.a[pi].boot, 16);
    return cat_pgid_procs(c->rd, boot, c->procs.a[pi].pgid, lin_setadd_cb, &a);
}

/* R(P) (up = 0) or C(P) (up = 1), cached in procs[pi].set. */
static int lin_working_set(struct lin_ctx *c, size_t pi, int up)
{
    if (c->procs.a[pi].set_loaded[up])
        return 0;
    struct lin_ixvec set = { NULL, 0, 0 };
    lin_map_clear(&c->members);
    int rc = lin_set_add(c, &set, c->procs.a[pi].id);
    if (!rc && !up && c->scope == LINEAGE_SCOPE_JOB)
        rc = lin_add_group(c, &set, pi);
    if (!rc)
        rc = lin_close(c, &set, up);
    /* C_job(Q): members of the groups of everything in C(Q). */
    for (size_t i = 0, n = set.n; !rc && up && c->scope == LINEAGE_SCOPE_JOB && i < n; i++)
        rc = lin_add_group(c, &set, set.a[i]);
    if (rc) {
        free(set.a);
        return rc;
    }
    c->procs.a[pi].set[up] = set;
    c->procs.a[pi].set_loaded[up] = 1;
    return 0;
}

/* --- inputs ---------------------------------------------------------------- */

struct lin_emit {
    lineage_version_cb cb;
    void *ctx;
};

static int lin_emit(struct lin_ctx *c, struct lin_emit *e, uint64_t file_id, uint32_t vno)
{
    int err = 0;
    if (lin_mark(&c->seen, file_id, vno, &err))
        return err;
    return err ? err : e->cb(e->ctx, file_id, vno);
}

static int lin_inputs_of_uses(struct lin_ctx *c, size_t pi, uint64_t before,
                              struct lin_emit *e)
{
    int rc = lin_load_uses(c, pi);
    for (size_t i = 0; !rc && i < c->procs.a[pi].uses.n; i++) {
        struct lin_use u = c->procs.a[pi].uses.a[i];
        if (u.seq >= before)
            break;                      /* uses are in seq order */
        struct lin_file *f;
        if ((rc = lin_file(c, u.file_id, &f)))
            break;
        long k = lin_version_at(f, u.seq);
        if (k >= 0)
            rc = lin_emit(c, e, u.file_id, f->v.a[k].vno);
    }
    return rc;
}

static int lin_str_eq(struct cat_str a, struct cat_str b)
{
    return a.n == b.n && (!a.n || !memcmp(a.p, b.p, a.n));
}

/* Was child pi forked from its parent without exec'ing another program
 * (so it runs on a copy of the parent's memory, e.g. a Pool worker)?  Its
 * first image must be the image its parent had when it was born. */
static int lin_fork_only(struct lin_ctx *c, size_t pi, size_t *parent)
{
    struct lin_proc *p = &c->procs.a[pi];
    if (!p->parent || !p->nimg || lin_proc(c, p->parent, parent))
        return 0;
    p = &c->procs.a[pi];            /* lin_proc may have moved procs */
    const struct lin_proc *a = &c->procs.a[*parent];
    int k = 0;
    while (k + 1 < a->nimg && a->img[k + 1].seq <= p->birth)
        k++;
    return a->nimg && lin_str_eq(a->img[k].exe, p->img[0].exe) &&
           lin_str_eq(a->img[k].argv, p->img[0].argv);
}

/* Uses a writer inherited at fork: those its fork-only ancestors made
 * before forking the line that leads to it. */
static int lin_inherited(struct lin_ctx *c, size_t pi, uint64_t before, struct lin_emit *e)
{
    size_t parent;
    int rc = 0;
    for (int n = 0; !rc && n < 64 && lin_fork_only(c, pi, &parent); n++) {
        uint64_t birth = c->procs.a[pi].birth;
        rc = lin_inputs_of_uses(c, parent, birth < before ? birth : before, e);
        pi = parent;
    }
    return rc;
}

/* A file's cached versions and the index of version vno among them. */
static int lin_version(struct lin_ctx *c, uint64_t file_id, uint32_t vno,
                       struct lin_file **f, long *k)
{
    int rc = lin_file(c, file_id, f);
    if (rc)
        return rc;
    *k = lin_find_vno(*f, vno);
    if (*k < 0)
        return pv_err(-ENOENT, "no version %u of file %llu", vno, (unsigned long long)file_id);
    return 0;
}

static int lin_inputs(struct lin_ctx *c, uint64_t file_id, uint32_t vno, struct lin_emit *e)
{
    struct lin_file *f;
    long k;
    int rc = lin_version(c, file_id, vno, &f, &k);
    if (rc)
        return rc;
    struct lin_vinfo v = f->v.a[k];
    switch (v.origin) {
    case CAT_ORIGIN_RENAMED: case CAT_ORIGIN_LINKED: case CAT_ORIGIN_RESTORED:
        lin_new_query(c);
        return v.src_file ? lin_emit(c, e, v.src_file, v.src_vno) : 0;
    case CAT_ORIGIN_WRITTEN:
        break;
    default:
        return 0;
    }
    size_t wi;
    if (!v.writer || (rc = lin_proc(c, v.writer, &wi)) == -ENOENT)
        return 0;
    if (rc || (rc = lin_working_set(c, wi, 0)))
        return rc;
    lin_new_query(c);
    for (size_t i = 0; !rc && i < c->procs.a[wi].set[0].n; i++)
        rc = lin_inputs_of_uses(c, c->procs.a[wi].set[0].a[i], v.seq, e);
    return rc ? rc : lin_inherited(c, wi, v.seq, e);
}

/* --- outputs --------------------------------------------------------------- */

static int lin_written_cb(void *arg, uint64_t file_id, uint32_t vno)
{
    struct lin_written w = { file_id, 0, vno };
    return VEC_PUSH(*(struct lin_wvec *)arg, w);
}

/* The versions process pi wrote, with their seq (cached). */
static int lin_load_written(struct lin_ctx *c, size_t pi)
{
    if (c->procs.a[pi].written_loaded)
        return 0;
    struct lin_wvec w = { NULL, 0, 0 };
    int rc = cat_writer_versions(c->rd, c->procs.a[pi].id, lin_written_cb, &w);
    size_t keep = 0;
    for (size_t i = 0; !rc && i < w.n; i++) {
        struct lin_file *f;
        if ((rc = lin_file(c, w.a[i].file_id, &f)))
            break;
        long k = lin_find_vno(f, w.a[i].vno);
        /* only writes: a rename, link or unlink also names its process as
         * writer, but derives from its source alone (lin_inputs) */
        if (k >= 0 && f->v.a[k].writer == c->procs.a[pi].id &&
            f->v.a[k].origin == CAT_ORIGIN_WRITTEN) {
            w.a[i].seq = f->v.a[k].seq;
            w.a[keep++] = w.a[i];
        }
    }
    struct lin_proc *p = &c->procs.a[pi];
    w.n = keep;
    p->written = w;
    p->written_loaded = 1;
    return rc;
}

/* Everything process pi wrote (after `after`). */
static int lin_emit_written(struct lin_ctx *c, size_t pi, uint64_t after, struct lin_emit *e)
{
    int rc = lin_load_written(c, pi);
    const struct lin_proc *w = &c->procs.a[pi];
    for (size_t j = 0; !rc && j < w->written.n; j++)
        if (w->written.a[j].seq > after)
            rc = lin_emit(c, e, w->written.a[j].file_id, w->written.a[j].vno);
    return rc;
}

struct lin_kids { struct lin_ctx *c; struct lin_ixvec v; };

static int lin_kid_cb(void *arg, uint64_t id)
{
    struct lin_kids *k = arg;
    size_t pi;
    int rc = lin_proc(k->c, id, &pi);
    if (rc == -ENOENT)
        return 0;
    return rc ? rc : VEC_PUSH(k->v, pi);
}

/* The inverse of lin_inherited: what fork-only descendants of pi born
 * after seq wrote (they run on a copy of memory that saw the use). */
static int lin_outputs_inherited(struct lin_ctx *c, size_t pi, uint64_t seq, struct lin_emit *e)
{
    struct lin_kids k = { c, { NULL, 0, 0 } };
    int rc = cat_proc_children(c->rd, c->procs.a[pi].id, lin_kid_cb, &k);
    for (size_t i = 0; !rc && i < k.v.n; i++) {
        size_t kid = k.v.a[i], parent;
        if (c->procs.a[kid].birth <= seq || !lin_fork_only(c, kid, &parent))
            continue;
        rc = lin_emit_written(c, kid, 0, e);
        if (!rc)
            rc = lin_outputs_inherited(c, kid, 0, e);
    }
    free(k.v.a);
    return rc;
}

/* Versions written after seq by any process whose working set holds
 * reader (C(reader)), or by a fork-only descendant born after the use. */
static int lin_outputs_of_use(struct lin_ctx *c, uint64_t reader, uint64_t seq,
                              struct lin_emit *e)
{
    size_t qi;
    int rc = lin_proc(c, reader, &qi);
    if (rc == -ENOENT)
        return 0;
    if (rc || (rc = lin_working_set(c, qi, 1)))
        return rc;
    for (size_t i = 0; !rc && i < c->procs.a[qi].set[1].n; i++)
        rc = lin_emit_written(c, c->procs.a[qi].set[1].a[i], seq, e);
    return rc ? rc : lin_outputs_inherited(c, qi, seq, e);
}

/* Versions of target_file derived (renamed, linked, restored) from src. */
static int lin_outputs_derived(struct lin_ctx *c, uint64_t target_file, uint64_t src_file,
                               uint32_t src_vno, struct lin_emit *e)
{
    struct lin_file *f;
    int rc = lin_file(c, target_file, &f);
    for (size_t i = 0; !rc && i < f->v.n; i++) {
        struct lin_vinfo v = f->v.a[i];
        if ((v.origin == CAT_ORIGIN_RENAMED || v.origin == CAT_ORIGIN_LINKED ||
             v.origin == CAT_ORIGIN_RESTORED) && v.src_file == src_file && v.src_vno == src_vno)
            rc = lin_emit(c, e, target_file, v.vno);
    }
    return rc;
}

struct lin_down {
    struct lin_ctx *c;
    struct lin_emit *e;
    uint64_t file_id, end;      /* the version is current until `end`    */
    uint32_t vno;
    VEC(struct lin_use) readers; /* (seq, proc id) */
    VEC(uint64_t) targets;      /* files renamed/linked/restored from it  */
};

static int lin_down_use(void *arg, const struct cat_use *u)
{
    struct lin_down *d = arg;
    if (u->op == CAP_RESTORE)
        return u->arg == d->vno && u->other_file ? VEC_PUSH(d->targets, u->other_file) : 0;
    if (u->seq >= d->end)
        return 0;
    if (u->op == CAP_RENAME || u->op == CAP_LINK)
        return u->other_file ? VEC_PUSH(d->targets, u->other_file) : 0;
    if (!u->proc_id)
        return 0;
    struct lin_use r = { u->seq, u->proc_id };
    return VEC_PUSH(d->readers, r);
}

/* --- cold-cache prefetch, walking down ---------------------------------------
 *
 * The readers of a widely used input are hundreds of processes spread over
 * the whole map.  Cold, each costs a few random page reads (its record,
 * images, working set, the versions it wrote), and the walk makes them one
 * after another: ~1,900 reads, ~190 ms, for 400 readers.  So before it
 * expands them, helper threads, each with its own read transaction and
 * caches, run the same expansion and throw the results away, after reading
 * what the walk and the renderer will want of each version found (record,
 * path, first uses): their reads are in flight together (~50 ms on the
 * test VM), and the walk proper finds the pages in memory.  Nothing the
 * walk returns comes from the helpers.  Warm, this repeats the expansion's
 * CPU work (~20 ms for 400 readers).
 */
#define LIN_PF_THREADS 16       /* I/O-bound: more than the CPUs          */
#define LIN_PF_MIN 16           /* fewer readers are not worth the threads */

static atomic_ulong lin_pf_count;      /* readers expanded ahead, ever */

unsigned long lineage_prefetched(void)
{
    return atomic_load(&lin_pf_count);
}

static int lin_pf_stop(void *arg, const struct cat_use *u)
{
    (void)arg, (void)u;
    return 1;
}

/* A version the walk will reach next: read what expanding and printing it
 * will need (its record, path and first uses), and drop it. */
static int lin_pf_touch(void *arg, uint64_t file_id, uint32_t vno)
{
    struct cat_reader *rd = arg;
    struct cat_version v;
    struct cat_str path;
    cat_version_get(rd, file_id, vno, &v);
    cat_file_path(rd, file_id, &path);
    cat_file_uses(rd, file_id, 0, lin_pf_stop, NULL);
    return 0;
}

static void lin_pf_free(void *tls)
{
    lin_ctx_free(tls);
    free(tls);
}

struct lin_pf {
    enum lineage_scope scope;
    const struct lin_use *readers;  /* (seq, proc id) */
};

/* One reader on a helper thread, with that thread's own caches (tls). */
static void lin_pf_reader(struct cat_reader *rd, void **tls, size_t i, void *ctx)
{
    const struct lin_pf *pf = ctx;
    struct lin_ctx *c = *tls;
    struct lin_emit e = { lin_pf_touch, rd };
    if (!c && !(c = *tls = calloc(1, sizeof *c)))
        return;
    c->rd = rd;
    c->scope = pf->scope;
    lin_new_query(c);
    lin_outputs_of_use(c, pf->readers[i].file_id, pf->readers[i].seq, &e);
    atomic_fetch_add_explicit(&lin_pf_count, 1, memory_order_relaxed);
}

static void lin_prefetch_readers(struct lin_ctx *c, const struct lin_use *r, size_t n)
{
    struct lin_pf pf = { c->scope, r };
    if (c->prefetch && n >= LIN_PF_MIN)
        cat_read_parallel(cat_reader_store(c->rd), n, LIN_PF_THREADS, lin_pf_reader,
                          lin_pf_free, &pf);
}

static int lin_outputs(struct lin_ctx *c, uint64_t file_id, uint32_t vno, struct lin_emit *e)
{
    struct lin_file *f;
    long k;
    int rc = lin_version(c, file_id, vno, &f, &k);
    if (rc)
        return rc;
    struct lin_vinfo v = f->v.a[k];
    struct lin_down d = { c, e, file_id, (size_t)k + 1 < f->v.n ? f->v.a[k + 1].seq : UINT64_MAX,
                          v.vno, { NULL, 0, 0 }, { NULL, 0, 0 } };
    if (v.origin == CAT_ORIGIN_DELETED)
        d.end = 0;              /* nobody can read a tombstone */
    /* lin_version_at: uses before an origin first version saw it */
    uint64_t from = k == 0 && lin_is_origin(v.origin) ? 0 : v.seq;
    rc = cat_file_uses(c->rd, file_id, from, lin_down_use, &d);
    lin_new_query(c);
    for (size_t i = 0; !rc && i < d.targets.n; i++)
        rc = lin_outputs_derived(c, d.targets.a[i], file_id, v.vno, e);
    if (!rc)
        lin_prefetch_readers(c, d.readers.a, d.readers.n);
    for (size_t i = 0; !rc && i < d.readers.n; i++)
        rc = lin_outputs_of_use(c, d.readers.a[i].file_id, d.readers.a[i].seq, e);
    free(d.readers.a);
    free(d.targets.a);
    return rc;
}

/* --- public: direct inputs and outputs ------------------------------------- */

const char *lineage_scope_name(enum lineage_scope scope)
{
    return scope == LINEAGE_SCOPE_JOB ? "job" : "process";
}

int lineage_scope_parse(const char *s, enum lineage_scope *out)
{
    if (!strcmp(s, "process"))
        *out = LINEAGE_SCOPE_PROCESS;
    else if (!strcmp(s, "job"))
        *out = LINEAGE_SCOPE_JOB;
    else
        return pv_err(-EINVAL, "unknown lineage scope '%s' (process or job)", s);
    return 0;
}

static int lin_direct(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                      enum lineage_scope scope, int down, lineage_version_cb cb, void *ctx)
{
    struct lin_ctx c;
    memset(&c, 0, sizeof c);
    c.rd = rd;
    c.scope = scope;
    struct lin_emit e = { cb, ctx };
    int rc = down ? lin_outputs(&c, file_id, vno, &e) : lin_inputs(&c, file_id, vno, &e);
    lin_ctx_free(&c);
    return rc;
}

int lineage_inputs(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                   enum lineage_scope scope, lineage_version_cb cb, void *ctx)
{
    return lin_direct(rd, file_id, vno, scope, 0, cb, ctx);
}

int lineage_outputs(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                    enum lineage_scope scope, lineage_version_cb cb, void *ctx)
{
    return lin_direct(rd, file_id, vno, scope, 1, cb, ctx);
}

struct lineage_query {
    struct lin_ctx c;
};

int lineage_query_new(struct cat_reader *rd, enum lineage_scope scope,
                      struct lineage_query **out)
{
    struct lineage_query *q = calloc(1, sizeof *q);
    if (!q)
        return pv_err(-ENOMEM, "out of memory");
    q->c.rd = rd;
    q->c.scope = scope;
    *out = q;
    return 0;
}

int lineage_query_inputs(struct lineage_query *q, uint64_t file_id, uint32_t vno,
                         lineage_version_cb cb, void *ctx)
{
    struct lin_emit e = { cb, ctx };
    return lin_inputs(&q->c, file_id, vno, &e);
}

int lineage_query_outputs(struct lineage_query *q, uint64_t file_id, uint32_t vno,
                          lineage_version_cb cb, void *ctx)
{
    struct lin_emit e = { cb, ctx };
    return lin_outputs(&q->c, file_id, vno, &e);
}

void lineage_query_free(struct lineage_query *q)
{
    if (!q)
        return;
    lin_ctx_free(&q->c);
    free(q);
}

/* --- walks ----------------------------------------------------------------- */

struct lin_walk {
    struct lin_ctx c;
    struct lineage_graph *g;
    struct lin_map node_ix;     /* (file, vno) -> node index               */
    size_t cur;                 /* node being expanded                     */
    size_t node_cap, edge_cap;
    int max_depth;
};

static int lin_node(struct lin_walk *w, uint64_t file_id, uint32_t vno, int depth, size_t *out)
{
    size_t *ix = lin_map_find(&w->node_ix, file_id, vno);
    if (ix) {
        *out = *ix;
        return 0;
    }
    struct lineage_graph *g = w->g;
    struct lineage_node n = { file_id, vno, depth };
    if (g->n_nodes == w->node_cap && lin_grow((void **)&g->nodes, &w->node_cap, sizeof n))
        return pv_err(-ENOMEM, "out of memory");
    g->nodes[g->n_nodes] = n;
    *out = g->n_nodes++;
    return lin_map_put(&w->node_ix, file_id, vno, *out);
}

static int lin_edge(struct lin_walk *w, size_t derived, size_t input)
{
    struct lineage_graph *g = w->g;
    if (g->n_edges == w->edge_cap && lin_grow((void **)&g->edges, &w->edge_cap, sizeof *g->edges))
        return pv_err(-ENOMEM, "out of memory");
    g->edges[g->n_edges++] = (struct lineage_edge){ derived, input };
    return 0;
}

static int lin_walk_cb(void *arg, uint64_t file_id, uint32_t vno)
{
    struct lin_walk *w = arg;
    size_t n;
    int rc = lin_node(w, file_id, vno, w->g->nodes[w->cur].depth + 1, &n);
    if (rc)
        return rc;
    return w->g->down ? lin_edge(w, n, w->cur) : lin_edge(w, w->cur, n);
}

static int lin_stop_cb(void *arg, uint64_t file_id, uint32_t vno)
{
    (void)arg; (void)file_id; (void)vno;
    return 1;
}

/* Breadth first, so a node's depth is its shortest distance. */
static int lin_bfs(struct lin_walk *w)
{
    int rc = 0;
    struct lin_emit e = { lin_walk_cb, w };
    for (w->cur = 0; !rc && w->cur < w->g->n_nodes; w->cur++) {
        struct lineage_node n = w->g->nodes[w->cur];
        if (w->max_depth >= 0 && n.depth >= w->max_depth) {
            if (!w->g->truncated) {     /* did the limit hide anything? */
                struct lin_emit probe = { lin_stop_cb, NULL };
                rc = w->g->down ? lin_outputs(&w->c, n.file_id, n.vno, &probe)
                                : lin_inputs(&w->c, n.file_id, n.vno, &probe);
                w->g->truncated = rc == 1;
                rc = rc == 1 ? 0 : rc;
            }
            continue;
        }
        rc = w->g->down ? lin_outputs(&w->c, n.file_id, n.vno, &e)
                        : lin_inputs(&w->c, n.file_id, n.vno, &e);
    }
    return rc;
}

static int lin_walk_init(struct lin_walk *w, struct cat_reader *rd, enum lineage_scope scope)
{
    memset(w, 0, sizeof *w);
    w->c.rd = rd;
    w->c.scope = scope;
    w->g = calloc(1, sizeof *w->g);
    if (!w->g)
        return pv_err(-ENOMEM, "out of memory");
    w->g->scope = scope;
    return 0;
}

static int lin_walk_done(struct lin_walk *w, int rc, struct lineage_graph **out)
{
    lin_ctx_free(&w->c);
    free(w->node_ix.s);
    if (rc) {
        lineage_graph_free(w->g);
        return rc;
    }
    *out = w->g;
    return 0;
}

int lineage_walk(struct cat_reader *rd, uint64_t file_id, uint32_t vno, int down,
                 int max_depth, enum lineage_scope scope, struct lineage_graph **out)
{
    struct lin_walk w;
    *out = NULL;
    int rc = lin_walk_init(&w, rd, scope);
    if (rc)
        return rc;
    w.g->down = down;
    w.max_depth = max_depth;
    w.c.prefetch = down;
    struct cat_version v;
    size_t root;
    rc = cat_version_get(rd, file_id, vno, &v);
    if (!rc)
        rc = lin_node(&w, file_id, v.vno, 0, &root);
    if (!rc)
        rc = lin_bfs(&w);
    return lin_walk_done(&w, rc, out);
}

static int lin_all_version(void *arg, const struct cat_version *v)
{
    size_t n;
    return lin_node(arg, v->file_id, v->vno, 0, &n);
}

static int lin_all_file(void *arg, uint64_t id, struct cat_str path)
{
    struct lin_walk *w = arg;
    (void)path;
    return cat_versions_scan(w->c.rd, id, 0, lin_all_version, w);
}

int lineage_walk_all(struct cat_reader *rd, enum lineage_scope scope,
                     struct lineage_graph **out)
{
    struct lin_walk w;
    *out = NULL;
    int rc = lin_walk_init(&w, rd, scope);
    if (rc)
        return rc;
    w.g->whole = 1;
    w.max_depth = 1;
    if (!(rc = cat_files_scan(rd, lin_all_file, &w))) {
        struct lin_emit e = { lin_walk_cb, &w };
        size_t n = w.g->n_nodes;
        for (w.cur = 0; !rc && w.cur < n; w.cur++)
            rc = lin_inputs(&w.c, w.g->nodes[w.cur].file_id, w.g->nodes[w.cur].vno, &e);
        for (size_t i = 0; i < w.g->n_nodes; i++)
            w.g->nodes[i].depth = 0;
    }
    return lin_walk_done(&w, rc, out);
}

void lineage_graph_free(struct lineage_graph *g)
{
    if (!g)
        return;
    free(g->nodes);
    free(g->edges);
    free(g);
}
