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

/* The same, with the FUSE owner: user_id from the super options (the
 * user who mounted it), -1 when there is none. */
struct fs_mountinfo {
    char fstype[64];
    dev_t dev;
    long user_id;
};
int fs_mountinfo_get(const char *path, struct fs_mountinfo *out);
/* One line of mountinfo (modified in place): 1 and *out filled if it is
 * the mount at path, else 0. */
int fs_mountinfo_parse(char *line, const char *path, struct fs_mountinfo *out);

#endif
