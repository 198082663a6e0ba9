/*
 * cmd_mount.c - `provfs mount` and `provfs umount`.
 *
 * mount: validate, clean up a stale mount left by a dead daemon, then fork
 * a daemon (unless -f) and wait until it reports that the mount is up, so
 * that when the command returns the mount is usable.
 *
 * umount: ask the daemon to commit everything queued, unmount, and wait for
 * the daemon to exit (it drains whatever arrived in between), so that when
 * the command returns every event is on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/mounts.h"
#include "common/err.h"
#include "common/log.h"
#include "fs/daemon.h"
#include "fs/runtime.h"

#define MOUNT_USAGE "provfs mount [-f] [-o OPTS] [--source SRC] [--policy FILE] DIR\n" \
    "  OPTS: allow_other, cache=auto|none|always, passthrough=auto|off,\n" \
    "        uring=auto|off, debug"

static int mount_parse_opts(char *opts, struct fs_mount_opts *o)
{
    for (char *save, *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "allow_other")) o->allow_other = 1;
        else if (!strcmp(t, "debug")) o->debug = 1;
        else if (!strcmp(t, "cache=auto")) o->cache = FS_CACHE_AUTO;
        else if (!strcmp(t, "cache=none")) o->cache = FS_CACHE_NONE;
        else if (!strcmp(t, "cache=always")) o->cache = FS_CACHE_ALWAYS;
        else if (!strcmp(t, "passthrough=auto")) o->passthrough = 1;
        else if (!strcmp(t, "passthrough=off")) o->passthrough = 0;
        else if (!strcmp(t, "uring=auto")) o->uring = 1;
        else if (!strcmp(t, "uring=off")) o->uring = 0;
        else return cli_usage(MOUNT_USAGE, "unknown mount option '%s'", t);
    }
    return 0;
}

/* fusermount3, which mounts for users other than root, lets them ask for
 * allow_other only when /etc/fuse.conf says user_allow_other.  Say so
 * here rather than leave it in the daemon's log. */
static int mount_check_allow_other(const struct fs_mount_opts *o)
{
    if (!o->allow_other || geteuid() == 0)
        return 0;
    FILE *f = fopen("/etc/fuse.conf", "r");
    char line[256];
    int allowed = 0;
    while (f && !allowed && fgets(line, sizeof line, f)) {
        char word[32];
        allowed = sscanf(line, " %31s", word) == 1 && !strcmp(word, "user_allow_other");
    }
    if (f)
        fclose(f);
    if (allowed)
        return 0;
    return cli_failf("mount: allow_other: only root may use it unless /etc/fuse.conf "
                     "has a line 'user_allow_other'");
}

/* A provfs mount whose daemon is gone answers ENOTCONN to everything:
 * detach it so the directory is usable again. */
static int mount_check_target(const char *mnt)
{
    char fstype[64];
    int is_mount = cli_mount_lookup(mnt, fstype, sizeof fstype);
    if (is_mount < 0)
        return cli_fail("mount");
    if (is_mount && !strcmp(fstype, "fuse.provfs")) {
        struct fs_runtime rt;
        if (fs_runtime_read(mnt, &rt) == 0 && kill(rt.pid, 0) == 0)
            return cli_failf("mount: %s is already a provfs mount (daemon pid %d)", mnt, (int)rt.pid);
        int rc = cli_unmount(mnt, 1);
        if (rc)
            return cli_failf("mount: %s: stale provfs mount (daemon dead) could not be "
                             "removed: %s", mnt, strerror(-rc));
        fs_runtime_remove(mnt);
        fputs("provfs: removed a stale mount of ", stderr);
        cli_put_bytes(stderr, mnt, strlen(mnt));
        fputs(" left by a dead daemon\n", stderr);
    }
    struct stat sb;
    if (stat(mnt, &sb))
        return cli_failf("mount: %s: %s", mnt, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return cli_failf("mount: %s: not a directory", mnt);
    return 0;
}

static int mount_check_fuse(void)
{
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return cli_failf("mount: /dev/fuse is unusable: %s (is the fuse module "
                         "loaded, and are you allowed to use it?)", strerror(errno));
    close(fd);
    return 0;
}

/* Read the daemon's startup answer, showing "progress D T" lines of the
 * scan for changes made while unmounted on a terminal. */
static void mount_read_answer(int fd, char *msg, size_t len)
{
    FILE *f = fdopen(dup(fd), "r");
    int tty = isatty(STDERR_FILENO), shown = 0;
    msg[0] = 0;
    if (!f)
        return;
    char line[PV_ERRMAX + 2];
    unsigned long long done, total;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "progress %llu %llu", &done, &total) == 2) {
            if (tty)
                fprintf(stderr, "\rprovfs: scanning for changes made while unmounted: "
                        "%llu/%llu files", done, total);
            shown = tty;
            continue;
        }
        snprintf(msg, len, "%s", line);
        break;
    }
    if (shown)
        fputc('\n', stderr);
    fclose(f);
}

/* Run the daemon in a child; report its startup result. */
static int mount_daemonize(struct fs_mount_opts *o)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC))
        return cli_failf("mount: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return cli_failf("mount: fork: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        setsid();
        if (chdir("/")) { /* keep going: only matters for relative paths */ }
        int nul = open("/dev/null", O_RDWR);
        FILE *log = fopen(o->logfile, "a");
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        if (log)
            dup2(fileno(log), 2);
        pv_log_open(log ? log : stderr, o->debug ? PV_LOG_DEBUG : PV_LOG_INFO);
        o->ready_fd = pfd[1];
        _exit(fs_daemon_run(o) ? 1 : 0);
    }
    close(pfd[1]);
    char msg[PV_ERRMAX + 2] = "";
    mount_read_answer(pfd[0], msg, sizeof msg);
    close(pfd[0]);
    if (!strcmp(msg, "ok\n")) {
        fputs("provfs: mounted ", stdout);
        cli_put_bytes(stdout, o->source, strlen(o->source));
        fputs(" on ", stdout);
        cli_put_bytes(stdout, o->mountpoint, strlen(o->mountpoint));
        printf(" (daemon pid %d, log %s)\n", (int)pid, o->logfile);
        return 0;
    }
    msg[strcspn(msg, "\n")] = 0;
    waitpid(pid, NULL, WNOHANG);
    return cli_failf("mount: %s: %s", o->mountpoint,
                     msg[0] ? msg : "the daemon exited during startup (see its log)");
}

