/*
 * catalog.c - processes, images, files and events in LMDB; see catalog.h.
 *
 * Record layouts (codec.h varints and byte strings, fields appended only):
 *   procs[id]            boot16 start tgid ppid pgid sid uid gid parent seq
 *                        wall comm exe argv cwd env fd0 fd1 fd2
 *   prockeys[boot16|start|tgid] -> id
 *   images[id|n]         seq wall exe argv fd0 fd1 fd2
 *   children[parent|child] -> ""
 *   events[seq]          op proc path path2 arg wall file file2
 *   procevents[proc|seq], fileevents[file|seq] -> ""
 *   paths[path key] -> file id;  files[id] path first_seq
 *   versions[file|vno(u32)] content_id flags size mtime ctime ino mode uid
 *                        gid seq wall origin src_file src_vno writer kind
 *                        policy_id err
 *   lineage[...]         pipe ends, process groups, writer -> versions
 *                        (see "lineage indexes" below)
 */
#include "store/catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fs/capture.h"         /* op values, for the lineage 'U' index only */
#include "store/codec.h"
#include "store/store_int.h"
#include "store/workpool.h"
#include "store/workpool.h"

struct cat_reader {
    struct store *st;
    MDB_txn *txn;
};

/* LMDB keys are at most 511 bytes; longer paths keep a prefix (so cursor
 * order stays roughly by path) plus a SHA-256 of the whole path. */
#define CAT_PATHKEY_MAX 480
#define CAT_PATHKEY_PREFIX (CAT_PATHKEY_MAX - 32)

static size_t cat_path_key(const char *p, size_t n, uint8_t *key)
{
    if (n <= CAT_PATHKEY_MAX) {
        memcpy(key, p, n);
        return n;
    }
    memcpy(key, p, CAT_PATHKEY_PREFIX);
    unsigned int len = 32;
    EVP_Digest(p, n, key + CAT_PATHKEY_PREFIX, &len, EVP_sha256(), NULL);
    return CAT_PATHKEY_MAX;
}

static struct cat_str cat_get_str(struct cread *r)
{
    struct cat_str s;
    s.p = (const char *)cread_bytes(r, &s.n);
    return s;
}

static void cat_put_str(struct cbuf *b, struct cat_str s)
{
    cbuf_put_bytes(b, s.p, s.p ? s.n : 0);
}

static int cat_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn,
                   const void *v, size_t vn, unsigned flags, const char *what)
{
    MDB_val key = { kn, (void *)k }, val = { vn, (void *)v };
    return store_mdb_err(mdb_put(txn, dbi, &key, &val, flags), what);
}

static int cat_index_proc(struct store *st, MDB_txn *txn, const struct cat_proc *p);
static int cat_index_image(struct store *st, MDB_txn *txn, const struct cat_image *im);
static int cat_index_version(struct store *st, MDB_txn *txn, const struct cat_version *v);
static int cat_index_event(struct store *st, MDB_txn *txn, const struct cat_event *e);

/* --- encoding ---------------------------------------------------------- */

static void cat_enc_proc(struct cbuf *b, const struct cat_proc *p)
{
    cbuf_put_raw(b, p->boot_id, 16);
    uint64_t nums[] = { p->start, p->tgid, p->ppid, p->pgid, p->sid, p->uid,
                        p->gid, p->parent_id, p->seq, p->wall_ns };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        cbuf_put_u64(b, nums[i]);
    struct cat_str strs[] = { p->comm, p->exe, p->argv, p->cwd, p->env,
                              p->fd[0], p->fd[1], p->fd[2] };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        cat_put_str(b, strs[i]);
}

static int cat_dec_proc(uint64_t id, const MDB_val *v, struct cat_proc *p)
{
    struct cread r;
    cread_init(&r, v->mv_data, v->mv_size);
    memset(p, 0, sizeof *p);
    p->id = id;
    const uint8_t *boot = cread_raw(&r, 16);
    if (boot)
        memcpy(p->boot_id, boot, 16);
    p->start = cread_u64(&r);
    p->tgid = cread_u64(&r);
    p->ppid = cread_u64(&r);
    p->pgid = cread_u64(&r);
    p->sid = cread_u64(&r);
    p->uid = cread_u64(&r);
    p->gid = cread_u64(&r);
    p->parent_id = cread_u64(&r);
    p->seq = cread_u64(&r);
    p->wall_ns = cread_u64(&r);
    p->comm = cat_get_str(&r);
    p->exe = cat_get_str(&r);
    p->argv = cat_get_str(&r);
    p->cwd = cat_get_str(&r);
    p->env = cat_get_str(&r);
    for (int i = 0; i < 3; i++)
        p->fd[i] = cat_get_str(&r);
    return r.err ? pv_err(-EUCLEAN, "process record %llu is corrupt",
                          (unsigned long long)id) : 0;
}

static void cat_enc_event(struct cbuf *b, const struct cat_event *e)
{
    cbuf_put_u64(b, e->op);
    cbuf_put_u64(b, e->proc_id);
    cat_put_str(b, e->path);
    cat_put_str(b, e->path2);
    cbuf_put_u64(b, e->arg);
    cbuf_put_u64(b, e->wall_ns);
    cbuf_put_u64(b, e->file_id);
    cbuf_put_u64(b, e->file2_id);
}

static int cat_dec_event(uint64_t seq, const MDB_val *v, struct cat_event *e)
{
    struct cread r;
    cread_init(&r, v->mv_data, v->mv_size);
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->op = cread_u64(&r);
    e->proc_id = cread_u64(&r);
    e->path = cat_get_str(&r);
    e->path2 = cat_get_str(&r);
    e->arg = cread_u64(&r);
    e->wall_ns = cread_u64(&r);
    e->file_id = cread_u64(&r);
    e->file2_id = cread_u64(&r);
    return r.err ? pv_err(-EUCLEAN, "event %llu is corrupt",
                          (unsigned long long)seq) : 0;
}

