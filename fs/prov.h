/*
 * prov.h - .prov/, the read-only virtual directory at the mount root
 * (design 6; the layout is documented in provfs-prov(7) and .prov/README).
 *
 * It wraps the passthrough operation table: requests on .prov's inodes are
 * answered here, everything else goes to the inner table.  Every file is
 * generated on demand from the catalog by the renderers the CLI uses;
 * nothing is materialized on disk.  Version contents stream from the
 * content store (content_pread), never loaded whole.
 *
 * Inode numbers: the FUSE node ids of .prov are odd (the passthrough uses
 * pointers, which are even), and st_ino is a hash of the virtual path, so
 * it is the same in every mount.  Permissions: a version's files carry the
 * version's owner, group and read bits, and the mount uses the kernel's
 * default_permissions, so only users who could read the file then can read
 * them (also under allow_other).
 */
#ifndef FS_PROV_H
#define FS_PROV_H

#include "fs/ops.h"

struct store;

#define PROV_NAME ".prov"

/* The table to hand to fuse_session_new(): .prov first, then `inner`. */
const struct fuse_lowlevel_ops *prov_wrap_ops(const struct fuse_lowlevel_ops *inner,
                                              struct store *st);
void prov_fini(void);

/* st_ino of a .prov path ("" for .prov itself): a hash, the same in every
 * mount.  Never 0, which readdir(3) would take for a deleted entry. */
unsigned long long prov_stable_ino(const char *vpath);

/* Is .prov listed by readdir of the root?  (policy: prov.listed) */
int prov_listed(void);

#endif
