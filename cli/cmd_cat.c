/*
 * cmd_cat.c - `provfs cat PATH[@N]`: write a version's content to stdout,
 * streamed chunk by chunk (a 10 GiB version never sits in memory).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/store.h"

#define CAT_USAGE "provfs cat PATH[@N] [--at TIME]"

int cli_write_all(void *ctx, const void *buf, size_t n)
{
    int fd = *(int *)ctx;
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return pv_errno(-errno, "writing the output");
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Why a version's bytes cannot be had, or 0. */
int cli_version_unreadable(const struct cat_version *v, const char *name)
{
    if (v->origin == CAT_ORIGIN_DELETED)
        return pv_err(-ENOENT, "%s is a deletion record; choose an earlier version", name);
    if (v->flags & CAT_V_MISSING)
        return pv_err(-ENODATA, "%s was not captured (%.*s)", name, (int)v->err.n, v->err.p);
    if (v->flags & CAT_V_UNSTORED)
        return pv_err(-ENODATA, "%s is not snapshotted (the policy says never to), so "
                      "its bytes cannot be restored", name);
    if (v->flags & CAT_V_HASH_ONLY)
        return pv_err(-ENODATA, "%s was recorded by hash only (the policy does not "
                      "snapshot it), so its bytes cannot be restored", name);
    return 0;
}

int cmd_cat(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "at", required_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    const char *at = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:h", longopts, NULL)) != -1) {
        if (opt == 'a') at = optarg;
        else if (opt == 'h') { printf("usage: %s\n", CAT_USAGE); return 0; }
        else return cli_usage(CAT_USAGE, "bad arguments");
    }
    if (optind + 1 != argc)
        return cli_usage(CAT_USAGE, "expected one PATH[@N]");
    struct cli_ws ws;
    struct cli_spec sp;
    struct store *st;
    struct cat_reader *rd;
    struct cat_version v;
    char name[PATH_MAX + 16];
    if (cli_ws_find_path(argv[optind], &ws) || cli_spec_parse(&ws, argv[optind], &sp))
        return cli_fail("cat");
    if (at && cli_parse_time(at, &sp.at_ns))
        return cli_usage(CAT_USAGE, "%s", pv_errmsg());
    if (cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("cat");
    int rc = cat_read_begin(st, &rd);
    if (!rc && !(rc = cli_spec_resolve(rd, &sp, &v))) {
        cli_spec_name(&v, sp.path, name, sizeof name);
        rc = cli_version_unreadable(&v, name);
    }
    cat_read_end(rd);
    int out = STDOUT_FILENO;
    if (!rc)
        rc = content_read(st, v.content_id, cli_write_all, &out);
    store_close(st);
    return rc ? cli_fail("cat") : 0;
}