static int cat_dec_image(const MDB_val *k, const MDB_val *v, struct cat_image *im)
{
    struct cread r;
    cread_init(&r, v->mv_data, v->mv_size);
    memset(im, 0, sizeof *im);
    im->proc_id = be64_get(k->mv_data);
    im->n = be32_get((const uint8_t *)k->mv_data + 8);
    im->seq = cread_u64(&r);
    im->wall_ns = cread_u64(&r);
    im->exe = cat_get_str(&r);
    im->argv = cat_get_str(&r);
    for (int i = 0; i < 3; i++)
        im->fd[i] = cat_get_str(&r);
    return r.err ? pv_err(-EUCLEAN, "image record is corrupt") : 0;
}

/* --- writing ----------------------------------------------------------- */

/* Next free id in a DB keyed by u64be: last key + 1. */
static int cat_next_id(MDB_txn *txn, MDB_dbi dbi, uint64_t *id)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) {
        *id = 1;
        return 0;
    }
    if (rc)
        return store_mdb_err(rc, "reading the last id");
    *id = be64_get(k.mv_data) + 1;
    return 0;
}

/* Get or create the file id of a path. */
static int cat_file_id(struct store *st, MDB_txn *txn, struct cat_str path,
                       uint64_t seq, uint64_t *id)
{
    uint8_t key[CAT_PATHKEY_MAX];
    MDB_val k = { cat_path_key(path.p, path.n, key), key }, v;
    int rc = mdb_get(txn, st->dbi[DB_PATHS], &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        *id = be64_get(v.mv_data);
        return 0;
    }
    if (rc != MDB_NOTFOUND)
        return store_mdb_err(rc ? rc : MDB_CORRUPTED, "looking up a path");
    if ((rc = cat_next_id(txn, st->dbi[DB_FILES], id)))
        return rc;
    uint8_t idb[8];
    be64_put(idb, *id);
    struct cbuf b;
    cbuf_init(&b);
    cat_put_str(&b, path);
    cbuf_put_u64(&b, seq);
    rc = b.err;
    if (!rc)
        rc = cat_put(txn, st->dbi[DB_FILES], idb, 8, b.p, b.len, MDB_APPEND, "adding a file");
    if (!rc)
        rc = cat_put(txn, st->dbi[DB_PATHS], k.mv_data, k.mv_size, idb, 8, 0, "adding a path");
    cbuf_free(&b);
    return rc;
}

static int cat_put_index(MDB_txn *txn, MDB_dbi dbi, uint64_t a, uint64_t b)
{
    uint8_t key[16];
    be64_put(key, a);
    be64_put(key + 8, b);
    return cat_put(txn, dbi, key, 16, "", 0, 0, "indexing");
}

static int cat_commit_proc(struct store *st, MDB_txn *txn, struct cbuf *b,
                           const struct cat_proc *p)
{
    uint8_t id[8], key[28];
    be64_put(id, p->id);
    memcpy(key, p->boot_id, 16);
    be64_put(key + 16, p->start);
    be32_put(key + 24, p->tgid);
    cbuf_reset(b);
    cat_enc_proc(b, p);
    if (b->err)
        return pv_err(b->err, "out of memory");
    int rc = cat_put(txn, st->dbi[DB_PROCS], id, 8, b->p, b->len, 0, "adding a process");
    if (!rc)
        rc = cat_put(txn, st->dbi[DB_PROCKEYS], key, 28, id, 8, 0, "adding a process key");
    if (!rc && p->parent_id)
        rc = cat_put_index(txn, st->dbi[DB_CHILDREN], p->parent_id, p->id);
    return rc ? rc : cat_index_proc(st, txn, p);
}

static int cat_commit_image(struct store *st, MDB_txn *txn, struct cbuf *b,
                            const struct cat_image *im)
{
    uint8_t key[12];
    be64_put(key, im->proc_id);
    be32_put(key + 8, im->n);
    cbuf_reset(b);
    cbuf_put_u64(b, im->seq);
    cbuf_put_u64(b, im->wall_ns);
    cat_put_str(b, im->exe);
    cat_put_str(b, im->argv);
    for (int i = 0; i < 3; i++)
        cat_put_str(b, im->fd[i]);
    if (b->err)
        return pv_err(b->err, "out of memory");
    int rc = cat_put(txn, st->dbi[DB_IMAGES], key, 12, b->p, b->len, 0, "adding an image");
    return rc ? rc : cat_index_image(st, txn, im);
}

static int cat_commit_event(struct store *st, MDB_txn *txn, struct cbuf *b,
                            const struct cat_event *in)
{
    struct cat_event e = *in;
    int rc = 0;
    if (e.path.n)
        rc = cat_file_id(st, txn, e.path, e.seq, &e.file_id);
    if (!rc && e.path2.n && !e.path2_literal)
        rc = cat_file_id(st, txn, e.path2, e.seq, &e.file2_id);
    if (rc)
        return rc;
    uint8_t key[8];
    be64_put(key, e.seq);
    cbuf_reset(b);
    cat_enc_event(b, &e);
    if (b->err)
        return pv_err(b->err, "out of memory");
    rc = cat_put(txn, st->dbi[DB_EVENTS], key, 8, b->p, b->len, 0, "adding an event");
    if (!rc && e.proc_id)
        rc = cat_put_index(txn, st->dbi[DB_PROCEVENTS], e.proc_id, e.seq);
    if (!rc && e.file_id)
        rc = cat_put_index(txn, st->dbi[DB_FILEEVENTS], e.file_id, e.seq);
    if (!rc && e.file2_id)
        rc = cat_put_index(txn, st->dbi[DB_FILEEVENTS], e.file2_id, e.seq);
    return rc ? rc : cat_index_event(st, txn, &e);
}

