/*
 * snapshot.c - version-making jobs, per-inode ordering, group commit.
 *
 * State per inode (snap_ino): jobs in flight, whether the path is known to
 * have a version, the dirty ranges since the last snapshot and that
 * snapshot's content id.  A new entry starts "full" (no dirty knowledge),
 * so the first snapshot of an inode in a daemon's life reads the whole file.
 *
 * Jobs of one inode go to one worker (by inode hash) so they run in order.
 * A worker takes up to SNAP_BATCH jobs (SNAP_TOMB_BATCH when they are all
 * tombstones), ingests their contents into one content batch, and writes
 * the version records from the batch's hook, so contents, references and
 * versions commit in one transaction with one fsync per pack.  The queue
 * is bounded (jobs hold descriptors; the fd limit is 20,000): when it is
 * full, the releasing thread waits.
 */
#include "fs/snapshot.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "fs/capture.h"
#include "fs/fspol.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/store.h"

#define SNAP_WORKERS   2
#define SNAP_BATCH     64
#define SNAP_TOMB_BATCH 1024   /* a batch of tombstones alone */
#define SNAP_QUEUE_MAX 2048
#define SNAP_BUCKETS   (1u << 14)
#define SNAP_INO_MAX   (1u << 16)
#define SNAP_DIRTY_MAX 1024     /* ranges per inode before giving up: full */
#define SNAP_NOTES     32
#define SNAP_TOMB_WAIT_NS (100 * 1000 * 1000)   /* tombstones gather 100 ms */
#define SNAP_PATH_SLOTS (1u << 16)  /* per worker: counts of queued paths by hash */

struct snap_ino {
    dev_t dev;
    ino_t ino;
    int inflight;
    int worker;                 /* where the in-flight jobs are */
    int known;
    int full;
    struct content_range *dirty;
    size_t ndirty, cap;
    int has_last;
    uint8_t last_id[32];
    struct snap_ino *next;
};

struct snap_job {
    uint32_t origin;
    int fd;
    char *path, *src_path;
    uint32_t src_vno;
    dev_t dev;
    ino_t ino;
    uint64_t proc_id, seq;
    int incremental;
    uint8_t prev_id[32];
    struct content_range *dirty;
    size_t ndirty;
    int reuse;                  /* content = src's last version, no ingest */
    int open_err;               /* the file could not be opened: errno */
    uint32_t vflags;            /* CAT_V_HASH_ONLY / CAT_V_UNSTORED by policy */
    int stored;                 /* content added to the batch: holds a ref */
    struct pol *pol;            /* the policy in force when queued */
    /* results */
    uint8_t id[32];
    uint64_t size;
    struct stat sb;
    int err;
    char errmsg[256];
    int done;                   /* a version was recorded (or none needed) */
    struct snap_job *next;
};

struct snap_worker {
    pthread_t thread;
    pthread_cond_t wake;
    struct snap_job *head, *tail;
    size_t qlen;                /* jobs from head to tail */
    int tombs_only;             /* every queued job is a tombstone */
    struct snap_job *batch;     /* jobs being run (not yet committed) */
    /* How many of the jobs in head..tail and batch name a path hashing to
     * each slot.  Routing asks "which worker has jobs touching this path?"
     * on every enqueue; scanning the lists for it cost a strcmp per queued
     * job, up to 2 x SNAP_TOMB_BATCH tombstones under rm -rf (UNLINK took
     * 177 us instead of 142 us, median).  A collision only makes a path
     * look busy on a worker: routing stays ordered, it may wait a batch.
     * Paths are set before a job is queued and never change after, so
     * the counts always return to zero. */
    uint32_t paths[SNAP_PATH_SLOTS];
};

struct snap_note {
    uint64_t proc_id;
    char *path, *src_path;
    uint32_t src_vno;
};

static struct {
    struct store *st;
    int rootfd;
    int running, stopping;
    pthread_mutex_t lock;
    pthread_cond_t changed;     /* an inode's inflight count dropped, or queue space */
    struct snap_worker w[SNAP_WORKERS];
    size_t queued;
    uint64_t enqueued, finished;    /* totals, for snap_flush's target */
    int hurry;                  /* threads waiting on queued jobs */
    struct snap_ino *tab[SNAP_BUCKETS];
    size_t nino;
    struct snap_stats stats;
    struct snap_note notes[SNAP_NOTES];
} snap = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
};

/* --- per-inode state (caller holds snap.lock) --------------------------- */

