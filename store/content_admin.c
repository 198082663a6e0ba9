/*
 * content_admin.c - the content layer's life cycle, references, statistics
 * and garbage collection.
 *
 * gc frees by punching holes (fallocate PUNCH_HOLE) rather than rewriting
 * packs: punching costs nothing but the freed ranges, never moves a live
 * chunk (so no chunk record changes, and readers holding an old LMDB
 * snapshot keep reading valid bytes of live chunks), and needs no scratch
 * space - which matters when gc runs because the disk is full.  The cost is
 * file-system fragmentation at chunk granularity (~40 KiB stored), which is
 * harmless for this access pattern.  Compaction (copying the live chunks of
 * a mostly-dead pack into a new one) can be added on top when a file system
 * without hole punching must be supported.
 */
#include "store/content.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/content_int.h"
#include "store/pack.h"
#include "store/store_int.h"

#define GC_TXN_CHUNKS 4096      /* chunks deleted per write transaction */

int content_attach(struct store *st)
{
    int rc = pack_attach(st);
    if (!rc)
        rc = content_cache_init(st);
    if (!rc && !(st->flags & STORE_RDONLY)) {
        rc = pack_recover(st);
        if (rc > 0)
            rc = 0;
    }
    return rc;
}

void content_detach(struct store *st)
{
    content_cache_free(st);
    pack_detach(st);
}

int content_recover(struct store *st)
{
    return pack_recover(st);
}

void content_id_hex(const uint8_t id[CONTENT_ID_LEN], char out[2 * CONTENT_ID_LEN + 1])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < CONTENT_ID_LEN; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
    out[2 * CONTENT_ID_LEN] = 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int content_id_parse(const char *hex, uint8_t id[CONTENT_ID_LEN])
{
    for (int i = 0; i < CONTENT_ID_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return pv_err(-EINVAL, "'%s' is not a 64-digit content id", hex);
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[2 * CONTENT_ID_LEN])
        return pv_err(-EINVAL, "'%s' is not a 64-digit content id", hex);
    return 0;
}

/* ---- references ------------------------------------------------------- */

/* Drop one reference from every chunk of a content's manifest, and the
 * manifest itself, one part at a time. */
static int content_drop_manifest(struct store *st, MDB_txn *txn, const uint8_t id[32])
{
    struct man_entry *ents = NULL;
    size_t cap = 0, n;
    uint8_t key[40];
    int rc = 0;
    manifest_key(key, id, 0);
    while (!rc) {
        MDB_cursor *cur;
        MDB_val k = { 40, key }, v;
        rc = store_mdb_err(mdb_cursor_open(txn, st->dbi[DB_MANIFESTS], &cur), "opening a cursor");
        if (rc)
            break;
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (!mrc && (k.mv_size != 40 || memcmp(k.mv_data, id, 32)))
            mrc = MDB_NOTFOUND;
        uint8_t pk[40];
        if (!mrc) {
            memcpy(pk, k.mv_data, 40);
            rc = manifest_part_decode(&v, &ents, &cap, &n);
        }
        mdb_cursor_close(cur);
        if (mrc)
            break;
        for (size_t i = 0; !rc && i < n; i++) {
            struct chunk_rec r;
            rc = chunk_rec_get(st, txn, ents[i].id, &r);
            if (!rc && r.refs)
                r.refs--;
            if (!rc)
                rc = chunk_rec_put(st, txn, ents[i].id, &r);
            if (rc == -ENOENT)
                rc = 0;         /* already missing: fsck reports it */
        }
        MDB_val dk = { 40, pk };
        if (!rc)
            rc = store_mdb_err(mdb_del(txn, st->dbi[DB_MANIFESTS], &dk, NULL),
                               "deleting a manifest part");
    }
    free(ents);
    return rc;
}

int content_ref_txn(struct store *st, MDB_txn *txn, const uint8_t id[32], int delta)
{
    struct content_hdr h;
    int rc = content_hdr_get(st, txn, id, &h);
    if (rc == -ENOENT) {
        char hex[65];
        content_id_hex(id, hex);
        return pv_err(-ENOENT, "no content %s in the store", hex);
    }
    if (rc)
        return rc;
    if (delta < 0 && h.refs <= (uint64_t)-delta) {
        MDB_val k = { 32, (void *)id };
        rc = content_drop_manifest(st, txn, id);
        if (!rc)
            rc = store_mdb_err(mdb_del(txn, st->dbi[DB_CONTENTS], &k, NULL),
                               "deleting a content record");
        return rc;
    }
    h.refs += (uint64_t)(int64_t)delta;
    return content_hdr_put(st, txn, id, &h);
}

