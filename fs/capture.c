/*
 * capture.c - FUSE requests -> provenance records -> a queue -> LMDB.
 *
 * Hot path (cap_event, on FUSE worker threads): read /proc/<tid>/stat to
 * validate the cached identity of the calling thread, capture the process
 * (and its not-yet-known ancestors) the first time it is seen, detect a new
 * exec image, then append records to an in-memory queue.  Nothing here
 * touches the disk except an LMDB read (page cache) for a process unknown
 * to this daemon that may have been recorded by a previous mount.
 *
 * Writer thread: takes the whole queue every CAP_BATCH_NS (or at once when
 * flushed or stopping) and commits it as one transaction (group commit).
 * The loss window on a crash is therefore what was queued in the last
 * CAP_BATCH_NS plus the commit in flight; a clean stop drains everything.
 * If the queue exceeds CAP_QUEUE_MAX the newest events are dropped and
 * counted as gaps (recorded in the catalog), never blocking the user.
 */
#include "fs/capture.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/fspol.h"
#include "fs/proc.h"
#include "store/catalog.h"
#include "store/store.h"

#define CAP_BATCH_NS   (100 * 1000 * 1000)   /* group-commit window: 100 ms */
#define CAP_QUEUE_MAX  (1u << 20)           /* records                    */
#define CAP_TABLE_MAX  (1u << 18)           /* cached threads / processes */
#define CAP_PARENT_MAX 64                   /* ancestor chain depth       */

static const char *const cap_names[CAP_OP_MAX] = {
    [CAP_OPEN_READ] = "open-read",   [CAP_OPEN_WRITE] = "open-write",
    [CAP_CREATE] = "create",         [CAP_RENAME] = "rename",
    [CAP_UNLINK] = "unlink",         [CAP_LINK] = "link",
    [CAP_TRUNCATE] = "truncate",     [CAP_MKDIR] = "mkdir",
    [CAP_RMDIR] = "rmdir",           [CAP_SETATTR] = "setattr",
    [CAP_CLOSE_WRITE] = "close-write", [CAP_SYMLINK] = "symlink",
    [CAP_MKNOD] = "mknod",          [CAP_RESTORE] = "restore",
};

const char *cap_op_name(enum cap_op op)
{
    return op > 0 && op < CAP_OP_MAX && cap_names[op] ? cap_names[op] : "unknown";
}

enum cap_op cap_op_parse(const char *name)
{
    for (int i = 1; i < CAP_OP_MAX; i++)
        if (cap_names[i] && !strcmp(cap_names[i], name))
            return (enum cap_op)i;
    return 0;
}

/* A queued record and the heap block its strings live in. */
struct cap_item {
    struct cat_rec rec;
    void *mem;
};

/* Identity caches.  thr: tid -> (thread start, tgid, proc);
 * procs: (tgid, start) -> (proc id, image signature, image count). */
struct cap_thr { pid_t tid; uint64_t tstart; pid_t tgid; uint64_t proc_id; };
struct cap_proc { pid_t tgid; uint64_t start; uint64_t id; uint64_t sig; uint32_t nimg; int ignored; };

