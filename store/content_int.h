/*
 * content_int.h - private to the content layer (content*.c): record formats
 * of DB_CHUNKS, DB_CONTENTS and DB_MANIFESTS, and chunk fetching.
 *
 *   DB_CHUNKS    chunk id[32] -> pack, offset, stored len, raw len, flags, refs
 *   DB_CONTENTS  content id[32] -> size, nchunks, refs, hash midstate, created
 *   DB_MANIFESTS content id[32] + start offset (u64be) -> count, then count x
 *                (chunk id[32], raw len varint); CONTENT_PART_ENTRIES per part
 *
 * Splitting a manifest into parts keyed by their start offset keeps values
 * bounded (~150 KiB for 4096 chunks = ~256 MiB of content) and lets
 * content_pread find the part holding an offset with one cursor seek.
 */
#ifndef STORE_CONTENT_INT_H
#define STORE_CONTENT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>
#include <zstd.h>

#include "store/sha256mid.h"

struct store;

#define CONTENT_PART_ENTRIES 4096
#define CHUNK_ZSTD 1u           /* chunk flag: stored zstd-compressed */
/* zstd level 1, not the usual 3: on 64 KiB chunks level 3's deeper search
 * buys nothing (scripts/bench-store's workspace: CSV 2% smaller at level 1,
 * logs 10% larger, pickles and arrays equal, the total 0.1% smaller) and
 * costs ~25% more CPU per byte ingested. */
#define CONTENT_ZSTD_LEVEL 1

struct chunk_rec {
    uint64_t pack, off, stored, raw, flags, refs;
};

struct content_hdr {
    uint64_t size, nchunks, refs, created_ns;
    uint8_t mid[SHA256MID_MAX];
    size_t midlen;
};

struct man_entry {
    uint8_t id[32];
    uint32_t raw;
};

/* Records: get returns -ENOENT if absent, -EUCLEAN if undecodable. */
int chunk_rec_get(struct store *st, MDB_txn *txn, const uint8_t id[32], struct chunk_rec *r);
int chunk_rec_put(struct store *st, MDB_txn *txn, const uint8_t id[32], const struct chunk_rec *r);
int chunk_rec_decode(const MDB_val *v, struct chunk_rec *r);
int content_hdr_get(struct store *st, MDB_txn *txn, const uint8_t id[32], struct content_hdr *h);
int content_hdr_put(struct store *st, MDB_txn *txn, const uint8_t id[32], const struct content_hdr *h);
int content_hdr_decode(const MDB_val *v, struct content_hdr *h);

void manifest_key(uint8_t key[40], const uint8_t id[32], uint64_t start);
/* Decode a part into *ents (grown as needed, *cap entries); sets *n. */
int manifest_part_decode(const MDB_val *v, struct man_entry **ents, size_t *cap, size_t *n);
/* Encode n entries as one part and put it under (id, start). */
int manifest_part_put(struct store *st, MDB_txn *txn, const uint8_t id[32], uint64_t start,
                      const struct man_entry *ents, size_t n);

/* SHA-256 of a chunk (EVP). */
void chunk_hash(const void *p, size_t n, uint8_t out[32]);

/* Buffers for fetching chunks: a stored-bytes buffer and a decompressor. */
struct chunk_io {
    uint8_t *zbuf;
    ZSTD_DCtx *dctx;
};
int chunk_io_init(struct chunk_io *io);
void chunk_io_free(struct chunk_io *io);
/* Read, decompress and verify one chunk into out (CHUNKER_MAX bytes).
 * -EUCLEAN with a message naming the chunk when it is damaged. */
int chunk_fetch(struct store *st, struct chunk_io *io, const uint8_t id[32],
                const struct chunk_rec *r, uint8_t *out);

/* content_read.c: the shared cache of decompressed chunks. */
int content_cache_init(struct store *st);
void content_cache_free(struct store *st);

#endif
