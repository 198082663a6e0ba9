/*
 * catalog.h - the provenance facts: processes (activities), their exec
 * images, files (paths), and the event log, kept in LMDB.
 *
 * Writers (the daemon's capture thread) hand the catalog a batch of records
 * and it commits them in one transaction (group commit: one fsync per
 * batch, not per event).  The daemon assigns sequence numbers and process
 * ids itself, so capture never waits for the store; cat_max_ids() tells it
 * where to continue after a remount.
 *
 * Readers open a cat_reader (an LMDB read snapshot).  Strings in records
 * returned by a reader point into the database map and stay valid until
 * cat_read_end(); they are not NUL-terminated (struct cat_str).
 */
#ifndef STORE_CATALOG_H
#define STORE_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct cat_str {
    const char *p;
    size_t n;
};

/* A process (W3C PROV activity).  Key: boot id + start time + tgid. */
struct cat_proc {
    uint64_t id;
    uint8_t boot_id[16];
    uint64_t start;             /* clock ticks since boot */
    uint32_t tgid, ppid, pgid, sid, uid, gid;
    uint64_t parent_id;         /* 0: parent not captured */
    uint64_t seq;               /* logical time first seen */
    uint64_t wall_ns;
    struct cat_str comm, exe, argv /* NUL-separated */, cwd, env /* NUL-separated */;
    struct cat_str fd[3];       /* stdin/out/err identities */
};

/* An exec image: the process ran `exe argv` from logical time `seq` on.
 * Image 0 is the image the process had when first seen.  Standard streams
 * are recorded per image because a shell sets up redirections between
 * fork and exec: what the program really read and wrote is what it had
 * when it was exec'd. */
struct cat_image {
    uint64_t proc_id;
    uint32_t n;
    uint64_t seq, wall_ns;
    struct cat_str exe, argv;
    struct cat_str fd[3];
};

/* One event.  op values are capture's enum cap_op (fs/capture.h); the
 * catalog stores them without interpreting them. */
struct cat_event {
    uint64_t seq, wall_ns;
    uint32_t op;
    uint64_t proc_id;
    struct cat_str path, path2;
    uint64_t arg;
    uint64_t file_id, file2_id; /* filled by the catalog on commit */
    int path2_literal;          /* path2 is not a workspace path (a symlink
                                   target): give it no file id; not stored */
};

/* How a version came to be (design 3). */
enum cat_origin {
    CAT_ORIGIN_WRITTEN = 1,     /* released after being opened for writing  */
    CAT_ORIGIN_PREEXISTING,     /* existed before provenance began: origin  */
    CAT_ORIGIN_EXTERNAL,        /* changed while not mounted                */
    CAT_ORIGIN_RENAMED,         /* appeared here by rename from src         */
    CAT_ORIGIN_LINKED,          /* appeared here by a hard link to src      */
    CAT_ORIGIN_RESTORED,        /* written by `provfs restore` from src     */
    CAT_ORIGIN_DELETED,         /* tombstone: the path was unlinked / renamed away */
};
const char *cat_origin_name(uint32_t origin);

enum {
    CAT_V_HASH_ONLY = 1 << 0,   /* content id recorded, bytes not stored    */
    CAT_V_MISSING   = 1 << 1,   /* the snapshot failed: no content (a gap)  */
    CAT_V_UNSTORED  = 1 << 2,   /* the policy says never snapshot: no content, no hash */
};

/* A file version (W3C PROV entity).  Numbered from 1 per path. */
struct cat_version {
    uint64_t file_id;
    uint32_t vno;
    uint8_t content_id[32];     /* SHA-256 of the content (sha256sum)       */
    uint32_t flags;
    uint64_t size, mtime_ns, ctime_ns, ino;
    uint32_t mode, uid, gid;
    uint64_t seq, wall_ns;      /* when it came to be                       */
    uint32_t origin;            /* enum cat_origin                          */
    uint64_t src_file_id;       /* renamed/linked/restored from ...         */
    uint32_t src_vno;
    uint64_t writer;            /* process id, 0 if none                    */
    struct cat_str kind;        /* from the policy: model, dataset, ...     */
    uint8_t policy_id[32];      /* SHA-256 of the policy in force (0s: none) */
    struct cat_str err;         /* why the content is missing, if it is     */
};