static struct {
    struct store *st;
    pthread_t writer;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    struct cap_item *q;
    size_t qlen, qcap;
    uint64_t pushed, committed;     /* records, for cap_flush()          */
    int stopping, flushing;
    uint64_t seq, proc_id;          /* last assigned                     */
    uint64_t gaps_pending;
    struct cap_stats stats;
    uint8_t boot_id[16];
    /* identity caches, open addressing, guarded by `lock` */
    struct cap_thr *thr;
    struct cap_proc *procs;
    size_t thr_n, procs_n;
} cap = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static uint64_t cap_hash(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

/* --- identity caches (caller holds cap.lock) ---------------------------- */

static struct cap_thr *cap_thr_slot(pid_t tid)
{
    size_t i = cap_hash(tid, 0) & (CAP_TABLE_MAX - 1);
    while (cap.thr[i].tid && cap.thr[i].tid != tid)
        i = (i + 1) & (CAP_TABLE_MAX - 1);
    return &cap.thr[i];
}

static struct cap_proc *cap_proc_slot(pid_t tgid, uint64_t start)
{
    size_t i = cap_hash(tgid, start) & (CAP_TABLE_MAX - 1);
    while (cap.procs[i].id && !(cap.procs[i].tgid == tgid && cap.procs[i].start == start))
        i = (i + 1) & (CAP_TABLE_MAX - 1);
    return &cap.procs[i];
}

/* The tables never delete single entries (open addressing); when one is
 * 3/4 full it is cleared.  Entries are cheap to rebuild: the catalog knows
 * every committed process, so drain first to make sure it knows them. */
/* Wait until everything queued so far is committed (caller holds
 * cap.lock; the wait releases it). */
static void cap_drain_locked(void)
{
    uint64_t target = cap.pushed;
    cap.flushing++;
    pthread_cond_signal(&cap.wake);
    while (cap.committed < target && cap.running)
        pthread_cond_wait(&cap.done, &cap.lock);
    cap.flushing--;
}

static void cap_tables_trim(void)
{
    if (cap.thr_n < CAP_TABLE_MAX / 4 * 3 && cap.procs_n < CAP_TABLE_MAX / 4 * 3)
        return;
    cap_drain_locked();
    memset(cap.thr, 0, CAP_TABLE_MAX * sizeof *cap.thr);
    memset(cap.procs, 0, CAP_TABLE_MAX * sizeof *cap.procs);
    cap.thr_n = cap.procs_n = 0;
}

/* --- the queue ---------------------------------------------------------- */

static void cap_item_free(struct cap_item *it)
{
    free(it->mem);
}

/* Append a record; takes ownership of mem.  Caller holds cap.lock. */
static void cap_push_locked(const struct cat_rec *rec, void *mem)
{
    if (cap.qlen >= CAP_QUEUE_MAX) {
        cap.gaps_pending++;
        cap.stats.gaps++;
        free(mem);
        return;
    }
    if (cap.qlen == cap.qcap) {
        size_t ncap = cap.qcap ? cap.qcap * 2 : 1024;
        struct cap_item *nq = realloc(cap.q, ncap * sizeof *nq);
        if (!nq) {
            cap.gaps_pending++;
            cap.stats.gaps++;
            free(mem);
            return;
        }
        cap.q = nq;
        cap.qcap = ncap;
    }
    cap.q[cap.qlen].rec = *rec;
    cap.q[cap.qlen].mem = mem;
    cap.qlen++;
    cap.pushed++;
    if (cap.qlen == 1)
        pthread_cond_signal(&cap.wake);
}

/* Copy strings into one heap block and point the cat_strs at it. */
static void *cap_pack_strs(struct cat_str **strs, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strs[i]->p ? strs[i]->n : 0;
    char *mem = malloc(total + 1);
    if (!mem)
        return NULL;
    char *p = mem;
    for (size_t i = 0; i < n; i++) {
        if (!strs[i]->p || !strs[i]->n) {
            strs[i]->p = "";
            strs[i]->n = 0;
            continue;
        }
        memcpy(p, strs[i]->p, strs[i]->n);
        strs[i]->p = p;
        p += strs[i]->n;
    }
    return mem;
}

static struct cat_str cap_str(const char *s, size_t n)
{
    struct cat_str r = { s ? s : "", s ? n : 0 };
    return r;
}

static struct cat_str cap_cstr(const char *s)
{
    return cap_str(s, s ? strlen(s) : 0);
}

/* --- processes ---------------------------------------------------------- */

/* Keep the environment variables the policy captures, with secrets and
 * secret-looking values redacted (pol_redact_env).  Rewrites env in place
 * when the result fits, else into a new buffer; returns the new length. */
static size_t cap_env_filter(const struct pol *p, char **envp, size_t len)
{
    char *env = *envp, *out = malloc(len + 1);
    size_t o = 0, room = len + 1;
    if (!out)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = strnlen(env + i, len - i);
        char *eq = memchr(env + i, '=', n);
        if (eq) {
            *eq = 0;
            if (pol_env_allowed(p, env + i)) {
                size_t want = (size_t)(eq - (env + i)) + 1 +
                              pol_redact_env(p, env + i, eq + 1, NULL, 0) + 1;
                char *grown = o + want > room ? realloc(out, (room = (o + want) * 2)) : out;
                if (!grown)
                    break;
                out = grown;
                o += (size_t)sprintf(out + o, "%s=", env + i);
                o += pol_redact_env(p, env + i, eq + 1, out + o, room - o) + 1;
            }
            *eq = '=';
        }
        i += n + 1;
    }
    free(env);
    *envp = out;
    return o;
}

