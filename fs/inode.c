/*
 * inode.c - the inode table: nodes keyed by (st_dev, st_ino), kernel file
 * handles instead of held descriptors, a bounded LRU of O_PATH descriptors,
 * and workspace-relative paths from (parent, name) links.  See inode.h for
 * the lifetime and locking rules.
 */
#include "fs/inode.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INO_MIN_BUCKETS 1024u
/* Descriptors closed per eviction pass; the rest wait for the next insert. */
#define INO_EVICT_BATCH 8

/* A kernel file handle with room for the largest one. */
union ino_fh {
    struct file_handle fh;
    unsigned char buf[sizeof(struct file_handle) + MAX_HANDLE_SZ];
};

/* Does open_by_handle_at fail for want of privilege (the errors that make
 * a table use names)? */
static int handle_refused(int err)
{
    return err == EPERM || err == EOPNOTSUPP || err == ENOSYS;
}

struct ino_table {
    pthread_mutex_t lock;
    int rootfd;
    dev_t rootdev;
    int handles_ok;             /* cleared once open_by_handle_at fails;
                                   atomic: read without the lock */
    struct ino_node *root;
    struct ino_node **buckets;
    size_t nbuckets;            /* power of two */
    unsigned long count;        /* nodes in the hash (root excluded) */
    unsigned long nfds;         /* cached descriptors */
    unsigned max_fds;
    struct ino_node *lru_head, *lru_tail;   /* head = most recently used */
    struct ino_node *dead;      /* destroyed under the lock, linked by hnext:
                                   closed and freed by table_unlock */
};

static size_t ino_hash(dev_t dev, ino_t ino, size_t nbuckets)
{
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;
    h ^= h >> 29;
    return (size_t)h & (nbuckets - 1);
}

/* ---- LRU (lock held) --------------------------------------------------- */

static void lru_unlink(struct ino_table *t, struct ino_node *n)
{
    if (n->lru_prev) n->lru_prev->lru_next = n->lru_next;
    else t->lru_head = n->lru_next;
    if (n->lru_next) n->lru_next->lru_prev = n->lru_prev;
    else t->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = NULL;
}

static void lru_push(struct ino_table *t, struct ino_node *n)
{
    n->lru_prev = NULL;
    n->lru_next = t->lru_head;
    if (t->lru_head) t->lru_head->lru_prev = n;
    else t->lru_tail = n;
    t->lru_head = n;
}

/* Take up to INO_EVICT_BATCH unpinned descriptors beyond the bound out of
 * the cache; the caller closes them after unlocking. */
static int lru_evict(struct ino_table *t, int *fds)
{
    int k = 0;
    while (t->nfds > t->max_fds && t->lru_tail && k < INO_EVICT_BATCH) {
        struct ino_node *v = t->lru_tail;
        lru_unlink(t, v);
        fds[k++] = v->fd;
        v->fd = -1;
        t->nfds--;
    }
    return k;
}

static void close_all(const int *fds, int k)
{
    for (int i = 0; i < k; i++)
        close(fds[i]);
}

/* ---- hash (lock held) -------------------------------------------------- */

static struct ino_node *hash_find(struct ino_table *t, dev_t dev, ino_t ino)
{
    struct ino_node *n = t->buckets[ino_hash(dev, ino, t->nbuckets)];
    while (n && !(n->ino == ino && n->dev == dev))
        n = n->hnext;
    return n;
}