static size_t snap_bucket(dev_t dev, ino_t ino)
{
    uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
    return (h ^ h >> 31) & (SNAP_BUCKETS - 1);
}

static void snap_ino_evict(void)
{
    for (size_t b = 0; b < SNAP_BUCKETS; b++) {
        for (struct snap_ino **pp = &snap.tab[b]; *pp;) {
            struct snap_ino *e = *pp;
            if (e->inflight || e->ndirty) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free(e->dirty);
            free(e);
            snap.nino--;
        }
    }
}

static struct snap_ino *snap_ino_get(dev_t dev, ino_t ino)
{
    size_t b = snap_bucket(dev, ino);
    for (struct snap_ino *e = snap.tab[b]; e; e = e->next)
        if (e->dev == dev && e->ino == ino)
            return e;
    if (snap.nino >= SNAP_INO_MAX)
        snap_ino_evict();
    struct snap_ino *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->dev = dev;
    e->ino = ino;
    e->full = 1;
    e->next = snap.tab[b];
    snap.tab[b] = e;
    snap.nino++;
    return e;
}

static void snap_wait_idle(struct snap_ino *e)
{
    while (e->inflight)
        pthread_cond_wait(&snap.changed, &snap.lock);
}

static void snap_add_dirty(struct snap_ino *e, uint64_t off, uint64_t len)
{
    if (e->full)
        return;
    if (e->ndirty && e->dirty[e->ndirty - 1].off + e->dirty[e->ndirty - 1].len == off) {
        e->dirty[e->ndirty - 1].len += len;     /* sequential writes merge */
        return;
    }
    if (e->ndirty == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        struct content_range *d = cap > SNAP_DIRTY_MAX ? NULL
                                  : realloc(e->dirty, cap * sizeof *d);
        if (!d) {
            e->full = 1;    /* too scattered to track: read it all next time */
            return;
        }
        e->dirty = d;
        e->cap = cap;
    }
    e->dirty[e->ndirty++] = (struct content_range){ off, len };
}

/* --- jobs ---------------------------------------------------------------- */

static struct snap_job *snap_job_new(uint32_t origin, const struct snap_file *f, int fd)
{
    struct pol *p = fspol_get();
    if (p && pol_is_ignored(p, f->path)) {
        pol_free(p);        /* ignored paths get no versions at all */
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct snap_job *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(f->path))) {
        free(j);
        pol_free(p);
        if (fd >= 0)
            close(fd);
        pv_error("snapshot of %s lost: out of memory", f->path);
        return NULL;
    }
    j->origin = origin;
    j->pol = p;
    j->fd = fd;
    j->dev = f->dev;
    j->ino = f->ino;
    j->proc_id = f->proc_id;
    j->open_err = fd < 0 ? f->open_err : 0;
    j->seq = cap_tick();
    return j;
}

static void snap_job_free(struct snap_job *j)
{
    if (j->fd >= 0)
        close(j->fd);
    free(j->path);
    free(j->src_path);
    free(j->dirty);
    pol_free(j->pol);
    free(j);
}

static size_t snap_path_slot(const char *path)
{
    return pv_hash_str(path) & (SNAP_PATH_SLOTS - 1);
}

/* Count a job's paths in (d = 1) or out of (d = -1) its worker's index
 * (caller holds snap.lock). */
static void snap_paths_count(struct snap_worker *w, const struct snap_job *j, int d)
{
    w->paths[snap_path_slot(j->path)] += (uint32_t)d;
    if (j->src_path)
        w->paths[snap_path_slot(j->src_path)] += (uint32_t)d;
}

/* The worker with queued or running jobs touching path, or -1. */
static int snap_path_worker(const char *path)
{
    size_t slot = snap_path_slot(path);
    for (int i = 0; i < SNAP_WORKERS; i++)
        if (snap.w[i].paths[slot])
            return i;
    return -1;
}

static int snap_agree(int *want, int w)
{
    if (w < 0 || *want == w)
        return 1;
    if (*want < 0) {
        *want = w;
        return 1;
    }
    return 0;
}

/* Someone waits for queued jobs (caller holds snap.lock): a worker that is
 * gathering tombstones runs what it has at once. */
static void snap_hurry_begin(void)
{
    snap.hurry++;
    for (int i = 0; i < SNAP_WORKERS; i++)
        pthread_cond_signal(&snap.w[i].wake);
}

