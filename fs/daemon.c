/*
 * daemon.c - run one mount: open, serve, drain, close.  See daemon.h.
 *
 * Order matters.  The source directory is opened before mounting so that
 * everything is served relative to that descriptor even when the mount
 * covers the same path.  The store is opened through /proc/self/fd/N so it
 * resolves to the real (shadowed) .provfs/.  At the end, the FUSE loop has
 * stopped taking requests before capture is drained, so nothing is queued
 * after the final commit.
 */
#include "fs/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "fs/capture.h"
#include "fs/control.h"
#include "fs/fspol.h"
#include "fs/mountinfo.h"
#include "fs/prov.h"
#include "fs/ring.h"
#include "fs/runtime.h"
#include "fs/snapshot.h"
#include "fs/wire.h"
#include "store/store.h"

struct daemon {
    const struct fs_mount_opts *o;
    int rootfd;
    struct store *st;
    struct fs_ctx *ctx;
    struct fuse_session *se;
    struct fs_runtime rt;
    int mounted, signals, capturing, snapping, controlled, policy;
};

static void daemon_ready(const struct fs_mount_opts *o, const char *msg)
{
    if (o->ready_fd < 0)
        return;
    size_t n = strlen(msg);
    if (write(o->ready_fd, msg, n) != (ssize_t)n)
        pv_warn("could not tell the parent we are ready");
    close(o->ready_fd);
}

/* "-o" values are comma-separated: escape commas and backslashes. */
static void daemon_opt_escape(char *out, size_t len, const char *s)
{
    size_t n = 0;
    for (; *s && n + 2 < len; s++) {
        if (*s == ',' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = 0;
}

static int daemon_session(struct daemon *d)
{
    const struct fs_mount_opts *o = d->o;
    char fsname[PATH_MAX * 2 + 16], esc[PATH_MAX * 2];
    daemon_opt_escape(esc, sizeof esc, o->source);
    snprintf(fsname, sizeof fsname, "-ofsname=%s", esc);
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    int rc = fuse_opt_add_arg(&args, "provfs") ||
             fuse_opt_add_arg(&args, "-osubtype=provfs,default_permissions") ||
             fuse_opt_add_arg(&args, fsname) ||
             (o->allow_other && fuse_opt_add_arg(&args, "-oallow_other")) ||
             (o->debug && fuse_opt_add_arg(&args, "-odebug"));
    if (rc) {
        fuse_opt_free_args(&args);
        return pv_err(-ENOMEM, "out of memory");
    }
    d->se = fuse_session_new(&args, prov_wrap_ops(fs_lowlevel_ops(), d->st),
                             sizeof(struct fuse_lowlevel_ops), d->ctx);
    fuse_opt_free_args(&args);
    if (!d->se)
        return pv_err(-EINVAL, "could not create the FUSE session (see the log)");
    if (fuse_set_signal_handlers(d->se))
        return pv_err(-EIO, "could not install signal handlers");
    d->signals = 1;
    if (fuse_session_mount(d->se, o->mountpoint))
        return pv_err(-EIO, "mounting %s failed (is /dev/fuse usable? see the log)", o->mountpoint);
    d->mounted = 1;
    return wire_install(d->se, o->passthrough, o->uring);
}

/* The kernel reads ahead 128 KiB on a FUSE mount (and caps it at the
 * INIT reply); sequential reads of datasets and checkpoints go faster with
 * more (~580 -> ~800 MB/s cold, measured while building the passthrough).
 * It runs on its own thread once the loop serves: its stat() of the mount
 * point cannot return before INIT is done, so the setting is not
 * overwritten.  Best effort: a failure only costs speed. */
static void *daemon_readahead(void *arg)
{
    const char *mountpoint = arg;
    char fstype[64], path[96];
    dev_t dev;
    struct stat sb;
    if (stat(mountpoint, &sb) ||
        fs_mountinfo_find(mountpoint, fstype, sizeof fstype, &dev) != 1)
        return NULL;
    snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev), minor(dev));
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (write(fd, "1024", 4) != 4)
        pv_debug("could not raise read-ahead on %s", path);
    close(fd);
    return NULL;
}