static void hash_grow(struct ino_table *t)
{
    size_t nb = t->nbuckets * 2;
    struct ino_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return;     /* chains get longer; still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct ino_node *n = t->buckets[i], *next;
        for (; n; n = next) {
            next = n->hnext;
            size_t h = ino_hash(n->dev, n->ino, nb);
            n->hnext = b[h];
            b[h] = n;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

static void hash_insert(struct ino_table *t, struct ino_node *n)
{
    if (t->count >= t->nbuckets)
        hash_grow(t);
    size_t h = ino_hash(n->dev, n->ino, t->nbuckets);
    n->hnext = t->buckets[h];
    t->buckets[h] = n;
    t->count++;
}

static void hash_remove(struct ino_table *t, struct ino_node *n)
{
    struct ino_node **pp = &t->buckets[ino_hash(n->dev, n->ino, t->nbuckets)];
    while (*pp && *pp != n)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = n->hnext;
        t->count--;
    }
}

/* ---- lifetime (lock held) ---------------------------------------------- */

/* Unreachable from now on; table_unlock closes and frees it. */
static void node_destroy(struct ino_table *t, struct ino_node *n)
{
    hash_remove(t, n);
    if (n->fd >= 0) {
        /* Unpinned: nobody holds a ref, so nobody borrows the fd either. */
        lru_unlink(t, n);
        t->nfds--;
    }
    n->hnext = t->dead;
    t->dead = n;
}

/* Unlock, then close and free what was destroyed under the lock.  Closing
 * the last descriptor of an unlinked file frees it on disk (ext4 truncates
 * and discards: ~100 us here), which must not stall every other request
 * behind the table lock. */
static void table_unlock(struct ino_table *t)
{
    struct ino_node *dead = t->dead;
    t->dead = NULL;
    pthread_mutex_unlock(&t->lock);
    while (dead) {
        struct ino_node *next = dead->hnext;
        if (dead->fd >= 0)
            close(dead->fd);
        free(dead->name);
        free(dead);
        dead = next;
    }
}

/* Free n and then any ancestors it was the last thing holding. */
static void node_release_chain(struct ino_table *t, struct ino_node *n)
{
    while (n && n != t->root && n->nlookup == 0 && n->refs == 0) {
        struct ino_node *p = n->parent;
        node_destroy(t, n);
        if (p)
            p->refs--;
        n = p;
    }
}

/* ---- table ------------------------------------------------------------- */

/* Can this process reopen by handle?  Known before the first open, so
 * that ino_hold holds from the first file on (a handle refused later
 * would leave files opened before unreachable once unlinked). */
static int handles_usable(int rootfd)
{
    union ino_fh h;
    int mnt;
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(rootfd, "", &h.fh, &mnt, AT_EMPTY_PATH) < 0)
        return 1;   /* no handles here at all: nodes get none either */
    int fd = open_by_handle_at(rootfd, &h.fh, O_PATH | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd >= 0 || !handle_refused(errno);
}

int ino_table_new(struct ino_table **out, int rootfd, unsigned max_fds)
{
    struct stat st;
    if (fstat(rootfd, &st) < 0)
        return -errno;
    struct ino_table *t = calloc(1, sizeof(*t));
    struct ino_node *r = calloc(1, sizeof(*r));
    char *rname = strdup("");
    struct ino_node **b = calloc(INO_MIN_BUCKETS, sizeof(*b));
    if (!t || !r || !rname || !b) {
        free(t); free(r); free(rname); free(b);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->rootfd = rootfd;
    t->rootdev = st.st_dev;
    t->handles_ok = handles_usable(rootfd);
    t->buckets = b;
    t->nbuckets = INO_MIN_BUCKETS;
    t->max_fds = max_fds ? max_fds : 1;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->type = S_IFDIR;
    r->name = rname;
    r->fd = rootfd;     /* borrowed from the caller, never evicted */
    r->nlookup = 1;     /* the kernel's implicit reference to the root */
    t->root = r;
    *out = t;
    return 0;
}

void ino_table_free(struct ino_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct ino_node *n = t->buckets[i], *next;
        for (; n; n = next) {
            next = n->hnext;
            if (n->fd >= 0)
                close(n->fd);
            free(n->name);
            free(n);
        }
    }
    free(t->buckets);
    free(t->root->name);
    free(t->root);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

struct ino_node *ino_root(struct ino_table *t)
{
    return t->root;
}

/* ---- lookup ------------------------------------------------------------ */

/* A new, unhashed node for the inode behind fd (an O_PATH descriptor). */
static struct ino_node *node_new(struct ino_table *t, int fd,
                                 const struct stat *st, const char *name)
{
    union ino_fh h;
    unsigned hb = 0;
    int mnt;
    /* A handle is only usable with a mount fd of the same file system. */
    if (st->st_dev == t->rootdev) {
        h.fh.handle_bytes = MAX_HANDLE_SZ;
        if (name_to_handle_at(fd, "", &h.fh, &mnt, AT_EMPTY_PATH) == 0)
            hb = h.fh.handle_bytes;
    }
    struct ino_node *n = calloc(1, sizeof(*n) + hb);
    char *nm = strdup(name);
    if (!n || !nm) {
        free(n); free(nm);
        return NULL;
    }
    n->dev = st->st_dev;
    n->ino = st->st_ino;
    n->type = st->st_mode & S_IFMT;
    n->name = nm;
    n->fd = -1;
    n->handle_bytes = hb;
    if (hb) {
        n->handle_type = h.fh.handle_type;
        memcpy(n->handle, h.fh.f_handle, hb);
    }
    return n;
}

/* Lock held.  Point n at (parent, name); strdup under the lock only when the
 * name really changed, which lookups of a known name never do. */
static int node_rename_locked(struct ino_table *t, struct ino_node *n,
                              struct ino_node *parent, const char *name)
{
    if (n == t->root)
        return 0;
    n->gone = 0;
    if (strcmp(n->name, name) != 0) {
        char *nm = strdup(name);
        if (!nm) {
            n->gone = 1;
            return -ENOMEM;
        }
        free(n->name);
        n->name = nm;
    }
    if (n->parent != parent) {
        struct ino_node *old = n->parent;
        parent->refs++;
        n->parent = parent;
        if (old) {
            old->refs--;
            node_release_chain(t, old);
        }
    }
    return 0;
}

/* Lock held.  Offer a fresh O_PATH fd to n's cache slot; returns the fd the
 * caller must close (ours when the slot is taken), or -1. */
static int node_offer_fd(struct ino_table *t, struct ino_node *n, int fd,
                         int *evicted, int *nev)
{
    if (n->fd >= 0)
        return fd;
    n->fd = fd;
    t->nfds++;
    lru_push(t, n);
    *nev = lru_evict(t, evicted);
    return -1;
}

/* Two nodes' handles name different inodes.  Without handles (a file
 * system that gives none) nothing can be told apart: 0. */
static int node_handle_differs(const struct ino_node *a, const struct ino_node *b)
{
    if (!a->handle_bytes || !b->handle_bytes)
        return 0;
    return a->handle_type != b->handle_type || a->handle_bytes != b->handle_bytes ||
           memcmp(a->handle, b->handle, a->handle_bytes) != 0;
}

/* Lock held.  The node of (dev, ino), root included, or NULL. */
static struct ino_node *node_find_locked(struct ino_table *t, const struct stat *st)
{
    struct ino_node *n = hash_find(t, st->st_dev, st->st_ino);
    if (n == NULL && st->st_dev == t->root->dev && st->st_ino == t->root->ino)
        n = t->root;    /* a bind mount or link back to the root */
    return n;
}

/* Find or create the node for the inode behind fd (whose stat is *st) and
 * count one kernel lookup.  With adopt, fd is an O_PATH descriptor this
 * call consumes (it enters the cache or is closed); without, it stays the
 * caller's. */
static int node_enter(struct ino_table *t, struct ino_node *parent,
                      const char *name, int fd, int adopt,
                      const struct stat *st, struct ino_node **out)
{
    int evicted[INO_EVICT_BATCH], nev = 0;
    int spare = adopt ? fd : -1;
    pthread_mutex_lock(&t->lock);
    struct ino_node *n = node_find_locked(t, st);
    if (n && !n->gone) {
        n->nlookup++;
        node_rename_locked(t, n, parent, name);
        if (adopt)
            spare = node_offer_fd(t, n, fd, evicted, &nev);
        table_unlock(t);
        goto done;
    }
    table_unlock(t);

    struct ino_node *fresh = node_new(t, fd, st, name);
    if (!fresh) {
        if (spare >= 0)
            close(spare);
        return -ENOMEM;
    }
    pthread_mutex_lock(&t->lock);
    n = hash_find(t, st->st_dev, st->st_ino);
    if (n && n->gone && node_handle_differs(n, fresh)) {
        /* A deleted inode the kernel has not forgotten yet, whose number
         * the file system gave to this new one (ext4 reuses them): the old
         * node leaves the hash and lives on until its FORGET.  Reusing it
         * would serve the new inode through the old one's stale handle. */
        hash_remove(t, n);
        n = NULL;
    }
    if (n) {            /* known (a gone node's other link), or raced in */
        free(fresh->name);
        free(fresh);
        n->nlookup++;
        node_rename_locked(t, n, parent, name);
    } else {
        n = fresh;
        n->nlookup = 1;
        n->parent = parent;
        parent->refs++;
        hash_insert(t, n);
    }
    if (adopt)
        spare = node_offer_fd(t, n, fd, evicted, &nev);
    table_unlock(t);
done:
    if (spare >= 0)
        close(spare);
    close_all(evicted, nev);
    *out = n;
    return 0;
}

/* Count a lookup of an inode the table already has; -ENOENT if it has not. */
static int node_enter_known(struct ino_table *t, struct ino_node *parent,
                            const char *name, const struct stat *st,
                            struct ino_node **out)
{
    pthread_mutex_lock(&t->lock);
    struct ino_node *n = node_find_locked(t, st);
    if (n && n->gone)
        n = NULL;       /* maybe a reused number: node_enter checks */
    if (n) {
        n->nlookup++;
        node_rename_locked(t, n, parent, name);
    }
    table_unlock(t);
    *out = n;
    return n ? 0 : -ENOENT;
}

int ino_lookup(struct ino_table *t, struct ino_node *parent, int parentfd,
               const char *name, struct ino_node **out, struct stat *st)
{
    /* A known inode needs only its stat: the identity is (dev, ino), and
     * the stat returned is that inode's.  Pinning a new one with an O_PATH
     * descriptor (for its handle) costs two syscalls more, so only new
     * inodes pay them: relisting a directory (find, git status, rm -rf)
     * and revalidating dentries then cost one syscall per name. */
    if (fstatat(parentfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (node_enter_known(t, parent, name, st, out) == 0)
        return 0;
    int fd = openat(parentfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return node_enter(t, parent, name, fd, 1, st, out);
}

int ino_lookup_fd(struct ino_table *t, struct ino_node *parent,
                  const char *name, int fd, struct ino_node **out,
                  struct stat *st)
{
    if (fstat(fd, st) < 0)
        return -errno;
    return node_enter(t, parent, name, fd, 0, st, out);
}

void ino_forget(struct ino_table *t, struct ino_node *n, uint64_t nlookup)
{
    pthread_mutex_lock(&t->lock);
    if (n != t->root) {
        n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
        node_release_chain(t, n);
    }
    table_unlock(t);
}

void ino_ref(struct ino_table *t, struct ino_node *n)
{
    pthread_mutex_lock(&t->lock);
    n->refs++;
    table_unlock(t);
}

void ino_unref(struct ino_table *t, struct ino_node *n)
{
    pthread_mutex_lock(&t->lock);
    n->refs--;
    node_release_chain(t, n);
    table_unlock(t);
}

struct ino_node *ino_find(struct ino_table *t, dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&t->lock);
    struct ino_node *n = hash_find(t, dev, ino);
    if (n)
        n->refs++;
    table_unlock(t);
    return n;
}

int ino_set_name(struct ino_table *t, struct ino_node *n,
                 struct ino_node *parent, const char *name)
{
    pthread_mutex_lock(&t->lock);
    int rc = node_rename_locked(t, n, parent, name);
    table_unlock(t);
    return rc;
}

void ino_set_gone(struct ino_table *t, struct ino_node *n)
{
    pthread_mutex_lock(&t->lock);
    if (n != t->root)
        n->gone = 1;
    table_unlock(t);
}

void ino_name_removed(struct ino_table *t, struct ino_node *n,
                      struct ino_node *parent, const char *name)
{
    pthread_mutex_lock(&t->lock);
    if (n != t->root && n->parent == parent && strcmp(n->name, name) == 0)
        n->gone = 1;
    table_unlock(t);
}

/* ---- descriptors ------------------------------------------------------- */

/* Reopen by (parent, name) when handles are unavailable, and check the name
 * still leads to the same inode. */
static int reopen_by_name(struct ino_table *t, struct ino_node *n, int flags)
{
    char name[NAME_MAX + 1];
    pthread_mutex_lock(&t->lock);
    struct ino_node *p = n->parent;
    if (!p || n->gone) {
        table_unlock(t);
        return -ESTALE;
    }
    snprintf(name, sizeof(name), "%s", n->name);
    p->refs++;
    table_unlock(t);

    int rc, pfd = ino_fd_get(t, p);
    if (pfd < 0) {
        rc = pfd;
        goto out;
    }
    int fd = openat(pfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    rc = fd < 0 ? -errno : fd;
    ino_fd_put(t, p);
    if (fd >= 0) {
        struct stat st;
        if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ||
            st.st_ino != n->ino || st.st_dev != n->dev) {
            close(fd);
            rc = -ESTALE;
        }
    }
out:
    ino_unref(t, p);
    return rc;
}

static int open_node(struct ino_table *t, struct ino_node *n, int flags)
{
    if (n->handle_bytes && __atomic_load_n(&t->handles_ok, __ATOMIC_RELAXED)) {
        union ino_fh h;
        h.fh.handle_bytes = n->handle_bytes;
        h.fh.handle_type = n->handle_type;
        memcpy(h.fh.f_handle, n->handle, n->handle_bytes);
        int fd = open_by_handle_at(t->rootfd, &h.fh, flags | O_CLOEXEC);
        if (fd >= 0 || errno == ESTALE || errno == ENOENT)
            return fd >= 0 ? fd : -ESTALE;
        if (handle_refused(errno))
            /* not privileged: use names from now on */
            __atomic_store_n(&t->handles_ok, 0, __ATOMIC_RELAXED);
        else
            return -errno;
    }
    return reopen_by_name(t, n, flags);
}

int ino_fd_get(struct ino_table *t, struct ino_node *n)
{
    int evicted[INO_EVICT_BATCH], nev = 0;
    if (n == t->root)
        return t->rootfd;
    pthread_mutex_lock(&t->lock);
    if (n->fd >= 0) {
        if (n->fd_pins++ == 0)
            lru_unlink(t, n);
        int fd = n->fd;
        table_unlock(t);
        return fd;
    }
    table_unlock(t);

    int fd = open_node(t, n, O_PATH | O_NOFOLLOW);
    if (fd < 0)
        return fd;
    pthread_mutex_lock(&t->lock);
    int spare = -1;
    if (n->fd >= 0) {           /* raced with another opener */
        spare = fd;
        if (n->fd_pins == 0)
            lru_unlink(t, n);
    } else {
        n->fd = fd;
        t->nfds++;
        nev = lru_evict(t, evicted);
    }
    n->fd_pins++;
    fd = n->fd;
    table_unlock(t);
    if (spare >= 0)
        close(spare);
    close_all(evicted, nev);
    return fd;
}

int ino_hold(struct ino_table *t, struct ino_node *n)
{
    if (n == t->root || (n->handle_bytes && __atomic_load_n(&t->handles_ok, __ATOMIC_RELAXED)))
        return 0;
    int fd = ino_fd_get(t, n);
    return fd < 0 ? fd : 1;
}

void ino_fd_put(struct ino_table *t, struct ino_node *n)
{
    int evicted[INO_EVICT_BATCH], nev = 0;
    if (n == t->root)
        return;
    pthread_mutex_lock(&t->lock);
    if (--n->fd_pins == 0) {
        lru_push(t, n);
        nev = lru_evict(t, evicted);
    }
    table_unlock(t);
    close_all(evicted, nev);
}

int ino_open(struct ino_table *t, struct ino_node *n, int flags)
{
    flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
    if (n == t->root) {
        int fd = openat(t->rootfd, ".", flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    return open_node(t, n, flags);
}

/* ---- paths ------------------------------------------------------------- */

/* Lock held.  Write the path of n right-aligned ending at buf[end] (which
 * receives the NUL); returns the index where it starts or -errno. */
static long path_rtl(struct ino_table *t, struct ino_node *n, char *buf,
                     size_t end)
{
    size_t pos = end;
    buf[pos] = '\0';
    while (n != t->root) {
        if (!n->parent || n->gone)
            return -ENOENT;
        size_t l = strlen(n->name);
        if (pos < l + (n->parent != t->root))
            return -ENAMETOOLONG;
        pos -= l;
        memcpy(buf + pos, n->name, l);
        n = n->parent;
        if (n != t->root)
            buf[--pos] = '/';
    }
    return (long)pos;
}

int ino_path(struct ino_table *t, struct ino_node *n, char *buf, size_t len)
{
    if (len == 0)
        return -ENAMETOOLONG;
    pthread_mutex_lock(&t->lock);
    long pos = path_rtl(t, n, buf, len - 1);
    table_unlock(t);
    if (pos < 0)
        return (int)pos;
    size_t l = len - 1 - (size_t)pos;
    memmove(buf, buf + pos, l + 1);
    return (int)l;
}

int ino_child_path(struct ino_table *t, struct ino_node *parent,
                   const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    int l = ino_path(t, parent, buf, len);
    if (l < 0)
        return l;
    size_t need = (size_t)l + (l > 0) + nl + 1;
    if (need > len)
        return -ENAMETOOLONG;
    if (l > 0)
        buf[l++] = '/';
    memcpy(buf + l, name, nl + 1);
    return (int)(l + nl);
}

void ino_get_stats(struct ino_table *t, struct ino_stats *out)
{
    pthread_mutex_lock(&t->lock);
    out->nodes = t->count + 1;
    out->fds = t->nfds;
    table_unlock(t);
}

/* Lock-free and racy on purpose: two lookups at once may both add, which
 * only ends the caching one lookup early. */
void ino_note_child_lookup(struct ino_node *dir, mode_t child_mode)
{
    if (S_ISDIR(child_mode) ||
        atomic_load_explicit(&dir->child_looks, memory_order_relaxed) >= INO_LIST_LOOKS)
        return;
    atomic_fetch_add_explicit(&dir->child_looks, 1, memory_order_relaxed);
}

int ino_listing_cacheable(struct ino_node *dir)
{
    return S_ISDIR(dir->type) &&
           atomic_load_explicit(&dir->child_looks, memory_order_relaxed) < INO_LIST_LOOKS;
}
