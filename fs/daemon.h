/*
 * daemon.h - one mounted workspace, from mount to unmount.
 *
 * fs_daemon_run() opens the source directory *before* mounting (so the
 * mount can sit on top of it), opens or creates the store in its .provfs/,
 * starts capture, mounts, publishes the runtime file and control socket,
 * serves requests on a multi-threaded loop, and on unmount drains capture
 * before returning.  A clean unmount therefore loses no event.
 */
#ifndef FS_DAEMON_H
#define FS_DAEMON_H

#include "fs/ops.h"

struct fs_mount_opts {
    const char *source;         /* absolute backing directory               */
    const char *mountpoint;     /* absolute; == source for a self-overlay   */
    const char *logfile;        /* where the daemon logs                    */
    const char *policy;         /* --policy FILE (absolute), or NULL        */
    enum fs_cache_mode cache;
    int allow_other;
    int passthrough;            /* kernel passthrough where offered (wire.h) */
    int uring;                  /* FUSE over io_uring where offered (ring.h) */
    int debug;                  /* libfuse debug output to the log          */
    int ready_fd;               /* write "ok\n" or "<error>\n" once mounted,
                                   then close; -1 if nobody waits           */
};

/* Returns 0 after a clean unmount, or a negative errno (message set). */
int fs_daemon_run(const struct fs_mount_opts *o);

#endif