static int cat_add_gaps(struct store *st, MDB_txn *txn, uint64_t n)
{
    MDB_val k = { 4, "gaps" }, v;
    uint64_t gaps = 0;
    if (mdb_get(txn, st->dbi[DB_META], &k, &v) == 0 && v.mv_size == 8)
        gaps = be64_get(v.mv_data);
    uint8_t buf[8];
    be64_put(buf, gaps + n);
    return cat_put(txn, st->dbi[DB_META], "gaps", 4, buf, 8, 0, "counting gaps");
}

int cat_commit_txn(struct store *st, MDB_txn *txn, const struct cat_rec *recs, size_t n)
{
    struct cbuf b;
    int rc = 0;
    cbuf_init(&b);
    for (size_t i = 0; i < n && !rc; i++) {
        switch (recs[i].type) {
        case CAT_REC_PROC:  rc = cat_commit_proc(st, txn, &b, &recs[i].u.proc); break;
        case CAT_REC_IMAGE: rc = cat_commit_image(st, txn, &b, &recs[i].u.image); break;
        case CAT_REC_EVENT: rc = cat_commit_event(st, txn, &b, &recs[i].u.event); break;
        case CAT_REC_GAP:   rc = cat_add_gaps(st, txn, recs[i].u.gaps); break;
        }
    }
    cbuf_free(&b);
    return rc;
}

int cat_commit(struct store *st, const struct cat_rec *recs, size_t n)
{
    MDB_txn *txn;
    int rc = store_txn_begin(st, 0, &txn);
    if (rc)
        return rc;
    if ((rc = cat_commit_txn(st, txn, recs, n))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_mdb_err(mdb_txn_commit(txn), "committing events");
}

/* --- reading ----------------------------------------------------------- */

int cat_read_begin(struct store *st, struct cat_reader **out)
{
    struct cat_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return pv_err(-ENOMEM, "out of memory");
    rd->st = st;
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &rd->txn),
                           "starting a read transaction");
    if (rc) {
        free(rd);
        return rc;
    }
    *out = rd;
    return 0;
}

/* cat_read_parallel's run: a reader and a tls per worker of the pool. */
struct cat_par {
    struct store *st;
    cat_par_fn fn;
    void *ctx;
    struct cat_reader *rd[WORKPOOL_MAX];
    void *tls[WORKPOOL_MAX];
    int failed[WORKPOOL_MAX];
};

static void cat_par_item(void *arg, size_t i, unsigned worker)
{
    struct cat_par *p = arg;
    if (!p->rd[worker] && !p->failed[worker])
        p->failed[worker] = cat_read_begin(p->st, &p->rd[worker]) != 0;
    if (p->rd[worker])      /* no reader: the item is only not warmed */
        p->fn(p->rd[worker], &p->tls[worker], i, p->ctx);
}

void cat_read_parallel(struct store *st, size_t n, unsigned nthreads,
                       cat_par_fn fn, void (*tls_free)(void *tls), void *ctx)
{
    struct cat_par p = { .st = st, .fn = fn, .ctx = ctx };
    struct workpool *pool;
    if (workpool_create(&pool, nthreads))
        return;
    workpool_run(pool, n, cat_par_item, &p);
    workpool_destroy(pool);
    for (unsigned w = 0; w < WORKPOOL_MAX; w++) {
        if (p.tls[w] && tls_free)
            tls_free(p.tls[w]);
        cat_read_end(p.rd[w]);
    }
}

void cat_read_end(struct cat_reader *rd)
{
    if (!rd)
        return;
    mdb_txn_abort(rd->txn);
    free(rd);
}

static uint64_t cat_entries(struct cat_reader *rd, enum store_db db)
{
    MDB_stat s;
    return mdb_stat(rd->txn, rd->st->dbi[db], &s) ? 0 : s.ms_entries;
}

int cat_counts(struct cat_reader *rd, struct cat_counts *out)
{
    memset(out, 0, sizeof *out);
    out->events = cat_entries(rd, DB_EVENTS);
    out->procs = cat_entries(rd, DB_PROCS);
    out->files = cat_entries(rd, DB_FILES);
    out->images = cat_entries(rd, DB_IMAGES);
    MDB_val k = { 4, "gaps" }, v;
    if (mdb_get(rd->txn, rd->st->dbi[DB_META], &k, &v) == 0 && v.mv_size == 8)
        out->gaps = be64_get(v.mv_data);
    return 0;
}

int cat_max_ids(struct cat_reader *rd, uint64_t *seq, uint64_t *proc_id)
{
    int rc = cat_next_id(rd->txn, rd->st->dbi[DB_EVENTS], seq);
    if (!rc)
        rc = cat_next_id(rd->txn, rd->st->dbi[DB_PROCS], proc_id);
    if (rc)
        return rc;
    (*seq)--;
    (*proc_id)--;
    return 0;
}

