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

/* Normalize an absolute-or-relative path lexically (no symlink resolution,
 * works when a component is a dead mount). */
int cli_abspath(const char *in, char *out, size_t len);

#endif
