/*
 * ops.c - the libfuse low-level operations of the passthrough file system.
 *
 * Every request is served relative to the backing root descriptor opened
 * before the mount (so the mount may sit on top of its own source).  A FUSE
 * node id is the address of an ino_node (inode.h); the root is
 * FUSE_ROOT_ID.  Open files carry their own descriptor, so read and write
 * never touch the inode table or build a path; paths are built only for
 * the ops that report to capture.h, after the backing call succeeded.
 *
 * What this layer assumes:
 *  - The daemon mounts with -o default_permissions: the kernel makes every
 *    permission decision from the attributes we return, so backing calls
 *    run with the daemon's full credentials and never second-guess it.
 *    Run by root (the usual case) it reopens inodes by handle and gives
 *    new files to their caller; run by a user on their own directory it
 *    reopens inodes by name (inode.c) and every file is that user's.
 *  - The process umask is 0 (fs_ctx_new sets it): the kernel already applied
 *    the caller's umask to the modes it sends.
 *  - .provfs/ at the root is private to the daemon and must stay invisible.
 *
 * Locks: getlk/setlk/flock are deliberately not implemented and the POSIX
 * and flock lock capabilities are not requested.  The kernel then keeps
 * fcntl and flock locks itself, per FUSE inode, which is exactly right here:
 * every process that shares the files goes through this one mount (the
 * backing directory is shadowed by it), so local locks see all contenders,
 * and no lock round-trips to the daemon are paid.  SQLite relies on this.
 *
 * Writeback cache is off: with it, the kernel would delay writes past
 * close(), merge them across file handles and open O_WRONLY files for
 * reading, so release could not say "this handle wrote" and a snapshot taken
 * at release could miss data still in the page cache.
 *
 * Reads of files opened read-only skip the daemon altogether where the
 * kernel offers passthrough (wire.h, "I/O modes" below); writes always
 * come here.
 */
#include "fs/ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/capture.h"
#include "fs/prov.h"
#include "fs/snapshot.h"
#include "fs/inode.h"
#include "fs/ring.h"
#include "fs/wire.h"

#define FS_MAX_FDS      4096            /* bound of the O_PATH cache      */
#define FS_MAX_WRITE    (1u << 20)
#define FS_HIDDEN_NAME  ".provfs"       /* the store: never reachable     */
#define FS_PROV_NAME    ".prov"         /* reserved for the virtual tree  */

struct fs_ctx {
    struct ino_table *tab;
    int rootfd;
    enum fs_cache_mode cache;
    double timeout;             /* entry and attribute timeout, seconds */
    uid_t euid;
    gid_t egid;
    int passthrough;            /* may ask the kernel for passthrough     */
    pthread_mutex_t io_lock;    /* the I/O-mode fields of every ino_node  */
    atomic_ulong opens_pt, opens_cached, reads;     /* for status */
    atomic_ulong dir_opens, dir_cached, dir_reads;  /* ... listings */
};

/* An open regular file. */
struct fs_file {
    int fd;
    int write_open;             /* opened for writing: report CLOSE_WRITE */
    atomic_int wrote;           /* data changed through this handle       */
    int created;                /* made by this open                     */
    int truncated;              /* opened with O_TRUNC                   */
    int versioned;              /* a version was queued through it       */
    int closed_once;            /* a close-write event was recorded      */
    int pt;                     /* kernel passthrough (see I/O modes)     */
    int backing;                /* ... on this backing id                 */
    int drop_cache;             /* cached open after passthrough writes   */
    struct timespec pt_ctime;   /* backing ctime at open or last close     */
    uint64_t proc;              /* capture's id of the opener             */
    struct ino_node *node;      /* pinned until release                   */
    int held;                   /* holds node's descriptor (ino_hold)     */
};

/* An open directory stream. */
struct fs_dir {
    DIR *dp;
    off_t offset;
    struct dirent *entry;       /* read but not yet returned to the kernel */
    int prov_done;              /* root: the .prov entry was returned       */
    struct ino_node *node;
};

/* ---- small helpers ----------------------------------------------------- */

static struct fs_ctx *ctx_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static struct ino_node *node_of(struct fs_ctx *c, fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? ino_root(c->tab)
                               : (struct ino_node *)(uintptr_t)ino;
}