/* argv with secrets redacted (pol_redact_argv); replaces *argv. */
static size_t cap_argv_redact(const struct pol *p, char **argv, size_t len)
{
    if (!*argv || !len)
        return len;
    size_t want = pol_redact_argv(p, *argv, len, NULL, 0) + 1;
    char *out = malloc(want);
    if (!out)
        return 0;
    size_t n = pol_redact_argv(p, *argv, len, out, want);
    free(*argv);
    *argv = out;
    return n;
}

/* Apply the policy to what was read of a process, before it is queued:
 * nothing the policy keeps private ever reaches the store. */
static int cap_apply_policy(struct proc_info *pi)
{
    struct pol *p = fspol_get();
    if (!p) {
        free(pi->env);
        pi->env = NULL;
        pi->env_len = 0;
        return 0;
    }
    int ignored = pol_proc_ignored(p, pi->exe, pi->st.comm);
    pi->argv_len = cap_argv_redact(p, &pi->argv, pi->argv_len);
    pi->env_len = pi->env ? cap_env_filter(p, &pi->env, pi->env_len) : 0;
    pol_free(p);
    return ignored;
}

/* A signature of the running image; it changes when the process execs.
 * exec resets comm (to the new program's name) and the argument area's
 * address (randomized with the new stack), which /proc/PID/stat shows. */
static uint64_t cap_image_sig(const struct proc_stat *ps)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *c = ps->comm; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ull;
    return cap_hash(h, ps->arg_start);
}

static uint64_t cap_ensure_proc(pid_t tgid, const struct proc_stat *ps, int depth);

/* Parent of a process being captured, itself captured if needed. */
static uint64_t cap_parent_of(const struct proc_stat *ps, int depth)
{
    if (ps->ppid <= 0 || depth >= CAP_PARENT_MAX)
        return 0;
    struct proc_stat pps;
    if (proc_read_stat(ps->ppid, &pps))
        return 0;
    return cap_ensure_proc(ps->ppid, &pps, depth + 1);
}

static void cap_image_fill(struct cat_image *im, const struct proc_info *pi)
{
    im->exe = cap_cstr(pi->exe);
    im->argv = cap_str(pi->argv, pi->argv_len);
    for (int i = 0; i < 3; i++)
        im->fd[i] = cap_cstr(pi->fd[i]);
}

/* Build and queue the records of a newly seen process. */
static uint64_t cap_record_proc(pid_t tgid, const struct proc_stat *ps, uint64_t parent)
{
    struct proc_info pi;
    if (proc_read_info(tgid, &pi)) {
        memset(&pi, 0, sizeof pi);
        pi.st = *ps;
    }
    int ignored = cap_apply_policy(&pi);

    struct cat_rec prec = { .type = CAT_REC_PROC };
    struct cat_proc *p = &prec.u.proc;
    memcpy(p->boot_id, cap.boot_id, 16);
    p->start = ps->start;
    p->tgid = tgid;
    p->ppid = ps->ppid;
    p->pgid = ps->pgid;
    p->sid = ps->sid;
    p->uid = pi.uid;
    p->gid = pi.gid;
    p->parent_id = parent;
    p->wall_ns = store_now_ns();
    p->comm = cap_cstr(ps->comm);
    p->exe = cap_cstr(pi.exe);
    p->argv = cap_str(pi.argv, pi.argv_len);
    p->cwd = cap_cstr(pi.cwd);
    p->env = cap_str(pi.env, pi.env_len);
    for (int i = 0; i < 3; i++)
        p->fd[i] = cap_cstr(pi.fd[i]);
    struct cat_str *ps_strs[] = { &p->comm, &p->exe, &p->argv, &p->cwd,
                                  &p->env, &p->fd[0], &p->fd[1], &p->fd[2] };
    void *pmem = cap_pack_strs(ps_strs, 8);

    struct cat_rec irec = { .type = CAT_REC_IMAGE };
    struct cat_image *im = &irec.u.image;
    im->n = 0;
    im->wall_ns = p->wall_ns;
    cap_image_fill(im, &pi);
    struct cat_str *is[] = { &im->exe, &im->argv, &im->fd[0], &im->fd[1], &im->fd[2] };
    void *imem = cap_pack_strs(is, 5);
    proc_info_free(&pi);

    pthread_mutex_lock(&cap.lock);
    struct cap_proc *slot = cap_proc_slot(tgid, ps->start);
    uint64_t id = slot->id;
    if (!id && pmem && imem) {   /* nobody raced us to it */
        id = p->id = im->proc_id = ++cap.proc_id;
        p->seq = im->seq = cap.seq + 1;
        *slot = (struct cap_proc){ tgid, ps->start, id, cap_image_sig(ps), 1, ignored };
        cap.procs_n++;
        cap.stats.procs++;
        cap_push_locked(&prec, pmem);
        cap_push_locked(&irec, imem);
        pmem = imem = NULL;
    }
    pthread_mutex_unlock(&cap.lock);
    free(pmem);
    free(imem);
    return id;
}