enum cat_rec_type { CAT_REC_PROC = 1, CAT_REC_IMAGE, CAT_REC_EVENT, CAT_REC_GAP };

struct cat_rec {
    enum cat_rec_type type;
    union {
        struct cat_proc proc;
        struct cat_image image;
        struct cat_event event;
        uint64_t gaps;          /* CAT_REC_GAP: events lost before this batch */
    } u;
};

/* Commit a batch in one transaction.  All or nothing. */
int cat_commit(struct store *st, const struct cat_rec *recs, size_t n);
/* The same, inside a caller's write transaction. */
struct MDB_txn;
int cat_commit_txn(struct store *st, struct MDB_txn *txn, const struct cat_rec *recs, size_t n);

struct cat_reader;
int cat_read_begin(struct store *st, struct cat_reader **out);
void cat_read_end(struct cat_reader *rd);

/* Warm the page cache for lookups about to be made one after another:
 * nthreads threads (at most 16, the caller one of them; a store/workpool),
 * each with its own reader, call
 * fn(rd, &tls, i, ctx) for every i in [0, n), items claimed one at a time.
 * *tls starts NULL and is the thread's to keep state in; tls_free (may be
 * NULL) gets it at the end.  Cold, the threads' page reads are in flight
 * together (a virtio disk serves 8 random reads in parallel ~2.5x faster
 * than one after another); what fn finds is the caller's to throw away.
 * Returns when all items are done.  Best effort: a thread that cannot
 * start or open a reader only means less overlap. */
typedef void (*cat_par_fn)(struct cat_reader *rd, void **tls, size_t i, void *ctx);
void cat_read_parallel(struct store *st, size_t n, unsigned nthreads,
                       cat_par_fn fn, void (*tls_free)(void *tls), void *ctx);

struct cat_counts {
    uint64_t events, procs, files, images, gaps;
};
int cat_counts(struct cat_reader *rd, struct cat_counts *out);

/* Highest sequence number and process id committed so far (0 if none). */
int cat_max_ids(struct cat_reader *rd, uint64_t *seq, uint64_t *proc_id);

/* Find a process by key; -ENOENT if unknown. */
int cat_proc_find(struct cat_reader *rd, const uint8_t boot_id[16],
                  uint64_t start, uint32_t tgid, uint64_t *id);
int cat_proc_get(struct cat_reader *rd, uint64_t id, struct cat_proc *out);
/* The latest image of a process (the one it last exec'd), or -ENOENT. */
int cat_proc_last_image(struct cat_reader *rd, uint64_t id, struct cat_image *out);

/* Scans call cb for each record in key order; a non-zero return from cb
 * stops the scan and is returned. */
typedef int (*cat_proc_cb)(void *ctx, const struct cat_proc *p);
typedef int (*cat_image_cb)(void *ctx, const struct cat_image *im);
typedef int (*cat_event_cb)(void *ctx, const struct cat_event *ev);

int cat_procs_scan(struct cat_reader *rd, cat_proc_cb cb, void *ctx);
int cat_images_scan(struct cat_reader *rd, uint64_t proc_id, cat_image_cb cb, void *ctx);
int cat_events_scan(struct cat_reader *rd, uint64_t from_seq, cat_event_cb cb, void *ctx);
/* Events of one process, or touching one path, in logical-time order. */
int cat_proc_events(struct cat_reader *rd, uint64_t proc_id, cat_event_cb cb, void *ctx);
int cat_path_events(struct cat_reader *rd, const char *path, cat_event_cb cb, void *ctx);
int cat_event_get(struct cat_reader *rd, uint64_t seq, struct cat_event *out);