int cat_proc_find(struct cat_reader *rd, const uint8_t boot_id[16],
                  uint64_t start, uint32_t tgid, uint64_t *id)
{
    uint8_t key[28];
    memcpy(key, boot_id, 16);
    be64_put(key + 16, start);
    be32_put(key + 24, tgid);
    MDB_val k = { 28, key }, v;
    int rc = mdb_get(rd->txn, rd->st->dbi[DB_PROCKEYS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc || v.mv_size != 8)
        return store_mdb_err(rc ? rc : MDB_CORRUPTED, "looking up a process");
    *id = be64_get(v.mv_data);
    return 0;
}

/* The record keyed by a u64 in db; -ENOENT (with "no <what> <id>") if absent. */
static int cat_get_u64(struct cat_reader *rd, enum store_db db, uint64_t id,
                       MDB_val *v, const char *what)
{
    uint8_t key[8];
    be64_put(key, id);
    MDB_val k = { 8, key };
    int rc = mdb_get(rd->txn, rd->st->dbi[db], &k, v);
    if (rc == MDB_NOTFOUND)
        return pv_err(-ENOENT, "no %s %llu", what, (unsigned long long)id);
    return rc ? store_mdb_err(rc, what) : 0;
}

int cat_proc_get(struct cat_reader *rd, uint64_t id, struct cat_proc *out)
{
    MDB_val v;
    int rc = cat_get_u64(rd, DB_PROCS, id, &v, "process");
    return rc ? rc : cat_dec_proc(id, &v, out);
}

int cat_event_get(struct cat_reader *rd, uint64_t seq, struct cat_event *out)
{
    MDB_val v;
    int rc = cat_get_u64(rd, DB_EVENTS, seq, &v, "event");
    return rc ? rc : cat_dec_event(seq, &v, out);
}

/* Walk keys of `dbi` starting at `start` (klen bytes) while the first
 * `prefix` bytes equal start's; call fn on each. */
typedef int (*cat_walk_fn)(struct cat_reader *rd, const MDB_val *k,
                           const MDB_val *v, void *arg);

static int cat_walk(struct cat_reader *rd, enum store_db db, const void *start,
                    size_t klen, size_t prefix, cat_walk_fn fn, void *arg)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(rd->txn, rd->st->dbi[db], &c);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    MDB_val k = { klen, (void *)start }, v;
    int op = klen ? MDB_SET_RANGE : MDB_FIRST;
    int ret = 0;
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (prefix && (k.mv_size < prefix || memcmp(k.mv_data, start, prefix)))
            break;
        if ((ret = fn(rd, &k, &v, arg)))
            break;
    }
    mdb_cursor_close(c);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = store_mdb_err(rc, "scanning the catalog");
    return ret;
}

struct cat_cb { void *fn; void *ctx; };

static int cat_walk_proc(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    struct cat_proc p;
    int rc = cat_dec_proc(be64_get(k->mv_data), v, &p);
    (void)rd;
    return rc ? rc : ((cat_proc_cb)cb->fn)(cb->ctx, &p);
}

int cat_procs_scan(struct cat_reader *rd, cat_proc_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    return cat_walk(rd, DB_PROCS, NULL, 0, 0, cat_walk_proc, &cb);
}

static int cat_walk_image(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    struct cat_image im;
    int rc = cat_dec_image(k, v, &im);
    (void)rd;
    return rc ? rc : ((cat_image_cb)cb->fn)(cb->ctx, &im);
}

int cat_images_scan(struct cat_reader *rd, uint64_t proc_id, cat_image_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[8];
    be64_put(key, proc_id);
    return cat_walk(rd, DB_IMAGES, key, 8, 8, cat_walk_image, &cb);
}

static int cat_keep_last(void *ctx, const struct cat_image *im)
{
    *(struct cat_image *)ctx = *im;
    return 0;
}

int cat_proc_last_image(struct cat_reader *rd, uint64_t id, struct cat_image *out)
{
    out->proc_id = 0;
    int rc = cat_images_scan(rd, id, cat_keep_last, out);
    if (!rc && !out->proc_id)
        return -ENOENT;
    return rc;
}

static int cat_walk_event(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    struct cat_event e;
    int rc = cat_dec_event(be64_get(k->mv_data), v, &e);
    (void)rd;
    return rc ? rc : ((cat_event_cb)cb->fn)(cb->ctx, &e);
}

int cat_events_scan(struct cat_reader *rd, uint64_t from_seq, cat_event_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[8];
    be64_put(key, from_seq);
    return cat_walk(rd, DB_EVENTS, key, 8, 0, cat_walk_event, &cb);
}

/* Index walks: key = owner|seq; look each seq up in events. */
static int cat_walk_index(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    struct cat_event e;
    (void)v;
    int rc = cat_event_get(rd, be64_get((const uint8_t *)k->mv_data + 8), &e);
    return rc ? rc : ((cat_event_cb)cb->fn)(cb->ctx, &e);
}

int cat_proc_events(struct cat_reader *rd, uint64_t proc_id, cat_event_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[8];
    be64_put(key, proc_id);
    return cat_walk(rd, DB_PROCEVENTS, key, 8, 8, cat_walk_index, &cb);
}

