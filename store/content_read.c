/*
 * content_read.c - stream a content out, or read any range of it.
 *
 * A read transaction is held only while one manifest part and its chunk
 * records are copied out, never while the sink runs (it may block on a pipe
 * or a FUSE reply), so a slow reader never pins old LMDB pages for long.
 * content_pread keeps the last few decompressed chunks (shared by all
 * threads) because FUSE reads 128 KiB at a time and chunks are ~64 KiB
 * compressed units: without the cache, sequential reads would decompress
 * every chunk about twice.
 */
#include "store/content.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/chunker.h"
#include "store/content_int.h"
#include "store/store_int.h"

#define CCACHE_SLOTS 8

struct ccache_slot {
    uint8_t id[32];
    uint32_t len;       /* 0 = empty */
    uint64_t used;
    uint8_t *buf;
};

struct content_cache {
    pthread_mutex_t mu;
    uint64_t clock;
    struct ccache_slot slot[CCACHE_SLOTS];
};

int content_cache_init(struct store *st)
{
    struct content_cache *c = calloc(1, sizeof *c);
    if (!c)
        return pv_err(-ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    st->ccache = c;
    return 0;
}

void content_cache_free(struct store *st)
{
    struct content_cache *c = st->ccache;
    if (!c)
        return;
    for (int i = 0; i < CCACHE_SLOTS; i++)
        free(c->slot[i].buf);
    pthread_mutex_destroy(&c->mu);
    free(c);
    st->ccache = NULL;
}

/* Copy bytes [off, off+n) of a cached chunk; 1 on a hit. */
static int ccache_get(struct content_cache *c, const uint8_t id[32],
                      uint32_t off, void *dst, size_t n)
{
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < CCACHE_SLOTS; i++) {
        struct ccache_slot *s = &c->slot[i];
        if (s->len && !memcmp(s->id, id, 32) && off + n <= s->len) {
            memcpy(dst, s->buf + off, n);
            s->used = ++c->clock;
            hit = 1;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

static void ccache_put(struct content_cache *c, const uint8_t id[32],
                       const uint8_t *data, uint32_t len)
{
    pthread_mutex_lock(&c->mu);
    struct ccache_slot *v = &c->slot[0];
    for (int i = 1; i < CCACHE_SLOTS; i++)
        if (c->slot[i].used < v->used)
            v = &c->slot[i];
    if (!v->buf)
        v->buf = malloc(CHUNKER_MAX);
    if (v->buf) {
        memcpy(v->id, id, 32);
        memcpy(v->buf, data, len);
        v->len = len;
        v->used = ++c->clock;
    }
    pthread_mutex_unlock(&c->mu);
}

/* One manifest part with its chunk records, copied out of LMDB. */
struct part {
    struct man_entry *ents;
    size_t cap, n;
    struct chunk_rec *recs;
    size_t rcap;
    uint64_t start, end;        /* content offsets it covers */
};

static void part_free(struct part *p)
{
    free(p->ents);
    free(p->recs);
}

static int part_damaged(const uint8_t id[32], const char *why)
{
    char hex[65];
    content_id_hex(id, hex);
    return pv_err(-EUCLEAN, "content %s: %s", hex, why);
}

/* Load the part of content id that holds offset off; with recs, also the
 * records of all its chunks (streaming needs them all; random access looks
 * up only the chunks it touches). */
static int part_load(struct store *st, const uint8_t id[32], uint64_t off,
                     struct part *p, int recs)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    uint8_t key[40];
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn),
                           "starting a read transaction");
    if (rc)
        return rc;
    rc = store_mdb_err(mdb_cursor_open(txn, st->dbi[DB_MANIFESTS], &cur), "opening a cursor");
    if (rc)
        goto out;
    manifest_key(key, id, off);
    MDB_val k = { 40, key }, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    /* The part holding off starts at or before it: step back unless exact. */
    if (mrc == MDB_NOTFOUND || (!mrc && (k.mv_size != 40 || memcmp(k.mv_data, key, 40))))
        mrc = mdb_cursor_get(cur, &k, &v, mrc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    mdb_cursor_close(cur);
    if (mrc || k.mv_size != 40 || memcmp(k.mv_data, id, 32)) {
        rc = part_damaged(id, "manifest part missing");
        goto out;
    }
    p->start = p->end = be64_get((uint8_t *)k.mv_data + 32);
    if (manifest_part_decode(&v, &p->ents, &p->cap, &p->n)) {
        rc = part_damaged(id, "manifest part undecodable");
        goto out;
    }
    if (recs && p->rcap < p->n) {
        free(p->recs);
        p->rcap = 0;
        if (!(p->recs = malloc(p->n * sizeof *p->recs))) {
            rc = pv_err(-ENOMEM, "out of memory");
            goto out;
        }
        p->rcap = p->n;
    }
    for (size_t i = 0; !rc && i < p->n; i++) {
        if (recs)
            rc = chunk_rec_get(st, txn, p->ents[i].id, &p->recs[i]);
        if (rc == -ENOENT || rc == -EUCLEAN)
            rc = part_damaged(id, "a chunk of its manifest is missing");
        p->end += p->ents[i].raw;
    }
out:
    mdb_txn_abort(txn);
    return rc;
}

/* content_stat with the messages a reader wants. */
static int content_size(struct store *st, const uint8_t id[32], uint64_t *size)
{
    int rc = content_stat(st, id, size, NULL, NULL);
    if (rc == -ENOENT) {
        char hex[65];
        content_id_hex(id, hex);
        return pv_err(-ENOENT, "no content %s in the store", hex);
    }
    if (rc == -EUCLEAN)
        return part_damaged(id, "record undecodable");
    return rc;
}

int content_read(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                 int (*sink)(void *ctx, const void *buf, size_t n), void *ctx)
{
    uint64_t size, off = 0;
    int rc = content_size(st, id, &size);
    if (rc)
        return rc;
    struct part p = { 0 };
    struct chunk_io io;
    uint8_t *buf = malloc(CHUNKER_MAX);
    rc = buf ? chunk_io_init(&io) : pv_err(-ENOMEM, "out of memory");
    if (rc) {
        free(buf);
        return rc;
    }
    while (!rc && off < size) {
        rc = part_load(st, id, off, &p, 1);
        if (!rc && (p.start != off || p.end <= off))
            rc = part_damaged(id, "manifest parts do not line up");
        for (size_t i = 0; !rc && i < p.n; i++) {
            rc = chunk_fetch(st, &io, p.ents[i].id, &p.recs[i], buf);
            if (!rc && p.recs[i].raw != p.ents[i].raw)
                rc = part_damaged(id, "chunk size differs from its manifest");
            if (!rc)
                rc = sink(ctx, buf, p.ents[i].raw);
        }
        off = p.end;
    }
    if (!rc && off != size)
        rc = part_damaged(id, "manifest does not add up to its size");
    part_free(&p);
    chunk_io_free(&io);
    free(buf);
    return rc;
}

static int pread_rec(struct store *st, const uint8_t cid[32], struct chunk_rec *r)
{
    MDB_txn *txn;
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn),
                           "starting a read transaction");
    if (rc)
        return rc;
    rc = chunk_rec_get(st, txn, cid, r);
    mdb_txn_abort(txn);
    if (rc == -ENOENT || rc == -EUCLEAN) {
        char hex[65];
        content_id_hex(cid, hex);
        rc = pv_err(-EUCLEAN, "chunk %s is missing from the store", hex);
    }
    return rc;
}

