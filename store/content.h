/*
 * content.h - the content store: a file's bytes in, a content id out, and
 * back, deduplicated and compressed.
 *
 * A content is identified by the SHA-256 of its bytes (equal to sha256sum).
 * It is kept as a manifest, the ordered list of its chunks (content-defined,
 * chunker.h); each chunk is identified by the SHA-256 of its raw bytes,
 * stored once however many contents use it, zstd-compressed unless that
 * does not shrink it, in an append-only pack file (pack.h).
 *
 * References: every committed ingest gives its content one reference (the
 * version that will point to it); content_ref/content_unref add and drop
 * more.  A chunk's reference count is the number of manifest entries that
 * name it; content_gc frees chunks whose count fell to 0.
 *
 * Durability (design 4): chunk bytes are fdatasync'ed before the LMDB
 * transaction that references them commits; opening the store read-write cuts
 * pack tails beyond their committed length.  A crash therefore loses at most
 * the uncommitted batches, never leaves a reference to missing bytes.
 *
 * Threads: any number of threads may read, and may each run their own batch;
 * batches commit one at a time (LMDB has one writer).  A batch belongs to the
 * thread that runs it.
 *
 * Memory: ingest keeps two 4 MiB read windows, a 4 MiB compression arena, a
 * zstd context per thread and, until commit, ~40 bytes of manifest per chunk
 * plus ~100 bytes per newly stored chunk (~20 MiB for 10 GiB of new data;
 * chunks average ~70 KiB).  Reads hold one manifest part (4096 chunks) and
 * one chunk; content_pread shares a cache of 8 chunks per store.
 */
#ifndef STORE_CONTENT_H
#define STORE_CONTENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct store;
struct MDB_txn;

#define CONTENT_ID_LEN 32

/* A byte range written since the previous version was taken. */
struct content_range {
    uint64_t off, len;
};

/* What an incremental ingest may assume: the file was `id` when last
 * ingested, and since then only `dirty` ranges were written (in any order,
 * overlapping allowed) and the size may have changed (growth counts as
 * dirty by itself).  If the assumption is false the stored version is wrong:
 * the caller (the daemon's write tracking) must be conservative. */
struct content_prev {
    uint8_t id[CONTENT_ID_LEN];
    const struct content_range *dirty;
    size_t ndirty;
};

/* ---- ingest ----------------------------------------------------------- */

/* A group of ingests committed together: one fdatasync per pack touched and
 * one LMDB transaction for all of them (group commit). */
struct content_batch;

int content_batch_begin(struct store *st, struct content_batch **out);

/* Read fd (with pread, from offset 0 to EOF; the file offset is untouched)
 * and store its chunks.  out_id and *size are valid at once, but nothing
 * refers to the content until the batch commits.  prev may be NULL.
 * The file's last window may still be in the helpers' hands (compressed,
 * appended) when this returns; fd is no longer needed.  If storing it
 * fails, the next add_fd and the commit fail. */
int content_batch_add_fd(struct content_batch *b, int fd,
                         const struct content_prev *prev,
                         uint8_t out_id[CONTENT_ID_LEN], uint64_t *size);

/* Optional: threads used to hash and compress chunks (default: online CPUs,
 * at most 8).  Daemons running several batches at once may want 1. */
void content_batch_set_threads(struct content_batch *b, unsigned n);

/* Optional: run hook(ctx, txn) inside the batch's write transaction just
 * before it commits (e.g. to insert the version records that take the new
 * references); a non-zero return aborts the whole batch. */
void content_batch_set_hook(struct content_batch *b,
                            int (*hook)(void *ctx, struct MDB_txn *txn), void *ctx);

/* Sync the packs, then commit.  Frees b in every case.  -EAGAIN if gc freed
 * a chunk this batch relied on (only if the chunk's last reference was
 * dropped and gc ran during the ingest; ingest again).  On an add_fd error
 * the batch stays usable: the failed file is simply not in it. */
