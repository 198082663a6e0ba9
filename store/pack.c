/*
 * pack.c - pack files: one appending writer per process, a small cache of
 * read descriptors, recovery of uncommitted tails.  See pack.h.
 *
 * Descriptors are bounded (the daemon shares a 20,000 open-file limit with
 * the FUSE inode cache): one for the pack being written, PACK_RFDS for reads.
 */
#include "store/pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "store/codec.h"
#include "store/store_int.h"

#define PACK_RFDS 16

uint64_t pack_roll_size = PACK_ROLL;

struct pack_rfd {
    uint64_t pack;
    int fd;             /* -1 when the slot is free */
    unsigned users;     /* pack_read calls using fd right now */
    uint64_t used;      /* LRU clock */
};

/* A pack rolled while batches that wrote to it were still open: its lock is
 * kept (so no recovery cuts their bytes) until the last of them is done. */
struct pack_retired {
    uint64_t id;
    int fd;
    unsigned holds;
};

struct pack_state {
    pthread_mutex_t wmu;        /* the writer: cur_* and retired below */
    uint64_t cur_id;
    int cur_fd;                 /* -1 until the first append */
    unsigned cur_holds;         /* open batches with bytes in it */
    uint64_t cur_end, cur_synced;
    struct pack_retired *retired;
    size_t nretired;
    uint64_t seq;               /* appends so far, for pack_rollback */
    uint64_t cur_kicked;        /* writeback started up to here */
    uint64_t cur_dropped;       /* pages dropped from the cache up to here */
    int packdir;
    pthread_mutex_t rmu;        /* the read cache */
    struct pack_rfd rfd[PACK_RFDS];
    uint64_t clock;
};

static void pack_name(char *buf, size_t n, uint64_t id)
{
    snprintf(buf, n, "pack-%06" PRIu64, id);
}

static int pack_parse_name(const char *name, uint64_t *id)
{
    char *end;
    if (strncmp(name, "pack-", 5) || !name[5])
        return 0;
    *id = strtoull(name + 5, &end, 10);
    return *end == 0;
}

int pack_attach(struct store *st)
{
    struct pack_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return pv_err(-ENOMEM, "out of memory");
    pthread_mutex_init(&ps->wmu, NULL);
    pthread_mutex_init(&ps->rmu, NULL);
    ps->cur_fd = -1;
    for (int i = 0; i < PACK_RFDS; i++)
        ps->rfd[i].fd = -1;
    ps->packdir = openat(st->dirfd, "packs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ps->packdir < 0) {
        int rc = pv_errno(-errno, "opening %s/packs", st->dir);
        free(ps);
        return rc;
    }
    st->packs = ps;
    return 0;
}

void pack_detach(struct store *st)
{
    struct pack_state *ps = st->packs;
    if (!ps)
        return;
    if (ps->cur_fd >= 0)
        close(ps->cur_fd);     /* drops the flock */
    for (size_t i = 0; i < ps->nretired; i++)
        close(ps->retired[i].fd);
    free(ps->retired);
    for (int i = 0; i < PACK_RFDS; i++)
        if (ps->rfd[i].fd >= 0)
            close(ps->rfd[i].fd);
    close(ps->packdir);
    pthread_mutex_destroy(&ps->wmu);
    pthread_mutex_destroy(&ps->rmu);
    free(ps);
    st->packs = NULL;
}

uint64_t pack_committed(struct store *st, MDB_txn *txn, uint64_t pack)
{
    uint8_t kb[8];
    be64_put(kb, pack);
    MDB_val k = { 8, kb }, v;
    if (mdb_get(txn, st->dbi[DB_PACKS], &k, &v))
        return 0;
    struct cread r;
    cread_init(&r, v.mv_data, v.mv_size);
    return cread_u64(&r);
}

static int pack_committed_now(struct store *st, uint64_t pack, uint64_t *len)
{
    MDB_txn *txn;
    int rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn),
                           "reading pack lengths");
    if (rc)
        return rc;
    *len = pack_committed(st, txn, pack);
    mdb_txn_abort(txn);
    return 0;
}

int pack_commit_txn(struct store *st, MDB_txn *txn, uint64_t pack, uint64_t end)
{
    if (pack_committed(st, txn, pack) >= end)
        return 0;
    uint8_t kb[8];
    be64_put(kb, pack);
    struct cbuf b;
    cbuf_init(&b);
    cbuf_put_u64(&b, end);
    if (b.err)
        return pv_err(b.err, "out of memory");
    MDB_val k = { 8, kb }, v = { b.len, b.p };
    int rc = store_mdb_err(mdb_put(txn, st->dbi[DB_PACKS], &k, &v, 0),
                           "recording a pack length");
    cbuf_free(&b);
    return rc;
}