static int content_ref_delta(struct store *st, const uint8_t id[32], int delta)
{
    MDB_txn *txn;
    if (st->flags & STORE_RDONLY)
        return pv_err(-EROFS, "the store is open read-only");
    int rc = store_txn_begin(st, 0, &txn);
    if (rc)
        return rc;
    rc = content_ref_txn(st, txn, id, delta);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_mdb_err(mdb_txn_commit(txn), "committing a reference change");
}

int content_ref(struct store *st, const uint8_t id[CONTENT_ID_LEN])
{
    return content_ref_delta(st, id, 1);
}

int content_unref(struct store *st, const uint8_t id[CONTENT_ID_LEN])
{
    return content_ref_delta(st, id, -1);
}

/* ---- statistics ------------------------------------------------------- */

static int stats_walk(struct store *st, MDB_txn *txn, struct content_stats *s)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_mdb_err(mdb_cursor_open(txn, st->dbi[DB_CONTENTS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        struct content_hdr h;
        if (content_hdr_decode(&v, &h))
            continue;
        s->contents++;
        s->content_bytes += h.size;
        s->logical_bytes += h.size * h.refs;
    }
    if (!rc)
        mdb_cursor_close(cur);
    if (!rc)
        rc = store_mdb_err(mdb_cursor_open(txn, st->dbi[DB_CHUNKS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        struct chunk_rec r;
        if (chunk_rec_decode(&v, &r))
            continue;
        if (!r.refs) {
            s->dead_chunks++;
            continue;
        }
        s->chunks++;
        s->chunk_bytes += r.raw;
        s->stored_bytes += r.stored;
    }
    if (!rc)
        mdb_cursor_close(cur);
    return rc;
}

int content_stats(struct store *st, struct content_stats *s)
{
    MDB_txn *txn;
    memset(s, 0, sizeof *s);
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn),
                           "starting a read transaction");
    if (rc)
        return rc;
    rc = stats_walk(st, txn, s);
    mdb_txn_abort(txn);
    if (!rc)
        rc = pack_disk_usage(st, &s->pack_bytes);
    return rc;
}

/* ---- garbage collection ----------------------------------------------- */

struct gc_free {
    uint8_t id[32];
    uint64_t pack, off, len;
};

/* One transaction's worth: delete up to GC_TXN_CHUNKS dead chunk records
 * at or after `from`; their ranges go to f[], *more says whether to go on. */
static int gc_step(struct store *st, uint8_t from[32], int *first,
                   struct gc_free *f, size_t *nf, int *more)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = store_txn_begin(st, 0, &txn);
    if (rc)
        return rc;
    rc = store_mdb_err(mdb_cursor_open(txn, st->dbi[DB_CHUNKS], &cur), "opening a cursor");
    *nf = 0;
    *more = 0;
    MDB_val k = { 32, from }, v;
    int op = *first ? MDB_FIRST : MDB_SET_RANGE;
    for (; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        struct chunk_rec r;
        if (k.mv_size != 32 || chunk_rec_decode(&v, &r) || r.refs)
            continue;
        if (*nf == GC_TXN_CHUNKS) {
            memcpy(from, k.mv_data, 32);    /* resume here next time */
            *more = 1;
            break;
        }
        memcpy(f[*nf].id, k.mv_data, 32);
        f[*nf].pack = r.pack, f[*nf].off = r.off, f[*nf].len = r.stored;
        (*nf)++;
    }
    if (!rc)
        mdb_cursor_close(cur);
    *first = 0;
    for (size_t i = 0; !rc && i < *nf; i++) {
        MDB_val dk = { 32, f[i].id };
        rc = store_mdb_err(mdb_del(txn, st->dbi[DB_CHUNKS], &dk, NULL), "deleting a chunk record");
    }
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_mdb_err(mdb_txn_commit(txn), "committing gc");
}

int content_gc(struct store *st, struct content_gc_result *out)
{
    struct gc_free *f = malloc(GC_TXN_CHUNKS * sizeof *f);
    uint8_t from[32] = { 0 };
    int first = 1, more = 1, rc = 0, punch_rc = 0;
    struct content_gc_result res = { 0 };
    if (st->flags & STORE_RDONLY) {
        free(f);
        return pv_err(-EROFS, "the store is open read-only");
    }
    if (!f)
        return pv_err(-ENOMEM, "out of memory");
    while (!rc && more) {
        size_t nf;
        rc = gc_step(st, from, &first, f, &nf, &more);
        /* Only after the records are gone (committed) may the bytes go: a
         * crash in between leaks space, never loses a referenced chunk. */
        for (size_t i = 0; !rc && i < nf; i++) {
            int p = pack_punch(st, f[i].pack, f[i].off, f[i].len);
            if (p && !punch_rc)
                punch_rc = p;
            res.chunks_freed++;
            res.bytes_freed += f[i].len;
        }
    }
    free(f);
    if (out)
        *out = res;
    if (!rc && punch_rc && punch_rc != -EOPNOTSUPP)
        rc = punch_rc;
    return rc;
}