static void snap_hurry_end(void)
{
    snap.hurry--;
}

static int snap_is_tomb(const struct snap_job *j)
{
    return j->origin == CAT_ORIGIN_DELETED;
}

/* A job's worker (caller holds snap.lock; may wait on it).  Jobs of one
 * inode must run in order, and so must jobs touching one path (a path's
 * versions come from several inodes: an atomic save writes a new temporary
 * each time, a tombstone has no inode).  So a job goes where its inode's
 * in-flight jobs are and where its paths' are; when those are two
 * different workers, it waits until one of them is done. */
static struct snap_worker *snap_worker_of(const struct snap_job *j)
{
    for (;;) {
        struct snap_ino *e = j->dev || j->ino ? snap_ino_get(j->dev, j->ino) : NULL;
        int want = e && e->inflight ? e->worker : -1;
        if (snap_agree(&want, snap_path_worker(j->path)) &&
            (!j->src_path || snap_agree(&want, snap_path_worker(j->src_path))))
            return &snap.w[want >= 0 ? want
                                     : (int)(snap_bucket(j->dev, j->ino) % SNAP_WORKERS)];
        snap_hurry_begin();
        pthread_cond_wait(&snap.changed, &snap.lock);
        snap_hurry_end();
    }
}

/* Hand a job to its worker.  Takes snap.lock. */
static void snap_enqueue(struct snap_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&snap.lock);
    while (snap.queued >= SNAP_QUEUE_MAX && snap.running) {
        snap_hurry_begin();     /* gathering workers: commit what you hold */
        pthread_cond_wait(&snap.changed, &snap.lock);
        snap_hurry_end();
    }
    struct snap_worker *w = snap_worker_of(j);
    struct snap_ino *e = j->dev || j->ino ? snap_ino_get(j->dev, j->ino) : NULL;
    if (e) {
        e->inflight++;
        e->worker = (int)(w - snap.w);
        e->known = 1;
        if (j->fd >= 0 && !e->full && e->has_last) {
            /* Hand over the dirty ranges: the next snapshot starts clean. */
            j->incremental = 1;
            memcpy(j->prev_id, e->last_id, 32);
            j->dirty = e->dirty;
            j->ndirty = e->ndirty;
            e->dirty = NULL;
            e->ndirty = e->cap = 0;
        }
    }
    snap_paths_count(w, j, 1);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->tombs_only = (w->qlen == 0 || w->tombs_only) && snap_is_tomb(j);
    w->qlen++;
    snap.queued++;
    snap.enqueued++;
    snap.stats.queued++;
    /* A worker gathering tombstones only needs waking for a full batch or
     * for a job that is not a tombstone. */
    if (!w->tombs_only || w->qlen == 1 || w->qlen >= SNAP_TOMB_BATCH)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&snap.lock);
}

/* --- the batch ----------------------------------------------------------- */

static void snap_job_fail(struct snap_job *j, int rc, const char *what)
{
    j->err = rc;
    snprintf(j->errmsg, sizeof j->errmsg, "%s: %s", what, pv_errmsg());
}

/* Before ingest: may this job share its source's content without reading?
 * Yes when the source's last version describes this very inode unchanged. */
static void snap_check_reuse(struct snap_job *j)
{
    struct cat_reader *rd;
    struct cat_version v;
    uint64_t id;
    if (!j->src_path || cat_read_begin(snap.st, &rd))
        return;
    if (cat_file_find(rd, j->src_path, &id) == 0 && cat_version_get(rd, id, 0, &v) == 0 &&
        v.origin != CAT_ORIGIN_DELETED && !(v.flags & (CAT_V_MISSING | CAT_V_HASH_ONLY)) &&
        v.ino == (uint64_t)j->sb.st_ino && v.size == (uint64_t)j->sb.st_size &&
        v.mtime_ns == (uint64_t)j->sb.st_mtim.tv_sec * 1000000000u + j->sb.st_mtim.tv_nsec) {
        j->reuse = 1;
        j->src_vno = v.vno;
        memcpy(j->id, v.content_id, 32);
        j->size = v.size;
    }
    cat_read_end(rd);
}