/* Highest pack id present in the directory (0 if none). */
static uint64_t pack_max_id(struct pack_state *ps)
{
    int fd = openat(ps->packdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    uint64_t max = 0, id;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    for (struct dirent *de; (de = readdir(d));)
        if (pack_parse_name(de->d_name, &id) && id > max)
            max = id;
    closedir(d);
    return max;
}

/* Take pack `id` for appending if nobody else holds it and it has room:
 * cut it to its committed length (its tail is ours to discard now). */
static int pack_try_take(struct store *st, uint64_t id, int create)
{
    struct pack_state *ps = st->packs;
    char name[32];
    pack_name(name, sizeof name, id);
    int fl = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = openat(ps->packdir, name, fl, 0600);
    if (fd < 0)
        return errno == EEXIST || errno == ENOENT ? 1 : pv_errno(-errno, "opening pack %s", name);
    uint64_t len = 0;
    int rc = 0;
    if (flock(fd, LOCK_EX | LOCK_NB))
        rc = 1;                         /* another writer has it */
    if (!rc)
        rc = pack_committed_now(st, id, &len);
    if (!rc && len >= pack_roll_size)
        rc = 1;
    if (!rc && ftruncate(fd, (off_t)len))
        rc = pv_errno(-errno, "cutting pack %s", name);
    if (!rc && create && fsync(ps->packdir))
        rc = pv_errno(-errno, "syncing the packs directory");
    if (rc) {
        close(fd);
        return rc;
    }
    ps->cur_id = id;
    ps->cur_fd = fd;
    ps->cur_holds = 0;
    ps->cur_end = ps->cur_synced = ps->cur_kicked = ps->cur_dropped = len;
    return 0;
}

/* Become the writer of a pack: the newest one if it is free and has room
 * (reuse), else a new one. */
static int pack_take(struct store *st, int reuse)
{
    uint64_t max = pack_max_id(st->packs);
    int rc = max && reuse ? pack_try_take(st, max, 0) : 1;
    for (uint64_t id = max + 1; rc == 1; id++)
        rc = pack_try_take(st, id, 1);
    return rc;
}

/* Finish the current pack: everything in it is synced before we let go. */
static int pack_roll(struct store *st)
{
    struct pack_state *ps = st->packs;
    if (ps->cur_synced < ps->cur_end && fdatasync(ps->cur_fd))
        return pv_errno(-errno, "syncing a pack");
    if (ps->cur_holds) {
        struct pack_retired *r = realloc(ps->retired, (ps->nretired + 1) * sizeof *r);
        if (!r)
            return pv_err(-ENOMEM, "out of memory");
        ps->retired = r;
        r[ps->nretired++] = (struct pack_retired){ ps->cur_id, ps->cur_fd, ps->cur_holds };
    } else {
        close(ps->cur_fd);
    }
    ps->cur_fd = -1;
    return pack_take(st, 0);
}

static int pack_write_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

/* Start writeback of every full 8 MiB written since the last kick, so the
 * fdatasync at commit finds little left to do and the disk works while the
 * CPU chunks and compresses.  Advisory: errors surface at fdatasync.
 *
 * The range kicked the time before is on disk by now (or nearly: wait for
 * it), so its pages are dropped from the page cache.  Pack bytes are
 * written once and seldom read, and keeping them cached would evict the
 * workspace's own files.  The freed pages are also what the next appends
 * get: on a VM, pages the host has not backed yet cost ~10x more to fill
 * (scripts/bench-store's workspace: system time 1.6-3.5 s without this,
 * ~1.45 s with it).  Waiting here, under the lock, is the disk's back
 * pressure; commit would wait for the same bytes at fdatasync. */
static void pack_kick(struct pack_state *ps)
{
    const uint64_t step = 8u << 20;
    if (ps->cur_end - ps->cur_kicked < step)
        return;
    if (ps->cur_kicked > ps->cur_dropped) {
        off_t a = (off_t)ps->cur_dropped, n = (off_t)(ps->cur_kicked - ps->cur_dropped);
        sync_file_range(ps->cur_fd, a, n, SYNC_FILE_RANGE_WAIT_BEFORE |
                        SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        posix_fadvise(ps->cur_fd, a, n, POSIX_FADV_DONTNEED);
        ps->cur_dropped = ps->cur_kicked;
    }
    sync_file_range(ps->cur_fd, (off_t)ps->cur_kicked,
                    (off_t)(ps->cur_end - ps->cur_kicked), SYNC_FILE_RANGE_WRITE);
    ps->cur_kicked = ps->cur_end;
}

int pack_append(struct store *st, const void *buf, size_t n,
                uint64_t *pack, uint64_t *off)
{
    struct pack_state *ps = st->packs;
    if (st->flags & STORE_RDONLY)
        return pv_err(-EROFS, "the store is open read-only");
    pthread_mutex_lock(&ps->wmu);
    int rc = 0;
    if (ps->cur_fd < 0)
        rc = pack_take(st, 1);
    else if (ps->cur_end && ps->cur_end + n > pack_roll_size)
        rc = pack_roll(st);
    if (!rc) {
        rc = pack_write_all(ps->cur_fd, buf, n, ps->cur_end);
        if (rc) {
            /* Give back whatever part of the write landed. */
            if (ftruncate(ps->cur_fd, (off_t)ps->cur_end)) {}
            char name[32];
            pack_name(name, sizeof name, ps->cur_id);
            rc = rc == -ENOSPC || rc == -EDQUOT
                ? pv_err(rc, "the store's disk is full (writing %s/packs/%s)", st->dir, name)
                : pv_errno(rc, "writing %s/packs/%s", st->dir, name);
        } else {
            *pack = ps->cur_id;
            *off = ps->cur_end;
            ps->cur_end += n;
            ps->seq++;
            ps->cur_holds++;
            pack_kick(ps);
        }
    }
    pthread_mutex_unlock(&ps->wmu);
    return rc;
}

int pack_mark(struct store *st, struct pack_mark *m)
{
    struct pack_state *ps = st->packs;
    int rc = 0;
    pthread_mutex_lock(&ps->wmu);
    if (ps->cur_fd < 0)
        rc = pack_take(st, 1);
    m->pack = ps->cur_id;
    m->off = ps->cur_end;
    m->seq = ps->seq;
    pthread_mutex_unlock(&ps->wmu);
    return rc;
}

int pack_rollback(struct store *st, const struct pack_mark *m, uint64_t nappends)
{
    struct pack_state *ps = st->packs;
    int cut = 0;
    pthread_mutex_lock(&ps->wmu);
    if (nappends && ps->cur_fd >= 0 && ps->cur_id == m->pack &&
        ps->seq == m->seq + nappends && !ftruncate(ps->cur_fd, (off_t)m->off)) {
        ps->cur_end = m->off;
        if (ps->cur_kicked > m->off)
            ps->cur_kicked = m->off;
        if (ps->cur_dropped > m->off)
            ps->cur_dropped = m->off;
        if (ps->cur_synced > m->off)
            ps->cur_synced = m->off;
        cut = 1;
    }
    pthread_mutex_unlock(&ps->wmu);
    return cut;
}

void pack_unhold(struct store *st, uint64_t pack, unsigned n)
{
    struct pack_state *ps = st->packs;
    pthread_mutex_lock(&ps->wmu);
    if (ps->cur_fd >= 0 && pack == ps->cur_id) {
        ps->cur_holds -= n < ps->cur_holds ? n : ps->cur_holds;
    } else {
        for (size_t i = 0; i < ps->nretired; i++) {
            struct pack_retired *r = &ps->retired[i];
            if (r->id != pack)
                continue;
            r->holds -= n < r->holds ? n : r->holds;
            if (r->holds == 0) {
                close(r->fd);
                *r = ps->retired[--ps->nretired];
            }
            break;
        }
    }
    pthread_mutex_unlock(&ps->wmu);
}

int pack_sync(struct store *st, uint64_t pack, uint64_t end)
{
    struct pack_state *ps = st->packs;
    int rc = 0;
    pthread_mutex_lock(&ps->wmu);
    /* A pack that is no longer current was synced when it was rolled. */
    if (ps->cur_fd >= 0 && pack == ps->cur_id && ps->cur_synced < end) {
        uint64_t upto = ps->cur_end;
        if (fdatasync(ps->cur_fd))
            rc = pv_errno(-errno, "syncing a pack");
        else
            ps->cur_synced = upto;
    }
    pthread_mutex_unlock(&ps->wmu);
    return rc;
}

/* Pick a slot to (re)use: a free one, else the least recently used idle one. */
static int pack_rfd_victim(struct pack_state *ps)
{
    int v = -1;
    for (int i = 0; i < PACK_RFDS; i++) {
        struct pack_rfd *r = &ps->rfd[i];
        if (r->fd < 0)
            return i;
        if (!r->users && (v < 0 || r->used < ps->rfd[v].used))
            v = i;
    }
    return v;
}

/* A read descriptor for pack, pinned until pack_rfd_put(). */
static int pack_rfd_get(struct store *st, uint64_t pack, int *slot)
{
    struct pack_state *ps = st->packs;
    int rc = 0, i;
    char name[32];
    pthread_mutex_lock(&ps->rmu);
    for (i = 0; i < PACK_RFDS; i++)
        if (ps->rfd[i].fd >= 0 && ps->rfd[i].pack == pack)
            goto found;
    if ((i = pack_rfd_victim(ps)) < 0) {
        rc = pv_err(-EMFILE, "too many concurrent pack reads");
        goto out;
    }
    pack_name(name, sizeof name, pack);
    int fd = openat(ps->packdir, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pv_errno(-errno, "opening pack %s", name);
        goto out;
    }
    if (ps->rfd[i].fd >= 0)
        close(ps->rfd[i].fd);
    ps->rfd[i].fd = fd;
    ps->rfd[i].pack = pack;
found:
    ps->rfd[i].users++;
    ps->rfd[i].used = ++ps->clock;
    *slot = i;
out:
    pthread_mutex_unlock(&ps->rmu);
    return rc;
}

static void pack_rfd_put(struct store *st, int slot)
{
    pthread_mutex_lock(&st->packs->rmu);
    st->packs->rfd[slot].users--;
    pthread_mutex_unlock(&st->packs->rmu);
}

int pack_read(struct store *st, uint64_t pack, uint64_t off, void *buf, size_t n)
{
    int slot = 0, rc = pack_rfd_get(st, pack, &slot);
    if (rc)
        return rc;
    int fd = st->packs->rfd[slot].fd;
    uint8_t *p = buf;
    while (n && !rc) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = pv_errno(-errno, "reading pack %" PRIu64, pack);
        else if (r == 0)
            rc = pv_err(-EIO, "pack %" PRIu64 " is shorter than the catalog says "
                        "(offset %" PRIu64 ")", pack, off);
        else
            p += r, n -= (size_t)r, off += (uint64_t)r;
    }
    pack_rfd_put(st, slot);
    return rc;
}

int pack_punch(struct store *st, uint64_t pack, uint64_t off, uint64_t len)
{
    char name[32];
    pack_name(name, sizeof name, pack);
    int fd = openat(st->packs->packdir, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return pv_errno(-errno, "opening pack %s", name);
    int rc = 0;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
        rc = pv_errno(-errno, "freeing space in pack %s", name);
    close(fd);
    return rc;
}

/* Cut one pack to its committed length if no writer holds it. */
static int pack_recover_one(struct store *st, uint64_t id, const char *name)
{
    int fd = openat(st->packs->packdir, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return pv_errno(-errno, "opening pack %s", name);
    struct stat sb;
    uint64_t len = 0;
    int rc = 0;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        close(fd);          /* a live writer owns its tail */
        return 0;
    }
    /* Read the length only now, under the lock: no writer can commit more. */
    rc = pack_committed_now(st, id, &len);
    if (!rc && fstat(fd, &sb))
        rc = pv_errno(-errno, "inspecting pack %s", name);
    if (!rc && (uint64_t)sb.st_size > len) {
        if (ftruncate(fd, (off_t)len) || fdatasync(fd))
            rc = pv_errno(-errno, "cutting the uncommitted tail of pack %s", name);
        else
            rc = 1;
    }
    close(fd);
    return rc;
}

int pack_recover(struct store *st)
{
    if (st->flags & STORE_RDONLY)
        return 0;
    int fd = openat(st->packs->packdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return pv_errno(-errno, "listing %s/packs", st->dir);
    }
    int cut = 0, rc = 0;
    uint64_t id;
    for (struct dirent *de; !rc && (de = readdir(d));) {
        if (!pack_parse_name(de->d_name, &id))
            continue;
        int r = pack_recover_one(st, id, de->d_name);
        if (r < 0)
            rc = r;
        cut += r > 0;
    }
    closedir(d);
    return rc ? rc : cut;
}

int pack_disk_usage(struct store *st, uint64_t *bytes)
{
    int fd = openat(st->packs->packdir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    uint64_t id;
    struct stat sb;
    *bytes = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return pv_errno(-errno, "listing %s/packs", st->dir);
    }
    for (struct dirent *de; (de = readdir(d));)
        if (pack_parse_name(de->d_name, &id) &&
            !fstatat(dirfd(d), de->d_name, &sb, 0))
            *bytes += (uint64_t)sb.st_blocks * 512;
    closedir(d);
    return 0;
}

int pack_file_size(struct store *st, uint64_t pack, uint64_t *size)
{
    char name[32];
    struct stat sb;
    pack_name(name, sizeof name, pack);
    if (fstatat(st->packs->packdir, name, &sb, 0))
        return -errno;
    *size = (uint64_t)sb.st_size;
    return 0;
}
