/*
 * mountinfo.h - reading /proc/self/mountinfo, for the daemon (the device of
 * its own mount, found without touching the mount, which may not be served
 * yet) and the CLI (is this directory a provfs mount?).
 */
#ifndef FS_MOUNTINFO_H
#define FS_MOUNTINFO_H

#include <stddef.h>
#include <sys/types.h>

/* Is `path` (absolute, normalized) a mount point?  Returns 1 and fills
 * fstype (e.g. "fuse.provfs") and *dev (may be NULL) from the topmost mount
 * there, 0 if not, negative errno on error. */
int fs_mountinfo_find(const char *path, char *fstype, size_t len, dev_t *dev);

#endif
