/*
 * ops.h - the passthrough file system: an inode table and the libfuse
 * low-level operations that serve a backing directory.
 *
 * Inodes are kept as kernel file handles (name_to_handle_at) plus the
 * (parent, name) they were last seen under, never as one open descriptor per
 * inode: the open-file limit is 20,000 and workspaces hold millions of files.
 * A bounded cache keeps descriptors of recently used inodes open.
 *
 * .provfs/ at the root is neither listed nor reachable.  Every op that
 * changes the tree or opens a file reports to capture.h after the backing
 * operation succeeds.
 */
#ifndef FS_OPS_H
#define FS_OPS_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

enum fs_cache_mode {
    FS_CACHE_AUTO,     /* default: 1 s entry/attr timeouts, keep_cache     */
    FS_CACHE_NONE,     /* 0 timeouts, no keep_cache: others write the dir  */
    FS_CACHE_ALWAYS,   /* long timeouts: nobody else writes the dir        */
};

struct fs_params {
    int rootfd;                 /* O_RDONLY|O_DIRECTORY fd of the source   */
    enum fs_cache_mode cache;
    int allow_other;            /* serve other users (permission checks on) */
    int passthrough;            /* use kernel passthrough where offered     */
};

struct fs_ctx;

int fs_ctx_new(struct fs_ctx **out, const struct fs_params *p);
void fs_ctx_free(struct fs_ctx *ctx);

/* The operation table; pass the fs_ctx as userdata to fuse_session_new(). */
const struct fuse_lowlevel_ops *fs_lowlevel_ops(void);

struct fs_stats {
    unsigned long inodes;       /* inodes the kernel holds references to */
    unsigned long open_fds;     /* descriptors in the cache              */
    unsigned long opens_pt;     /* opens served by kernel passthrough    */
    unsigned long opens_cached; /* opens served through the daemon       */
    unsigned long reads;        /* READ requests the daemon answered     */
    unsigned long dir_opens;    /* OPENDIR requests (.prov not counted)  */
    unsigned long dir_cached;   /* ... answered with the listing cache on */
    unsigned long dir_reads;    /* READDIR(PLUS) requests answered       */
    int passthrough;            /* the kernel accepted passthrough       */
    int passthrough_offered;    /* ... offered it                        */
    int killpriv;               /* ... and FUSE_HANDLE_KILLPRIV_V2       */
    int ring_offered;           /* ... offered FUSE over io_uring        */
    int ring_queues;            /* io_uring queues serving, 0 if none    */
    unsigned long long ring_served; /* requests answered through them    */
};
void fs_get_stats(struct fs_ctx *ctx, struct fs_stats *out);

#endif
