/* content_rec.c - record encoding and chunk fetching for the content layer;
 * see content_int.h for the formats. */
#include "store/content_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "store/chunker.h"
#include "store/codec.h"
#include "store/content.h"
#include "store/pack.h"
#include "store/store_int.h"

static int rec_put(struct store *st, MDB_txn *txn, enum store_db db,
                   const void *key, size_t klen, struct cbuf *b, const char *what)
{
    if (b->err)
        return pv_err(b->err, "out of memory");
    MDB_val k = { klen, (void *)key }, v = { b->len, b->p };
    return store_mdb_err(mdb_put(txn, st->dbi[db], &k, &v, 0), what);
}

int chunk_rec_decode(const MDB_val *v, struct chunk_rec *r)
{
    struct cread c;
    cread_init(&c, v->mv_data, v->mv_size);
    r->pack = cread_u64(&c);
    r->off = cread_u64(&c);
    r->stored = cread_u64(&c);
    r->raw = cread_u64(&c);
    r->flags = cread_u64(&c);
    r->refs = cread_u64(&c);
    return c.err ? -EUCLEAN : 0;
}

int chunk_rec_get(struct store *st, MDB_txn *txn, const uint8_t id[32], struct chunk_rec *r)
{
    MDB_val k = { 32, (void *)id }, v;
    int rc = mdb_get(txn, st->dbi[DB_CHUNKS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return store_mdb_err(rc, "reading a chunk record");
    return chunk_rec_decode(&v, r);
}

int chunk_rec_put(struct store *st, MDB_txn *txn, const uint8_t id[32], const struct chunk_rec *r)
{
    struct cbuf b;
    cbuf_init(&b);
    cbuf_put_u64(&b, r->pack);
    cbuf_put_u64(&b, r->off);
    cbuf_put_u64(&b, r->stored);
    cbuf_put_u64(&b, r->raw);
    cbuf_put_u64(&b, r->flags);
    cbuf_put_u64(&b, r->refs);
    int rc = rec_put(st, txn, DB_CHUNKS, id, 32, &b, "writing a chunk record");
    cbuf_free(&b);
    return rc;
}

int content_hdr_decode(const MDB_val *v, struct content_hdr *h)
{
    struct cread c;
    size_t n;
    cread_init(&c, v->mv_data, v->mv_size);
    h->size = cread_u64(&c);
    h->nchunks = cread_u64(&c);
    h->refs = cread_u64(&c);
    const uint8_t *mid = cread_bytes(&c, &n);
    h->created_ns = cread_u64(&c);
    if (c.err || n > sizeof h->mid)
        return -EUCLEAN;
    memcpy(h->mid, mid, n);
    h->midlen = n;
    return 0;
}

int content_hdr_get(struct store *st, MDB_txn *txn, const uint8_t id[32], struct content_hdr *h)
{
    MDB_val k = { 32, (void *)id }, v;
    int rc = mdb_get(txn, st->dbi[DB_CONTENTS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return -ENOENT;
    if (rc)
        return store_mdb_err(rc, "reading a content record");
    return content_hdr_decode(&v, h);
}

int content_hdr_put(struct store *st, MDB_txn *txn, const uint8_t id[32], const struct content_hdr *h)
{
    struct cbuf b;
    cbuf_init(&b);
    cbuf_put_u64(&b, h->size);
    cbuf_put_u64(&b, h->nchunks);
    cbuf_put_u64(&b, h->refs);
    cbuf_put_bytes(&b, h->mid, h->midlen);
    cbuf_put_u64(&b, h->created_ns);
    int rc = rec_put(st, txn, DB_CONTENTS, id, 32, &b, "writing a content record");
    cbuf_free(&b);
    return rc;
}

void manifest_key(uint8_t key[40], const uint8_t id[32], uint64_t start)
{
    memcpy(key, id, 32);
    be64_put(key + 32, start);
}

int manifest_part_decode(const MDB_val *v, struct man_entry **ents, size_t *cap, size_t *n)
{
    struct cread c;
    cread_init(&c, v->mv_data, v->mv_size);
    uint64_t cnt = cread_u64(&c);
    if (c.err || cnt > CONTENT_PART_ENTRIES)
        return -EUCLEAN;
    if (*cap < cnt) {
        struct man_entry *e = realloc(*ents, cnt * sizeof *e);
        if (!e)
            return pv_err(-ENOMEM, "out of memory");
        *ents = e;
        *cap = cnt;
    }
    for (uint64_t i = 0; i < cnt; i++) {
        const uint8_t *id = cread_raw(&c, 32);
        uint64_t raw = cread_u64(&c);
        if (c.err || raw == 0 || raw > CHUNKER_MAX)
            return -EUCLEAN;
        memcpy((*ents)[i].id, id, 32);
        (*ents)[i].raw = (uint32_t)raw;
    }
    *n = cnt;
    return 0;
}

int manifest_part_put(struct store *st, MDB_txn *txn, const uint8_t id[32], uint64_t start,
                      const struct man_entry *ents, size_t n)
{
    uint8_t key[40];
    struct cbuf b;
    cbuf_init(&b);
    cbuf_put_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        cbuf_put_raw(&b, ents[i].id, 32);
        cbuf_put_u64(&b, ents[i].raw);
    }
    manifest_key(key, id, start);
    int rc = rec_put(st, txn, DB_MANIFESTS, key, 40, &b, "writing a manifest");
    cbuf_free(&b);
    return rc;
}

void chunk_hash(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

int chunk_io_init(struct chunk_io *io)
{
    io->zbuf = malloc(ZSTD_compressBound(CHUNKER_MAX));
    io->dctx = ZSTD_createDCtx();
    if (!io->zbuf || !io->dctx) {
        chunk_io_free(io);
        return pv_err(-ENOMEM, "out of memory");
    }
    return 0;
}

void chunk_io_free(struct chunk_io *io)
{
    free(io->zbuf);
    ZSTD_freeDCtx(io->dctx);
    io->zbuf = NULL;
    io->dctx = NULL;
}

static int chunk_damaged(const uint8_t id[32], const char *why)
{
    char hex[65];
    content_id_hex(id, hex);
    return pv_err(-EUCLEAN, "chunk %s is damaged: %s", hex, why);
}

int chunk_fetch(struct store *st, struct chunk_io *io, const uint8_t id[32],
                const struct chunk_rec *r, uint8_t *out)
{
    if (r->raw == 0 || r->raw > CHUNKER_MAX ||
        r->stored > ZSTD_compressBound(CHUNKER_MAX))
        return chunk_damaged(id, "impossible sizes in its record");
    uint8_t *dst = (r->flags & CHUNK_ZSTD) ? io->zbuf : out;
    int rc = pack_read(st, r->pack, r->off, dst, r->stored);
    if (rc)
        return rc;
    if (r->flags & CHUNK_ZSTD) {
        size_t n = ZSTD_decompressDCtx(io->dctx, out, CHUNKER_MAX, io->zbuf, r->stored);
        if (ZSTD_isError(n))
            return chunk_damaged(id, ZSTD_getErrorName(n));
        if (n != r->raw)
            return chunk_damaged(id, "wrong size after decompression");
    } else if (r->stored != r->raw) {
        return chunk_damaged(id, "stored and raw sizes differ for a raw chunk");
    }
    uint8_t h[32];
    chunk_hash(out, r->raw, h);
    if (memcmp(h, id, 32))
        return chunk_damaged(id, "its bytes do not hash to its id");
    return 0;
}