int cat_file_find(struct cat_reader *rd, const char *path, uint64_t *id)
{
    uint8_t key[CAT_PATHKEY_MAX];
    MDB_val k = { cat_path_key(path, strlen(path), key), key }, v;
    int rc = mdb_get(rd->txn, rd->st->dbi[DB_PATHS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return pv_err(-ENOENT, "%s: no recorded history", path);
    if (rc || v.mv_size != 8)
        return store_mdb_err(rc ? rc : MDB_CORRUPTED, "looking up a path");
    *id = be64_get(v.mv_data);
    return 0;
}

int cat_path_events(struct cat_reader *rd, const char *path, cat_event_cb fn, void *ctx)
{
    uint64_t id;
    int rc = cat_file_find(rd, path, &id);
    if (rc)
        return rc;
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[8];
    be64_put(key, id);
    return cat_walk(rd, DB_FILEEVENTS, key, 8, 8, cat_walk_index, &cb);
}

/* --- files -------------------------------------------------------------- */

int cat_file_path(struct cat_reader *rd, uint64_t id, struct cat_str *path)
{
    MDB_val v;
    int rc = cat_get_u64(rd, DB_FILES, id, &v, "file");
    if (rc)
        return rc;
    struct cread r;
    cread_init(&r, v.mv_data, v.mv_size);
    *path = cat_get_str(&r);
    return r.err ? pv_err(-EUCLEAN, "file record %llu is corrupt", (unsigned long long)id) : 0;
}

static int cat_walk_file(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    struct cread r;
    (void)rd;
    cread_init(&r, v->mv_data, v->mv_size);
    struct cat_str path = cat_get_str(&r);
    if (r.err)
        return pv_err(-EUCLEAN, "file record is corrupt");
    return ((cat_file_cb)cb->fn)(cb->ctx, be64_get(k->mv_data), path);
}

int cat_files_scan(struct cat_reader *rd, cat_file_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    return cat_walk(rd, DB_FILES, NULL, 0, 0, cat_walk_file, &cb);
}

int cat_path_children(struct cat_reader *rd, const char *prefix, cat_file_cb cb, void *ctx)
{
    char start[CAT_PATHKEY_MAX + 2];
    size_t pl = strlen(prefix);
    if (pl + 2 > CAT_PATHKEY_MAX)
        return 0;   /* paths this deep are keyed by hash: not listable */
    memcpy(start, prefix, pl);
    if (pl)
        start[pl++] = '/';
    MDB_cursor *c;
    int rc = mdb_cursor_open(rd->txn, rd->st->dbi[DB_PATHS], &c);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    MDB_val k = { pl, start }, v;
    int op = pl ? MDB_SET_RANGE : MDB_FIRST, ret = 0;
    char seek[CAT_PATHKEY_MAX + 2];
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        const char *kp = k.mv_data;
        if (k.mv_size < pl || memcmp(kp, start, pl))
            break;
        const char *rest = kp + pl, *end = kp + k.mv_size;
        const char *slash = memchr(rest, '/', (size_t)(end - rest));
        size_t nl = (size_t)((slash ? slash : end) - rest);
        if (nl == 0)
            continue;
        struct cat_str name = { rest, nl };
        uint64_t id = slash || v.mv_size != 8 ? 0 : be64_get(v.mv_data);
        if ((ret = cb(ctx, id, name)))
            break;
        if (slash) {
            /* Jump past "<prefix>/<name>/...": the next key is >= name + '0'. */
            size_t sl = pl + nl;
            memcpy(seek, kp, sl);
            seek[sl++] = '/' + 1;
            k.mv_data = seek;
            k.mv_size = sl;
            op = MDB_SET_RANGE;
        }
    }
    mdb_cursor_close(c);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = store_mdb_err(rc, "listing paths");
    return ret;
}

/* --- versions ----------------------------------------------------------- */

const char *cat_origin_name(uint32_t origin)
{
    static const char *const names[] = {
        [CAT_ORIGIN_WRITTEN] = "written", [CAT_ORIGIN_PREEXISTING] = "pre-existing",
        [CAT_ORIGIN_EXTERNAL] = "external", [CAT_ORIGIN_RENAMED] = "renamed",
        [CAT_ORIGIN_LINKED] = "linked", [CAT_ORIGIN_RESTORED] = "restored",
        [CAT_ORIGIN_DELETED] = "deleted",
    };
    return origin < sizeof names / sizeof names[0] && names[origin] ? names[origin] : "unknown";
}

static void cat_enc_version(struct cbuf *b, const struct cat_version *v)
{
    cbuf_put_raw(b, v->content_id, 32);
    uint64_t nums[] = { v->flags, v->size, v->mtime_ns, v->ctime_ns, v->ino, v->mode,
                        v->uid, v->gid, v->seq, v->wall_ns, v->origin, v->src_file_id,
                        v->src_vno, v->writer };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        cbuf_put_u64(b, nums[i]);
    cat_put_str(b, v->kind);
    cbuf_put_raw(b, v->policy_id, 32);
    cat_put_str(b, v->err);
}

static int cat_dec_version(const MDB_val *k, const MDB_val *val, struct cat_version *v)
{
    struct cread r;
    cread_init(&r, val->mv_data, val->mv_size);
    memset(v, 0, sizeof *v);
    v->file_id = be64_get(k->mv_data);
    v->vno = be32_get((const uint8_t *)k->mv_data + 8);
    const uint8_t *id = cread_raw(&r, 32);
    if (id)
        memcpy(v->content_id, id, 32);
    v->flags = cread_u64(&r);
    v->size = cread_u64(&r);
    v->mtime_ns = cread_u64(&r);
    v->ctime_ns = cread_u64(&r);
    v->ino = cread_u64(&r);
    v->mode = cread_u64(&r);
    v->uid = cread_u64(&r);
    v->gid = cread_u64(&r);
    v->seq = cread_u64(&r);
    v->wall_ns = cread_u64(&r);
    v->origin = cread_u64(&r);
    v->src_file_id = cread_u64(&r);
    v->src_vno = cread_u64(&r);
    v->writer = cread_u64(&r);
    v->kind = cat_get_str(&r);
    const uint8_t *pol = cread_more(&r) ? cread_raw(&r, 32) : NULL;
    if (pol)
        memcpy(v->policy_id, pol, 32);
    v->err = cat_get_str(&r);
    return r.err ? pv_err(-EUCLEAN, "version %u of file %llu is corrupt", v->vno,
                          (unsigned long long)v->file_id) : 0;
}

/* Last version number of a file (0 if none) within txn. */
static int cat_last_vno(MDB_txn *txn, MDB_dbi dbi, uint64_t file_id, uint32_t *vno)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    uint8_t key[12];
    be64_put(key, file_id + 1);
    be32_put(key + 8, 0);
    MDB_val k = { 12, key }, v;
    /* Position after the file's last key, then step back. */
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(c, &k, &v, MDB_PREV)
                 : rc == MDB_NOTFOUND ? mdb_cursor_get(c, &k, &v, MDB_LAST) : rc;
    *vno = 0;
    if (rc == 0 && k.mv_size == 12 && be64_get(k.mv_data) == file_id)
        *vno = be32_get((const uint8_t *)k.mv_data + 8);
    mdb_cursor_close(c);
    return rc && rc != MDB_NOTFOUND ? store_mdb_err(rc, "reading versions") : 0;
}