int cmd_mount(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "source", required_argument, NULL, 's' },
        { "policy", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    struct fs_mount_opts o = { .cache = FS_CACHE_AUTO, .passthrough = 1, .uring = 1, .ready_fd = -1 };
    int fg = 0, c;
    const char *src_arg = NULL, *pol_arg = NULL;
    char pol_abs[PATH_MAX];
    char *opts = NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+fo:s:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fg = 1; break;
        case 'o': opts = optarg; break;
        case 's': src_arg = optarg; break;
        case 'p': pol_arg = optarg; break;
        case 'h': printf("usage: %s\n", MOUNT_USAGE); return 0;
        default: return cli_usage(MOUNT_USAGE, "bad arguments");
        }
    }
    if (optind + 1 != argc)
        return cli_usage(MOUNT_USAGE, "expected one directory");
    if (opts && (c = mount_parse_opts(opts, &o)))
        return c;
    if ((c = mount_check_allow_other(&o)))
        return c;

    char mnt[PATH_MAX], src[PATH_MAX], base[PATH_MAX], logfile[PATH_MAX + 8];
    if (cli_abspath(argv[optind], mnt, sizeof mnt))
        return cli_fail("mount");
    if ((c = mount_check_target(mnt)) || (c = mount_check_fuse()))
        return c;
    char given[PATH_MAX];
    memcpy(given, mnt, sizeof given);
    if (!realpath(given, mnt))
        return cli_failf("mount: %s: %s", argv[optind], strerror(errno));
    if (!realpath(src_arg ? src_arg : mnt, src))
        return cli_failf("mount: source %s: %s", src_arg, strerror(errno));
    struct stat sb;
    if (stat(src, &sb) || !S_ISDIR(sb.st_mode))
        return cli_failf("mount: source %s: not a directory", src);
    if (fs_runtime_base(mnt, base, sizeof base))
        return cli_fail("mount");
    snprintf(logfile, sizeof logfile, "%s.log", base);
    if (pol_arg && !realpath(pol_arg, pol_abs))
        return cli_failf("mount: policy %s: %s", pol_arg, strerror(errno));
    o.policy = pol_arg ? pol_abs : NULL;
    o.source = src;
    o.mountpoint = mnt;
    o.logfile = logfile;
    if (!fg)
        return mount_daemonize(&o);
    pv_log_open(stderr, o.debug ? PV_LOG_DEBUG : PV_LOG_INFO);
    return fs_daemon_run(&o) ? cli_fail("mount") : 0;
}

#define UMOUNT_USAGE "provfs umount DIR"

static void umount_wait_exit(pid_t pid)
{
    /* The daemon drains its queue after the unmount; wait for it (bounded,
     * a huge backlog gets a minute). */
    for (int i = 0; i < 6000 && kill(pid, 0) == 0; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (kill(pid, 0) == 0)
        fprintf(stderr, "provfs: umount: daemon %d is still draining; it will "
                "finish in the background\n", (int)pid);
}

static int umount_busy(const char *mnt, pid_t daemon)
{
    fputs("provfs: umount: ", stderr);
    cli_put_bytes(stderr, mnt, strlen(mnt));
    fputs(" is busy", stderr);
    fputs("; held by: ", stderr);
    if (!cli_mount_holders(mnt, daemon, stderr, 20))
        fputs("(unknown processes)", stderr);
    fputc('\n', stderr);
    return 1;
}

int cmd_umount(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        printf("usage: %s\n", UMOUNT_USAGE);
        return 0;
    }
    if (argc != 2)
        return cli_usage(UMOUNT_USAGE, "expected one directory");
    char mnt[PATH_MAX], fstype[64], ans[64];
    if (cli_abspath(argv[1], mnt, sizeof mnt))
        return cli_fail("umount");
    int m = cli_mount_lookup(mnt, fstype, sizeof fstype);
    if (m < 0)
        return cli_fail("umount");
    if (!m || strcmp(fstype, "fuse.provfs"))
        return cli_failf("umount: %s is not a provfs mount", mnt);
    struct fs_runtime rt;
    int live = fs_runtime_read(mnt, &rt) == 0 && kill(rt.pid, 0) == 0;
    if (!live) {
        int rc = cli_unmount(mnt, 1);
        if (rc)
            return cli_failf("umount: %s: %s", mnt, strerror(-rc));
        fs_runtime_remove(mnt);
        fputs("provfs: ", stderr);
        cli_put_bytes(stderr, mnt, strlen(mnt));
        fputs(": the daemon was dead; removed the stale mount\n", stderr);
        return 0;
    }
    if (fs_runtime_request(&rt, "sync", ans, sizeof ans))
        fprintf(stderr, "provfs: umount: warning: %s\n", pv_errmsg());
    int rc = cli_unmount(mnt, 0);
    if (rc == -EBUSY)
        return umount_busy(mnt, rt.pid);
    if (rc)
        return cli_failf("umount: %s: %s", mnt, strerror(-rc));
    umount_wait_exit(rt.pid);
    return 0;
}
