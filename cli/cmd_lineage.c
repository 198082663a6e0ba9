/*
 * cmd_lineage.c - `provfs lineage PATH[@N]`: a version's ancestors (or,
 * with --down, and as `provfs impact`, its descendants) as a tree, JSON,
 * PROV-JSON or DOT.  The rule is store/lineage.h's; the formats are
 * store/lineage_render.h's.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/lineage.h"
#include "store/lineage_render.h"
#include "store/store.h"

#define LINEAGE_USAGE "provfs lineage PATH[@N] [--down] [--depth N] [--scope process|job]\n" \
    "                      [--at TIME] [--json] [--format text|json|prov-json|dot]"
#define IMPACT_USAGE "provfs impact PATH[@N] [--depth N] [--scope process|job] [--at TIME]\n" \
    "                     [--json] [--format text|json|prov-json|dot]"

static uint64_t lineage_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct lineage_opts {
    int down, depth;
    enum lineage_scope scope;
    enum lineage_format fmt;
    const char *at;
};

/* Parse options; returns -1 to go on, or an exit status. */
static int lineage_parse(int argc, char **argv, struct lineage_opts *o, const char *usage)
{
    static const struct option longopts[] = {
        { "down", no_argument, NULL, 'd' }, { "depth", required_argument, NULL, 'n' },
        { "scope", required_argument, NULL, 's' }, { "json", no_argument, NULL, 'j' },
        { "format", required_argument, NULL, 'f' }, { "at", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int opt;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+dn:s:jf:a:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd': o->down = 1; break;
        case 'j': o->fmt = LINEAGE_FMT_JSON; break;
        case 'a': o->at = optarg; break;
        case 'h': printf("usage: %s\n", usage); return 0;
        case 'n':
            o->depth = (int)strtol(optarg, &end, 10);
            if (*end || o->depth < 0)
                return cli_usage(usage, "--depth wants a number >= 0, not '%s'", optarg);
            break;
        case 's':
            if (lineage_scope_parse(optarg, &o->scope))
                return cli_usage(usage, "%s", pv_errmsg());
            break;
        case 'f':
            if (lineage_format_parse(optarg, &o->fmt) || o->fmt == LINEAGE_FMT_JSONL)
                return cli_usage(usage, "unknown format '%s'", optarg);
            break;
        default: return cli_usage(usage, "bad arguments");
        }
    }
    if (optind + 1 != argc)
        return cli_usage(usage, "expected one PATH[@N]");
    return -1;
}

static int lineage_run(const char *arg, const struct lineage_opts *o)
{
    struct cli_ws ws;
    struct cli_spec sp;
    struct store *st;
    if (cli_ws_find_path(arg, &ws) || cli_spec_parse(&ws, arg, &sp))
        return -1;
    enum lineage_scope scope = o->scope;
    cli_ws_scope(&ws, &scope);
    if (o->at && cli_parse_time(o->at, &sp.at_ns))
        return -1;
    /* Walks touch a few pages per process: no read-ahead.  With it, a
     * cold descendant walk of a widely used input read the whole map (196
     * MB in scripts/bench-lineage's store); without it, it reads ~20 MB,
     * and lineage.c overlaps those reads.  Only a walk over half the store
     * (52k versions) is slower this way (cold ~1.1 s -> ~1.5 s). */
    if (cli_ws_open_store(&ws, STORE_RDONLY | STORE_RANDOM, &st))
        return -1;
    struct cat_reader *rd = NULL;
    struct cat_version v;
    struct lineage_graph *g = NULL;
    int rc = cat_read_begin(st, &rd);
    if (!rc)
        rc = cli_spec_resolve(rd, &sp, &v);
    uint64_t t0 = lineage_now_us(), t1 = 0;
    if (!rc)
        rc = lineage_walk(rd, v.file_id, v.vno, o->down, o->depth, scope, &g);
    t1 = lineage_now_us();
    if (!rc)
        rc = lineage_render(stdout, rd, g, o->fmt);
    /* scripts/bench-lineage separates the query from process start-up */
    if (!rc && getenv("PROVFS_LINEAGE_TIMING"))
        fprintf(stderr, "lineage: walk %.1f ms, render %.1f ms, %zu versions\n",
                (t1 - t0) / 1e3, (lineage_now_us() - t1) / 1e3, g->n_nodes);
    lineage_graph_free(g);
    cat_read_end(rd);
    store_close(st);
    return rc;
}

int cmd_lineage(int argc, char **argv)
{
    struct lineage_opts o = { 0, -1, CLI_SCOPE_UNSET, LINEAGE_FMT_TEXT, NULL };
    int rc = lineage_parse(argc, argv, &o, LINEAGE_USAGE);
    if (rc >= 0)
        return rc;
    return lineage_run(argv[optind], &o) ? cli_fail("lineage") : 0;
}

int cmd_impact(int argc, char **argv)
{
    struct lineage_opts o = { 1, -1, CLI_SCOPE_UNSET, LINEAGE_FMT_TEXT, NULL };
    int rc = lineage_parse(argc, argv, &o, IMPACT_USAGE);
    if (rc >= 0)
        return rc;
    o.down = 1;
    return lineage_run(argv[optind], &o) ? cli_fail("impact") : 0;
}