int content_batch_commit(struct content_batch *b);

/* Drop a batch: its chunk bytes stay in the pack as garbage below nothing. */
void content_batch_abort(struct content_batch *b);

/* One ingest committed on its own: begin + add + commit. */
int content_ingest_fd(struct store *st, int fd, const struct content_prev *prev,
                      uint8_t out_id[CONTENT_ID_LEN], uint64_t *size);

/* ---- reading ---------------------------------------------------------- */

/* Stream the content to sink in order, chunk by chunk (each chunk is
 * verified against its id).  A non-zero sink return stops and is returned. */
int content_read(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                 int (*sink)(void *ctx, const void *buf, size_t n), void *ctx);

/* Random access: up to len bytes at off.  Returns the count (0 at or past
 * the end) or a negative errno.  Recently used chunks are cached, so
 * sequential small reads (FUSE's 128 KiB) decompress each chunk once. */
ssize_t content_pread(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                      void *buf, size_t len, uint64_t off);

/* 1 if the content is stored, 0 if not, negative on error. */
int content_exists(struct store *st, const uint8_t id[CONTENT_ID_LEN]);

/* Size, chunk count and reference count of a content; -ENOENT if absent.
 * Any out pointer may be NULL. */
int content_stat(struct store *st, const uint8_t id[CONTENT_ID_LEN],
                 uint64_t *size, uint64_t *nchunks, uint64_t *refs);

/* ---- references and space --------------------------------------------- */

int content_ref(struct store *st, const uint8_t id[CONTENT_ID_LEN]);
/* Add delta references inside the caller's write transaction (a batch
 * hook); dropping the last reference deletes the content record. */
int content_ref_txn(struct store *st, struct MDB_txn *txn,
                    const uint8_t id[CONTENT_ID_LEN], int delta);
int content_unref(struct store *st, const uint8_t id[CONTENT_ID_LEN]);

struct content_stats {
    uint64_t logical_bytes;  /* sum over contents of size * references,
                                i.e. what all referencing versions hold  */
    uint64_t content_bytes;  /* sum of distinct contents' sizes          */
    uint64_t chunk_bytes;    /* raw bytes of live chunks (after dedup)   */
    uint64_t stored_bytes;   /* stored bytes of live chunks (after dedup
                                and compression)                        */
    uint64_t pack_bytes;     /* disk space the pack files occupy        */
    uint64_t contents, chunks, dead_chunks;
};
int content_stats(struct store *st, struct content_stats *out);

struct content_gc_result {
    uint64_t chunks_freed, bytes_freed;
};
/* Free every chunk no manifest names: drop its record, then punch its bytes
 * out of the pack (fallocate PUNCH_HOLE).  Walks the chunk index with a
 * cursor in bounded transactions; never holds the index in memory. */
int content_gc(struct store *st, struct content_gc_result *out);

/* ---- checking and recovery -------------------------------------------- */

enum {
    CONTENT_FSCK_QUICK = 1 << 0,  /* skip re-streaming whole contents */
};
/* Re-hash every chunk, cross-check manifests, reference counts and packs.
 * report(ctx, sentence) is called once per problem (may be NULL).  Returns
 * the number of problems (0 = clean) or a negative errno if it could not
 * run.  Memory: 16 bytes per chunk for the reference cross-check. */
int content_fsck(struct store *st, unsigned flags,
                 void (*report)(void *ctx, const char *problem), void *ctx);

/* Cut pack tails beyond their committed length (done by store_open in
 * read-write mode too).  Returns the number of packs cut. */
int content_recover(struct store *st);

/* ---- ids -------------------------------------------------------------- */

void content_id_hex(const uint8_t id[CONTENT_ID_LEN], char out[2 * CONTENT_ID_LEN + 1]);
/* Parse 64 hex digits; -EINVAL otherwise. */
int content_id_parse(const char *hex, uint8_t id[CONTENT_ID_LEN]);

#endif
