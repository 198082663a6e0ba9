/* control.c - answer "status" and "sync" on a unix socket; see runtime.h. */
#include "fs/control.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "fs/capture.h"
#include "fs/fspol.h"
#include "fs/ops.h"
#include "fs/snapshot.h"

static struct {
    int fd;
    pthread_t thread;
    int running;
    char path[108];
    struct fs_ctx *ctx;
} ctl = { .fd = -1 };

/* Next space-separated hex field of *p into out (NUL-terminated). */
static int ctl_unhex(const char **p, char *out, size_t len)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    size_t n = 0;
    unsigned byte;
    while (*s && *s != ' ') {
        if (n + 1 >= len || sscanf(s, "%2x", &byte) != 1 || !s[1])
            return -EINVAL;
        out[n++] = (char)byte;
        s += 2;
    }
    out[n] = 0;
    *p = s;
    return n ? 0 : -EINVAL;
}

static void ctl_status(FILE *f)
{
    struct cap_stats cs;
    struct fs_stats fst;
    struct snap_stats ss;
    snap_get_stats(&ss);
    cap_get_stats(&cs);
    fs_get_stats(ctl.ctx, &fst);
    fprintf(f, "queued=%llu\ncommitted=%llu\nprocs=%llu\ngaps=%llu\nbatches=%llu\n"
            "inodes=%lu\nopen_fds=%lu\n"
            "snapshots_queued=%llu\nsnapshots_done=%llu\nsnapshots_failed=%llu\n"
            "snapshot_batches=%llu\n"
            "passthrough=%d\npt_offered=%d\nkillpriv=%d\nopens_pt=%lu\n"
            "opens_cached=%lu\nreads=%lu\ndir_opens=%lu\ndir_cached=%lu\n"
            "dir_reads=%lu\nring_offered=%d\nring_queues=%d\nring_served=%llu\n",
            (unsigned long long)cs.queued, (unsigned long long)cs.committed,
            (unsigned long long)cs.procs, (unsigned long long)cs.gaps,
            (unsigned long long)cs.batches, fst.inodes, fst.open_fds,
            (unsigned long long)ss.queued, (unsigned long long)ss.done,
            (unsigned long long)ss.failed, (unsigned long long)ss.batches,
            fst.passthrough, fst.passthrough_offered, fst.killpriv,
            fst.opens_pt, fst.opens_cached, fst.reads, fst.dir_opens, fst.dir_cached,
            fst.dir_reads, fst.ring_offered, fst.ring_queues, fst.ring_served);
    char pol[700], perr[1100];
    fspol_describe(pol, sizeof pol, perr, sizeof perr);
    fprintf(f, "policy=%s\n", pol);
    if (perr[0])
        fprintf(f, "policy_error=%s\n", perr);
    fputs("end\n", f);
}

/* "restore VNO SRC DST" (paths in hex): the peer, `provfs restore`, is
 * about to write DST with version VNO of SRC.  Record the event for the
 * peer's process and tell the snapshot module, so that the version its
 * write makes is marked as restored from the old one. */
static void ctl_restore(int cfd, const char *args, FILE *f)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    unsigned vno;
    char src[PATH_MAX], dst[PATH_MAX];
    const char *p = args;
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
        sscanf(p, "%u", &vno) != 1 || !(p = strchr(p, ' ')) ||
        ctl_unhex(&p, src, sizeof src) || ctl_unhex(&p, dst, sizeof dst)) {
        fputs("error bad restore request\n", f);
        return;
    }
    uint64_t proc = cap_event(cr.pid, cr.uid, cr.gid, CAP_RESTORE, dst, src, vno);
    snap_note_restore(proc, dst, src, vno);
    fputs("ok\n", f);
}

static void ctl_serve(int cfd)
{
    char req[4 * PATH_MAX + 64];
    size_t got = 0;
    while (got + 1 < sizeof req && !memchr(req, '\n', got)) {
        ssize_t n = read(cfd, req + got, sizeof req - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    req[got] = 0;
    req[strcspn(req, "\r\n")] = 0;
    int wfd = dup(cfd);
    FILE *f = wfd < 0 ? NULL : fdopen(wfd, "w");
    if (!f) {
        if (wfd >= 0)
            close(wfd);
        return;
    }
    if (!strcmp(req, "status"))
        ctl_status(f);
    else if (!strcmp(req, "sync"))
        fputs(snap_flush() || cap_flush() ? "error\n" : "ok\n", f);
    else if (!strncmp(req, "restore ", 8))
        ctl_restore(cfd, req + 8, f);
    else
        fprintf(f, "error unknown request\n");
    fclose(f);
}

static void *ctl_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int cfd = accept4(ctl.fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;      /* socket shut down: we are stopping */
        }
        ctl_serve(cfd);
        close(cfd);
    }
    return NULL;
}

int fs_control_start(const char *sock_path, struct fs_ctx *ctx)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock_path) >= sizeof sa.sun_path)
        return pv_err(-ENAMETOOLONG, "control socket path too long: %s", sock_path);
    strcpy(sa.sun_path, sock_path);
    strcpy(ctl.path, sock_path);
    ctl.ctx = ctx;
    unlink(sock_path);
    ctl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ctl.fd < 0)
        return pv_errno(-errno, "creating the control socket");
    if (bind(ctl.fd, (struct sockaddr *)&sa, sizeof sa) || listen(ctl.fd, 16)) {
        int rc = pv_errno(-errno, "binding the control socket %s", sock_path);
        close(ctl.fd);
        ctl.fd = -1;
        return rc;
    }
    int rc = pthread_create(&ctl.thread, NULL, ctl_loop, NULL);
    if (rc) {
        close(ctl.fd);
        ctl.fd = -1;
        return pv_errno(-rc, "starting the control thread");
    }
    pthread_setname_np(ctl.thread, "provfs-control");
    ctl.running = 1;
    return 0;
}

void fs_control_stop(void)
{
    if (!ctl.running)
        return;
    shutdown(ctl.fd, SHUT_RDWR);   /* wakes accept() */
    pthread_join(ctl.thread, NULL);
    close(ctl.fd);
    unlink(ctl.path);
    ctl.fd = -1;
    ctl.running = 0;
}
