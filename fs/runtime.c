/* runtime.c - the runtime file and control-socket client; see runtime.h. */
#include "fs/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"

int fs_runtime_dir(char *dir, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (geteuid() == 0)
        snprintf(dir, len, "/run/provfs");
    else if (xdg && *xdg)
        snprintf(dir, len, "%s/provfs", xdg);
    else
        snprintf(dir, len, "/tmp/provfs-%u", (unsigned)geteuid());
    if (mkdir(dir, 0700) && errno != EEXIST)
        return pv_errno(-errno, "creating runtime directory %s", dir);
    return 0;
}

int fs_runtime_base(const char *mountpoint, char *base, size_t len)
{
    char dir[PATH_MAX];
    int rc = fs_runtime_dir(dir, sizeof dir);
    if (rc)
        return rc;
    unsigned char md[32];
    unsigned int mdlen = sizeof md;
    EVP_Digest(mountpoint, strlen(mountpoint), md, &mdlen, EVP_sha256(), NULL);
    char hex[17];
    for (int i = 0; i < 8; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    snprintf(base, len, "%s/%s", dir, hex);
    return 0;
}

/* Paths may hold any byte but NUL; the file is one key=value per line, so
 * bytes below 0x20, '%' and DEL are written as %XX. */
static void rt_put_path(FILE *f, const char *key, const char *v)
{
    fprintf(f, "%s=", key);
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p < 0x20 || *p == '%' || *p == 0x7f)
            fprintf(f, "%%%02X", *p);
        else
            fputc(*p, f);
    }
    fputc('\n', f);
}

int fs_runtime_write(const struct fs_runtime *rt)
{
    char base[PATH_MAX], path[PATH_MAX + 8], tmp[PATH_MAX + 16];
    int rc = fs_runtime_base(rt->mountpoint, base, sizeof base);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s.run", base);
    snprintf(tmp, sizeof tmp, "%s.run.tmp", base);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return pv_errno(-errno, "writing %s", tmp);
    fprintf(f, "pid=%d\nrootfd=%d\n", (int)rt->pid, rt->rootfd);
    rt_put_path(f, "source", rt->source);
    rt_put_path(f, "mountpoint", rt->mountpoint);
    rt_put_path(f, "log", rt->log);
    rt_put_path(f, "sock", rt->sock);
    rt_put_path(f, "policy", rt->policy);
    if (fclose(f) || rename(tmp, path)) {
        rc = pv_errno(-errno, "writing %s", path);
        unlink(tmp);
        return rc;
    }
    return 0;
}

static void rt_field(char *dst, size_t len, const char *val)
{
    size_t n = 0;
    for (; *val && n + 1 < len; val++) {
        unsigned x;
        if (val[0] == '%' && sscanf(val + 1, "%2X", &x) == 1) {
            dst[n++] = (char)x;
            val += 2;
        } else {
            dst[n++] = *val;
        }
    }
    dst[n] = 0;
}

int fs_runtime_read(const char *mountpoint, struct fs_runtime *rt)
{
    char base[PATH_MAX], path[PATH_MAX + 8], line[PATH_MAX + 32];
    int rc = fs_runtime_base(mountpoint, base, sizeof base);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s.run", base);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? -ENOENT : pv_errno(-errno, "reading %s", path);
    memset(rt, 0, sizeof *rt);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq++ = 0;
        if (!strcmp(line, "pid")) rt->pid = atoi(eq);
        else if (!strcmp(line, "rootfd")) rt->rootfd = atoi(eq);
        else if (!strcmp(line, "source")) rt_field(rt->source, sizeof rt->source, eq);
        else if (!strcmp(line, "mountpoint")) rt_field(rt->mountpoint, sizeof rt->mountpoint, eq);
        else if (!strcmp(line, "log")) rt_field(rt->log, sizeof rt->log, eq);
        else if (!strcmp(line, "sock")) rt_field(rt->sock, sizeof rt->sock, eq);
        else if (!strcmp(line, "policy")) rt_field(rt->policy, sizeof rt->policy, eq);
    }
    fclose(f);
    if (rt->pid <= 0 || strcmp(rt->mountpoint, mountpoint))
        return pv_err(-EUCLEAN, "runtime file %s is damaged", path);
    return 0;
}

void fs_runtime_remove(const char *mountpoint)
{
    char base[PATH_MAX], path[PATH_MAX + 8];
    if (fs_runtime_base(mountpoint, base, sizeof base))
        return;
    snprintf(path, sizeof path, "%s.run", base);
    unlink(path);
    snprintf(path, sizeof path, "%s.sock", base);
    unlink(path);
}

int fs_runtime_store_path(const struct fs_runtime *rt, char *out, size_t len)
{
    snprintf(out, len, "/proc/%d/fd/%d/.provfs", (int)rt->pid, rt->rootfd);
    return 0;
}

int fs_runtime_request(const struct fs_runtime *rt, const char *req,
                       char *out, size_t len)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(rt->sock) >= sizeof sa.sun_path)
        return pv_err(-ENAMETOOLONG, "control socket path too long");
    strcpy(sa.sun_path, rt->sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return pv_errno(-errno, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        int rc = pv_errno(-errno, "connecting to the daemon at %s", rt->sock);
        close(fd);
        return rc;
    }
    char line[4 * PATH_MAX + 64];
    int ll = snprintf(line, sizeof line, "%s\n", req);
    int rc = 0;
    /* One send, and no SIGPIPE: the daemon may answer and close as soon
     * as it has the line. */
    if (ll >= (int)sizeof line || send(fd, line, (size_t)ll, MSG_NOSIGNAL) != ll)
        rc = pv_errno(-EPIPE, "talking to the daemon");
    size_t got = 0;
    while (!rc && got + 1 < len) {
        ssize_t n = read(fd, out + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = pv_errno(-errno, "reading the daemon's answer");
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = 0;
    close(fd);
    return rc;
}