int cat_version_add(struct store *st, MDB_txn *txn, const char *path, size_t path_len,
                    struct cat_version *v)
{
    struct cat_str p = { path, path_len };
    int rc = cat_file_id(st, txn, p, v->seq, &v->file_id);
    if (!rc)
        rc = cat_last_vno(txn, st->dbi[DB_VERSIONS], v->file_id, &v->vno);
    if (rc)
        return rc;
    v->vno++;
    uint8_t key[12];
    be64_put(key, v->file_id);
    be32_put(key + 8, v->vno);
    struct cbuf b;
    cbuf_init(&b);
    cat_enc_version(&b, v);
    rc = b.err ? pv_err(b.err, "out of memory")
               : cat_put(txn, st->dbi[DB_VERSIONS], key, 12, b.p, b.len, 0, "adding a version");
    cbuf_free(&b);
    if (!rc)
        rc = cat_index_version(st, txn, v);
    return rc;
}

int cat_next_seq_txn(struct store *st, MDB_txn *txn, uint64_t *seq)
{
    return cat_next_id(txn, st->dbi[DB_EVENTS], seq);
}

int cat_version_last_txn(struct store *st, MDB_txn *txn, const char *path,
                         struct cat_version *out)
{
    struct cat_reader rd = { st, txn };
    uint64_t id;
    int rc = cat_file_find(&rd, path, &id);
    return rc ? rc : cat_version_get(&rd, id, 0, out);
}

int cat_version_commit(struct store *st, const char *path, struct cat_version *v)
{
    MDB_txn *txn;
    int rc = store_txn_begin(st, 0, &txn);
    if (rc)
        return rc;
    rc = cat_version_add(st, txn, path, strlen(path), v);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_mdb_err(mdb_txn_commit(txn), "committing a version");
}

struct cat_vwalk {
    cat_version_cb fn;
    void *ctx;
    uint64_t max_seq;           /* cat_version_at: stop after this        */
    struct cat_version *keep;   /* cat_version_at: last one seen          */
};

static int cat_walk_version(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_vwalk *w = arg;
    struct cat_version ver;
    int rc = cat_dec_version(k, v, &ver);
    (void)rd;
    if (rc)
        return rc;
    if (w->keep) {
        if (ver.seq > w->max_seq)
            return 1;   /* stop: later than asked */
        *w->keep = ver;
        return 0;
    }
    return w->fn(w->ctx, &ver);
}