/* A process recorded by an earlier mount of this workspace (a shell that
 * outlived the daemon, say) keeps its id. */
static uint64_t cap_catalog_proc(pid_t tgid, const struct proc_stat *ps)
{
    struct cat_reader *rd;
    uint64_t id = 0;
    if (cat_read_begin(cap.st, &rd))
        return 0;
    if (cat_proc_find(rd, cap.boot_id, ps->start, tgid, &id))
        id = 0;
    cat_read_end(rd);
    if (!id)
        return 0;
    pthread_mutex_lock(&cap.lock);
    struct cap_proc *slot = cap_proc_slot(tgid, ps->start);
    if (!slot->id) {
        /* Image count unknown here; new images continue after a gap in n. */
        *slot = (struct cap_proc){ tgid, ps->start, id, cap_image_sig(ps), 1u << 16, 0 };
        cap.procs_n++;
    }
    id = slot->id;
    pthread_mutex_unlock(&cap.lock);
    return id;
}

static uint64_t cap_ensure_proc(pid_t tgid, const struct proc_stat *ps, int depth)
{
    pthread_mutex_lock(&cap.lock);
    uint64_t id = cap_proc_slot(tgid, ps->start)->id;
    pthread_mutex_unlock(&cap.lock);
    if (id)
        return id;
    if ((id = cap_catalog_proc(tgid, ps)))
        return id;
    uint64_t parent = cap_parent_of(ps, depth);
    return cap_record_proc(tgid, ps, parent);
}

/* The process exec'd since we last looked: record its new image. */
static void cap_check_image(pid_t tgid, const struct proc_stat *ps, uint64_t id)
{
    uint64_t sig = cap_image_sig(ps);
    pthread_mutex_lock(&cap.lock);
    struct cap_proc *slot = cap_proc_slot(tgid, ps->start);
    int changed = slot->id == id && slot->sig != sig;
    pthread_mutex_unlock(&cap.lock);
    if (!changed)
        return;
    struct cat_rec rec = { .type = CAT_REC_IMAGE };
    struct cat_image *im = &rec.u.image;
    struct proc_info pi;
    if (proc_read_info(tgid, &pi))
        return;
    int ignored = cap_apply_policy(&pi);
    im->proc_id = id;
    im->wall_ns = store_now_ns();
    cap_image_fill(im, &pi);
    struct cat_str *is[] = { &im->exe, &im->argv, &im->fd[0], &im->fd[1], &im->fd[2] };
    void *mem = cap_pack_strs(is, 5);
    proc_info_free(&pi);
    if (!mem)
        return;
    pthread_mutex_lock(&cap.lock);
    slot = cap_proc_slot(tgid, ps->start);
    if (slot->id == id && slot->sig != sig) {
        slot->sig = sig;
        slot->ignored = ignored;
        im->n = slot->nimg++;
        im->seq = cap.seq + 1;
        cap_push_locked(&rec, mem);
        mem = NULL;
    }
    pthread_mutex_unlock(&cap.lock);
    free(mem);
}

static int cap_proc_is_ignored(pid_t tgid, uint64_t start)
{
    pthread_mutex_lock(&cap.lock);
    struct cap_proc *slot = cap_proc_slot(tgid, start);
    int ignored = slot->ignored;
    pthread_mutex_unlock(&cap.lock);
    return ignored;
}

/* Thread id -> process id, capturing the process if new (0 if it could
 * not be identified); *ignored tells that the policy ignores it. */