static fuse_ino_t ino_of(struct fs_ctx *c, struct ino_node *n)
{
    return n == ino_root(c->tab) ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static struct fs_file *file_of(struct fuse_file_info *fi)
{
    return (struct fs_file *)(uintptr_t)fi->fh;
}

static struct fs_dir *dir_of(struct fuse_file_info *fi)
{
    return (struct fs_dir *)(uintptr_t)fi->fh;
}

/* The store's directory: does not exist as far as the mount is concerned. */
static int is_hidden(struct fs_ctx *c, struct ino_node *parent, const char *name)
{
    return parent == ino_root(c->tab) && strcmp(name, FS_HIDDEN_NAME) == 0;
}

/* Names nobody may create at the root: the store and the future .prov/. */
static int is_reserved(struct fs_ctx *c, struct ino_node *parent,
                       const char *name)
{
    return parent == ino_root(c->tab) &&
           (strcmp(name, FS_HIDDEN_NAME) == 0 || strcmp(name, FS_PROV_NAME) == 0);
}

/* /proc/self/fd/N: how to reach an O_PATH descriptor with calls that
 * refuse them (chmod, truncate, xattrs). */
static void proc_fd_path(int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* chmod of an O_PATH descriptor: fchmodat2(AT_EMPTY_PATH) where the kernel
 * has it (6.6+), the /proc link otherwise. */
static int chmod_opath(int fd, mode_t mode)
{
    static atomic_int no_fchmodat2;
    if (!atomic_load_explicit(&no_fchmodat2, memory_order_relaxed)) {
        if (syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH) == 0)
            return 0;
        if (errno != ENOSYS && errno != EINVAL)
            return -errno;
        atomic_store_explicit(&no_fchmodat2, 1, memory_order_relaxed);
    }
    char proc[64];
    proc_fd_path(fd, proc, sizeof(proc));
    return chmod(proc, mode) < 0 ? -errno : 0;
}

static int caller_in_group(fuse_req_t req, gid_t g)
{
    gid_t list[256];
    if (fuse_req_ctx(req)->gid == g)
        return 1;
    int n = fuse_req_getgroups(req, 256, list);
    for (int i = 0; i < n && i < 256; i++)
        if (list[i] == g)
            return 1;
    return 0;
}

/* FUSE_HANDLE_KILLPRIV_V2 leaves it to us to drop privilege bits when
 * someone without CAP_FSETID writes or truncates (the kernel flags the
 * request): the daemon is root, so the backing file system would keep
 * them.  Same rule as the kernel's: set-user-ID always goes; set-group-ID
 * goes if the file is group-executable or the caller is not in its group.
 * fd may be O_PATH.  1 if bits were dropped, 0 if none, or -errno. */
static int kill_suidgid(fuse_req_t req, int fd)
{
    struct stat st;
    if (!wire_kill_suidgid() || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    mode_t m = st.st_mode & 07777, drop = m & S_ISUID;
    if ((m & S_ISGID) && ((m & S_IXGRP) || !caller_in_group(req, st.st_gid)))
        drop |= S_ISGID;
    if (!drop)
        return 0;
    int r = chmod_opath(fd, m & ~drop);
    return r < 0 ? r : 1;
}

static void fill_entry(struct fs_ctx *c, struct fuse_entry_param *e,
                       struct ino_node *n, const struct stat *st)
{
    memset(e, 0, sizeof(*e));
    e->ino = ino_of(c, n);
    e->attr = *st;
    e->attr_timeout = c->timeout;
    e->entry_timeout = c->timeout;
}

static void mark_wrote(struct fs_file *f)
{
    /* Test first: avoid bouncing the cache line on every write. */
    if (!atomic_load_explicit(&f->wrote, memory_order_relaxed))
        atomic_store_explicit(&f->wrote, 1, memory_order_relaxed);
}

/* ---- snapshots ---------------------------------------------------------- */

/* A regular file as snapshot.h wants it; path must outlive the call. */
static struct snap_file snap_of(struct ino_node *n, const char *path, uint64_t proc)
{
    struct snap_file sf = { n->dev, n->ino, path, proc, 0 };
    return sf;
}

/* An O_RDONLY descriptor of sf's file for the snapshot module, or -1 with
 * the reason in sf->open_err.  A root daemon gets it whatever the file's
 * mode and the handle's access mode.  A user's daemon may not (a file its
 * owner made write-only): that version is recorded without content, with
 * the reason, as any snapshot that fails is. */
static int snap_fd(struct fs_ctx *c, struct ino_node *n, struct snap_file *sf)
{
    int fd = ino_open(c->tab, n, O_RDONLY);
    if (fd >= 0)
        return fd;
    sf->open_err = -fd;
    return -1;
}

/* Before anything may change a file's content: wait for its in-flight
 * snapshot, and keep the content it had before first use. */
static void snap_before_change(struct fs_ctx *c, struct ino_node *n)
{
    char path[PATH_MAX];
    if (!S_ISREG(n->type) || ino_path(c->tab, n, path, sizeof(path)) < 0)
        return;
    struct snap_file sf = snap_of(n, path, 0);
    int fd = snap_fd(c, n, &sf);
    snap_write_open(&sf, fd);
    if (fd >= 0)
        close(fd);
}

/* ---- capture ----------------------------------------------------------- */

static uint64_t capture(fuse_req_t req, enum cap_op op, const char *path,
                        const char *path2, uint64_t arg)
{
    const struct fuse_ctx *fc = fuse_req_ctx(req);
    return cap_event(fc->pid, fc->uid, fc->gid, op, path, path2, arg);
}

static void capture_child(fuse_req_t req, struct ino_node *parent,
                          const char *name, enum cap_op op, const char *path2,
                          uint64_t arg)
{
    char path[PATH_MAX];
    if (ino_child_path(ctx_of(req)->tab, parent, name, path, sizeof(path)) < 0)
        return;
    uint64_t proc = capture(req, op, path, path2, arg);
    if (op == CAP_UNLINK)
        snap_unlinked(path, proc);  /* a tombstone, if the path had versions */
}

/* ---- lookup and forget ------------------------------------------------- */

/* Look name up in parent and fill e; 0 or -errno. */
static int do_lookup(struct fs_ctx *c, struct ino_node *parent,
                     const char *name, struct fuse_entry_param *e)
{
    struct ino_node *n;
    struct stat st;
    int pfd = ino_fd_get(c->tab, parent);
    if (pfd < 0)
        return pfd;
    int rc = ino_lookup(c->tab, parent, pfd, name, &n, &st);
    ino_fd_put(c->tab, parent);
    if (rc == 0)
        fill_entry(c, e, n, &st);
    return rc;
}

/* Directory listings and the kernel's cache of them.
 *
 * With cache_readdir the kernel keeps a directory's listing and serves the
 * next opendir-readdir-closedir from it, as long as the directory's mtime
 * and change counter stay the same (it re-reads the mtime once the
 * attribute timeout has passed, so a change made beside the mount shows as
 * soon as a changed dentry would).  Then `find`, globbing and os.listdir()
 * send no READDIR at all, where a READDIRPLUS costs an fstatat here and an
 * attribute update in the kernel per entry.  But a listing from the cache
 * carries names only: a program that then stats every entry (ls -l, du,
 * git) pays one LOOKUP per entry, where an uncached READDIRPLUS refreshes
 * all of their attributes in a few round trips.  So a directory is listed
 * from the cache only until the kernel has looked up INO_LIST_LOOKS of its
 * non-directory children by name; from then on, for the life of its node,
 * every listing is a fresh READDIRPLUS as before.  Lookups of
 * subdirectories do not count: a walker that only descends (find) looks
 * those up too.  The root is never cached: its listing depends on the
 * policy (.prov). */
static int listing_cacheable(struct fs_ctx *c, struct ino_node *n)
{
    return c->cache != FS_CACHE_NONE && n != ino_root(c->tab) &&
           ino_listing_cacheable(n);
}

/* A negative entry the kernel may cache for the entry timeout. */
static void reply_enoent(fuse_req_t req)
{
    struct fs_ctx *c = ctx_of(req);
    if (c->timeout > 0) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.entry_timeout = c->timeout;
        fuse_reply_entry(req, &e);
    } else {
        fuse_reply_err(req, ENOENT);
    }
}

static void op_lookup(fuse_req_t req, fuse_ino_t pino, const char *name)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *parent = node_of(c, pino);
    struct fuse_entry_param e;
    if (is_hidden(c, parent, name)) {
        reply_enoent(req);
        return;
    }
    /* Hook for the .prov/ virtual tree (design §6): when it exists, a lookup
     * of FS_PROV_NAME at the root answers from it here.  Until then the name
     * is looked up like any other (and cannot be created: is_reserved). */
    int rc = do_lookup(c, parent, name, &e);
    if (rc == -ENOENT) {
        reply_enoent(req);
    } else if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        ino_note_child_lookup(parent, e.attr.st_mode);
        fuse_reply_entry(req, &e);
    }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct fs_ctx *c = ctx_of(req);
    ino_forget(c->tab, node_of(c, ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    struct fs_ctx *c = ctx_of(req);
    for (size_t i = 0; i < count; i++)
        ino_forget(c->tab, node_of(c, forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

/* ---- attributes -------------------------------------------------------- */

/* fstat of a node: through the open file when the kernel names one. */
static int node_stat(struct fs_ctx *c, struct ino_node *n, struct stat *st)
{
    int fd = ino_fd_get(c->tab, n);
    if (fd < 0)
        return fd;
    int rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    rc = rc < 0 ? -errno : 0;
    ino_fd_put(c->tab, n);
    return rc;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino);
    struct stat st;
    int rc;
    /* The kernel passes a handle only for regular files (FUSE_GETATTR_FH),
     * and it is the only way to stat an unlinked-but-open file. */
    if (fi && S_ISREG(n->type))
        rc = fstat(file_of(fi)->fd, &st) < 0 ? -errno : 0;
    else
        rc = node_stat(c, n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, c->timeout);
}

static struct timespec set_time(int valid, int now_bit, int set_bit,
                                struct timespec t)
{
    if (valid & now_bit)
        t.tv_nsec = UTIME_NOW;
    else if (!(valid & set_bit))
        t.tv_nsec = UTIME_OMIT;
    return t;
}

/* Apply one setattr to the backing inode; f is the open file, if any, and
 * fd an O_PATH descriptor otherwise. */
static int apply_setattr(struct ino_node *n, struct fs_file *f, int fd,
                         const struct stat *a, int valid)
{
    if (valid & FUSE_SET_ATTR_MODE) {
        int r = f ? (fchmod(f->fd, a->st_mode) < 0 ? -errno : 0)
                  : chmod_opath(fd, a->st_mode);
        if (r < 0)
            return r;
    }
    if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t u = (valid & FUSE_SET_ATTR_UID) ? a->st_uid : (uid_t)-1;
        gid_t g = (valid & FUSE_SET_ATTR_GID) ? a->st_gid : (gid_t)-1;
        int r = f ? fchown(f->fd, u, g)
                  : fchownat(fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (r < 0)
            return -errno;
    }
    if (valid & FUSE_SET_ATTR_SIZE) {
        char proc[64];
        proc_fd_path(fd, proc, sizeof(proc));
        int r = f ? ftruncate(f->fd, a->st_size) : truncate(proc, a->st_size);
        if (r < 0)
            return -errno;
    }
    if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        struct timespec ts[2] = {
            set_time(valid, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME, a->st_atim),
            set_time(valid, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME, a->st_mtim),
        };
        /* AT_EMPTY_PATH works on O_PATH descriptors, symlinks included. */
        int r = f ? futimens(f->fd, ts)
                  : utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
        if (r < 0)
            return -errno;
    }
    (void)n;
    return 0;
}

/* Returns the process id of the truncation, if there was one. */
static uint64_t capture_setattr(fuse_req_t req, struct ino_node *n,
                                struct fs_file *f, const struct stat *a, int valid)
{
    const int meta = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
                     FUSE_SET_ATTR_GID | FUSE_SET_ATTR_ATIME |
                     FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                     FUSE_SET_ATTR_MTIME_NOW;
    char path[PATH_MAX];
    uint64_t proc = 0;
    if (ino_path(ctx_of(req)->tab, n, path, sizeof(path)) < 0)
        return 0;
    if (valid & FUSE_SET_ATTR_SIZE) {
        if (f)
            mark_wrote(f);
        proc = capture(req, CAP_TRUNCATE, path, NULL, (uint64_t)a->st_size);
    }
    if (valid & meta)
        capture(req, CAP_SETATTR, path, NULL, (uint64_t)(valid & meta));
    return proc;
}

/* truncate(2) changes content without an open: it makes a version too. */
static void snapshot_truncated(struct fs_ctx *c, struct ino_node *n, uint64_t proc)
{
    char path[PATH_MAX];
    if (ino_path(c->tab, n, path, sizeof(path)) < 0)
        return;
    struct snap_file sf = snap_of(n, path, proc);
    snap_release(&sf, snap_fd(c, n, &sf));
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int valid, struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino);
    /* fchmod(dirfd) also arrives with a handle: only files carry ours. */
    struct fs_file *f = (fi && S_ISREG(n->type)) ? file_of(fi) : NULL;
    struct stat st;
    int fd = -1, rc;
    if (!f && (fd = ino_fd_get(c->tab, n)) < 0) {
        fuse_reply_err(req, -fd);
        return;
    }
    if ((valid & FUSE_SET_ATTR_SIZE) && S_ISREG(n->type)) {
        snap_before_change(c, n);
        snap_write_begin(n->dev, n->ino, (uint64_t)attr->st_size, UINT64_MAX);
    }
    rc = apply_setattr(n, f, fd, attr, valid);
    if (rc == 0 && (rc = kill_suidgid(req, f ? f->fd : fd)) > 0)
        rc = 0;     /* the reply's attributes show it */
    if (rc == 0)
        rc = f ? (fstat(f->fd, &st) < 0 ? -errno : 0)
               : (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
                      ? -errno : 0);
    if (fd >= 0)
        ino_fd_put(c->tab, n);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    uint64_t proc = capture_setattr(req, n, f, attr, valid);
    if (!f && (valid & FUSE_SET_ATTR_SIZE) && S_ISREG(n->type))
        snapshot_truncated(c, n, proc);
    fuse_reply_attr(req, &st, c->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino);
    char buf[PATH_MAX + 1];
    int fd = ino_fd_get(c->tab, n);
    if (fd < 0) {
        fuse_reply_err(req, -fd);
        return;
    }
    ssize_t l = readlinkat(fd, "", buf, sizeof(buf));
    int err = l < 0 ? errno : 0;
    ino_fd_put(c->tab, n);
    if (err)
        fuse_reply_err(req, err);
    else if (l >= (ssize_t)sizeof(buf))
        fuse_reply_err(req, ENAMETOOLONG);
    else {
        buf[l] = '\0';
        fuse_reply_readlink(req, buf);
    }
}

/* ---- creating names ---------------------------------------------------- */

/*
 * Give a freshly created name to the caller.  Backing calls run as root
 * (see the header) and ownership is fixed afterwards with one fchown: that
 * keeps root's capabilities for the creation itself (the kernel already
 * decided the caller may create here, with its supplementary groups, which
 * per-thread setfsuid would not carry) and costs nothing when root creates.
 * A setgid directory already gave the new name its group: keep it.  chown
 * clears set-id bits of non-directories, so put them back.
 * On failure (a quota, say) the name is removed again.
 * A daemon that is not root cannot give files away: like any FUSE file
 * system a user mounts, its files belong to that user (other callers only
 * exist with allow_other, which /etc/fuse.conf must grant).
 */
static int set_owner(fuse_req_t req, int pfd, const char *name, int fd,
                     mode_t type, mode_t mode)
{
    struct fs_ctx *c = ctx_of(req);
    const struct fuse_ctx *fc = fuse_req_ctx(req);
    struct stat pst;
    if (c->euid != 0 || (fc->uid == c->euid && fc->gid == c->egid))
        return 0;
    gid_t gid = fc->gid;
    if (fstatat(pfd, "", &pst, AT_EMPTY_PATH) == 0 && (pst.st_mode & S_ISGID))
        gid = (gid_t)-1;
    int r = fd >= 0 ? fchown(fd, fc->uid, gid)
                    : fchownat(pfd, name, fc->uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r == 0 && !S_ISDIR(type) && !S_ISLNK(type) &&
        (mode & (S_ISUID | S_ISGID)))
        r = fd >= 0 ? fchmod(fd, mode & 07777)
                    : fchmodat(pfd, name, mode & 07777, 0);
    if (r < 0) {
        r = -errno;
        unlinkat(pfd, name, S_ISDIR(type) ? AT_REMOVEDIR : 0);
    }
    return r;
}

/* mknod, mkdir and symlink: create, own, look up, report. */
static void make_node(fuse_req_t req, fuse_ino_t pino, const char *name,
                      mode_t mode, dev_t rdev, const char *target)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *parent = node_of(c, pino);
    struct fuse_entry_param e;
    mode_t type = mode & S_IFMT;
    if (is_reserved(c, parent, name)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int pfd = ino_fd_get(c->tab, parent);
    if (pfd < 0) {
        fuse_reply_err(req, -pfd);
        return;
    }
    int rc;
    if (S_ISDIR(type))
        rc = mkdirat(pfd, name, mode & 07777);
    else if (S_ISLNK(type))
        rc = symlinkat(target, pfd, name);
    else
        rc = mknodat(pfd, name, mode, rdev);
    rc = rc < 0 ? -errno : set_owner(req, pfd, name, -1, type, mode);
    if (rc == 0) {
        struct ino_node *n;
        struct stat st;
        rc = ino_lookup(c->tab, parent, pfd, name, &n, &st);
        if (rc == 0)
            fill_entry(c, &e, n, &st);
    }
    ino_fd_put(c->tab, parent);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    enum cap_op op = S_ISDIR(type) ? CAP_MKDIR : S_ISLNK(type) ? CAP_SYMLINK
                                                                : CAP_MKNOD;
    capture_child(req, parent, name, op, target, S_ISLNK(type) ? 0 : mode);
    fuse_reply_entry(req, &e);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    make_node(req, parent, name, mode, rdev, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    make_node(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
                       const char *name)
{
    make_node(req, parent, name, S_IFLNK | 0777, 0, target);
}

static int link_fd(int fd, int npfd, const char *newname)
{
    if (linkat(fd, "", npfd, newname, AT_EMPTY_PATH) == 0)
        return 0;
    if (errno != ENOENT && errno != EPERM)
        return -errno;
    /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the proc link does not. */
    char proc[64];
    proc_fd_path(fd, proc, sizeof(proc));
    if (linkat(AT_FDCWD, proc, npfd, newname, AT_SYMLINK_FOLLOW) < 0)
        return -errno;
    return 0;
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t npino,
                    const char *newname)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino), *np = node_of(c, npino);
    struct fuse_entry_param e;
    char oldpath[PATH_MAX];
    if (is_reserved(c, np, newname)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int old_ok = ino_path(c->tab, n, oldpath, sizeof(oldpath)) >= 0;
    int fd = ino_fd_get(c->tab, n), npfd = -1, rc;
    if (fd < 0) {
        fuse_reply_err(req, -fd);
        return;
    }
    npfd = ino_fd_get(c->tab, np);
    if (npfd < 0) {
        rc = npfd;
    } else {
        rc = link_fd(fd, npfd, newname);
        if (rc == 0)
            rc = do_lookup(c, np, newname, &e);
        ino_fd_put(c->tab, np);
    }
    ino_fd_put(c->tab, n);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (old_ok) {
        char newpath[PATH_MAX];
        if (ino_child_path(c->tab, np, newname, newpath, sizeof(newpath)) >= 0) {
            uint64_t proc = capture(req, CAP_LINK, oldpath, newpath, 0);
            if (S_ISREG(n->type)) {
                struct snap_file sf = snap_of(n, newpath, proc);
                snap_linked(&sf, oldpath, snap_fd(c, n, &sf));
            }
        }
    }
    fuse_reply_entry(req, &e);
}

/* ---- removing and renaming names --------------------------------------- */

/* The node behind parent/name, pinned, if the table knows it; *nlink its
 * link count.  NULL when the name does not exist or has no node. */
static struct ino_node *node_at(struct fs_ctx *c, int pfd, const char *name,
                                nlink_t *nlink)
{
    struct stat st;
    if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return NULL;
    *nlink = st.st_nlink;
    return ino_find(c->tab, st.st_dev, st.st_ino);
}

/* After name left parent: forget the name; the node is gone if that was
 * its last link. */
static void name_left(struct fs_ctx *c, struct ino_node *n, nlink_t nlink,
                      struct ino_node *parent, const char *name)
{
    if (!n)
        return;
    if (nlink <= 1 || S_ISDIR(n->type))
        ino_set_gone(c->tab, n);
    else
        ino_name_removed(c->tab, n, parent, name);
    ino_unref(c->tab, n);
}

static void remove_name(fuse_req_t req, fuse_ino_t pino, const char *name,
                        int dir)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *parent = node_of(c, pino);
    nlink_t nlink = 0;
    if (is_hidden(c, parent, name)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    int pfd = ino_fd_get(c->tab, parent);
    if (pfd < 0) {
        fuse_reply_err(req, -pfd);
        return;
    }
    struct ino_node *n = node_at(c, pfd, name, &nlink);
    int rc = unlinkat(pfd, name, dir ? AT_REMOVEDIR : 0) < 0 ? -errno : 0;
    ino_fd_put(c->tab, parent);
    if (rc < 0) {
        if (n)
            ino_unref(c->tab, n);
        fuse_reply_err(req, -rc);
        return;
    }
    name_left(c, n, nlink, parent, name);
    capture_child(req, parent, name, dir ? CAP_RMDIR : CAP_UNLINK, NULL, 0);
    fuse_reply_err(req, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_name(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_name(req, parent, name, 1);
}

struct rename_nodes {
    struct ino_node *src, *dst;
    nlink_t dst_nlink;
};

/* Update the table after a successful rename: the moved node takes its new
 * name; the replaced one loses its name (or takes the old one on exchange). */
static void rename_update(struct fs_ctx *c, struct rename_nodes *rn,
                          struct ino_node *p, const char *name,
                          struct ino_node *np, const char *newname,
                          unsigned flags)
{
    if (rn->src && rn->src == rn->dst) {        /* two links of one inode */
        ino_unref(c->tab, rn->src);
        ino_unref(c->tab, rn->dst);
        return;
    }
    if (rn->src) {
        ino_set_name(c->tab, rn->src, np, newname);
        ino_unref(c->tab, rn->src);
    }
    if (rn->dst && (flags & RENAME_EXCHANGE)) {
        ino_set_name(c->tab, rn->dst, p, name);
        ino_unref(c->tab, rn->dst);
    } else {
        name_left(c, rn->dst, rn->dst_nlink, np, newname);
    }
}

static void capture_rename(fuse_req_t req, struct ino_node *p, const char *name,
                           struct ino_node *np, const char *newname,
                           unsigned flags, struct rename_nodes *rn)
{
    struct fs_ctx *c = ctx_of(req);
    char from[PATH_MAX], to[PATH_MAX];
    if (ino_child_path(c->tab, p, name, from, sizeof(from)) < 0 ||
        ino_child_path(c->tab, np, newname, to, sizeof(to)) < 0)
        return;
    uint64_t proc = capture(req, CAP_RENAME, from, to, flags);
    /* The moved file's content now lives at `to` (and, exchanged, the
     * other one's at `from`). */
    if (rn->src && S_ISREG(rn->src->type)) {
        struct snap_file sf = snap_of(rn->src, to, proc);
        snap_renamed(&sf, from, snap_fd(c, rn->src, &sf));
    }
    if ((flags & RENAME_EXCHANGE) && rn->dst && S_ISREG(rn->dst->type)) {
        struct snap_file sf = snap_of(rn->dst, from, proc);
        snap_renamed(&sf, to, snap_fd(c, rn->dst, &sf));
    }
}

static void op_rename(fuse_req_t req, fuse_ino_t pino, const char *name,
                      fuse_ino_t npino, const char *newname, unsigned flags)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *p = node_of(c, pino), *np = node_of(c, npino);
    struct rename_nodes rn = {0};
    nlink_t src_nlink;
    int rc = 0;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (is_hidden(c, p, name)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (is_reserved(c, np, newname)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int pfd = ino_fd_get(c->tab, p);
    if (pfd < 0) {
        fuse_reply_err(req, -pfd);
        return;
    }
    int npfd = ino_fd_get(c->tab, np);
    if (npfd < 0) {
        rc = npfd;
    } else {
        rn.src = node_at(c, pfd, name, &src_nlink);
        if (!(flags & RENAME_NOREPLACE))
            rn.dst = node_at(c, npfd, newname, &rn.dst_nlink);
        if (renameat2(pfd, name, npfd, newname, flags) < 0)
            rc = -errno;
        ino_fd_put(c->tab, np);
    }
    ino_fd_put(c->tab, p);
    if (rc < 0) {
        if (rn.src) ino_unref(c->tab, rn.src);
        if (rn.dst) ino_unref(c->tab, rn.dst);
        fuse_reply_err(req, -rc);
        return;
    }
    /* Snapshot while the nodes are still pinned, then update the table. */
    struct rename_nodes pinned = rn;
    if (pinned.src) ino_ref(c->tab, pinned.src);
    if (pinned.dst) ino_ref(c->tab, pinned.dst);
    rename_update(c, &rn, p, name, np, newname, flags);
    capture_rename(req, p, name, np, newname, flags, &pinned);
    if (pinned.src) ino_unref(c->tab, pinned.src);
    if (pinned.dst) ino_unref(c->tab, pinned.dst);
    fuse_reply_err(req, 0);
}

/* ---- files ------------------------------------------------------------- */

static struct fs_file *file_new(struct fs_ctx *c, struct ino_node *n, int fd,
                                int write_open)
{
    struct fs_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->fd = fd;
    f->write_open = write_open;
    f->node = n;
    ino_ref(c->tab, n);
    /* fstat, fchmod, fsetxattr... of a file unlinked while open arrive
     * without our handle; see ino_hold.  An open that cannot hold still
     * works, and so does everything but those calls. */
    f->held = ino_hold(c->tab, n) > 0;
    return f;
}

/* Open flags for the backing file.  O_DIRECT is dropped: libfuse's request
 * buffers are not aligned for it (EINVAL), and the kernel already bypasses
 * its cache for the FUSE file; the backing page cache stays coherent. */
static int backing_flags(int flags)
{
    return flags & ~(O_DIRECT | O_NOCTTY);
}

static int is_write_open(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY;
}

/* ---- I/O modes ----------------------------------------------------------
 *
 * The kernel serves an open file either through us, with the FUSE page
 * cache ("cached"), or on the backing file itself ("passthrough": reads
 * never reach the daemon; wire.h).  It fails an open with EIO if one inode
 * would have both at once, so the choice is made per inode, under io_lock:
 *  - a read-only open is passthrough unless the inode has cached opens;
 *  - an open for writing is cached unless the inode has passthrough opens;
 *    then it is passthrough with FOPEN_DIRECT_IO, so that its reads and
 *    writes still come here (versions and dirty ranges need the writes)
 *    and only its mmap goes to the backing file (close_write looks at the
 *    ctime for those writes).
 * Our counts drop at RELEASE, which the kernel sends after dropping its
 * own, so they never show fewer opens of a kind than the kernel has: the
 * rule cannot make it mix the two.  Writes by passthrough handles leave
 * the inode's FUSE page cache stale, so the next cached open drops it. */

static void io_mode_open(struct fs_ctx *c, struct fs_file *f)
{
    struct ino_node *n = f->node;
    int want = c->passthrough && wire_passthrough();
    pthread_mutex_lock(&c->io_lock);
    int pt = want && (f->write_open ? n->io_pt > 0 : n->io_cached == 0);
    if (pt && !n->backing_id) {
        int id = wire_backing_open(f->fd);
        if (id > 0)
            n->backing_id = id;
        else
            pt = 0;
    }
    if (pt) {
        n->io_pt++;
        f->backing = n->backing_id;
    } else {
        n->io_cached++;
        f->drop_cache = n->pt_wrote;
        n->pt_wrote = 0;
    }
    f->pt = pt;
    pthread_mutex_unlock(&c->io_lock);
    atomic_fetch_add_explicit(pt ? &c->opens_pt : &c->opens_cached, 1,
                              memory_order_relaxed);
}

static void io_mode_release(struct fs_ctx *c, struct fs_file *f)
{
    struct ino_node *n = f->node;
    pthread_mutex_lock(&c->io_lock);
    if (!f->pt) {
        n->io_cached--;
    } else {
        n->pt_wrote |= f->write_open;
        if (--n->io_pt == 0) {
            wire_backing_close(n->backing_id);
            n->backing_id = 0;
        }
    }
    pthread_mutex_unlock(&c->io_lock);
}

/* The handle is done with: its I/O mode, its hold, its node, its fd. */
static void file_free(struct fs_ctx *c, struct fs_file *f)
{
    io_mode_release(c, f);
    if (f->held)
        ino_fd_put(c->tab, f->node);
    ino_unref(c->tab, f->node);
    close(f->fd);
    free(f);
}

/* The open reply's flags.  A read-only handle needs no FLUSH: nothing is
 * recorded at its close, and locks are the kernel's own. */
static void io_mode_reply(struct fs_ctx *c, struct fs_file *f,
                          struct fuse_file_info *fi)
{
    fi->noflush = !f->write_open;
    if (f->pt) {
        struct stat st;
        if (f->write_open && fstat(f->fd, &st) == 0)
            f->pt_ctime = st.st_ctim;
        fi->keep_cache = 0;
        fi->direct_io = f->write_open;
        wire_reply_passthrough(f->backing, f->write_open);
        return;
    }
    /* Nobody else writes the backing files (the mount shadows them), so
     * cached pages stay valid across opens unless the user said otherwise
     * or a passthrough handle wrote around them. */
    fi->keep_cache = c->cache != FS_CACHE_NONE && !f->drop_cache;
}

/* A passthrough writer's mmap writes reach the backing file without us,
 * so a moved ctime marks the whole file dirty (the next version is hashed
 * in full rather than from tracked ranges). */
static int pt_changed(struct fs_file *f)
{
    struct stat st;
    if (!f->pt || fstat(f->fd, &st) < 0)
        return 0;
    int moved = st.st_ctim.tv_sec != f->pt_ctime.tv_sec ||
                st.st_ctim.tv_nsec != f->pt_ctime.tv_nsec;
    f->pt_ctime = st.st_ctim;
    if (moved)
        snap_write_begin(f->node->dev, f->node->ino, 0, UINT64_MAX);
    return moved;
}

static void op_create(fuse_req_t req, fuse_ino_t pino, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *parent = node_of(c, pino), *n = NULL;
    struct fuse_entry_param e;
    struct stat st;
    if (is_reserved(c, parent, name)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    int pfd = ino_fd_get(c->tab, parent);
    if (pfd < 0) {
        fuse_reply_err(req, -pfd);
        return;
    }
    int fd = openat(pfd, name, backing_flags(fi->flags) | O_CREAT | O_CLOEXEC,
                    mode & 07777);
    int rc = fd < 0 ? -errno : set_owner(req, pfd, name, fd, S_IFREG, mode);
    /* No kill_suidgid here: the kernel sends CREATE for a name it knows
     * is free, so its O_TRUNC truncates nothing and the mode is the one
     * the caller asked for. */
    if (rc == 0)
        rc = ino_lookup_fd(c->tab, parent, name, fd, &n, &st);
    ino_fd_put(c->tab, parent);
    struct fs_file *f = rc == 0 ? file_new(c, n, fd, 1) : NULL;
    if (!f) {
        if (n)
            ino_forget(c->tab, n, 1);
        if (fd >= 0)
            close(fd);
        fuse_reply_err(req, rc < 0 ? -rc : ENOMEM);
        return;
    }
    fill_entry(c, &e, n, &st);
    fi->fh = (uint64_t)(uintptr_t)f;
    io_mode_open(c, f);
    char path[PATH_MAX];
    f->created = 1;
    if (ino_child_path(c->tab, parent, name, path, sizeof(path)) >= 0) {
        struct snap_file sf = snap_of(n, path, 0);
        snap_created(&sf);
        f->proc = capture(req, CAP_CREATE, path, NULL, (uint64_t)fi->flags);
    }
    io_mode_reply(c, f, fi);
    if (fuse_reply_create(req, &e, fi) != 0)
        file_free(c, f);    /* the kernel never saw it: no release comes */
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino);
    /* A write-open may truncate at once: keep the old content first. */
    if (is_write_open(fi->flags) || (fi->flags & O_TRUNC))
        snap_before_change(c, n);
    if (fi->flags & O_TRUNC)
        snap_write_begin(n->dev, n->ino, 0, UINT64_MAX);
    int fd = ino_open(c->tab, n, backing_flags(fi->flags));
    int k = fd >= 0 && (fi->flags & O_TRUNC) ? kill_suidgid(req, fd) : 0;
    if (k > 0)
        wire_inval_attr(ino);
    if (k < 0) {
        close(fd);
        fd = k;
    }
    if (fd < 0) {
        fuse_reply_err(req, -fd);
        return;
    }
    int w = is_write_open(fi->flags);
    struct fs_file *f = file_new(c, n, fd, w);
    if (!f) {
        close(fd);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)f;
    io_mode_open(c, f);
    char path[PATH_MAX];
    if (ino_path(c->tab, n, path, sizeof(path)) >= 0) {
        if (!w) {
            struct snap_file sf = snap_of(n, path, 0);
            snap_open_read(&sf, fd);    /* before the event: origin first */
        }
        f->proc = capture(req, w ? CAP_OPEN_WRITE : CAP_OPEN_READ, path, NULL,
                          (uint64_t)fi->flags);
        if (w && (fi->flags & O_TRUNC)) {
            f->truncated = 1;
            capture(req, CAP_TRUNCATE, path, NULL, 0);
        }
    }
    io_mode_reply(c, f, fi);
    if (fuse_reply_open(req, fi) != 0)
        file_free(c, f);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    /* Hand libfuse the descriptor: it splices file -> pipe -> /dev/fuse
     * without copying through our memory when the kernel allows. */
    atomic_fetch_add_explicit(&ctx_of(req)->reads, 1, memory_order_relaxed);
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = file_of(fi)->fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino,
                         struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
    struct fs_file *f = file_of(fi);
    snap_write_begin(f->node->dev, f->node->ino, (uint64_t)off, fuse_buf_size(in));
    struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
    out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    out.buf[0].fd = f->fd;
    out.buf[0].pos = off;
    ssize_t r = fuse_buf_copy(&out, in, 0);
    if (r < 0) {
        fuse_reply_err(req, (int)-r);
        return;
    }
    mark_wrote(f);
    /* The kernel keeps its cached mode after a write: tell it. */
    if (kill_suidgid(req, f->fd) > 0)
        wire_inval_attr(ino);
    fuse_reply_write(req, (size_t)r);
}

/* A close of a handle that changed the file: record the close and queue
 * the version.
 *
 * Called at FLUSH, which close(2) waits for: RELEASE alone is not enough,
 * because the kernel sends it after close() returned, so the next
 * open(O_TRUNC) could overtake it and a version be lost.  A flush queues a
 * version only if data was written through the handle since the previous
 * close, so a shell's redirection (open, dup2, close of the spare
 * descriptor, then the writes) makes one version, not an empty one first.
 * RELEASE (last) catches the rest: writes after the last close (mmap
 * writeback), and a file created or truncated through the handle that got
 * no version through it. */
static void close_write(struct fs_ctx *c, struct fs_file *f, int last)
{
    int mapped = pt_changed(f);
    int changed = atomic_exchange(&f->wrote, 0) || mapped ||
                  (last && (f->created || f->truncated) && !f->versioned);
    if (!changed && !(last && !f->closed_once))
        return;
    /* A node with no known name (unlinked, replaced) has no path to
     * snapshot: nothing to report. */
    char path[PATH_MAX];
    if (ino_path(c->tab, f->node, path, sizeof(path)) < 0)
        return;
    f->closed_once = 1;
    cap_event_proc(f->proc, CAP_CLOSE_WRITE, path, NULL, (uint64_t)changed);
    if (changed) {
        f->versioned = 1;
        struct snap_file sf = snap_of(f->node, path, f->proc);
        snap_release(&sf, snap_fd(c, f->node, &sf));
    }
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_file *f = file_of(fi);
    if (f->write_open)
        close_write(ctx_of(req), f, 0);
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct fs_file *f = file_of(fi);
    if (f->write_open)
        close_write(c, f, 1);
    file_free(c, f);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    int fd = file_of(fi)->fd;
    int r = datasync ? fdatasync(fd) : fsync(fd);
    fuse_reply_err(req, r < 0 ? errno : 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t off, off_t len, struct fuse_file_info *fi)
{
    struct fs_file *f = file_of(fi);
    snap_write_begin(f->node->dev, f->node->ino, (uint64_t)off, (uint64_t)len);
    if (fallocate(f->fd, mode, off, len) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    mark_wrote(f);
    fuse_reply_err(req, 0);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
                               off_t off_in, struct fuse_file_info *fi_in,
                               fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len,
                               int flags)
{
    struct fs_file *out = file_of(fi_out);
    snap_write_begin(out->node->dev, out->node->ino, (uint64_t)off_out, len);
    ssize_t r = copy_file_range(file_of(fi_in)->fd, &off_in, out->fd,
                                &off_out, len, (unsigned)flags);
    if (r < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    if (r > 0)
        mark_wrote(out);
    fuse_reply_write(req, (size_t)r);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    off_t r = lseek(file_of(fi)->fd, off, whence);
    if (r < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_lseek(req, r);
}

/* ---- directories ------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct ino_node *n = node_of(c, ino);
    struct fs_dir *d = calloc(1, sizeof(*d));
    int fd = ino_open(c->tab, n, O_RDONLY | O_DIRECTORY);
    if (!d || fd < 0) {
        free(d);
        if (fd >= 0)
            close(fd);
        fuse_reply_err(req, fd < 0 ? -fd : ENOMEM);
        return;
    }
    d->dp = fdopendir(fd);
    if (!d->dp) {
        int err = errno;
        close(fd);
        free(d);
        fuse_reply_err(req, err);
        return;
    }
    d->node = n;
    ino_ref(c->tab, n);
    fi->fh = (uint64_t)(uintptr_t)d;
    atomic_fetch_add_explicit(&c->dir_opens, 1, memory_order_relaxed);
    if (listing_cacheable(c, n)) {
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
        atomic_fetch_add_explicit(&c->dir_cached, 1, memory_order_relaxed);
    }
    if (fuse_reply_open(req, fi) != 0) {
        closedir(d->dp);
        ino_unref(c->tab, n);
        free(d);
    }
}

static int is_dot(const char *name)
{
    return name[0] == '.' && (name[1] == '\0' ||
                              (name[1] == '.' && name[2] == '\0'));
}

/* Add one entry to the reply buffer; returns its size (which may exceed
 * rem: then nothing was added and any lookup is undone), or -errno to skip
 * the entry (it vanished since readdir saw it). */
static long add_entry(fuse_req_t req, struct fs_dir *d, const struct dirent *de,
                      char *p, size_t rem, int plus)
{
    struct fs_ctx *c = ctx_of(req);
    if (!plus) {
        struct stat st = {.st_ino = de->d_ino, .st_mode = DTTOIF(de->d_type)};
        return (long)fuse_add_direntry(req, p, rem, de->d_name, &st, de->d_off);
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    struct ino_node *n = NULL;
    if (is_dot(de->d_name)) {
        /* ino 0: the kernel lists the name but makes no dentry for it. */
        e.attr.st_ino = de->d_ino;
        e.attr.st_mode = DTTOIF(de->d_type);
    } else {
        struct stat st;
        int rc = ino_lookup(c->tab, d->node, dirfd(d->dp), de->d_name, &n, &st);
        if (rc < 0)
            return rc;
        fill_entry(c, &e, n, &st);
    }
    size_t sz = fuse_add_direntry_plus(req, p, rem, de->d_name, &e, de->d_off);
    if (sz > rem && n)
        ino_forget(c->tab, n, 1);
    return (long)sz;
}

static void do_readdir(fuse_req_t req, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
    struct fs_ctx *c = ctx_of(req);
    struct fs_dir *d = dir_of(fi);
    int root = d->node == ino_root(c->tab), err = 0;
    char *buf = malloc(size), *p = buf;
    size_t rem = size;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    atomic_fetch_add_explicit(&c->dir_reads, 1, memory_order_relaxed);
    if (off != d->offset) {
        seekdir(d->dp, off);
        d->entry = NULL;
        d->offset = off;
    }
    for (;;) {
        if (!d->entry) {
            errno = 0;
            d->entry = readdir(d->dp);
            if (!d->entry) {
                err = errno;
                break;
            }
        }
        const struct dirent *de = d->entry;
        if (!(root && strcmp(de->d_name, FS_HIDDEN_NAME) == 0)) {
            long sz = add_entry(req, d, de, p, rem, plus);
            if (sz >= 0 && (size_t)sz > rem)
                break;
            if (sz > 0) {
                p += sz;
                rem -= (size_t)sz;
            }
        }
        d->entry = NULL;
        d->offset = de->d_off;
    }
    /* The policy may list .prov (design 6: hidden by default, like ZFS's
     * snapdir=hidden); it comes after the last real entry, at an offset no
     * real entry has, so a re-read from there ends the listing. */
    if (root && !err && !d->entry && !d->prov_done && prov_listed()) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.attr.st_mode = S_IFDIR;
        e.attr.st_ino = prov_stable_ino("");
        size_t sz = plus ? fuse_add_direntry_plus(req, p, rem, PROV_NAME, &e, INT64_MAX)
                         : fuse_add_direntry(req, p, rem, PROV_NAME, &e.attr, INT64_MAX);
        if (sz <= rem) {
            p += sz;
            rem -= sz;
            d->prov_done = 1;
            d->offset = INT64_MAX;
        }
    }
    if (err && rem == size)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, size - rem);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    struct fs_ctx *c = ctx_of(req);
    struct fs_dir *d = dir_of(fi);
    closedir(d->dp);
    ino_unref(c->tab, d->node);
    free(d);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    int fd = dirfd(dir_of(fi)->dp);
    int r = datasync ? fdatasync(fd) : fsync(fd);
    fuse_reply_err(req, r < 0 ? errno : 0);
}

/* ---- the rest ---------------------------------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    if (fstatvfs(ctx_of(req)->rootfd, &sv) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &sv);
}

/* With default_permissions the kernel decides access(2) itself and never
 * sends ACCESS; should it come anyway, answer for existence only rather
 * than with root's view of the permission bits. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct fs_ctx *c = ctx_of(req);
    struct stat st;
    int rc = node_stat(c, node_of(c, ino), &st);
    fuse_reply_err(req, rc < 0 ? -rc : 0);
}

/* Run an xattr call on the node through its /proc/self/fd link (the f*xattr
 * calls refuse O_PATH descriptors). */
enum xa_kind { XA_GET, XA_LIST, XA_SET, XA_REMOVE };

static ssize_t xattr_call(struct fs_ctx *c, struct ino_node *n,
                          enum xa_kind k, const char *name, void *val,
                          size_t size, int flags)
{
    char proc[64];
    int fd = ino_fd_get(c->tab, n);
    if (fd < 0)
        return fd;
    proc_fd_path(fd, proc, sizeof(proc));
    ssize_t r;
    switch (k) {
    case XA_GET:  r = getxattr(proc, name, val, size); break;
    case XA_LIST: r = listxattr(proc, val, size); break;
    case XA_SET:  r = setxattr(proc, name, val, size, flags); break;
    default:      r = removexattr(proc, name); break;
    }
    if (r < 0)
        r = -errno;
    ino_fd_put(c->tab, n);
    return r;
}

/* Reply to a get/list: size 0 asks for the length only. */
static void xattr_reply(fuse_req_t req, fuse_ino_t ino, enum xa_kind k,
                        const char *name, size_t size)
{
    struct fs_ctx *c = ctx_of(req);
    char *buf = size ? malloc(size) : NULL;
    if (size && !buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t r = xattr_call(c, node_of(c, ino), k, name, buf, size, 0);
    if (r < 0)
        fuse_reply_err(req, (int)-r);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)r);
    else
        fuse_reply_buf(req, buf, (size_t)r);
    free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    xattr_reply(req, ino, XA_GET, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    xattr_reply(req, ino, XA_LIST, NULL, size);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    struct fs_ctx *c = ctx_of(req);
    ssize_t r = xattr_call(c, node_of(c, ino), XA_SET, name, (void *)value,
                           size, flags);
    fuse_reply_err(req, r < 0 ? (int)-r : 0);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct fs_ctx *c = ctx_of(req);
    ssize_t r = xattr_call(c, node_of(c, ino), XA_REMOVE, name, NULL, 0, 0);
    fuse_reply_err(req, r < 0 ? (int)-r : 0);
}

static void want(struct fuse_conn_info *conn, unsigned cap)
{
    if (conn->capable & cap)
        conn->want |= cap;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct fs_ctx *c = userdata;
    want(conn, FUSE_CAP_SPLICE_READ);
    want(conn, FUSE_CAP_SPLICE_WRITE);
    want(conn, FUSE_CAP_SPLICE_MOVE);
    want(conn, FUSE_CAP_READDIRPLUS);
    want(conn, FUSE_CAP_READDIRPLUS_AUTO);
    want(conn, FUSE_CAP_ASYNC_READ);
    want(conn, FUSE_CAP_PARALLEL_DIROPS);
    want(conn, FUSE_CAP_ATOMIC_O_TRUNC);
    want(conn, FUSE_CAP_AUTO_INVAL_DATA);
    if (c->cache != FS_CACHE_NONE)
        want(conn, FUSE_CAP_CACHE_SYMLINKS);
    /* See the header: locks stay in the kernel, no writeback cache. */
    conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS |
                              FUSE_CAP_WRITEBACK_CACHE);
    /* libfuse raises max_pages to match. */
    conn->max_write = FS_MAX_WRITE;
}

static const struct fuse_lowlevel_ops fs_ops = {
    .init            = op_init,
    .lookup          = op_lookup,
    .forget          = op_forget,
    .forget_multi    = op_forget_multi,
    .getattr         = op_getattr,
    .setattr         = op_setattr,
    .readlink        = op_readlink,
    .mknod           = op_mknod,
    .mkdir           = op_mkdir,
    .symlink         = op_symlink,
    .unlink          = op_unlink,
    .rmdir           = op_rmdir,
    .rename          = op_rename,
    .link            = op_link,
    .open            = op_open,
    .create          = op_create,
    .read            = op_read,
    .write_buf       = op_write_buf,
    /* FLUSH costs a round trip per close(), but it is the one moment the
     * closing process waits for: versions are queued there (close_write). */
    .flush           = op_flush,
    .release         = op_release,
    .fsync           = op_fsync,
    .opendir         = op_opendir,
    .readdir         = op_readdir,
    .readdirplus     = op_readdirplus,
    .releasedir      = op_releasedir,
    .fsyncdir        = op_fsyncdir,
    .statfs          = op_statfs,
    .access          = op_access,
    .setxattr        = op_setxattr,
    .getxattr        = op_getxattr,
    .listxattr       = op_listxattr,
    .removexattr     = op_removexattr,
    .fallocate       = op_fallocate,
    .copy_file_range = op_copy_file_range,
    .lseek           = op_lseek,
};

const struct fuse_lowlevel_ops *fs_lowlevel_ops(void)
{
    return &fs_ops;
}

/* ---- context ----------------------------------------------------------- */

static double cache_timeout(enum fs_cache_mode m)
{
    switch (m) {
    case FS_CACHE_NONE:   return 0.0;
    case FS_CACHE_ALWAYS: return 86400.0;
    default:              return 1.0;
    }
}

int fs_ctx_new(struct fs_ctx **out, const struct fs_params *p)
{
    struct fs_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rc = ino_table_new(&c->tab, p->rootfd, FS_MAX_FDS);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->rootfd = p->rootfd;
    c->cache = p->cache;
    c->passthrough = p->passthrough;
    pthread_mutex_init(&c->io_lock, NULL);
    c->timeout = cache_timeout(p->cache);
    c->euid = geteuid();
    c->egid = getegid();
    /* The kernel has applied the caller's umask to every mode it sends;
     * ours must not mask it a second time. */
    umask(0);
    *out = c;
    return 0;
}

void fs_ctx_free(struct fs_ctx *ctx)
{
    if (!ctx)
        return;
    ino_table_free(ctx->tab);
    pthread_mutex_destroy(&ctx->io_lock);
    free(ctx);
}

void fs_get_stats(struct fs_ctx *ctx, struct fs_stats *out)
{
    struct ino_stats s;
    ino_get_stats(ctx->tab, &s);
    out->inodes = s.nodes;
    out->open_fds = s.fds;
    out->opens_pt = atomic_load(&ctx->opens_pt);
    out->opens_cached = atomic_load(&ctx->opens_cached);
    out->reads = atomic_load(&ctx->reads);
    out->dir_opens = atomic_load(&ctx->dir_opens);
    out->dir_cached = atomic_load(&ctx->dir_cached);
    out->dir_reads = atomic_load(&ctx->dir_reads);
    out->passthrough = wire_passthrough();
    out->passthrough_offered = wire_passthrough_offered();
    out->killpriv = wire_killpriv();
    out->ring_offered = wire_ring_offered();
    out->ring_queues = ring_queues();
    out->ring_served = ring_served();
}
