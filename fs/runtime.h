/*
 * runtime.h - how the CLI finds a running daemon.
 *
 * When a workspace is mounted over itself, its .provfs/ store is shadowed by
 * the mount.  The daemon opened the directory before mounting, so the store
 * stays reachable as /proc/<daemon pid>/fd/<rootfd>/.provfs (root, or the
 * daemon's own user, may follow that link).  The daemon writes those numbers
 * to a runtime file named after the mount point:
 *
 *     <rundir>/<16 hex of sha256(mountpoint)>.run    key=value lines
 *     <rundir>/<same>.sock                            control socket
 *     <rundir>/<same>.log                             the daemon's log
 *
 * <rundir> is /run/provfs for root, else $XDG_RUNTIME_DIR/provfs, else
 * /tmp/provfs-<uid>.
 *
 * The control socket speaks one line per request: "status" answers
 * key=value lines ending with "end"; "sync" answers "ok" once every event
 * queued before it is committed.
 */
#ifndef FS_RUNTIME_H
#define FS_RUNTIME_H

#include <limits.h>
#include <sys/types.h>

struct fs_runtime {
    pid_t pid;                    /* daemon pid                         */
    int rootfd;                   /* daemon's fd of the source directory */
    char source[PATH_MAX];        /* backing directory                  */
    char mountpoint[PATH_MAX];
    char log[PATH_MAX];
    char sock[PATH_MAX];
    char policy[PATH_MAX];        /* mount --policy FILE, or ""          */
};

/* Fill dir with the runtime directory (created if needed). */
int fs_runtime_dir(char *dir, size_t len);
/* Base path (without extension) of the runtime files for a mount point. */
int fs_runtime_base(const char *mountpoint, char *base, size_t len);
int fs_runtime_write(const struct fs_runtime *rt);
/* Read the runtime file of a mount point; -ENOENT if there is none. */
int fs_runtime_read(const char *mountpoint, struct fs_runtime *rt);
void fs_runtime_remove(const char *mountpoint);
/* Path of the store of a running daemon: /proc/PID/fd/N/.provfs */
int fs_runtime_store_path(const struct fs_runtime *rt, char *out, size_t len);

/* Send one control request and copy the whole answer into out. */
int fs_runtime_request(const struct fs_runtime *rt, const char *req,
                       char *out, size_t len);

#endif