static uint64_t cap_resolve(pid_t tid, int *ignored)
{
    struct proc_stat ts, gs;
    if (tid <= 0 || proc_read_stat(tid, &ts))
        return 0;
    pthread_mutex_lock(&cap.lock);
    cap_tables_trim();
    struct cap_thr *t = cap_thr_slot(tid);
    pid_t tgid = (t->tid == tid && t->tstart == ts.start) ? t->tgid : 0;
    pthread_mutex_unlock(&cap.lock);

    if (!tgid && proc_tgid(tid, &tgid))
        return 0;
    if (tgid == tid)
        gs = ts;
    else if (proc_read_stat(tgid, &gs))
        return 0;
    uint64_t id = cap_ensure_proc(tgid, &gs, 0);
    if (!id)
        return 0;
    cap_check_image(tgid, &gs, id);
    if ((*ignored = cap_proc_is_ignored(tgid, gs.start)))
        return 0;

    pthread_mutex_lock(&cap.lock);
    t = cap_thr_slot(tid);
    if (!t->tid)
        cap.thr_n++;
    *t = (struct cap_thr){ tid, ts.start, tgid, id };
    pthread_mutex_unlock(&cap.lock);
    return id;
}

/* --- events ------------------------------------------------------------- */

/* An event is dropped when every path it names is ignored by the policy
 * (a rename from an ignored temporary file onto a tracked one is kept). */
static int cap_ignored(enum cap_op op, const char *path, const char *path2)
{
    struct pol *p = fspol_get();
    if (!p)
        return 0;
    int ign = pol_is_ignored(p, path) &&
              (!path2 || !*path2 || op == CAP_SYMLINK || pol_is_ignored(p, path2));
    pol_free(p);
    return ign;
}

/* provfs.yaml changed through the mount: reload it (after the operation,
 * so the file on disk is final). */
static void cap_maybe_reload(enum cap_op op, const char *path, const char *path2)
{
    if (((op == CAP_CLOSE_WRITE || op == CAP_UNLINK) && !strcmp(path, POL_FILE)) ||
        (op == CAP_RENAME && ((path2 && !strcmp(path2, POL_FILE)) || !strcmp(path, POL_FILE))))
        fspol_reload();
}

void cap_event_proc(uint64_t proc_id, enum cap_op op, const char *path,
                    const char *path2, uint64_t arg)
{
    if (!cap.running)
        return;
    if (op == CAP_CLOSE_WRITE) {    /* release: no process context */
        cap_maybe_reload(op, path, path2);
        if (cap_ignored(op, path, path2))
            return;
    }
    struct cat_rec rec = { .type = CAT_REC_EVENT };
    struct cat_event *e = &rec.u.event;
    e->op = op;
    e->proc_id = proc_id;
    e->arg = arg;
    e->wall_ns = store_now_ns();
    e->path = cap_cstr(path);
    e->path2 = cap_cstr(path2);
    e->path2_literal = op == CAP_SYMLINK;
    struct cat_str *s[] = { &e->path, &e->path2 };
    void *mem = cap_pack_strs(s, 2);
    pthread_mutex_lock(&cap.lock);
    if (!mem) {
        cap.gaps_pending++;
        cap.stats.gaps++;
    } else {
        e->seq = ++cap.seq;
        cap_push_locked(&rec, mem);
    }
    pthread_mutex_unlock(&cap.lock);
}

uint64_t cap_event(pid_t pid, uid_t uid, gid_t gid, enum cap_op op,
                   const char *path, const char *path2, uint64_t arg)
{
    (void)uid; (void)gid;   /* the process record has its credentials */
    if (!cap.running)
        return 0;
    cap_maybe_reload(op, path, path2);
    if (cap_ignored(op, path, path2))
        return 0;
    int ignored = 0;
    uint64_t id = cap_resolve(pid, &ignored);
    if (!ignored)
        cap_event_proc(id, op, path, path2, arg);
    return id;
}

/* --- the writer --------------------------------------------------------- */

