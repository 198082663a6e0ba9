/*
 * cmd_fsck.c - `provfs fsck [--quick] [--json]`: check the whole store.
 *
 * Two parts: the content store's own check (content_fsck: every chunk
 * re-hashed, manifests, chunk reference counts, packs; --quick skips
 * re-streaming every content) and the catalog cross-checks
 * (maint_check_catalog: versions against contents, content reference
 * counts against versions, paths, events and indexes).  Every problem is
 * named on its own line; the exit status is 1 if there is any.
 *
 * On a terminal a progress line is drawn on stderr with \r; it is erased
 * before any other output, so redirected output never contains it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/content.h"
#include "store/json.h"
#include "store/maint.h"
#include "store/store.h"

#define FSCK_USAGE "provfs fsck [--quick] [--json]"

struct fsck_out {
    int json, tty, problems, drawn;
};

static void fsck_clear_progress(struct fsck_out *o)
{
    if (o->drawn) {
        fputs("\r\033[K", stderr);
        o->drawn = 0;
    }
}

static void fsck_progress_line(struct fsck_out *o, const char *what)
{
    if (!o->tty)
        return;
    fprintf(stderr, "\r\033[Kfsck: %s", what);
    fflush(stderr);
    o->drawn = 1;
}

static void fsck_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
    struct fsck_out *o = ctx;
    char line[128];
    if (!phase || !o->tty)
        return;
    snprintf(line, sizeof line, "checking %s: %llu/%llu", phase,
             (unsigned long long)done, (unsigned long long)total);
    fsck_progress_line(o, line);
}

static void fsck_report(void *ctx, const char *problem)
{
    struct fsck_out *o = ctx;
    fsck_clear_progress(o);
    if (o->json) {
        printf("%s\n", o->problems ? "," : "");
        json_str(stdout, problem, strlen(problem));
    } else {
        fputs("problem: ", stdout);
        cli_put_bytes(stdout, problem, strlen(problem));
        fputc('\n', stdout);
    }
    fflush(stdout);
    o->problems++;
}

static int fsck_run(struct store *st, int quick, struct fsck_out *o)
{
    fsck_progress_line(o, quick ? "checking chunks, manifests and packs"
                                : "re-hashing every chunk and content");
    int rc = content_fsck(st, quick ? CONTENT_FSCK_QUICK : 0, fsck_report, o);
    if (rc < 0)
        return pv_errctx(rc, "checking the content store");
    rc = maint_check_catalog(st, fsck_report, fsck_progress, o);
    fsck_clear_progress(o);
    return rc < 0 ? pv_errctx(rc, "checking the catalog") : 0;
}

int cmd_fsck(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "quick", no_argument, NULL, 'q' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct fsck_out o = { .tty = isatty(STDERR_FILENO) };
    int quick = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+qjh", longopts, NULL)) != -1) {
        if (opt == 'q') quick = 1;
        else if (opt == 'j') o.json = 1;
        else if (opt == 'h') { printf("usage: %s\n", FSCK_USAGE); return 0; }
        else return cli_usage(FSCK_USAGE, "bad arguments");
    }
    if (optind != argc)
        return cli_usage(FSCK_USAGE, "no arguments expected");
    struct cli_ws ws;
    struct store *st;
    if (cli_ws_find(NULL, &ws) || cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("fsck");
    if (o.json)
        printf("{\"problems\":[");
    int rc = fsck_run(st, quick, &o);
    store_close(st);
    if (o.json)
        printf("%s],\"clean\":%s}\n", o.problems ? "\n" : "",
               !rc && !o.problems ? "true" : "false");
    if (rc)
        return cli_fail("fsck");
    if (o.problems) {
        fprintf(stderr, "provfs: fsck: %d problem%s found\n", o.problems,
                o.problems == 1 ? "" : "s");
        return 1;
    }
    if (!o.json)
        printf("fsck: clean\n");
    return 0;
}
