/*
 * cmd_ps.c - `provfs ps`: the recorded processes (activities), with the
 * images they exec'd, filtered by executable or time.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/json.h"
#include "store/render.h"
#include "store/store.h"

#define PS_USAGE "provfs ps [--json] [--exe SUBSTRING] [--since TIME] [--until TIME]"

struct ps_ctx {
    struct cat_reader *rd;
    int json, count;
    const char *exe;
    unsigned long long since, until;
};

static int ps_memmem(struct cat_str s, const char *needle)
{
    return memmem(s.p, s.n, needle, strlen(needle)) != NULL;
}

struct ps_img_match { const char *exe; int hit; };

static int ps_image_match(void *arg, const struct cat_image *im)
{
    struct ps_img_match *m = arg;
    m->hit |= ps_memmem(im->exe, m->exe) || ps_memmem(im->argv, m->exe);
    return 0;
}

static int ps_selected(struct ps_ctx *c, const struct cat_proc *p)
{
    if (c->since && p->wall_ns < c->since)
        return 0;
    if (c->until && p->wall_ns > c->until)
        return 0;
    if (!c->exe || ps_memmem(p->exe, c->exe) || ps_memmem(p->comm, c->exe))
        return 1;
    struct ps_img_match m = { c->exe, 0 };
    cat_images_scan(c->rd, p->id, ps_image_match, &m);
    return m.hit;
}

static void ps_print_json(struct ps_ctx *c, const struct cat_proc *p)
{
    printf("%s\n", c->count ? "," : "");
    render_proc_json(stdout, c->rd, p);
}

static void ps_print_text(struct ps_ctx *c, const struct cat_proc *p)
{
    char when[32];
    struct cat_image last;
    json_fmt_localtime(when, sizeof when, p->wall_ns);
    if (!c->count)
        printf("%-7s %-7s %-7s %-5s %-19s %s\n", "ID", "PID", "PARENT", "UID", "STARTED", "COMMAND");
    char parent[24] = "-";
    if (p->parent_id)
        snprintf(parent, sizeof parent, "p%llu", (unsigned long long)p->parent_id);
    printf("p%-6llu %-7u %-7s %-5u %-19s ", (unsigned long long)p->id, p->tgid, parent,
           p->uid, when);
    if (cat_proc_last_image(c->rd, p->id, &last) == 0 && last.argv.n)
        cli_put_argv(stdout, last.argv.p, last.argv.n);
    else if (p->argv.n)
        cli_put_argv(stdout, p->argv.p, p->argv.n);
    else
        printf("[%.*s]", (int)p->comm.n, p->comm.p);
    putchar('\n');
}

static int ps_one(void *arg, const struct cat_proc *p)
{
    struct ps_ctx *c = arg;
    if (!ps_selected(c, p))
        return 0;
    if (c->json)
        ps_print_json(c, p);
    else
        ps_print_text(c, p);
    c->count++;
    return 0;
}

int cmd_ps(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "exe", required_argument, NULL, 'e' },
        { "since", required_argument, NULL, 's' }, { "until", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' }, { 0 }
    };
    struct ps_ctx c = { 0 };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+je:s:u:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j': c.json = 1; break;
        case 'e': c.exe = optarg; break;
        case 's': if (cli_parse_time(optarg, &c.since)) return cli_usage(PS_USAGE, "%s", pv_errmsg()); break;
        case 'u': if (cli_parse_time(optarg, &c.until)) return cli_usage(PS_USAGE, "%s", pv_errmsg()); break;
        case 'h': printf("usage: %s\n", PS_USAGE); return 0;
        default: return cli_usage(PS_USAGE, "bad arguments");
        }
    }
    if (optind != argc)
        return cli_usage(PS_USAGE, "unexpected argument '%s'", argv[optind]);
    struct cli_ws ws;
    struct store *st;
    if (cli_ws_find(NULL, &ws) || cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("ps");
    int rc = cat_read_begin(st, &c.rd);
    if (!rc) {
        if (c.json)
            printf("[");
        rc = cat_procs_scan(c.rd, ps_one, &c);
        if (c.json)
            printf("%s]\n", c.count ? "\n" : "");
        cat_read_end(c.rd);
    }
    store_close(st);
    return rc ? cli_fail("ps") : 0;
}
