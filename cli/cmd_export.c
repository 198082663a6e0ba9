/*
 * cmd_export.c - `provfs export [--format jsonl|prov-json|dot|json] [-o FILE]
 * [--scope process|job]`: every version and derivation in the store, in one
 * of the shared lineage formats (store/lineage_render.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/lineage.h"
#include "store/lineage_render.h"
#include "store/store.h"

#define EXPORT_USAGE "provfs export [--format jsonl|prov-json|dot|json] [-o FILE] " \
    "[--scope process|job]"

static int export_run(enum lineage_format fmt, enum lineage_scope scope, const char *out)
{
    struct cli_ws ws;
    struct store *st;
    if (cli_ws_find(NULL, &ws))
        return -1;
    cli_ws_scope(&ws, &scope);
    if (cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return -1;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        store_close(st);
        return pv_errno(-errno, "cannot write %s", out);
    }
    struct cat_reader *rd = NULL;
    struct lineage_graph *g = NULL;
    int rc = cat_read_begin(st, &rd);
    if (!rc)
        rc = lineage_walk_all(rd, scope, &g);
    if (!rc)
        rc = lineage_render(f, rd, g, fmt);
    if (fflush(f) && !rc)
        rc = pv_errno(-errno, "writing %s", out ? out : "stdout");
    if (out && fclose(f) && !rc)
        rc = pv_errno(-errno, "writing %s", out);
    lineage_graph_free(g);
    cat_read_end(rd);
    store_close(st);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' }, { "output", required_argument, NULL, 'o' },
        { "scope", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    enum lineage_format fmt = LINEAGE_FMT_JSONL;
    enum lineage_scope scope = CLI_SCOPE_UNSET;
    const char *out = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+f:o:s:h", longopts, NULL)) != -1) {
        if (opt == 'f') {
            if (lineage_format_parse(optarg, &fmt) || fmt == LINEAGE_FMT_TEXT)
                return cli_usage(EXPORT_USAGE, "unknown format '%s'", optarg);
        } else if (opt == 'o') {
            out = optarg;
        } else if (opt == 's') {
            if (lineage_scope_parse(optarg, &scope))
                return cli_usage(EXPORT_USAGE, "%s", pv_errmsg());
        } else if (opt == 'h') {
            printf("usage: %s\n", EXPORT_USAGE);
            return 0;
        } else {
            return cli_usage(EXPORT_USAGE, "bad arguments");
        }
    }
    if (optind != argc)
        return cli_usage(EXPORT_USAGE, "export takes no arguments");
    return export_run(fmt, scope, out) ? cli_fail("export") : 0;
}
