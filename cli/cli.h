/*
 * cli.h - what the `provfs` subcommands share: the dispatch signature,
 * error/usage reporting, and finding the workspace a path belongs to.
 *
 * Exit status: 0 success, 1 failure, 2 usage error.  Errors are printed as
 * "provfs: <what>: <why>" on stderr (see common/err.h for <why>).
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <limits.h>
#include <stdio.h>

#include "fs/runtime.h"
#include "store/lineage.h"

struct store;

struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
    const char *summary;
};

/* Print "provfs: <what>: <pv_errmsg()>" and return 1. */
int cli_fail(const char *what);
/* Print "provfs: <printf>" and return 1. */
int cli_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "provfs: <msg>\nusage: <usage>" and return 2. */
int cli_usage(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A workspace: the directory that holds (or, mounted, hides) .provfs/. */
struct cli_ws {
    char root[PATH_MAX];        /* absolute path of the workspace         */
    int mounted;                /* a live provfs daemon serves root        */
    struct fs_runtime rt;       /* valid when mounted                      */
    char store[PATH_MAX];       /* path of the .provfs directory           */
};

/* Find the workspace enclosing `start` (NULL: the current directory), the
 * way git finds a repository: walk up until a directory is a provfs mount
 * or contains .provfs/.  -ENOENT (message set) if there is none. */
int cli_ws_find(const char *start, struct cli_ws *ws);

/* The workspace of a PATH[@N] argument: the one enclosing the path's
 * nearest existing directory, so `provfs log /elsewhere/ws/f` works from
 * any directory.  The path need not exist (a deleted file).  Falls back
 * to the current directory's workspace. */
int cli_ws_find_path(const char *arg, struct cli_ws *ws);

/* Open the workspace's store.  When mounted, first asks the daemon to
 * commit its queue so the answer includes everything done so far. */
int cli_ws_open_store(struct cli_ws *ws, unsigned flags, struct store **out);

/* The policy in force for the workspace: the mount's --policy file when
 * mounted with one, else provfs.yaml, else the built-in default.  Read from
 * the backing directory (the store's parent), never through the mount, so
 * asking leaves no event behind. */
struct pol;
int cli_ws_policy(const struct cli_ws *ws, struct pol **out);

/* A --scope not given on the command line: the policy's lineage scope. */
#define CLI_SCOPE_UNSET ((enum lineage_scope)-1)
void cli_ws_scope(const struct cli_ws *ws, enum lineage_scope *scope);

/* Turn a user-supplied path (relative to the cwd, or absolute) into a
 * workspace-relative path without leading '/'.  -EINVAL if outside. */
int cli_ws_relpath(const struct cli_ws *ws, const char *arg, char *out, size_t len);

/* Print bytes for a human: printable text as is, anything else (newlines,
 * control bytes, invalid UTF-8) as \n, \t or \xNN, so one record stays on
 * one line whatever a file is called. */
void cli_put_bytes(FILE *f, const char *p, size_t n);
/* argv (NUL-separated) as one line, words separated by spaces. */
void cli_put_argv(FILE *f, const char *p, size_t n);
/* Parse "1700000000", "2026-11-22", "2026-11-22 10:00[:00]" (local time)
 * or "2026-11-22T10:00:00Z" into ns since the epoch. */
int cli_parse_time(const char *s, unsigned long long *ns);

/* Is stdout a terminal (for colour and progress lines)? */
int cli_isatty(void);

#endif
