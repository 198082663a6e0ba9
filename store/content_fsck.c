/*
 * content_fsck.c - verify the content store end to end.
 *
 * Four walks, each with a cursor, in one read snapshot:
 *   packs     every pack in DB_PACKS exists and is at least its committed
 *             length;
 *   manifests every content's parts line up (contiguous offsets, sizes add
 *             up to the content size, chunk count matches), every chunk named
 *             exists with the same raw length; the saved hash midstate
 *             finalizes to the content id; no part belongs to no content;
 *   chunks    every chunk lies within its pack's committed length, reads,
 *             decompresses and hashes to its id, and its reference count
 *             equals the number of manifest entries naming it;
 *   contents  (unless QUICK) every content re-streamed hashes to its id.
 * The reference cross-check needs the expected count of every chunk: a hash
 * table keyed by the first 8 bytes of the chunk id (16 bytes per chunk).
 */
#include "store/content.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/chunker.h"
#include "store/content_int.h"
#include "store/pack.h"
#include "store/store_int.h"

struct refmap_ent {
    uint64_t key, count;
};

struct fsck {
    struct store *st;
    MDB_txn *txn;
    void (*report)(void *, const char *);
    void *ctx;
    int problems;
    struct refmap_ent *map;
    size_t mapcap, mapn;
    struct man_entry *ents;
    size_t entcap;
};

__attribute__((format(printf, 2, 3)))
static void fsck_problem(struct fsck *f, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    f->problems++;
    if (f->report)
        f->report(f->ctx, msg);
}

static uint64_t refmap_key(const uint8_t id[32])
{
    uint64_t k;
    memcpy(&k, id, 8);
    return k ? k : 1;       /* 0 marks an empty slot */
}

