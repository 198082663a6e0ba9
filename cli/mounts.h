/*
 * mounts.h - reading /proc/self/mountinfo and finding who holds a mount.
 */
#ifndef CLI_MOUNTS_H
#define CLI_MOUNTS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Is `path` (absolute, normalized) a mount point?  Returns 1 and fills
 * fstype (e.g. "fuse.provfs") if so, 0 if not, negative errno on error. */
int cli_mount_lookup(const char *path, char *fstype, size_t len);

/* Print "pid (comm)" of processes with a cwd, root or open file under
 * `path` to f, at most `max`, leaving out `except` (the daemon, whose
 * descriptor of the backing directory has the same path); returns how
 * many were found. */
int cli_mount_holders(const char *path, pid_t except, FILE *f, int max);

/* Unmount `path` (lazily when `lazy`): umount2(2), or, for an unprivileged
 * user's own FUSE mount (umount2 is root's), the setuid fusermount3 that
 * mounted it.  0 or -errno; -EBUSY when the mount is in use. */
int cli_unmount(const char *path, int lazy);

/* Normalize an absolute-or-relative path lexically (no symlink resolution,
 * works when a component is a dead mount). */
int cli_abspath(const char *in, char *out, size_t len);

#endif
