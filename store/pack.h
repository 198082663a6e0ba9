/*
 * pack.h - append-only pack files holding chunk bytes (.provfs/packs/).
 *
 * Pack N is the file packs/pack-NNNNNN.  DB_PACKS maps N to its committed
 * length: every byte below it may be referenced from LMDB, every byte above
 * it is garbage from a write whose transaction never committed.  A writer
 * holds an exclusive flock() on the pack it appends to for as long as the
 * store is open, so two processes never append to the same pack and
 * recovery never cuts a tail that a live writer is still filling.  Packs are
 * rolled at PACK_ROLL bytes; the old one is fdatasync'ed as it is rolled.
 *
 * Internal to store/ (content.c is the only caller).
 */
#ifndef STORE_PACK_H
#define STORE_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <lmdb.h>

struct store;

#define PACK_ROLL ((uint64_t)256 << 20)

/* The roll size in effect (PACK_ROLL); tests lower it to exercise rolling
 * without writing gigabytes.  Set it before the first append. */
extern uint64_t pack_roll_size;

int pack_attach(struct store *st);
void pack_detach(struct store *st);

/* Append n bytes to the current pack; *pack and *off say where they went.
 * -ENOSPC (with a message) when the disk is full; the pack is left as it
 * was before the call. */
int pack_append(struct store *st, const void *buf, size_t n,
                uint64_t *pack, uint64_t *off);

/* Every pack_append holds its pack until the caller lets go with
 * pack_unhold (n = number of appends it made there), once the batch has
 * committed or aborted: rolling to a new pack keeps the old one's lock while
 * held, so recovery by another process cannot cut bytes about to be
 * committed. */
void pack_unhold(struct store *st, uint64_t pack, unsigned n);

/* Undo: a batch or an ingest that fails gives its bytes back, so a full
 * disk is not left full of garbage.  pack_mark() notes the current end;
 * pack_rollback() cuts back to it if the caller's `nappends` appends since
 * are the only ones (nobody else wrote after them, the pack did not roll).
 * Returns 1 if it cut, 0 if it could not (the bytes stay as garbage). */
struct pack_mark {
    uint64_t pack, off, seq;
};
int pack_mark(struct store *st, struct pack_mark *m);
int pack_rollback(struct store *st, const struct pack_mark *m, uint64_t nappends);

/* Make bytes [0, end) of pack durable (fdatasync), before a transaction
 * that references them commits. */
int pack_sync(struct store *st, uint64_t pack, uint64_t end);

/* Raise DB_PACKS[pack] to at least `end` inside txn. */
int pack_commit_txn(struct store *st, MDB_txn *txn, uint64_t pack, uint64_t end);

/* The committed length of pack (0 if unknown) as seen by txn. */
uint64_t pack_committed(struct store *st, MDB_txn *txn, uint64_t pack);

/* Read exactly n bytes at off; -EIO with a message on a short read. */
int pack_read(struct store *st, uint64_t pack, uint64_t off, void *buf, size_t n);

/* Give the space of a dead range back to the file system. */
int pack_punch(struct store *st, uint64_t pack, uint64_t off, uint64_t len);

/* Cut every pack no live writer holds back to its committed length.
 * Returns the number of packs cut, or a negative errno. */
int pack_recover(struct store *st);

/* Bytes the pack files occupy on disk (allocated blocks). */
int pack_disk_usage(struct store *st, uint64_t *bytes);

/* Size of the pack file itself, or a negative errno. */
int pack_file_size(struct store *st, uint64_t pack, uint64_t *size);

#endif
