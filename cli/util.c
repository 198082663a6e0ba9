/* util.c - error printing and workspace discovery for the subcommands. */
#include "cli/cli.h"
#include "cli/mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/mounts.h"
#include "common/err.h"
#include "policies/policy.h"
#include "store/render.h"
#include "store/store.h"

/* Messages quote paths, which may hold newlines or control bytes: escape
 * the whole message so an error is always one line on stderr. */
static int cli_print_error(const char *msg)
{
    fputs("provfs: ", stderr);
    cli_put_bytes(stderr, msg, strlen(msg));
    fputc('\n', stderr);
    return 1;
}

int cli_fail(const char *what)
{
    char msg[PV_ERRMAX + 256];
    snprintf(msg, sizeof msg, "%s: %s", what, pv_errmsg());
    return cli_print_error(msg);
}

int cli_failf(const char *fmt, ...)
{
    char msg[PV_ERRMAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cli_print_error(msg);
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
            if (strlen(probe) >= sizeof ws->store)
                return pv_err(-ENAMETOOLONG, "path too long: %s", probe);
            memcpy(ws->store, probe, strlen(probe) + 1);
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

int cli_ws_find_path(const char *arg, struct cli_ws *ws)
{
    char dir[PATH_MAX];
    if (cli_abspath(arg, dir, sizeof dir))
        return -1;
    /* Lexical walk up: PATH@N and deleted files are not on disk. */
    struct stat sb;
    while (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) {
            strcpy(dir, "/");
            break;
        }
        *slash = 0;
    }
    if (cli_ws_find(dir, ws) == 0)
        return 0;
    /* Then the cwd's workspace, so the caller can say "outside W". */
    if (cli_ws_find(NULL, ws) == 0)
        return 0;
    return pv_err(-ENOENT, "%s is not inside a provfs workspace (no mount and "
                  "no .provfs/ above it or above the current directory)", arg);
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

int cli_ws_policy(const struct cli_ws *ws, struct pol **out)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", ws->store);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return pv_errno(-errno, "opening %s", dir);
    const char *override = ws->mounted && ws->rt.policy[0] ? ws->rt.policy : NULL;
    int rc = pol_load_workspace(out, dirfd, override, NULL);
    close(dirfd);
    return rc ? pv_errctx(rc, "loading the policy") : 0;
}

void cli_ws_scope(const struct cli_ws *ws, enum lineage_scope *scope)
{
    struct pol *p;
    if (*scope != CLI_SCOPE_UNSET)
        return;
    *scope = LINEAGE_SCOPE_PROCESS;
    if (cli_ws_policy(ws, &p) == 0) {
        if (pol_scope(p) == POL_SCOPE_JOB)
            *scope = LINEAGE_SCOPE_JOB;
        pol_free(p);
    }
}

int cli_ws_relpath(const struct cli_ws *ws, const char *arg, char *out, size_t len)
{
    /* Lexical: the path may name a deleted file, so no realpath(). */
    char norm[PATH_MAX];
    int rc = cli_abspath(arg, norm, sizeof norm);
    if (rc)
        return rc;
    size_t rl = strcmp(ws->root, "/") ? strlen(ws->root) : 0;
    if (strncmp(norm, ws->root, rl) || (norm[rl] && norm[rl] != '/'))
        return pv_err(-EINVAL, "%s is outside the workspace %s", arg, ws->root);
    const char *rel = norm + rl + (norm[rl] == '/');
    if (strlen(rel) >= len)
        return pv_err(-ENAMETOOLONG, "path too long: %s", arg);
    strcpy(out, rel);
    return 0;
}

void cli_put_bytes(FILE *f, const char *p, size_t n)
{
    render_text_bytes(f, p, n);
}

void cli_put_argv(FILE *f, const char *p, size_t n)
{
    render_text_argv(f, p, n);
}

int cli_parse_time(const char *s, unsigned long long *ns)
{
    char *end;
    unsigned long long secs = strtoull(s, &end, 10);
    if (*s && !*end) {
        *ns = secs * 1000000000ull;
        return 0;
    }
    static const char *const fmts[] = { "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S",
                                        "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d" };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        struct tm tm = { 0 };
        tm.tm_isdst = -1;
        const char *rest = strptime(s, fmts[i], &tm);
        if (!rest || *rest)
            continue;
        time_t t = i == 0 ? timegm(&tm) : mktime(&tm);
        *ns = (unsigned long long)t * 1000000000ull;
        return 0;
    }
    return pv_err(-EINVAL, "cannot read '%s' as a time (use epoch seconds, "
                  "YYYY-MM-DD, 'YYYY-MM-DD HH:MM[:SS]' or RFC 3339 UTC)", s);
}
