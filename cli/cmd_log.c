/*
 * cmd_log.c - `provfs log [--json] PATH`: the versions of a path, newest
 * first: number, time, size, content id, kind, origin and writer.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/render.h"
#include "store/store.h"

#define LOG_USAGE "provfs log [--json] PATH"

struct log_ctx {
    struct cat_reader *rd;
    struct cat_str path;
    int json, count;
};

static int log_one(void *arg, const struct cat_version *v)
{
    struct log_ctx *c = arg;
    if (c->json) {
        printf("%s\n", c->count ? "," : "");
        render_version_json(stdout, c->rd, c->path, v);
    } else {
        if (!c->count)
            render_log_header(stdout);
        render_log_line(stdout, c->rd, v);
    }
    c->count++;
    return 0;
}

int cmd_log(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct log_ctx c = { 0 };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        if (opt == 'j') c.json = 1;
        else if (opt == 'h') { printf("usage: %s\n", LOG_USAGE); return 0; }
        else return cli_usage(LOG_USAGE, "bad arguments");
    }
    if (optind + 1 != argc)
        return cli_usage(LOG_USAGE, "expected one path");
    struct cli_ws ws;
    struct cli_spec sp;
    struct store *st;
    if (cli_ws_find_path(argv[optind], &ws) || cli_spec_parse(&ws, argv[optind], &sp))
        return cli_fail("log");
    if (cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("log");
    uint64_t id;
    int rc = cat_read_begin(st, &c.rd);
    if (!rc && (rc = cat_file_find(c.rd, sp.path, &id)) == 0) {
        c.path = (struct cat_str){ sp.path, strlen(sp.path) };
        if (c.json)
            printf("[");
        rc = cat_versions_scan(c.rd, id, 1, log_one, &c);
        if (c.json)
            printf("%s]\n", c.count ? "\n" : "");
    }
    if (!rc && !c.count)
        rc = pv_err(-ENOENT, "%s: no versions recorded", sp.path);
    cat_read_end(c.rd);
    store_close(st);
    return rc ? cli_fail("log") : 0;
}
