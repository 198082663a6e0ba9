/*
 * proc.c - process identity and description read from /proc.
 *
 * Runs on the FUSE request path (every open by a process we have not seen,
 * or that may have exec'd), so it avoids stdio and heap use where it can:
 * small files are read into fixed stack buffers with open/read/close, and
 * everything about one process is read relative to a single O_PATH handle
 * on /proc/PID.  That handle also pins the identity: if the pid dies and is
 * reused while we read, lookups through the old handle fail instead of
 * silently describing the new process.
 *
 * Assumes Linux >= 3.5 /proc (stat field layout of proc(5) through field
 * 48, arg_start; "Tgid:", "Uid:", "Gid:" lines in status).  Callers pass thread-group ids except to
 * proc_tgid(), which is what turns a FUSE caller's thread id into one.
 *
 * Failure policy: stat, status and cmdline exist for every process that is
 * alive or a zombie, so failing to read them means the process is gone
 * (-ESRCH).  exe, cwd, environ and fd/N are best effort and become "" (or
 * empty) when unreadable: kernel threads and zombies have no exe or cwd,
 * environ may be EACCES, a closed fd has no link.
 */
#include "fs/proc.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

/* argv and environ can be huge (a linker command line); one MiB keeps a
 * hostile process from making the daemon allocate without bound. */
#define PROC_BLOB_CAP (1u << 20)
#define PROC_STAT_MAX 2048      /* comm (<= 64 bytes) + 52 numbers */
#define PROC_STATUS_MAX 4096    /* Tgid/Uid/Gid are in the first lines */

/* ENOENT and ESRCH both mean "no such process any more" in /proc. */
static bool proc_gone(int err)
{
    return err == ENOENT || err == ESRCH;
}

static int proc_open_dir(pid_t pid, int *dirfd)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (proc_gone(e))
            return pv_err(-ESRCH, "process %d does not exist", (int)pid);
        return pv_errno(-e, "opening %s", path);
    }
    *dirfd = fd;
    return 0;
}

/* Read up to cap bytes of dirfd/name into buf; returns the length. */
static ssize_t proc_read_fixed(int dirfd, const char *name, char *buf,
                               size_t cap)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return (ssize_t)len;
}

/* Read all of dirfd/name (up to PROC_BLOB_CAP) into a fresh heap buffer,
 * NUL-terminated one byte past *len so callers can treat it as a string. */
static int proc_read_blob(int dirfd, const char *name, char **out,
                          size_t *len_out)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    while (buf) {
        if (len == cap) {
            if (cap >= PROC_BLOB_CAP)
                break;          /* truncated at the cap, on purpose */
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf)
        return -ENOMEM;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[len] = 0;
    *out = buf;
    *len_out = len;
    return 0;
}

/* readlinkat into a heap string; "" when the link cannot be read. */
static int proc_read_link(int dirfd, const char *name, char **out)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf)
        n = 0;                  /* no link, or too long to be honest about */
    buf[n] = 0;
    *out = strdup(buf);
    return *out ? 0 : -ENOMEM;
}

/* ---- boot id ------------------------------------------------------------ */

static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static uint8_t boot_id[16];
static int boot_rc;

static int proc_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "00409a62-859f-472b-a6d2-d70e906ae222\n" -> 16 bytes. */
static int proc_parse_uuid(const char *s, size_t len, uint8_t out[16])
{
    size_t nib = 0;
    for (size_t i = 0; i < len && nib < 32; i++) {
        if (s[i] == '-')
            continue;
        int v = proc_hexval(s[i]);
        if (v < 0)
            return -EINVAL;
        if (nib % 2 == 0)
            out[nib / 2] = (uint8_t)(v << 4);
        else
            out[nib / 2] |= (uint8_t)v;
        nib++;
    }
    return nib == 32 ? 0 : -EINVAL;
}

static void proc_boot_init(void)
{
    char buf[64];
    ssize_t n = proc_read_fixed(AT_FDCWD, "/proc/sys/kernel/random/boot_id",
                                buf, sizeof buf);
    if (n < 0)
        boot_rc = (int)n;
    else
        boot_rc = proc_parse_uuid(buf, (size_t)n, boot_id);
}

int proc_boot_id(uint8_t out[16])
{
    pthread_once(&boot_once, proc_boot_init);
    if (boot_rc < 0)
        return pv_errno(boot_rc, "reading /proc/sys/kernel/random/boot_id");
    memcpy(out, boot_id, sizeof boot_id);
    return 0;
}