/* File (path) ids. -ENOENT if the path was never recorded. */
int cat_file_find(struct cat_reader *rd, const char *path, uint64_t *id);
/* The path of a file id. */
int cat_file_path(struct cat_reader *rd, uint64_t id, struct cat_str *path);
typedef int (*cat_file_cb)(void *ctx, uint64_t id, struct cat_str path);
/* The distinct next path components below directory `prefix` ("" for the
 * top, else without a trailing '/'), in byte order: for paths a/b/c and
 * a/d under prefix "a", calls cb with "b" (id 0: a directory) and "d" (its
 * file id).  Skips whole subtrees with cursor seeks, so a listing costs
 * one seek per child, not one step per path below it. */
int cat_path_children(struct cat_reader *rd, const char *prefix, cat_file_cb cb, void *ctx);
int cat_files_scan(struct cat_reader *rd, cat_file_cb cb, void *ctx);

/* --- versions ----------------------------------------------------------- */

/* Add a version of `path` inside an open write transaction (the content
 * store's batch hook runs here, so the version and the references to its
 * content commit together).  Assigns v->file_id and v->vno (last + 1). */
struct MDB_txn;
int cat_version_add(struct store *st, struct MDB_txn *txn, const char *path,
                    size_t path_len, struct cat_version *v);
/* The next unused logical time, inside a write transaction (for writers
 * other than the daemon: `provfs restore` on an unmounted workspace). */
int cat_next_seq_txn(struct store *st, struct MDB_txn *txn, uint64_t *seq);

/* The last version of `path` as seen inside txn; -ENOENT if none. */
int cat_version_last_txn(struct store *st, struct MDB_txn *txn, const char *path,
                         struct cat_version *out);
/* The same, in a transaction of its own. */
int cat_version_commit(struct store *st, const char *path, struct cat_version *v);

/* Version vno of a file; vno 0 means the last one.  -ENOENT if none. */
int cat_version_get(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                    struct cat_version *out);
/* The version that was current at logical time seq (the newest with
 * v.seq <= seq); -ENOENT if the file had none yet. */
int cat_version_at(struct cat_reader *rd, uint64_t file_id, uint64_t seq,
                   struct cat_version *out);
typedef int (*cat_version_cb)(void *ctx, const struct cat_version *v);
/* All versions of a file, oldest first, or newest first. */
int cat_versions_scan(struct cat_reader *rd, uint64_t file_id, int newest_first,
                      cat_version_cb cb, void *ctx);

/* --- lineage indexes (store/lineage.c walks them) ------------------------ */

typedef int (*cat_id_cb)(void *ctx, uint64_t id);
typedef int (*cat_vref_cb)(void *ctx, uint64_t file_id, uint32_t vno);
/* Children of a process (the processes whose parent_id is parent_id). */
int cat_proc_children(struct cat_reader *rd, uint64_t parent_id, cat_id_cb cb, void *ctx);
/* Processes that had pipe `ident` ("pipe:[N]") as fd 0 or 1 in some image. */
int cat_pipe_procs(struct cat_reader *rd, struct cat_str ident, int fd,
                   cat_id_cb cb, void *ctx);
/* Processes of a process group (same boot id and pgid). */
int cat_pgid_procs(struct cat_reader *rd, const uint8_t boot_id[16], uint32_t pgid,
                   cat_id_cb cb, void *ctx);
/* Versions whose writer is proc_id (entries of versions gc removed may remain:
 * check with cat_version_get). */
int cat_writer_versions(struct cat_reader *rd, uint64_t proc_id, cat_vref_cb cb, void *ctx);
/* The uses of a file from logical time from_seq on, in order, without
 * reading the event log: open-reads, open-writes without O_TRUNC, and
 * renames, links (other_file = the new name) and restores (other_file =
 * the file restored into, arg = the version restored) from it. */
struct cat_use {
    uint64_t seq, proc_id, other_file, arg;
    uint32_t op;
};
typedef int (*cat_use_cb)(void *ctx, const struct cat_use *u);
int cat_file_uses(struct cat_reader *rd, uint64_t file_id, uint64_t from_seq,
                  cat_use_cb cb, void *ctx);
/* Events touching a file from logical time from_seq on, in order. */
int cat_file_events(struct cat_reader *rd, uint64_t file_id, uint64_t from_seq,
                    cat_event_cb cb, void *ctx);

#endif