/* The policy keeps only the hash (or nothing) of this file. */
static void snap_hash_only(struct snap_job *j, enum pol_snap mode)
{
    j->size = (uint64_t)j->sb.st_size;
    if (mode == POL_SNAP_NONE) {
        j->vflags = CAT_V_UNSTORED;
        return;
    }
    j->vflags = CAT_V_HASH_ONLY;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    static _Thread_local char buf[1 << 20];
    uint64_t off = 0;
    ssize_t n = 0;
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(md);
        snap_job_fail(j, pv_err(-ENOMEM, "out of memory"), "hashing");
        return;
    }
    while ((n = pread(j->fd, buf, sizeof buf, (off_t)off)) > 0) {
        EVP_DigestUpdate(md, buf, (size_t)n);
        off += (uint64_t)n;
    }
    unsigned int len = 32;
    EVP_DigestFinal_ex(md, j->id, &len);
    EVP_MD_CTX_free(md);
    j->size = off;
    if (n < 0)
        snap_job_fail(j, pv_errno(-errno, "reading"), "hashing");
}

static void snap_ingest(struct content_batch *b, struct snap_job *j)
{
    if (j->fd < 0) {
        if (j->open_err && !j->reuse)
            snap_job_fail(j, pv_errno(-j->open_err, "opening it for reading"),
                          "reading the file");
        return;
    }
    if (fstat(j->fd, &j->sb)) {
        snap_job_fail(j, pv_errno(-errno, "fstat"), "reading the file");
        return;
    }
    snap_check_reuse(j);
    if (j->reuse)
        return;
    enum pol_snap mode = j->pol ? pol_snapshot_mode(j->pol, j->path, (uint64_t)j->sb.st_size)
                                : POL_SNAP_FULL;
    if (mode != POL_SNAP_FULL) {
        snap_hash_only(j, mode);
        return;
    }
    struct content_prev prev, *pp = NULL;
    if (j->incremental) {
        memcpy(prev.id, j->prev_id, 32);
        prev.dirty = j->dirty;
        prev.ndirty = j->ndirty;
        pp = &prev;
    }
    int rc = content_batch_add_fd(b, j->fd, pp, j->id, &j->size);
    if (rc && pp)   /* the previous content may be gone (gc): read it all */
        rc = content_batch_add_fd(b, j->fd, NULL, j->id, &j->size);
    if (rc)
        snap_job_fail(j, rc, "storing the content");
    else
        j->stored = 1;
}

