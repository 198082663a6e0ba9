/*
 * capture.h - turning FUSE requests into provenance events.
 *
 * The FUSE op handlers (ops.c) call cap_event() after the backing operation
 * succeeded.  Capture resolves the calling thread to its process (boot id +
 * tgid + start time, see proc.h), records the process the first time it is
 * seen (and its ancestors, and each new exec image), stamps the event with a
 * logical sequence number and the wall time, and queues it.  A writer thread
 * commits the queue to the catalog in batches.
 *
 * Rules for callers:
 *  - Never block on disk: cap_event() only reads /proc and takes an
 *    in-memory lock.
 *  - Never fail the user's operation because of capture: these functions
 *    return nothing; problems are logged and counted as gaps.
 *  - Paths are workspace-relative, without a leading '/', e.g. "data/a.csv";
 *    the root itself is "".
 */
#ifndef FS_CAPTURE_H
#define FS_CAPTURE_H

#include <stdint.h>
#include <sys/types.h>

struct store;

enum cap_op {
    CAP_OPEN_READ = 1,  /* open O_RDONLY                                   */
    CAP_OPEN_WRITE,     /* open O_WRONLY / O_RDWR (arg = open flags)       */
    CAP_CREATE,         /* create a new regular file (arg = open flags)    */
    CAP_RENAME,         /* path -> path2 (arg = renameat2 flags)           */
    CAP_UNLINK,
    CAP_LINK,           /* new link path2 to existing path                 */
    CAP_TRUNCATE,       /* arg = new size                                  */
    CAP_MKDIR,
    CAP_RMDIR,
    CAP_SETATTR,        /* arg = FUSE_SET_ATTR_* mask                      */
    CAP_CLOSE_WRITE,    /* last release of a write-open (arg = 1 if written) */
    CAP_SYMLINK,        /* path = new link, path2 = target                 */
    CAP_MKNOD,
    CAP_RESTORE,        /* `provfs restore` wrote path2's version arg to path */
    CAP_OP_MAX
};

/* Name of an op for output ("open-read", "rename", ...). */
const char *cap_op_name(enum cap_op op);
/* Reverse of cap_op_name(); 0 if unknown. */
enum cap_op cap_op_parse(const char *name);

/* Start capture: the writer thread commits to `st`, which stays owned by the
 * caller and must outlive cap_stop(). */
int cap_start(struct store *st);

/* Drain the queue completely, then stop the writer thread. */
void cap_stop(void);

/* Record an event for the process behind `pid` (the thread id FUSE reports
 * in fuse_req_ctx()) with credentials uid/gid.  Returns the catalog id of
 * the process (0 when it could not be identified), which callers keep in the
 * file handle so that release, which has no process context, can be
 * attributed with cap_event_proc(). */
uint64_t cap_event(pid_t pid, uid_t uid, gid_t gid, enum cap_op op,
                   const char *path, const char *path2, uint64_t arg);

/* Same, for a process already identified by cap_event(). */
void cap_event_proc(uint64_t proc_id, enum cap_op op, const char *path,
                    const char *path2, uint64_t arg);

/* A new logical time with no event: versions are stamped with it so that
 * "used before the version was made" is a comparison of sequence numbers. */
uint64_t cap_tick(void);

/* Block until everything queued before the call is committed. */
int cap_flush(void);

struct cap_stats {
    uint64_t queued;        /* events waiting for the writer          */
    uint64_t committed;     /* events committed since start           */
    uint64_t procs;         /* processes recorded since start         */
    uint64_t gaps;          /* events lost (queue full, store error)  */
    uint64_t batches;       /* writer transactions committed          */
};
void cap_get_stats(struct cap_stats *out);

#endif