int cat_version_get(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                    struct cat_version *out)
{
    if (vno == 0) {
        int rc = cat_last_vno(rd->txn, rd->st->dbi[DB_VERSIONS], file_id, &vno);
        if (rc)
            return rc;
        if (vno == 0)
            return pv_err(-ENOENT, "no versions recorded");
    }
    uint8_t key[12];
    be64_put(key, file_id);
    be32_put(key + 8, vno);
    MDB_val k = { 12, key }, v;
    int rc = mdb_get(rd->txn, rd->st->dbi[DB_VERSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return pv_err(-ENOENT, "no version %u", vno);
    if (rc)
        return store_mdb_err(rc, "reading a version");
    return cat_dec_version(&k, &v, out);
}

int cat_version_at(struct cat_reader *rd, uint64_t file_id, uint64_t seq,
                   struct cat_version *out)
{
    out->vno = 0;
    struct cat_vwalk w = { NULL, NULL, seq, out };
    uint8_t key[8];
    be64_put(key, file_id);
    int rc = cat_walk(rd, DB_VERSIONS, key, 8, 8, cat_walk_version, &w);
    if (rc < 0)
        return rc;
    return out->vno ? 0 : pv_err(-ENOENT, "no version at that time");
}

/* Newest first: walk backwards from the file's last key. */
static int cat_versions_desc(struct cat_reader *rd, uint64_t file_id, struct cat_vwalk *w)
{
    uint32_t last;
    int rc = cat_last_vno(rd->txn, rd->st->dbi[DB_VERSIONS], file_id, &last);
    for (uint32_t n = last; !rc && n >= 1; n--) {
        struct cat_version v;
        rc = cat_version_get(rd, file_id, n, &v);
        if (rc == -ENOENT) {
            rc = 0;     /* removed by gc */
            continue;
        }
        if (!rc)
            rc = w->fn(w->ctx, &v);
    }
    return rc;
}

int cat_versions_scan(struct cat_reader *rd, uint64_t file_id, int newest_first,
                      cat_version_cb fn, void *ctx)
{
    struct cat_vwalk w = { fn, ctx, 0, NULL };
    if (newest_first)
        return cat_versions_desc(rd, file_id, &w);
    uint8_t key[8];
    be64_put(key, file_id);
    return cat_walk(rd, DB_VERSIONS, key, 8, 8, cat_walk_version, &w);
}

/* --- for other store/ files (catalog_int.h): fsck and gc walk the raw
 * databases in the reader's own snapshot, so every cross-check sees one
 * consistent state even while the daemon commits. ------------------------ */

MDB_txn *cat_reader_txn(struct cat_reader *rd)
{
    return rd->txn;
}

struct store *cat_reader_store(struct cat_reader *rd)
{
    return rd->st;
}

int cat_version_decode(const MDB_val *k, const MDB_val *v, struct cat_version *out)
{
    if (k->mv_size != 12)
        return pv_err(-EUCLEAN, "a version key is %zu bytes, not 12", k->mv_size);
    return cat_dec_version(k, v, out);
}

int cat_event_decode(const MDB_val *k, const MDB_val *v, struct cat_event *out)
{
    if (k->mv_size != 8)
        return pv_err(-EUCLEAN, "an event key is %zu bytes, not 8", k->mv_size);
    return cat_dec_event(be64_get(k->mv_data), v, out);
}

/* --- lineage indexes ------------------------------------------------------
 * DB_LINEAGE holds three kinds of keys, all -> "":
 *   'P' ident 0x00 fd(u8) proc(u64be)   a process had pipe `ident` as fd 0/1
 *   'G' boot16 pgid(u32be) proc(u64be)  process group members
 *   'W' writer(u64be) file(u64be) vno(u32be)   versions a process wrote
 *   'U' file(u64be) seq(u64be) -> proc(u64be) op(u8) [other(u64be) arg(u64be)]
 *        the events that can make a file's version an input: reads,
 *        open-writes without O_TRUNC, and renames, links and restores
 *        from it (other = the file derived)
 * They let the lineage walk go from a pipe to its other end, from a process
 * to its group, from a process to what it wrote, and from a version to its
 * users, without scans and without reading the event log.  Stale 'W'
 * entries (versions removed by gc) are skipped by readers.  The 'U' index
 * is the one place the catalog interprets event ops (fs/capture.h). */

#define CAT_IDENT_MAX 400

static int cat_is_pipe(struct cat_str s)
{
    return s.p && s.n > 6 && s.n <= CAT_IDENT_MAX && !memcmp(s.p, "pipe:[", 6);
}

static int cat_index_pipe(struct store *st, MDB_txn *txn, struct cat_str ident,
                          int fd, uint64_t proc)
{
    uint8_t key[1 + CAT_IDENT_MAX + 2 + 8];
    size_t n = 0;
    key[n++] = 'P';
    memcpy(key + n, ident.p, ident.n);
    n += ident.n;
    key[n++] = 0;
    key[n++] = (uint8_t)fd;
    be64_put(key + n, proc);
    return cat_put(txn, st->dbi[DB_LINEAGE], key, n + 8, "", 0, 0, "indexing a pipe");
}

static int cat_index_stdio(struct store *st, MDB_txn *txn, const struct cat_str fd[3],
                           uint64_t proc)
{
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++)   /* stdin and stdout join pipelines */
        if (cat_is_pipe(fd[i]))
            rc = cat_index_pipe(st, txn, fd[i], i, proc);
    return rc;
}

static int cat_index_proc(struct store *st, MDB_txn *txn, const struct cat_proc *p)
{
    if (!store_has_db(st, DB_LINEAGE))
        return 0;
    uint8_t key[1 + 16 + 4 + 8];
    key[0] = 'G';
    memcpy(key + 1, p->boot_id, 16);
    be32_put(key + 17, p->pgid);
    be64_put(key + 21, p->id);
    int rc = cat_put(txn, st->dbi[DB_LINEAGE], key, sizeof key, "", 0, 0,
                     "indexing a process group");
    return rc ? rc : cat_index_stdio(st, txn, p->fd, p->id);
}

static int cat_index_image(struct store *st, MDB_txn *txn, const struct cat_image *im)
{
    return store_has_db(st, DB_LINEAGE) ? cat_index_stdio(st, txn, im->fd, im->proc_id) : 0;
}

static int cat_index_version(struct store *st, MDB_txn *txn, const struct cat_version *v)
{
    if (!v->writer || !store_has_db(st, DB_LINEAGE))
        return 0;
    uint8_t key[1 + 8 + 8 + 4];
    key[0] = 'W';
    be64_put(key + 1, v->writer);
    be64_put(key + 9, v->file_id);
    be32_put(key + 17, v->vno);
    return cat_put(txn, st->dbi[DB_LINEAGE], key, sizeof key, "", 0, 0, "indexing a writer");
}

/* Which file an event is a use of (0: none), and the other file. */
static uint64_t cat_use_of(const struct cat_event *e, uint64_t *other)
{
    *other = 0;
    switch (e->op) {
    case CAP_OPEN_READ:
        return e->file_id;
    case CAP_OPEN_WRITE:
        return (e->arg & O_TRUNC) ? 0 : e->file_id;
    case CAP_RENAME: case CAP_LINK:
        *other = e->file2_id;
        return e->file_id;
    case CAP_RESTORE:
        *other = e->file_id;
        return e->file2_id;
    default:
        return 0;
    }
}

static int cat_index_event(struct store *st, MDB_txn *txn, const struct cat_event *e)
{
    uint64_t other, file = cat_use_of(e, &other);
    if (!file || !store_has_db(st, DB_LINEAGE))
        return 0;
    uint8_t key[17], val[25];
    key[0] = 'U';
    be64_put(key + 1, file);
    be64_put(key + 9, e->seq);
    be64_put(val, e->proc_id);
    val[8] = (uint8_t)e->op;
    be64_put(val + 9, other);
    be64_put(val + 17, e->arg);
    /* reads, the bulk of the index, need no other file and no arg */
    size_t vn = other || e->op == CAP_RESTORE ? 25 : 9;
    return cat_put(txn, st->dbi[DB_LINEAGE], key, sizeof key, val, vn, 0, "indexing a use");
}

static int cat_lin_bf_event(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_event e;
    (void)arg;
    int rc = cat_dec_event(be64_get(k->mv_data), v, &e);
    return rc ? rc : cat_index_event(rd->st, rd->txn, &e);
}

/* Build the lineage indexes of a store written before they existed. */
static int cat_lin_bf_proc(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_proc p;
    (void)arg;
    int rc = cat_dec_proc(be64_get(k->mv_data), v, &p);
    return rc ? rc : cat_index_proc(rd->st, rd->txn, &p);
}

static int cat_lin_bf_image(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_image im;
    (void)arg;
    int rc = cat_dec_image(k, v, &im);
    return rc ? rc : cat_index_image(rd->st, rd->txn, &im);
}

static int cat_lin_bf_version(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_version ver;
    (void)arg;
    int rc = cat_dec_version(k, v, &ver);
    return rc ? rc : cat_index_version(rd->st, rd->txn, &ver);
}

int cat_lineage_index_build(struct store *st, MDB_txn *txn)
{
    struct cat_reader rd = { st, txn };
    int rc = cat_walk(&rd, DB_PROCS, NULL, 0, 0, cat_lin_bf_proc, NULL);
    if (!rc)
        rc = cat_walk(&rd, DB_IMAGES, NULL, 0, 0, cat_lin_bf_image, NULL);
    if (!rc)
        rc = cat_walk(&rd, DB_VERSIONS, NULL, 0, 0, cat_lin_bf_version, NULL);
    if (!rc)
        rc = cat_walk(&rd, DB_EVENTS, NULL, 0, 0, cat_lin_bf_event, NULL);
    return rc;
}

/* Reading the indexes. */
static int cat_need_lineage(struct cat_reader *rd)
{
    return store_has_db(rd->st, DB_LINEAGE) ? 0
        : pv_err(-ENOTSUP, "this store has no lineage index yet; "
                           "mount the workspace once to build it");
}

static int cat_walk_tail_id(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    (void)rd; (void)v;
    return ((cat_id_cb)cb->fn)(cb->ctx, be64_get((const uint8_t *)k->mv_data + k->mv_size - 8));
}

int cat_proc_children(struct cat_reader *rd, uint64_t parent_id, cat_id_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[8];
    be64_put(key, parent_id);
    return cat_walk(rd, DB_CHILDREN, key, 8, 8, cat_walk_tail_id, &cb);
}

int cat_pipe_procs(struct cat_reader *rd, struct cat_str ident, int fd,
                   cat_id_cb fn, void *ctx)
{
    int rc = cat_need_lineage(rd);
    if (rc || !cat_is_pipe(ident))
        return rc;
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[1 + CAT_IDENT_MAX + 2];
    size_t n = 0;
    key[n++] = 'P';
    memcpy(key + n, ident.p, ident.n);
    n += ident.n;
    key[n++] = 0;
    key[n++] = (uint8_t)fd;
    return cat_walk(rd, DB_LINEAGE, key, n, n, cat_walk_tail_id, &cb);
}

int cat_pgid_procs(struct cat_reader *rd, const uint8_t boot_id[16], uint32_t pgid,
                   cat_id_cb fn, void *ctx)
{
    int rc = cat_need_lineage(rd);
    if (rc)
        return rc;
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[1 + 16 + 4];
    key[0] = 'G';
    memcpy(key + 1, boot_id, 16);
    be32_put(key + 17, pgid);
    return cat_walk(rd, DB_LINEAGE, key, sizeof key, sizeof key, cat_walk_tail_id, &cb);
}

static int cat_walk_written(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    const uint8_t *p = k->mv_data;
    (void)rd; (void)v;
    return ((cat_vref_cb)cb->fn)(cb->ctx, be64_get(p + 9), be32_get(p + 17));
}

int cat_writer_versions(struct cat_reader *rd, uint64_t proc_id, cat_vref_cb fn, void *ctx)
{
    int rc = cat_need_lineage(rd);
    if (rc)
        return rc;
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[9];
    key[0] = 'W';
    be64_put(key + 1, proc_id);
    return cat_walk(rd, DB_LINEAGE, key, 9, 9, cat_walk_written, &cb);
}

int cat_file_events(struct cat_reader *rd, uint64_t file_id, uint64_t from_seq,
                    cat_event_cb fn, void *ctx)
{
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[16];
    be64_put(key, file_id);
    be64_put(key + 8, from_seq);
    return cat_walk(rd, DB_FILEEVENTS, key, 16, 8, cat_walk_index, &cb);
}

static int cat_walk_use(struct cat_reader *rd, const MDB_val *k, const MDB_val *v, void *arg)
{
    struct cat_cb *cb = arg;
    const uint8_t *kp = k->mv_data, *vp = v->mv_data;
    (void)rd;
    if (v->mv_size != 9 && v->mv_size != 25)
        return pv_err(-EUCLEAN, "lineage index entry is corrupt");
    struct cat_use u = { be64_get(kp + 9), be64_get(vp), 0, 0, vp[8] };
    if (v->mv_size == 25) {
        u.other_file = be64_get(vp + 9);
        u.arg = be64_get(vp + 17);
    }
    return ((cat_use_cb)cb->fn)(cb->ctx, &u);
}

int cat_file_uses(struct cat_reader *rd, uint64_t file_id, uint64_t from_seq,
                  cat_use_cb fn, void *ctx)
{
    int rc = cat_need_lineage(rd);
    if (rc)
        return rc;
    struct cat_cb cb = { (void *)fn, ctx };
    uint8_t key[17];
    key[0] = 'U';
    be64_put(key + 1, file_id);
    be64_put(key + 9, from_seq);
    return cat_walk(rd, DB_LINEAGE, key, 17, 9, cat_walk_use, &cb);
}
