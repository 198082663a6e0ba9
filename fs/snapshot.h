/*
 * snapshot.h - when versions are made, and making them off the hot path.
 *
 * The passthrough ops tell this module what happens to regular files; it
 * decides which versions to take (design 3) and takes them on worker
 * threads, in group-committed batches (content batch + version records in
 * one transaction).
 *
 *  - A file released after a write-open (or created) gets a *written*
 *    version, if its content differs from the previous version.
 *  - A file used for the first time that has no version gets a
 *    *pre-existing* (origin) version first: queued for a read-open, taken
 *    synchronously before a write-open or truncate can change it.
 *  - Rename and link give the destination a version with the source's
 *    content; unlink and rename give the source path a *deleted* tombstone.
 *  - At mount, tracked files changed while unmounted get *external*
 *    versions (snap_scan).
 *
 * Exactness: jobs of one inode run in order on one worker, and any write,
 * write-open or truncate of an inode whose snapshot is in flight waits for
 * it (snap_write_begin), so a version is exactly the content at close.
 * Dirty ranges are kept per inode so that re-snapshotting a big file after
 * a small change reads only what changed.
 *
 * Failures (full disk, I/O errors) never reach the user's operation: the
 * version is recorded without content (CAT_V_MISSING, with the reason), and
 * logged.  Inodes are identified by (st_dev, st_ino).
 */
#ifndef FS_SNAPSHOT_H
#define FS_SNAPSHOT_H

#include <stdint.h>
#include <sys/types.h>

struct store;

/* A regular file as the ops see it. */
struct snap_file {
    dev_t dev;
    ino_t ino;
    const char *path;           /* workspace-relative */
    uint64_t proc_id;           /* who, 0 if unknown */
    int open_err;               /* errno when the caller could not open the
                                   file for reading (rdfd is then -1) */
};

int snap_start(struct store *st, int rootfd);
/* Finish every queued snapshot, then stop the workers. */
void snap_stop(void);

/* Before the backing open for reading: an unversioned file gets an origin
 * version, read from rdfd (the module dups it; the caller keeps its fd). */
void snap_open_read(const struct snap_file *f, int rdfd);

/* Before anything that changes the content (write-open, O_TRUNC, truncate,
 * fallocate, copy_file_range into it): waits for in-flight snapshots and
 * takes the origin version of an unversioned file synchronously from rdfd
 * (not consumed).  rdfd may be -1 if the caller knows the file is new. */
void snap_write_open(const struct snap_file *f, int rdfd);

/* A file was created through the mount: it is new, not pre-existing. */
void snap_created(const struct snap_file *f);

/* Before a write of [off, off+len) reaches the backing file: waits for an
 * in-flight snapshot and records the range as dirty.  len == UINT64_MAX
 * means "everything from off on" (truncate, unknown extent). */
void snap_write_begin(dev_t dev, ino_t ino, uint64_t off, uint64_t len);

/* Last release of a handle that wrote (or created): queue a version.
 * Takes ownership of rdfd (an O_RDONLY descriptor of the file). */
void snap_release(const struct snap_file *f, int rdfd);

/* After a rename/link succeeded.  rdfd: O_RDONLY descriptor of the file
 * (ownership taken), for when the source has no version to share. */
void snap_renamed(const struct snap_file *f, const char *from, int rdfd);
void snap_linked(const struct snap_file *f, const char *from, int rdfd);
void snap_unlinked(const char *path, uint64_t proc_id);

/* At mount, before serving: compare every tracked file with its last
 * version and queue external versions / tombstones.  progress(ctx, done,
 * total) is called now and then.  Returns the number of changes found. */
int snap_scan(void (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx);

/* `provfs restore` (pid) announces that its next write of path restores
 * version src_vno of src_path. */
void snap_note_restore(uint64_t proc_id, const char *path, const char *src_path,
                       uint32_t src_vno);

/* Wait until every snapshot queued before the call is committed. */
int snap_flush(void);

struct snap_stats {
    uint64_t queued, running, done, failed;
    uint64_t batches;           /* transactions the workers committed */
};
void snap_get_stats(struct snap_stats *out);

#endif