static uint64_t snap_ns(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void snap_fill_version(const struct snap_job *j, struct cat_version *v)
{
    memset(v, 0, sizeof *v);
    v->origin = j->origin;
    v->seq = j->seq;
    v->wall_ns = store_now_ns();
    v->writer = j->proc_id;
    if (j->pol) {
        const char *kind = pol_kind_name(pol_kind_of(j->pol, j->path));
        v->kind = (struct cat_str){ kind, strlen(kind) };
        memcpy(v->policy_id, pol_content_id(j->pol), 32);
    }
    if (j->fd >= 0 && !j->err) {
        v->flags |= j->vflags;
        memcpy(v->content_id, j->id, 32);
        v->size = j->size;
        v->mode = j->sb.st_mode;
        v->uid = j->sb.st_uid;
        v->gid = j->sb.st_gid;
        v->ino = j->sb.st_ino;
        v->mtime_ns = snap_ns(j->sb.st_mtim);
        v->ctime_ns = snap_ns(j->sb.st_ctim);
    } else if (j->err) {
        v->flags |= CAT_V_MISSING;
        v->err = (struct cat_str){ j->errmsg, strlen(j->errmsg) };
    }
}

/* Source (file id, vno) of a derived version, looked up in txn. */
static void snap_fill_source(struct MDB_txn *txn, const struct snap_job *j, struct cat_version *v)
{
    struct cat_version src;
    if (!j->src_path || cat_version_last_txn(snap.st, txn, j->src_path, &src))
        return;
    v->src_file_id = src.file_id;
    v->src_vno = j->origin == CAT_ORIGIN_RESTORED ? j->src_vno : src.vno;
}

static int snap_tombstone(struct MDB_txn *txn, const struct snap_job *j, const char *path)
{
    struct cat_version last, v;
    if (cat_version_last_txn(snap.st, txn, path, &last) || last.origin == CAT_ORIGIN_DELETED)
        return 0;   /* never versioned, or already gone */
    memset(&v, 0, sizeof v);
    v.origin = CAT_ORIGIN_DELETED;
    v.seq = j->seq;
    v.wall_ns = store_now_ns();
    v.writer = j->proc_id;
    v.src_file_id = last.file_id;
    v.src_vno = last.vno;
    return cat_version_add(snap.st, txn, path, strlen(path), &v);
}

/* One job's records, inside the batch transaction. */
static int snap_record(struct MDB_txn *txn, struct snap_job *j)
{
    if (j->origin == CAT_ORIGIN_DELETED)
        return snap_tombstone(txn, j, j->path);
    struct cat_version v, last;
    snap_fill_version(j, &v);
    int have_last = cat_version_last_txn(snap.st, txn, j->path, &last) == 0;
    int rc;
    if (j->reuse && !j->err && (rc = content_ref_txn(snap.st, txn, j->id, 1)))
        return rc;
    if (j->origin == CAT_ORIGIN_WRITTEN && have_last && !j->err && !(j->vflags & CAT_V_UNSTORED) &&
        last.origin != CAT_ORIGIN_DELETED && !(last.flags & (CAT_V_MISSING | CAT_V_UNSTORED)) &&
        !memcmp(last.content_id, j->id, 32) && last.size == j->size) {
        /* Released, but the content did not change: no new version. */
        return j->stored ? content_ref_txn(snap.st, txn, j->id, -1) : 0;
    }
    snap_fill_source(txn, j, &v);
    if ((rc = cat_version_add(snap.st, txn, j->path, strlen(j->path), &v)))
        return rc;
    if (j->origin == CAT_ORIGIN_RENAMED)
        return snap_tombstone(txn, j, j->src_path);
    return 0;
}

static int snap_hook(void *ctx, struct MDB_txn *txn)
{
    for (struct snap_job *j = ctx; j; j = j->next) {
        int rc = snap_record(txn, j);
        if (rc)
            return rc;
    }
    return 0;
}

/* The batch could not commit (full disk, ...): record the versions without
 * content, so that the gap is visible in log and status. */
static void snap_record_missing(struct snap_job *jobs, int rc)
{
    for (struct snap_job *j = jobs; j; j = j->next) {
        if (!j->err)
            snap_job_fail(j, rc, "storing the content");
        j->reuse = 0;
    }
    for (struct snap_job *j = jobs; j; j = j->next) {
        struct cat_version v;
        if (j->origin == CAT_ORIGIN_DELETED)
            continue;
        snap_fill_version(j, &v);
        if (cat_version_commit(snap.st, j->path, &v))
            pv_error("snapshot of %s lost entirely: %s", j->path, pv_errmsg());
    }
}

static void snap_run_batch(struct snap_job *jobs)
{
    struct content_batch *b;
    int rc = content_batch_begin(snap.st, &b);
    if (rc) {
        snap_record_missing(jobs, rc);
        return;
    }
    for (struct snap_job *j = jobs; j; j = j->next)
        snap_ingest(b, j);
    content_batch_set_hook(b, snap_hook, jobs);
    rc = content_batch_commit(b);
    if (rc) {
        pv_error("snapshot batch failed: %s", pv_errmsg());
        snap_record_missing(jobs, rc);
    }
    for (struct snap_job *j = jobs; j; j = j->next)
        if (j->err)
            pv_warn("version of %s recorded without content: %s", j->path, j->errmsg);
}

/* After a batch: release the inodes and remember what was stored. */
static void snap_finish(struct snap_job *jobs)
{
    pthread_mutex_lock(&snap.lock);
    for (struct snap_job *j = jobs; j; j = j->next) {
        struct snap_ino *e = j->dev || j->ino ? snap_ino_get(j->dev, j->ino) : NULL;
        if (e) {
            e->inflight--;
            if (j->fd >= 0 && !j->err) {
                memcpy(e->last_id, j->id, 32);
                e->has_last = 1;
                e->full = 0;
            } else if (j->fd >= 0) {
                e->has_last = 0;
                e->full = 1;
            }
        }
        snap.queued--;
        snap.finished++;
        if (j->err)
            snap.stats.failed++;
        else
            snap.stats.done++;
    }
    pthread_cond_broadcast(&snap.changed);
    pthread_mutex_unlock(&snap.lock);
    while (jobs) {
        struct snap_job *next = jobs->next;
        snap_job_free(jobs);
        jobs = next;
    }
}

/* Tombstones alone: wait up to SNAP_TOMB_WAIT_NS for more (caller holds
 * snap.lock).  rm -rf queues one per file; each batch costs a transaction
 * and an fsync, and a tombstone needs no content, so nothing is gained by
 * hurrying it.  Any other job, a full batch, a flush, a waiter or a full
 * queue ends the wait.  Jobs with content are never held back: on this VM
 * a daemon that sleeps more makes every wake-up slower (see the README). */
static void snap_gather_tombs(struct snap_worker *w)
{
    struct timespec until = pv_deadline_ns(SNAP_TOMB_WAIT_NS);
    while (w->tombs_only && w->qlen < SNAP_TOMB_BATCH && !snap.stopping && !snap.hurry &&
           pthread_cond_timedwait(&w->wake, &snap.lock, &until) != ETIMEDOUT)
        ;
}

static void *snap_worker(void *arg)
{
    struct snap_worker *w = arg;
    pthread_mutex_lock(&snap.lock);
    for (;;) {
        while (!w->head && !snap.stopping)
            pthread_cond_wait(&w->wake, &snap.lock);
        if (!w->head)
            break;
        snap_gather_tombs(w);
        struct snap_job *jobs = w->head, *last = jobs;
        size_t n = 1, max = w->tombs_only ? SNAP_TOMB_BATCH : SNAP_BATCH;
        while (last->next && n < max) {
            last = last->next;
            n++;
        }
        w->qlen -= n;
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
        snap.stats.running += (uint64_t)n;
        w->batch = jobs;
        pthread_mutex_unlock(&snap.lock);
        snap_run_batch(jobs);
        pthread_mutex_lock(&snap.lock);
        for (struct snap_job *j = jobs; j; j = j->next)
            snap_paths_count(w, j, -1);
        w->batch = NULL;
        snap.stats.running -= (uint64_t)n;
        snap.stats.batches++;
        pthread_mutex_unlock(&snap.lock);
        snap_finish(jobs);
        pthread_mutex_lock(&snap.lock);
    }
    pthread_mutex_unlock(&snap.lock);
    return NULL;
}

/* --- the ops' side -------------------------------------------------------- */

/* Does the path have a live version (in the catalog)? */
static int snap_path_versioned(const char *path)
{
    struct cat_reader *rd;
    struct cat_version v;
    uint64_t id;
    if (cat_read_begin(snap.st, &rd))
        return 1;   /* can't tell: don't take a spurious origin version */
    int yes = cat_file_find(rd, path, &id) == 0 && cat_version_get(rd, id, 0, &v) == 0 &&
              v.origin != CAT_ORIGIN_DELETED;
    cat_read_end(rd);
    return yes;
}

/* Is an origin version needed?  Marks the inode known if not. */
static int snap_needs_origin(const struct snap_file *f)
{
    pthread_mutex_lock(&snap.lock);
    struct snap_ino *e = snap_ino_get(f->dev, f->ino);
    int known = !e || e->known;
    pthread_mutex_unlock(&snap.lock);
    if (known)
        return 0;
    if (snap_path_versioned(f->path)) {
        pthread_mutex_lock(&snap.lock);
        if ((e = snap_ino_get(f->dev, f->ino)))
            e->known = 1;
        pthread_mutex_unlock(&snap.lock);
        return 0;
    }
    return 1;
}

void snap_open_read(const struct snap_file *f, int rdfd)
{
    if (!snap.running || !snap_needs_origin(f))
        return;
    int fd = fcntl(rdfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        pv_error("origin version of %s not taken: %s", f->path, strerror(errno));
        return;
    }
    snap_enqueue(snap_job_new(CAT_ORIGIN_PREEXISTING, f, fd));
}

void snap_write_open(const struct snap_file *f, int rdfd)
{
    if (!snap.running)
        return;
    if (rdfd >= 0 && snap_needs_origin(f)) {
        int fd = fcntl(rdfd, F_DUPFD_CLOEXEC, 0);
        if (fd >= 0)
            snap_enqueue(snap_job_new(CAT_ORIGIN_PREEXISTING, f, fd));
        else
            pv_error("origin version of %s not taken: %s", f->path, strerror(errno));
    }
    pthread_mutex_lock(&snap.lock);
    struct snap_ino *e = snap_ino_get(f->dev, f->ino);
    if (e)
        snap_wait_idle(e);
    pthread_mutex_unlock(&snap.lock);
}

void snap_created(const struct snap_file *f)
{
    if (!snap.running)
        return;
    pthread_mutex_lock(&snap.lock);
    struct snap_ino *e = snap_ino_get(f->dev, f->ino);
    if (e) {
        /* The inode number may be a deleted file's, recycled: what was
         * remembered about that file (its last content, dirty ranges) must
         * not become the base of this one's incremental snapshot. */
        e->known = 1;
        e->has_last = 0;
        e->full = 1;
        e->ndirty = 0;
    }
    pthread_mutex_unlock(&snap.lock);
}

void snap_write_begin(dev_t dev, ino_t ino, uint64_t off, uint64_t len)
{
    if (!snap.running)
        return;
    pthread_mutex_lock(&snap.lock);
    struct snap_ino *e = snap_ino_get(dev, ino);
    if (e) {
        snap_wait_idle(e);
        if (len == UINT64_MAX)
            e->full = 1;    /* truncation / unknown extent: re-read it all */
        else
            snap_add_dirty(e, off, len);
    }
    pthread_mutex_unlock(&snap.lock);
}

/* A pending restore note for (proc, path), consumed. */
static int snap_take_note(struct snap_job *j)
{
    int found = 0;
    pthread_mutex_lock(&snap.lock);
    for (int i = 0; i < SNAP_NOTES && !found; i++) {
        struct snap_note *n = &snap.notes[i];
        if (n->path && n->proc_id == j->proc_id && !strcmp(n->path, j->path)) {
            j->origin = CAT_ORIGIN_RESTORED;
            j->src_path = n->src_path;
            j->src_vno = n->src_vno;
            free(n->path);
            memset(n, 0, sizeof *n);
            found = 1;
        }
    }
    pthread_mutex_unlock(&snap.lock);
    return found;
}

void snap_release(const struct snap_file *f, int rdfd)
{
    if (!snap.running) {
        if (rdfd >= 0)
            close(rdfd);
        return;
    }
    struct snap_job *j = snap_job_new(CAT_ORIGIN_WRITTEN, f, rdfd);
    if (j)
        snap_take_note(j);
    snap_enqueue(j);
}

static void snap_derived(uint32_t origin, const struct snap_file *f, const char *from, int rdfd)
{
    if (!snap.running) {
        if (rdfd >= 0)
            close(rdfd);
        return;
    }
    struct snap_job *j = snap_job_new(origin, f, rdfd);
    if (j && !(j->src_path = strdup(from))) {
        snap_job_free(j);
        return;
    }
    snap_enqueue(j);
}

void snap_renamed(const struct snap_file *f, const char *from, int rdfd)
{
    snap_derived(CAT_ORIGIN_RENAMED, f, from, rdfd);
}

void snap_linked(const struct snap_file *f, const char *from, int rdfd)
{
    snap_derived(CAT_ORIGIN_LINKED, f, from, rdfd);
}

void snap_unlinked(const char *path, uint64_t proc_id)
{
    if (!snap.running)
        return;
    struct snap_file f = { .path = path, .proc_id = proc_id };
    snap_enqueue(snap_job_new(CAT_ORIGIN_DELETED, &f, -1));
}

void snap_note_restore(uint64_t proc_id, const char *path, const char *src_path,
                       uint32_t src_vno)
{
    pthread_mutex_lock(&snap.lock);
    for (int i = 0; i < SNAP_NOTES; i++) {
        struct snap_note *n = &snap.notes[i];
        if (n->path)
            continue;
        n->path = strdup(path);
        n->src_path = strdup(src_path);
        if (!n->path || !n->src_path) {
            free(n->path);
            free(n->src_path);
            n->path = n->src_path = NULL;
            break;
        }
        n->proc_id = proc_id;
        n->src_vno = src_vno;
        break;
    }
    pthread_mutex_unlock(&snap.lock);
}

/* --- the scan at mount ----------------------------------------------------- */

struct snap_scan_ctx {
    struct cat_reader *rd;
    void (*progress)(void *, uint64_t, uint64_t);
    void *pctx;
    uint64_t done, total, changes;
};

static int snap_scan_file(void *arg, uint64_t id, struct cat_str path)
{
    struct snap_scan_ctx *c = arg;
    struct cat_version v;
    char p[PATH_MAX];
    if (++c->done % 1024 == 0 && c->progress)
        c->progress(c->pctx, c->done, c->total);
    if (path.n >= sizeof p || cat_version_get(c->rd, id, 0, &v))
        return 0;
    /* A path whose last version is a tombstone may exist again: created
     * while unmounted, or its version lost in a crash.  That is a change. */
    int gone = v.origin == CAT_ORIGIN_DELETED;
    memcpy(p, path.p, path.n);
    p[path.n] = 0;
    struct stat sb;
    struct snap_file f = { .path = p };
    if (fstatat(snap.rootfd, p, &sb, AT_SYMLINK_NOFOLLOW)) {
        if (!gone && (errno == ENOENT || errno == ENOTDIR)) {
            snap_enqueue(snap_job_new(CAT_ORIGIN_DELETED, &f, -1));
            c->changes++;
        }
        return 0;
    }
    if (!S_ISREG(sb.st_mode) || (!gone && (uint64_t)sb.st_size == v.size && sb.st_ino == v.ino &&
                                 snap_ns(sb.st_mtim) == v.mtime_ns && snap_ns(sb.st_ctim) == v.ctime_ns))
        return 0;
    int fd = openat(snap.rootfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        pv_warn("external change of %s not captured: %s", p, strerror(errno));
        return 0;
    }
    f.dev = sb.st_dev;
    f.ino = sb.st_ino;
    snap_enqueue(snap_job_new(CAT_ORIGIN_EXTERNAL, &f, fd));
    c->changes++;
    return 0;
}

int snap_scan(void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx)
{
    struct snap_scan_ctx c = { .progress = progress, .pctx = ctx };
    struct cat_counts counts;
    int rc = cat_read_begin(snap.st, &c.rd);
    if (rc)
        return rc;
    cat_counts(c.rd, &counts);
    c.total = counts.files;
    rc = cat_files_scan(c.rd, snap_scan_file, &c);
    cat_read_end(c.rd);
    if (progress)
        progress(ctx, c.total, c.total);
    return rc < 0 ? rc : (int)c.changes;
}

/* --- lifecycle ------------------------------------------------------------ */

int snap_start(struct store *st, int rootfd)
{
    snap.st = st;
    snap.rootfd = rootfd;
    snap.stopping = 0;
    for (int i = 0; i < SNAP_WORKERS; i++) {
        pthread_cond_init(&snap.w[i].wake, NULL);
        int rc = pthread_create(&snap.w[i].thread, NULL, snap_worker, &snap.w[i]);
        if (!rc) {      /* names show in top -H, ps -L and perf */
            char name[16];
            snprintf(name, sizeof name, "provfs-snap%d", i);
            pthread_setname_np(snap.w[i].thread, name);
        }
        if (rc) {
            snap.stopping = 1;
            for (int k = 0; k < i; k++) {
                pthread_cond_signal(&snap.w[k].wake);
                pthread_join(snap.w[k].thread, NULL);
            }
            return pv_errno(-rc, "starting snapshot workers");
        }
    }
    snap.running = 1;
    return 0;
}

void snap_stop(void)
{
    if (!snap.running)
        return;
    pthread_mutex_lock(&snap.lock);
    snap.stopping = 1;
    for (int i = 0; i < SNAP_WORKERS; i++)
        pthread_cond_signal(&snap.w[i].wake);
    pthread_mutex_unlock(&snap.lock);
    for (int i = 0; i < SNAP_WORKERS; i++)
        pthread_join(snap.w[i].thread, NULL);
    pthread_mutex_lock(&snap.lock);
    snap.running = 0;
    pthread_cond_broadcast(&snap.changed);
    for (size_t b = 0; b < SNAP_BUCKETS; b++) {
        while (snap.tab[b]) {
            struct snap_ino *e = snap.tab[b];
            snap.tab[b] = e->next;
            free(e->dirty);
            free(e);
        }
    }
    snap.nino = 0;
    for (int i = 0; i < SNAP_NOTES; i++) {
        free(snap.notes[i].path);
        free(snap.notes[i].src_path);
        memset(&snap.notes[i], 0, sizeof snap.notes[i]);
    }
    pthread_mutex_unlock(&snap.lock);
}

int snap_flush(void)
{
    /* Everything queued before the call, not "until idle": a steady
     * stream of new snapshots cannot keep the caller waiting. */
    pthread_mutex_lock(&snap.lock);
    uint64_t target = snap.enqueued;
    snap_hurry_begin();
    while (snap.running && snap.finished < target)
        pthread_cond_wait(&snap.changed, &snap.lock);
    snap_hurry_end();
    pthread_mutex_unlock(&snap.lock);
    return 0;
}

void snap_get_stats(struct snap_stats *out)
{
    pthread_mutex_lock(&snap.lock);
    *out = snap.stats;
    out->queued = snap.queued;
    pthread_mutex_unlock(&snap.lock);
}