static int cap_commit_batch(struct cap_item *items, size_t n, uint64_t gaps)
{
    struct cat_rec *recs = malloc((n + 1) * sizeof *recs);
    int rc = -ENOMEM;
    size_t nrec = 0;
    if (recs) {
        if (gaps)
            recs[nrec++] = (struct cat_rec){ .type = CAT_REC_GAP, .u.gaps = gaps };
        for (size_t i = 0; i < n; i++)
            recs[nrec++] = items[i].rec;
        rc = cat_commit(cap.st, recs, nrec);
    }
    if (rc) {
        pv_error("capture: lost %zu records: %s", n, rc == -ENOMEM ? "out of memory" : pv_errmsg());
    }
    pthread_mutex_lock(&cap.lock);
    if (rc) {
        cap.stats.gaps += n;
        cap.gaps_pending += n + gaps;   /* try to record the loss later */
    } else {
        cap.stats.committed += n;
        cap.stats.batches++;
    }
    pthread_mutex_unlock(&cap.lock);
    free(recs);
    for (size_t i = 0; i < n; i++)
        cap_item_free(&items[i]);
    return rc;
}

static void *cap_writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&cap.lock);
    for (;;) {
        while (!cap.qlen && !cap.stopping && !cap.gaps_pending)
            pthread_cond_wait(&cap.wake, &cap.lock);
        if (!cap.qlen && cap.stopping)
            break;
        if (!cap.stopping && !cap.flushing) {
            /* Let the batch grow: one fsync covers everything that arrives. */
            struct timespec until = pv_deadline_ns(CAP_BATCH_NS);
            while (!cap.stopping && !cap.flushing &&
                   pthread_cond_timedwait(&cap.wake, &cap.lock, &until) != ETIMEDOUT)
                ;
        }
        struct cap_item *items = cap.q;
        size_t n = cap.qlen;
        uint64_t gaps = cap.gaps_pending, target = cap.pushed;
        cap.q = NULL;
        cap.qlen = cap.qcap = 0;
        cap.gaps_pending = 0;
        pthread_mutex_unlock(&cap.lock);
        int rc = cap_commit_batch(items, n, gaps);
        free(items);
        if (rc && !cap.stopping)
            sleep(1);   /* store trouble (disk full?): don't spin */
        pthread_mutex_lock(&cap.lock);
        cap.committed = target;
        pthread_cond_broadcast(&cap.done);
    }
    pthread_mutex_unlock(&cap.lock);
    return NULL;
}

int cap_start(struct store *st)
{
    int rc = proc_boot_id(cap.boot_id);
    if (rc)
        return rc;
    struct cat_reader *rd;
    if ((rc = cat_read_begin(st, &rd)))
        return rc;
    rc = cat_max_ids(rd, &cap.seq, &cap.proc_id);
    cat_read_end(rd);
    if (rc)
        return rc;
    cap.thr = calloc(CAP_TABLE_MAX, sizeof *cap.thr);
    cap.procs = calloc(CAP_TABLE_MAX, sizeof *cap.procs);
    if (!cap.thr || !cap.procs) {
        free(cap.thr);
        free(cap.procs);
        return pv_err(-ENOMEM, "out of memory for the process tables");
    }
    cap.st = st;
    cap.stopping = 0;
    cap.pushed = cap.committed = 0;
    memset(&cap.stats, 0, sizeof cap.stats);
    if ((rc = pthread_create(&cap.writer, NULL, cap_writer, NULL)))
        return pv_errno(-rc, "starting the capture writer");
    pthread_setname_np(cap.writer, "provfs-writer");
    cap.running = 1;
    return 0;
}

void cap_stop(void)
{
    if (!cap.running)
        return;
    pthread_mutex_lock(&cap.lock);
    cap.stopping = 1;
    pthread_cond_signal(&cap.wake);
    pthread_mutex_unlock(&cap.lock);
    pthread_join(cap.writer, NULL);
    pthread_mutex_lock(&cap.lock);
    cap.running = 0;
    pthread_cond_broadcast(&cap.done);
    free(cap.thr);
    free(cap.procs);
    cap.thr = NULL;
    cap.procs = NULL;
    cap.thr_n = cap.procs_n = 0;
    pthread_mutex_unlock(&cap.lock);
}

uint64_t cap_tick(void)
{
    pthread_mutex_lock(&cap.lock);
    uint64_t seq = ++cap.seq;
    pthread_mutex_unlock(&cap.lock);
    return seq;
}

int cap_flush(void)
{
    pthread_mutex_lock(&cap.lock);
    cap_drain_locked();
    pthread_mutex_unlock(&cap.lock);
    return 0;
}

void cap_get_stats(struct cap_stats *out)
{
    pthread_mutex_lock(&cap.lock);
    *out = cap.stats;
    out->queued = cap.qlen;
    pthread_mutex_unlock(&cap.lock);
}
