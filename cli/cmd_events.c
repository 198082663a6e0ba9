/*
 * cmd_events.c - `provfs events`: the event log in logical-time order,
 * optionally only one path's or one process's events.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "fs/capture.h"
#include "store/catalog.h"
#include "store/json.h"
#include "store/store.h"

#define EVENTS_USAGE "provfs events [--json] [--path PATH] [--proc ID] [--op OP] [--since-seq N]"

struct ev_ctx {
    struct cat_reader *rd;
    int json, count;
    uint32_t op;
    uint64_t since_seq;
};

static void ev_print_json(struct ev_ctx *c, const struct cat_event *e)
{
    printf("%s\n{\"seq\":%llu,\"time\":", c->count ? "," : "", (unsigned long long)e->seq);
    json_time(stdout, e->wall_ns);
    printf(",\"op\":\"%s\",\"proc\":", cap_op_name(e->op));
    if (e->proc_id)
        printf("%llu", (unsigned long long)e->proc_id);
    else
        printf("null");
    printf(",\"path\":");
    json_str(stdout, e->path.p, e->path.n);
    if (e->path2.n) {
        printf(",\"path2\":");
        json_str(stdout, e->path2.p, e->path2.n);
    }
    printf(",\"arg\":%llu}", (unsigned long long)e->arg);
}

static void ev_print_text(struct ev_ctx *c, const struct cat_event *e)
{
    char when[32];
    struct cat_proc p;
    json_fmt_localtime(when, sizeof when, e->wall_ns);
    if (!c->count)
        printf("%-8s %-19s %-12s %-7s %-16s %s\n", "SEQ", "TIME", "OP", "PROC", "COMM", "PATH");
    char proc[24] = "-";
    if (e->proc_id)
        snprintf(proc, sizeof proc, "p%llu", (unsigned long long)e->proc_id);
    printf("%-8llu %-19s %-12s %-7s ", (unsigned long long)e->seq, when,
           cap_op_name(e->op), proc);
    if (e->proc_id && cat_proc_get(c->rd, e->proc_id, &p) == 0)
        printf("%-16.*s ", (int)p.comm.n, p.comm.p);
    else
        printf("%-16s ", "?");
    cli_put_bytes(stdout, e->path.p, e->path.n);
    if (e->path2.n) {
        fputs(e->op == CAP_LINK || e->op == CAP_RENAME ? " -> " : " => ", stdout);
        cli_put_bytes(stdout, e->path2.p, e->path2.n);
    }
    putchar('\n');
}

static int ev_one(void *arg, const struct cat_event *e)
{
    struct ev_ctx *c = arg;
    if ((c->op && e->op != c->op) || e->seq < c->since_seq)
        return 0;
    if (c->json)
        ev_print_json(c, e);
    else
        ev_print_text(c, e);
    c->count++;
    return 0;
}

int cmd_events(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "path", required_argument, NULL, 'p' },
        { "proc", required_argument, NULL, 'P' }, { "op", required_argument, NULL, 'o' },
        { "since-seq", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
        { 0 }
    };
    struct ev_ctx c = { 0 };
    const char *path = NULL;
    unsigned long long proc = 0;
    int opt;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+jp:P:o:s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': c.json = 1; break;
        case 'p': path = optarg; break;
        case 'P':
            proc = strtoull(optarg + (optarg[0] == 'p'), &end, 10);
            if (*end || !proc)
                return cli_usage(EVENTS_USAGE, "bad process id '%s'", optarg);
            break;
        case 'o':
            if (!(c.op = cap_op_parse(optarg)))
                return cli_usage(EVENTS_USAGE, "unknown op '%s'", optarg);
            break;
        case 's':
            c.since_seq = strtoull(optarg, &end, 10);
            if (*end)
                return cli_usage(EVENTS_USAGE, "bad sequence number '%s'", optarg);
            break;
        case 'h': printf("usage: %s\n", EVENTS_USAGE); return 0;
        default: return cli_usage(EVENTS_USAGE, "bad arguments");
        }
    }
    if (optind != argc)
        return cli_usage(EVENTS_USAGE, "unexpected argument '%s'", argv[optind]);
    struct cli_ws ws;
    struct store *st;
    char rel[PATH_MAX];
    if ((path ? cli_ws_find_path(path, &ws) : cli_ws_find(NULL, &ws)) || (path && cli_ws_relpath(&ws, path, rel, sizeof rel)) ||
        cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("events");
    int rc = cat_read_begin(st, &c.rd);
    if (!rc) {
        if (c.json)
            printf("[");
        if (path)
            rc = cat_path_events(c.rd, rel, ev_one, &c);
        else if (proc)
            rc = cat_proc_events(c.rd, proc, ev_one, &c);
        else
            rc = cat_events_scan(c.rd, c.since_seq, ev_one, &c);
        if (c.json)
            printf("%s]\n", c.count ? "\n" : "");
        cat_read_end(c.rd);
    }
    store_close(st);
    return rc ? cli_fail("events") : 0;
}
