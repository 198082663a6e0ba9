/* util.c - error printing and workspace discovery for the subcommands. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "store/store.h"

int cli_fail(const char *what)
{
    fprintf(stderr, "provfs: %s: %s\n", what, pv_errmsg());
    return 1;
}

int cli_failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("provfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("provfs: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    va_end(ap);
    return 2;
}

int cli_isatty(void)
{
    return isatty(STDOUT_FILENO);
}

/* Is `dir` the mount point of a live provfs daemon?  Fills ws->rt. */
static int ws_probe_mount(const char *dir, struct cli_ws *ws)
{
    if (fs_runtime_read(dir, &ws->rt))
        return 0;
    if (kill(ws->rt.pid, 0) && errno == ESRCH)
        return 0;   /* stale runtime file: the daemon is gone */
    return 1;
}

int cli_ws_find(const char *start, struct cli_ws *ws)
{
    char dir[PATH_MAX];
    memset(ws, 0, sizeof *ws);
    if (!realpath(start ? start : ".", dir))
        return pv_errno(-errno, "%s", start ? start : "current directory");
    for (;;) {
        if (ws_probe_mount(dir, ws)) {
            ws->mounted = 1;
            snprintf(ws->root, sizeof ws->root, "%s", dir);
            return fs_runtime_store_path(&ws->rt, ws->store, sizeof ws->store);
        }
        char probe[PATH_MAX + 16];
        struct stat sb;
        snprintf(probe, sizeof probe, "%s/.provfs", strcmp(dir, "/") ? dir : "");
        if (stat(probe, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            snprintf(ws->root, sizeof ws->root, "%s", dir);
            snprintf(ws->store, sizeof ws->store, "%s", probe);
            return 0;
        }
        if (!strcmp(dir, "/"))
            break;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = 0;
        else
            *slash = 0;
    }
    return pv_err(-ENOENT, "not inside a provfs workspace (no mount and no "
                  ".provfs/ in %s or any parent)", start ? start : "the current directory");
}

int cli_ws_open_store(struct cli_ws *ws, unsigned flags, struct store **out)
{
    if (ws->mounted) {
        char ans[64];
        int rc = fs_runtime_request(&ws->rt, "sync", ans, sizeof ans);
        if (rc)
            fprintf(stderr, "provfs: warning: daemon did not confirm sync (%s); "
                    "the newest events may be missing\n", pv_errmsg());
    }
    return store_open(out, ws->store, flags);
}

int cli_ws_relpath(const struct cli_ws *ws, const char *arg, char *out, size_t len)
{
    char abs[PATH_MAX * 2];
    if (arg[0] == '/') {
        snprintf(abs, sizeof abs, "%s", arg);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return pv_errno(-errno, "getcwd");
        snprintf(abs, sizeof abs, "%s/%s", cwd, arg);
    }
    /* Normalize lexically: the path may name a deleted file, so no realpath. */
    char norm[PATH_MAX * 2] = "";
    size_t n = 0;
    for (char *save, *seg = strtok_r(abs, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, ".") || !*seg)
            continue;
        if (!strcmp(seg, "..")) {
            char *s = strrchr(norm, '/');
            n = s ? (size_t)(s - norm) : 0;
            norm[n] = 0;
            continue;
        }
        n += snprintf(norm + n, sizeof norm - n, "/%s", seg);
    }
    size_t rl = strlen(ws->root);
    const char *root = strcmp(ws->root, "/") ? ws->root : "";
    if (!strcmp(ws->root, "/"))
        rl = 0;
    if (strncmp(norm, root, rl) || (norm[rl] && norm[rl] != '/'))
        return pv_err(-EINVAL, "%s is outside the workspace %s", arg, ws->root);
    const char *rel = norm + rl + (norm[rl] == '/');
    if (strlen(rel) >= len)
        return pv_err(-ENAMETOOLONG, "path too long: %s", arg);
    strcpy(out, rel);
    return 0;
}