/* Copy bytes [coff, coff+n) of one chunk, through the cache. */
static int pread_chunk(struct store *st, struct chunk_io *io, uint8_t **buf,
                       const struct man_entry *e, uint32_t coff, uint8_t *dst, size_t n)
{
    if (ccache_get(st->ccache, e->id, coff, dst, n))
        return 0;
    struct chunk_rec r;
    int rc = pread_rec(st, e->id, &r);
    if (!rc && !*buf && !(*buf = malloc(CHUNKER_MAX)))
        rc = pv_err(-ENOMEM, "out of memory");
    if (!rc && !io->zbuf)
        rc = chunk_io_init(io);
    if (!rc)
        rc = chunk_fetch(st, io, e->id, &r, *buf);
    if (!rc && r.raw != e->raw)
        rc = pv_err(-EUCLEAN, "chunk size differs from its manifest");
    if (rc)
        return rc;
    ccache_put(st->ccache, e->id, *buf, e->raw);
    memcpy(dst, *buf + coff, n);
    return 0;
}

ssize_t content_pread(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                      void *dst, size_t len, uint64_t off)
{
    uint64_t size;
    int rc = content_size(st, id, &size);
    if (rc)
        return rc;
    if (off >= size || !len)
        return 0;
    if (len > size - off)
        len = (size_t)(size - off);
    struct part p = { 0 };
    struct chunk_io io = { 0 };
    uint8_t *buf = NULL, *out = dst;
    size_t done = 0;
    while (!rc && done < len) {
        uint64_t at = off + done;
        rc = part_load(st, id, at, &p, 0);
        if (!rc && (at < p.start || at >= p.end))
            rc = part_damaged(id, "manifest parts do not line up");
        uint64_t cstart = p.start;
        for (size_t i = 0; !rc && i < p.n && done < len; i++) {
            uint64_t cend = cstart + p.ents[i].raw;
            if (at < cend) {
                uint32_t coff = (uint32_t)(at - cstart);
                size_t n = p.ents[i].raw - coff;
                if (n > len - done)
                    n = len - done;
                rc = pread_chunk(st, &io, &buf, &p.ents[i], coff, out + done, n);
                done += n;
                at += n;
            }
            cstart = cend;
        }
    }
    part_free(&p);
    chunk_io_free(&io);
    free(buf);
    return rc ? rc : (ssize_t)done;
}

int content_stat(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                 uint64_t *size, uint64_t *nchunks, uint64_t *refs)
{
    MDB_txn *txn;
    struct content_hdr h;
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn),
                           "starting a read transaction");
    if (rc)
        return rc;
    rc = content_hdr_get(st, txn, id, &h);
    mdb_txn_abort(txn);
    if (rc)
        return rc;
    if (size)
        *size = h.size;
    if (nchunks)
        *nchunks = h.nchunks;
    if (refs)
        *refs = h.refs;
    return 0;
}

int content_exists(struct store *st, const uint8_t id[CONTENT_ID_LEN])
{
    int rc = content_stat(st, id, NULL, NULL, NULL);
    return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}