/* ---- /proc/PID/status --------------------------------------------------- */

/* The first number after KEY (e.g. "\nTgid:") in a NUL-terminated status
 * text.  The kernel escapes newlines in the Name: line, so a hostile comm
 * cannot forge a line. */
static int proc_status_field(const char *buf, const char *key, long *out)
{
    const char *p = strstr(buf, key);
    if (!p)
        return -ENOENT;
    p += strlen(key);
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Read status (NUL-terminated) from an open /proc/PID handle. */
static ssize_t proc_status_at(int dirfd, pid_t pid, char *buf, size_t cap)
{
    ssize_t n = proc_read_fixed(dirfd, "status", buf, cap - 1);
    if (n < 0 && proc_gone((int)-n))
        return pv_err(-ESRCH, "process %d exited", (int)pid);
    if (n < 0)
        return pv_errno((int)n, "reading /proc/%d/status", (int)pid);
    buf[n] = 0;
    return n;
}

int proc_tgid(pid_t tid, pid_t *tgid)
{
    /* /proc/TID resolves thread ids too, though readdir does not list them;
     * open the file by path directly to spend no syscall on a dir handle. */
    char path[48], buf[PROC_STATUS_MAX];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    ssize_t n = proc_read_fixed(AT_FDCWD, path, buf, sizeof buf - 1);
    if (n < 0 && proc_gone((int)-n))
        return pv_err(-ESRCH, "thread %d does not exist", (int)tid);
    if (n < 0)
        return pv_errno((int)n, "reading %s", path);
    buf[n] = 0;
    long v;
    if (proc_status_field(buf, "\nTgid:", &v) < 0 || v <= 0)
        return pv_err(-EINVAL, "no Tgid in %s", path);
    *tgid = (pid_t)v;
    return 0;
}

/* ---- /proc/PID/stat ----------------------------------------------------- */

/* A bounded cursor: the stat buffer need not be NUL-terminated. */
struct proc_cur {
    const char *p, *end;
};

static bool proc_is_space(char ch)
{
    return ch == ' ' || ch == '\n';
}

static void proc_skip_space(struct proc_cur *c)
{
    while (c->p < c->end && proc_is_space(*c->p))
        c->p++;
}

/* Skip one field we do not keep; fails only at the end of the buffer. */
static int proc_skip_field(struct proc_cur *c)
{
    proc_skip_space(c);
    if (c->p >= c->end)
        return -EINVAL;
    while (c->p < c->end && !proc_is_space(*c->p))
        c->p++;
    return 0;
}

/* One whole field of decimal digits: the fields we keep are unsigned. */
static int proc_next_u64(struct proc_cur *c, uint64_t *out)
{
    proc_skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -EINVAL;
    uint64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    if (c->p < c->end && !proc_is_space(*c->p))
        return -EINVAL;
    *out = v;
    return 0;
}

static int proc_stat_bad(const char *why)
{
    return pv_err(-EINVAL, "malformed /proc/PID/stat: %s", why);
}

/* The last ')' in buf: comm may contain ')' but nothing after it can. */
static const char *proc_last_paren(const char *buf, size_t len)
{
    for (size_t i = len; i > 0; i--)
        if (buf[i - 1] == ')')
            return buf + i - 1;
    return NULL;
}

/* Fields 3..48 after "pid (comm)": keep ppid, pgrp, session, starttime
 * and arg_start (numbering of proc(5)); the rest are skipped unparsed. */
static int proc_stat_fields(struct proc_cur *c, struct proc_stat *out)
{
    uint64_t ppid, pgid, sid;
    for (int i = 3; i <= 48; i++) {
        int rc;
        switch (i) {
        case 4: rc = proc_next_u64(c, &ppid); break;
        case 5: rc = proc_next_u64(c, &pgid); break;
        case 6: rc = proc_next_u64(c, &sid); break;
        case 22: rc = proc_next_u64(c, &out->start); break;
        case 48: rc = proc_next_u64(c, &out->arg_start); break;
        default: rc = proc_skip_field(c); break;
        }
        if (rc < 0)
            return proc_stat_bad(i == 3 ? "no state"
                                        : "short or non-numeric fields");
    }
    if (ppid > INT_MAX || pgid > INT_MAX || sid > INT_MAX)
        return proc_stat_bad("id out of range");
    out->ppid = (pid_t)ppid;
    out->pgid = (pid_t)pgid;
    out->sid = (pid_t)sid;
    return 0;
}

int proc_parse_stat(const char *buf, size_t len, struct proc_stat *out)
{
    const char *open_p = memchr(buf, '(', len);
    const char *close_p = proc_last_paren(buf, len);
    if (!open_p || !close_p || close_p < open_p)
        return proc_stat_bad("no (comm)");

    struct proc_cur c = { buf, open_p };
    uint64_t pid;
    if (proc_next_u64(&c, &pid) < 0 || pid == 0 || pid > INT_MAX)
        return proc_stat_bad("bad pid");

    struct proc_stat st;
    memset(&st, 0, sizeof st);
    c = (struct proc_cur){ close_p + 1, buf + len };
    int rc = proc_stat_fields(&c, &st);
    if (rc < 0)
        return rc;
    st.tgid = (pid_t)pid;
    size_t n = (size_t)(close_p - open_p - 1);
    if (n >= sizeof st.comm)
        n = sizeof st.comm - 1;     /* kernel thread names can be long */
    memcpy(st.comm, open_p + 1, n);
    *out = st;
    return 0;
}

static int proc_stat_at(int dirfd, const char *name, pid_t pid,
                        struct proc_stat *out)
{
    char buf[PROC_STAT_MAX];
    ssize_t n = proc_read_fixed(dirfd, name, buf, sizeof buf);
    if (n < 0 && proc_gone((int)-n))
        return pv_err(-ESRCH, "process %d exited", (int)pid);
    if (n < 0)
        return pv_errno((int)n, "reading /proc/%d/stat", (int)pid);
    return proc_parse_stat(buf, (size_t)n, out);
}

/* proc_read_stat runs on every request that needs the caller's identity.
 * Opening /proc/PID/stat each time cost three syscalls and a procfs path
 * walk (~17 us of CPU per event here), so the descriptors of the last
 * callers stay open and are re-read with one pread.  An open descriptor is
 * tied to its task, not to the number: once the task is gone it fails with
 * ESRCH, and a task that later takes the same number is opened afresh. */
#define PROC_FD_SLOTS 256

static struct proc_fd_slot {
    pthread_mutex_t lock;
    pid_t pid;
    int fd;
} proc_fds[PROC_FD_SLOTS];
static pthread_once_t proc_fds_once = PTHREAD_ONCE_INIT;

static void proc_fds_init(void)
{
    for (int i = 0; i < PROC_FD_SLOTS; i++) {
        pthread_mutex_init(&proc_fds[i].lock, NULL);
        proc_fds[i].fd = -1;
    }
}

/* One pread from offset 0; the length or -errno.  procfs gives a whole
 * stat line in one read. */
static ssize_t proc_pread(int fd, char *buf, size_t cap)
{
    ssize_t n;
    do
        n = pread(fd, buf, cap, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* One read of the slot's descriptor for pid (opened if needed); -errno. */
static ssize_t proc_stat_slot_read(struct proc_fd_slot *s, pid_t pid, char *buf,
                                   size_t cap)
{
    if (s->pid == pid && s->fd >= 0) {
        ssize_t n = proc_pread(s->fd, buf, cap);
        if (n >= 0 || !proc_gone((int)-n))
            return n;
        /* The task it was opened for is gone: the number may be another's. */
    }
    char path[48];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (s->fd >= 0)
        close(s->fd);
    s->pid = pid;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0)
        return -errno;
    return proc_pread(s->fd, buf, cap);
}

int proc_read_stat(pid_t pid, struct proc_stat *out)
{
    pthread_once(&proc_fds_once, proc_fds_init);
    struct proc_fd_slot *s = &proc_fds[(uint32_t)pid * 2654435761u % PROC_FD_SLOTS];
    char buf[PROC_STAT_MAX];
    pthread_mutex_lock(&s->lock);
    ssize_t n = proc_stat_slot_read(s, pid, buf, sizeof buf);
    pthread_mutex_unlock(&s->lock);
    if (n < 0 && proc_gone((int)-n))
        return pv_err(-ESRCH, "process %d exited", (int)pid);
    if (n < 0)
        return pv_errno((int)n, "reading /proc/%d/stat", (int)pid);
    return proc_parse_stat(buf, (size_t)n, out);
}

/* ---- image and full description ----------------------------------------- */

static int proc_cmdline_at(int dirfd, pid_t pid, char **argv, size_t *len)
{
    int rc = proc_read_blob(dirfd, "cmdline", argv, len);
    if (rc == -ENOMEM)
        return pv_err(rc, "out of memory reading /proc/%d/cmdline", (int)pid);
    if (rc < 0 && proc_gone(-rc))
        return pv_err(-ESRCH, "process %d exited", (int)pid);
    if (rc < 0)
        return pv_errno(rc, "reading /proc/%d/cmdline", (int)pid);
    return 0;
}

static int proc_image_at(int dirfd, pid_t pid, char **exe, char **argv,
                         size_t *argv_len)
{
    *exe = *argv = NULL;
    *argv_len = 0;
    /* A deleted exe reads as "/path (deleted)": kept, it is the truth. */
    if (proc_read_link(dirfd, "exe", exe) < 0)
        return pv_err(-ENOMEM, "out of memory");
    int rc = proc_cmdline_at(dirfd, pid, argv, argv_len);
    if (rc < 0) {
        free(*exe);
        *exe = NULL;
    }
    return rc;
}

int proc_read_image(pid_t tgid, char **exe, char **argv, size_t *argv_len)
{
    int dirfd, rc = proc_open_dir(tgid, &dirfd);
    if (rc < 0)
        return rc;
    rc = proc_image_at(dirfd, tgid, exe, argv, argv_len);
    close(dirfd);
    return rc;
}

/* Real uid and gid: the first of the four values on "Uid:" and "Gid:". */
static int proc_ids_at(int dirfd, pid_t pid, uid_t *uid, gid_t *gid)
{
    char buf[PROC_STATUS_MAX];
    ssize_t n = proc_status_at(dirfd, pid, buf, sizeof buf);
    if (n < 0)
        return (int)n;
    long u, g;
    if (proc_status_field(buf, "\nUid:", &u) < 0 ||
        proc_status_field(buf, "\nGid:", &g) < 0)
        return pv_err(-EINVAL, "no Uid/Gid in /proc/%d/status", (int)pid);
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

/* environ is private to its owner: EACCES (or any other failure) just means
 * we record no environment. */
static int proc_environ_at(int dirfd, char **env, size_t *len)
{
    int rc = proc_read_blob(dirfd, "environ", env, len);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        *len = 0;
        *env = calloc(1, 1);
        if (!*env)
            return -ENOMEM;
    }
    return 0;
}

static int proc_links_at(int dirfd, struct proc_info *pi)
{
    static const char *const fdname[3] = { "fd/0", "fd/1", "fd/2" };
    if (proc_read_link(dirfd, "cwd", &pi->cwd) < 0)
        return -ENOMEM;
    for (int i = 0; i < 3; i++)
        if (proc_read_link(dirfd, fdname[i], &pi->fd[i]) < 0)
            return -ENOMEM;
    return proc_environ_at(dirfd, &pi->env, &pi->env_len);
}

static int proc_info_at(int dirfd, pid_t tgid, struct proc_info *pi)
{
    int rc = proc_boot_id(pi->key.boot_id);
    if (rc < 0)
        return rc;
    if ((rc = proc_stat_at(dirfd, "stat", tgid, &pi->st)) < 0)
        return rc;
    pi->key.tgid = pi->st.tgid;
    pi->key.start = pi->st.start;
    if ((rc = proc_ids_at(dirfd, tgid, &pi->uid, &pi->gid)) < 0)
        return rc;
    rc = proc_image_at(dirfd, tgid, &pi->exe, &pi->argv, &pi->argv_len);
    if (rc < 0)
        return rc;
    if (proc_links_at(dirfd, pi) < 0)
        return pv_err(-ENOMEM, "out of memory reading process %d", (int)tgid);
    return 0;
}

int proc_read_info(pid_t tgid, struct proc_info *out)
{
    memset(out, 0, sizeof *out);
    int dirfd, rc = proc_open_dir(tgid, &dirfd);
    if (rc < 0)
        return rc;
    rc = proc_info_at(dirfd, tgid, out);
    close(dirfd);
    if (rc < 0)
        proc_info_free(out);
    return rc;
}

void proc_info_free(struct proc_info *pi)
{
    if (!pi)
        return;
    free(pi->exe);
    free(pi->argv);
    free(pi->cwd);
    free(pi->env);
    for (int i = 0; i < 3; i++)
        free(pi->fd[i]);
    memset(pi, 0, sizeof *pi);
}
