/* mounts.c - mount table and busy-mount diagnostics; see mounts.h. */
#include <stdio.h>

#include "cli/mounts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "fs/mountinfo.h"

int cli_mount_lookup(const char *path, char *fstype, size_t len)
{
    return fs_mountinfo_find(path, fstype, len, NULL);
}

/* fusermount3 -u [-z] path, its complaints silenced (the caller words
 * the error): its exit status, or -errno if it could not run. */
static int mounts_fusermount(const char *path, int lazy)
{
    char *argv[7];
    int n = 0;
    argv[n++] = "fusermount3";
    argv[n++] = "-u";
    argv[n++] = "-q";
    if (lazy)
        argv[n++] = "-z";
    argv[n++] = "--";
    argv[n++] = (char *)path;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa))
        return -ENOMEM;
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "fusermount3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return -rc;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int cli_unmount(const char *path, int lazy)
{
    if (umount2(path, lazy ? MNT_DETACH : 0) == 0)
        return 0;
    int e = errno;
    struct fs_mountinfo mi;
    if (e != EPERM || fs_mountinfo_get(path, &mi) != 1 || mi.user_id != (long)getuid())
        return -e;
    int rc = mounts_fusermount(path, lazy);
    if (rc < 0)
        return rc;
    /* The owner's fusermount3 refuses an unmount only when it is busy. */
    return rc == 0 ? 0 : -EBUSY;
}

static int mounts_under(const char *link, const char *path, size_t plen)
{
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = 0;
    return !strncmp(target, path, plen) && (target[plen] == '/' || target[plen] == 0);
}

static int mounts_pid_holds(const char *pid, const char *path, size_t plen)
{
    char p[PATH_MAX];
    const char *links[] = { "cwd", "root" };
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "/proc/%s/%s", pid, links[i]);
        if (mounts_under(p, path, plen))
            return 1;
    }
    snprintf(p, sizeof p, "/proc/%s/fd", pid);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int held = 0;
    for (struct dirent *e; !held && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char fp[PATH_MAX + 300];
        snprintf(fp, sizeof fp, "%s/%s", p, e->d_name);
        held = mounts_under(fp, path, plen);
    }
    closedir(d);
    return held;
}

int cli_mount_holders(const char *path, pid_t except, FILE *out, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    size_t plen = strlen(path);
    pid_t self = getpid();
    for (struct dirent *e; found < max && (e = readdir(d));) {
        pid_t pid = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || pid == self || pid == except)
            continue;
        if (!mounts_pid_holds(e->d_name, path, plen))
            continue;
        char comm[64] = "?", cp[PATH_MAX];
        snprintf(cp, sizeof cp, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(cp, "r");
        if (f) {
            if (fgets(comm, sizeof comm, f))
                comm[strcspn(comm, "\n")] = 0;
            fclose(f);
        }
        fprintf(out, "%s%s (%s)", found ? ", " : "", e->d_name, comm);
        found++;
    }
    closedir(d);
    return found;
}

int cli_abspath(const char *in, char *out, size_t len)
{
    char buf[PATH_MAX * 2];
    if (in[0] == '/') {
        snprintf(buf, sizeof buf, "%s", in);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return pv_errno(-errno, "getcwd");
        snprintf(buf, sizeof buf, "%s/%s", cwd, in);
    }
    char norm[PATH_MAX * 2] = "";
    size_t n = 0;
    for (char *save, *seg = strtok_r(buf, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, "."))
            continue;
        if (!strcmp(seg, "..")) {
            char *s = strrchr(norm, '/');
            n = s ? (size_t)(s - norm) : 0;
            norm[n] = 0;
            continue;
        }
        n += snprintf(norm + n, sizeof norm - n, "/%s", seg);
    }
    if (!n)
        strcpy(norm, "/");
    if (strlen(norm) >= len)
        return pv_err(-ENAMETOOLONG, "path too long: %s", in);
    strcpy(out, norm);
    return 0;
}