static struct refmap_ent *refmap_slot(struct refmap_ent *m, size_t cap, uint64_t k)
{
    size_t i = (size_t)(k * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
    while (m[i].key && m[i].key != k)
        i = (i + 1) & (cap - 1);
    return &m[i];
}

static int refmap_add(struct fsck *f, const uint8_t id[32])
{
    if ((f->mapn + 1) * 2 > f->mapcap) {
        size_t cap = f->mapcap ? f->mapcap * 2 : 4096;
        struct refmap_ent *m = calloc(cap, sizeof *m);
        if (!m)
            return pv_err(-ENOMEM, "out of memory");
        for (size_t i = 0; i < f->mapcap; i++)
            if (f->map[i].key)
                *refmap_slot(m, cap, f->map[i].key) = f->map[i];
        free(f->map);
        f->map = m;
        f->mapcap = cap;
    }
    uint64_t k = refmap_key(id);
    struct refmap_ent *e = refmap_slot(f->map, f->mapcap, k);
    if (!e->key) {
        e->key = k;
        f->mapn++;
    }
    e->count++;
    return 0;
}

static uint64_t refmap_get(struct fsck *f, const uint8_t id[32])
{
    if (!f->mapcap)
        return 0;
    return refmap_slot(f->map, f->mapcap, refmap_key(id))->count;
}

static int fsck_packs(struct fsck *f)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_mdb_err(mdb_cursor_open(f->txn, f->st->dbi[DB_PACKS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        uint64_t id = k.mv_size == 8 ? be64_get(k.mv_data) : 0, size;
        uint64_t len = pack_committed(f->st, f->txn, id);
        int r = pack_file_size(f->st, id, &size);
        if (r)
            fsck_problem(f, "pack %" PRIu64 ": cannot inspect it: %s", id, strerror(-r));
        else if (size < len)
            fsck_problem(f, "pack %" PRIu64 ": %" PRIu64 " bytes, shorter than its "
                         "committed length %" PRIu64, id, size, len);
    }
    if (!rc)
        mdb_cursor_close(cur);
    return rc;
}

/* Check one content's manifest parts; count chunk references. */
static int fsck_manifest(struct fsck *f, const uint8_t id[32], const struct content_hdr *h)
{
    char hex[65];
    uint64_t off = 0, nchunks = 0;
    content_id_hex(id, hex);
    while (off < h->size) {
        uint8_t key[40];
        size_t n;
        manifest_key(key, id, off);
        MDB_val k = { 40, key }, v;
        if (mdb_get(f->txn, f->st->dbi[DB_MANIFESTS], &k, &v)) {
            fsck_problem(f, "content %s: no manifest part at offset %" PRIu64, hex, off);
            return 0;
        }
        if (manifest_part_decode(&v, &f->ents, &f->entcap, &n) || !n) {
            fsck_problem(f, "content %s: manifest part at %" PRIu64 " undecodable", hex, off);
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            struct chunk_rec r;
            char ch[65];
            int rc = chunk_rec_get(f->st, f->txn, f->ents[i].id, &r);
            content_id_hex(f->ents[i].id, ch);
            if (rc == -ENOENT)
                fsck_problem(f, "content %s: chunk %s is missing", hex, ch);
            else if (!rc && r.raw != f->ents[i].raw)
                fsck_problem(f, "content %s: chunk %s is %" PRIu64 " bytes, manifest "
                             "says %" PRIu32, hex, ch, r.raw, f->ents[i].raw);
            off += f->ents[i].raw;
            if ((rc = refmap_add(f, f->ents[i].id)))
                return rc;
        }
        nchunks += n;
    }
    if (off != h->size)
        fsck_problem(f, "content %s: chunks add up to %" PRIu64 " bytes, not %" PRIu64,
                     hex, off, h->size);
    if (nchunks != h->nchunks)
        fsck_problem(f, "content %s: %" PRIu64 " chunks in the manifest, record says %" PRIu64,
                     hex, nchunks, h->nchunks);
    struct sha256mid m;
    uint8_t fin[32];
    if (sha256mid_load(&m, h->mid, h->midlen) || sha256mid_count(&m) != h->size)
        fsck_problem(f, "content %s: saved hash state is malformed", hex);
    else if (sha256mid_final(&m, fin), memcmp(fin, id, 32))
        fsck_problem(f, "content %s: saved hash state does not match its id", hex);
    if (!h->refs)
        fsck_problem(f, "content %s: stored with no references", hex);
    return 0;
}

static int fsck_manifests(struct fsck *f)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_mdb_err(mdb_cursor_open(f->txn, f->st->dbi[DB_CONTENTS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        struct content_hdr h;
        if (k.mv_size != 32 || content_hdr_decode(&v, &h)) {
            fsck_problem(f, "a content record is undecodable");
            continue;
        }
        rc = fsck_manifest(f, k.mv_data, &h);
    }
    if (!rc)
        mdb_cursor_close(cur);
    /* Parts whose content is gone. */
    if (!rc)
        rc = store_mdb_err(mdb_cursor_open(f->txn, f->st->dbi[DB_MANIFESTS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        MDB_val ck = { 32, k.mv_data }, cv;
        if (k.mv_size == 40 && !mdb_get(f->txn, f->st->dbi[DB_CONTENTS], &ck, &cv))
            continue;
        char hex[65];
        content_id_hex(k.mv_data, hex);
        fsck_problem(f, "manifest part of content %s, which does not exist", hex);
    }
    if (!rc)
        mdb_cursor_close(cur);
    return rc;
}

static int fsck_chunks(struct fsck *f)
{
    MDB_cursor *cur;
    MDB_val k, v;
    struct chunk_io io;
    uint8_t *buf = malloc(CHUNKER_MAX);
    int rc = buf ? chunk_io_init(&io) : pv_err(-ENOMEM, "out of memory");
    if (rc) {
        free(buf);
        return rc;
    }
    rc = store_mdb_err(mdb_cursor_open(f->txn, f->st->dbi[DB_CHUNKS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        struct chunk_rec r;
        char hex[65];
        content_id_hex(k.mv_data, hex);
        if (k.mv_size != 32 || chunk_rec_decode(&v, &r)) {
            fsck_problem(f, "chunk %s: record undecodable", hex);
            continue;
        }
        uint64_t want = refmap_get(f, k.mv_data);
        if (want != r.refs)
            fsck_problem(f, "chunk %s: reference count %" PRIu64 ", but %" PRIu64
                         " manifest entries name it", hex, r.refs, want);
        if (r.off + r.stored > pack_committed(f->st, f->txn, r.pack)) {
            fsck_problem(f, "chunk %s: lies beyond the committed end of pack %" PRIu64,
                         hex, r.pack);
            continue;
        }
        if (!r.refs)
            continue;       /* garbage awaiting gc; its bytes may be gone */
        if (chunk_fetch(f->st, &io, k.mv_data, &r, buf))
            fsck_problem(f, "%s", pv_errmsg());
    }
    if (!rc)
        mdb_cursor_close(cur);
    chunk_io_free(&io);
    free(buf);
    return rc;
}

static int fsck_hash_sink(void *ctx, const void *buf, size_t n)
{
    sha256mid_update(ctx, buf, n);
    return 0;
}

static int fsck_contents(struct fsck *f)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = store_mdb_err(mdb_cursor_open(f->txn, f->st->dbi[DB_CONTENTS], &cur), "opening a cursor");
    for (int op = MDB_FIRST; !rc && !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
        if (k.mv_size != 32)
            continue;
        uint8_t id[32], got[32];
        char hex[65];
        struct sha256mid m;
        memcpy(id, k.mv_data, 32);
        content_id_hex(id, hex);
        sha256mid_init(&m);
        int r = content_read(f->st, id, fsck_hash_sink, &m);
        if (r) {
            fsck_problem(f, "content %s: cannot be read back: %s", hex, pv_errmsg());
            continue;
        }
        sha256mid_final(&m, got);
        if (memcmp(got, id, 32))
            fsck_problem(f, "content %s: its bytes do not hash to its id", hex);
    }
    if (!rc)
        mdb_cursor_close(cur);
    return rc;
}

int content_fsck(struct store *st, unsigned flags,
                 void (*report)(void *ctx, const char *problem), void *ctx)
{
    struct fsck f = { .st = st, .report = report, .ctx = ctx };
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &f.txn),
                           "starting a read transaction");
    if (!rc)
        rc = fsck_packs(&f);
    if (!rc)
        rc = fsck_manifests(&f);
    if (!rc)
        rc = fsck_chunks(&f);
    if (!rc && !(flags & CONTENT_FSCK_QUICK))
        rc = fsck_contents(&f);
    if (f.txn)
        mdb_txn_abort(f.txn);
    free(f.map);
    free(f.ents);
    return rc ? rc : f.problems;
}
