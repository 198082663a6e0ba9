/*
 * inode.h - the inode table behind the passthrough file system.
 *
 * One node per backing inode the kernel knows about, keyed by (st_dev,
 * st_ino) so that hard links share a node.  A node does NOT hold an open
 * descriptor: it holds the kernel file handle from name_to_handle_at() and
 * the (parent node, name) it was last seen under.  A descriptor is made on
 * demand with open_by_handle_at(rootfd, ...) (or, when the backing file
 * system gives no handles, openat(parent, name) checked against st_ino), and
 * a bounded LRU cache keeps O_PATH descriptors of hot nodes open.  This is
 * what lets a workspace of millions of files live under an open-file limit
 * of 20,000.
 *
 * Lifetime: a node lives while the kernel holds lookups on it (nlookup) or
 * while something inside the daemon pins it (refs): a child's parent
 * pointer, an open file handle, an in-flight call.  The root node lives as
 * long as the table.
 *
 * Locking: one mutex guards the hash, the counts, the names and the LRU.
 * Critical sections are a few pointer moves; no system call that can block
 * on disk runs under it.  The read/write path never touches the table.
 *
 * Assumes the daemon runs with CAP_DAC_READ_SEARCH (open_by_handle_at).
 */
#ifndef FS_INODE_H
#define FS_INODE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct ino_table;

struct ino_node {
    /* Key, immutable. */
    dev_t dev;
    ino_t ino;
    mode_t type;                /* S_IFMT bits, immutable                  */

    /* Guarded by the table lock. */
    uint64_t nlookup;           /* kernel references                        */
    uint64_t refs;              /* internal pins (children, handles, calls) */
    struct ino_node *parent;    /* last seen under (holds a ref), or NULL   */
    char *name;                 /* ... with this name; "" for the root      */
    int gone;                   /* no known name any more (unlinked, replaced) */
    int fd;                     /* cached O_PATH descriptor, or -1          */
    unsigned fd_pins;           /* borrowers of fd; not in the LRU while > 0 */
    struct ino_node *lru_prev, *lru_next;
    struct ino_node *hnext;     /* hash chain                                */

    /* Owned by ops.c, guarded by its I/O-mode lock (see ops.c). */
    unsigned io_cached;         /* open handles served with the page cache  */
    unsigned io_pt;             /* open handles in kernel passthrough       */
    int backing_id;             /* the kernel's id of the backing file, or 0 */
    int pt_wrote;               /* written around the FUSE page cache       */

    /* Lock-free: for a directory, how many of its non-directory children
     * the kernel has looked up by name, up to INO_LIST_LOOKS. */
    atomic_uint child_looks;

    /* Kernel file handle; handle_bytes == 0 when the fs gives none. */
    unsigned handle_bytes;
    int handle_type;
    unsigned char handle[];
};

struct ino_stats {
    unsigned long nodes;        /* nodes in the table, root included        */
    unsigned long fds;          /* cached descriptors (root's not counted)  */
};

/* rootfd: O_RDONLY|O_DIRECTORY descriptor of the backing root; stays owned
 * by the caller and must outlive the table.  max_fds bounds the cache. */
int ino_table_new(struct ino_table **out, int rootfd, unsigned max_fds);
void ino_table_free(struct ino_table *t);

struct ino_node *ino_root(struct ino_table *t);

/* Look up name in parent (an O_PATH or directory descriptor of the parent
 * node): stat it, find or create its node, count one kernel lookup, record
 * (parent, name).  Fills *st.  The node is returned with nlookup counted, not
 * pinned.  Returns 0 or -errno (-ENOENT for a missing name). */
int ino_lookup(struct ino_table *t, struct ino_node *parent, int parentfd,
               const char *name, struct ino_node **out, struct stat *st);

/* Same for a name just created and opened as fd (which stays the
 * caller's): saves reopening it. */
int ino_lookup_fd(struct ino_table *t, struct ino_node *parent,
                  const char *name, int fd, struct ino_node **out,
                  struct stat *st);

/* Drop n kernel lookups; frees the node when nothing else holds it. */
void ino_forget(struct ino_table *t, struct ino_node *n, uint64_t nlookup);

/* Internal pins (an open file, a directory stream). */
void ino_ref(struct ino_table *t, struct ino_node *n);
void ino_unref(struct ino_table *t, struct ino_node *n);

/* Find the node of (dev, ino) if the table has one, pinned (ino_unref it). */
struct ino_node *ino_find(struct ino_table *t, dev_t dev, ino_t ino);

/* Record that n is now known as (parent, name) (rename, link). */
int ino_set_name(struct ino_table *t, struct ino_node *n,
                 struct ino_node *parent, const char *name);
/* Record that n no longer has a name we know (unlinked, replaced). */
void ino_set_gone(struct ino_table *t, struct ino_node *n);
/* Mark n gone if it is still known as (parent, name). */
void ino_name_removed(struct ino_table *t, struct ino_node *n,
                      struct ino_node *parent, const char *name);

/* Borrow an O_PATH descriptor for n (a cached one, or a fresh one that
 * enters the cache).  Every successful get must be paired with a put.
 * Returns the fd or -errno (-ESTALE when the inode is gone). */
int ino_fd_get(struct ino_table *t, struct ino_node *n);
void ino_fd_put(struct ino_table *t, struct ino_node *n);
/* For an open file: keep n reachable until the file is closed.  A table
 * that reopens by name (no CAP_DAC_READ_SEARCH, or a file system without
 * handles) could not reach n again once its last name is gone (unlinked
 * while open), so its descriptor is cached and pinned: 1, to be undone
 * with ino_fd_put.  With handles nothing is needed: 0.  Or -errno.
 * Such a table holds up to two descriptors per open file. */
int ino_hold(struct ino_table *t, struct ino_node *n);

/* Open n afresh with open(2) flags (O_CREAT is not allowed).  The caller
 * owns the returned descriptor.  Returns fd or -errno. */
int ino_open(struct ino_table *t, struct ino_node *n, int flags);

/* Workspace-relative path of n (no leading '/', "" for the root) into buf.
 * Returns its length, -ENOENT if n or an ancestor has no known name, or
 * -ENAMETOOLONG. */
int ino_path(struct ino_table *t, struct ino_node *n, char *buf, size_t len);
/* Same for the child `name` of parent. */
int ino_child_path(struct ino_table *t, struct ino_node *parent,
                   const char *name, char *buf, size_t len);

void ino_get_stats(struct ino_table *t, struct ino_stats *out);

/* Listings (ops.c, "Directory listings"): the kernel looked up a child of
 * directory dir by name, and found it with mode child_mode.  Once
 * INO_LIST_LOOKS non-directory children have been looked up, dir's
 * listings are no longer served from the kernel's cache. */
#define INO_LIST_LOOKS 2
void ino_note_child_lookup(struct ino_node *dir, mode_t child_mode);
int ino_listing_cacheable(struct ino_node *dir);

#endif