static int daemon_publish(struct daemon *d)
{
    struct fs_runtime *rt = &d->rt;
    char base[PATH_MAX - 8];   /* room for the ".sock" suffix */
    int rc = fs_runtime_base(d->o->mountpoint, base, sizeof base);
    if (rc)
        return rc;
    rt->pid = getpid();
    rt->rootfd = d->rootfd;
    snprintf(rt->source, sizeof rt->source, "%s", d->o->source);
    snprintf(rt->mountpoint, sizeof rt->mountpoint, "%s", d->o->mountpoint);
    snprintf(rt->log, sizeof rt->log, "%s", d->o->logfile ? d->o->logfile : "");
    snprintf(rt->sock, sizeof rt->sock, "%s.sock", base);
    snprintf(rt->policy, sizeof rt->policy, "%s", d->o->policy ? d->o->policy : "");
    if ((rc = fs_control_start(rt->sock, d->ctx)))
        return rc;
    d->controlled = 1;
    return fs_runtime_write(rt);
}

/* The scan at mount reports progress to `provfs mount`, which shows it on
 * a terminal: "progress DONE TOTAL" lines before the final answer. */
static void daemon_progress(void *ctx, uint64_t done, uint64_t total)
{
    const struct fs_mount_opts *o = ctx;
    if (o->ready_fd < 0 || total < 1024)
        return;
    char line[64];
    int n = snprintf(line, sizeof line, "progress %llu %llu\n",
                     (unsigned long long)done, (unsigned long long)total);
    if (write(o->ready_fd, line, (size_t)n) != n)
        pv_debug("progress line not delivered");
}

static int daemon_open(struct daemon *d)
{
    const struct fs_mount_opts *o = d->o;
    d->rootfd = open(o->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->rootfd < 0)
        return pv_errno(-errno, "opening %s", o->source);
    char store_path[64];
    snprintf(store_path, sizeof store_path, "/proc/self/fd/%d/.provfs", d->rootfd);
    int rc = store_open(&d->st, store_path, STORE_CREATE);
    if (rc)
        return pv_errctx(rc, "opening the store in %s/.provfs", o->source);
    if ((rc = fspol_init(d->rootfd, o->policy)))
        return pv_errctx(rc, "loading the policy");
    d->policy = 1;
    if ((rc = cap_start(d->st)))
        return pv_errctx(rc, "starting capture");
    d->capturing = 1;
    if ((rc = snap_start(d->st, d->rootfd)))
        return pv_errctx(rc, "starting snapshots");
    d->snapping = 1;
    if ((rc = snap_scan(daemon_progress, (void *)o)) < 0)
        return pv_errctx(rc, "scanning for changes made while unmounted");
    if (rc)
        pv_info("%d files changed while unmounted: external versions queued", rc);
    struct fs_params p = { .rootfd = d->rootfd, .cache = o->cache,
                           .allow_other = o->allow_other,
                           .passthrough = o->passthrough };
    if ((rc = fs_ctx_new(&d->ctx, &p)))
        return rc;
    return 0;
}

static void daemon_close(struct daemon *d)
{
    if (d->controlled)
        fs_control_stop();
    if (d->mounted) {
        fuse_session_unmount(d->se);
        fs_runtime_remove(d->o->mountpoint);
    }
    ring_stop();        /* its threads call into the session */
    if (d->snapping)
        snap_stop();    /* finishes every queued snapshot */
    if (d->capturing)
        cap_stop();     /* drains: a clean unmount loses nothing */
    if (d->policy)
        fspol_fini();
    if (d->signals)
        fuse_remove_signal_handlers(d->se);
    if (d->se)
        fuse_session_destroy(d->se);
    if (d->ctx)
        fs_ctx_free(d->ctx);
    prov_fini();
    store_close(d->st);
    if (d->rootfd >= 0)
        close(d->rootfd);
}

int fs_daemon_run(const struct fs_mount_opts *o)
{
    struct daemon d = { .o = o, .rootfd = -1 };
    int rc = daemon_open(&d);
    if (!rc)
        rc = daemon_session(&d);
    if (!rc)
        rc = daemon_publish(&d);
    if (rc) {
        char msg[PV_ERRMAX + 2];
        snprintf(msg, sizeof msg, "%s\n", pv_errmsg());
        pv_error("%s", pv_errmsg());
        daemon_ready(o, msg);
        daemon_close(&d);
        return rc;
    }
    pv_info("serving %s on %s (pid %d)", o->source, o->mountpoint, (int)getpid());
    pthread_t ra;
    if (pthread_create(&ra, NULL, daemon_readahead, (void *)o->mountpoint) == 0)
        pthread_detach(ra);
    daemon_ready(o, "ok\n");
    struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = 16 };
    rc = fuse_session_loop_mt(d.se, &cfg);
    pv_info("unmounting %s", o->mountpoint);
    daemon_close(&d);
    pv_info("stopped cleanly");
    return rc < 0 ? pv_errno(rc, "FUSE loop") : 0;
}
