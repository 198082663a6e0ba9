/*
 * cmd_show.c - `provfs show PATH[@N] [--json]`: one version in full: content
 * id, size, times, origin and source, kind; the writer with argv, env, cwd,
 * exe and parent chain; the version's direct inputs (store/lineage.h), the
 * other versions its writer made, and the versions derived from it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/json.h"
#include "store/lineage.h"
#include "store/lineage_render.h"
#include "store/render.h"
#include "store/store.h"

#define SHOW_USAGE "provfs show PATH[@N] [--at TIME] [--scope process|job] [--json]"
#define SHOW_PARENTS_MAX 64     /* a parent chain longer than this is a loop */

/* A list of versions, sorted by path then number for stable output. */
struct show_list {
    struct cat_reader *rd;
    struct show_ref { struct cat_str path; struct cat_version v; } *a;
    size_t n, cap;
};

static int show_add(void *arg, uint64_t file_id, uint32_t vno)
{
    struct show_list *l = arg;
    struct show_ref r;
    if (cat_version_get(l->rd, file_id, vno, &r.v) || cat_file_path(l->rd, file_id, &r.path))
        return 0;               /* removed by gc meanwhile: nothing to show */
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->a, ncap * sizeof *l->a);
        if (!p)
            return pv_err(-ENOMEM, "out of memory");
        l->a = p;
        l->cap = ncap;
    }
    l->a[l->n++] = r;
    return 0;
}

static int show_cmp(const void *a, const void *b)
{
    const struct show_ref *x = a, *y = b;
    size_t n = x->path.n < y->path.n ? x->path.n : y->path.n;
    int c = memcmp(x->path.p, y->path.p, n);
    if (c || x->path.n != y->path.n)
        return c ? c : x->path.n < y->path.n ? -1 : 1;
    return x->v.vno < y->v.vno ? -1 : x->v.vno > y->v.vno;
}

struct show_data {
    struct cat_version v;
    struct cat_str path;
    struct show_list inputs, outputs, derived;
};

static int show_collect(struct cat_reader *rd, enum lineage_scope scope, struct show_data *d)
{
    d->inputs.rd = d->outputs.rd = d->derived.rd = rd;
    int rc = lineage_inputs(rd, d->v.file_id, d->v.vno, scope, show_add, &d->inputs);
    if (!rc && d->v.writer)
        rc = cat_writer_versions(rd, d->v.writer, show_add, &d->outputs);
    if (!rc)
        rc = lineage_outputs(rd, d->v.file_id, d->v.vno, scope, show_add, &d->derived);
    struct show_list *ls[] = { &d->inputs, &d->outputs, &d->derived };
    for (int i = 0; i < 3; i++)
        if (ls[i]->n)
            qsort(ls[i]->a, ls[i]->n, sizeof *ls[i]->a, show_cmp);
    return rc;
}

/* --- text --------------------------------------------------------------- */

static void show_text_list(const char *title, const struct show_list *l)
{
    printf("%s (%zu)\n", title, l->n);
    for (size_t i = 0; i < l->n; i++) {
        printf("  ");
        lineage_render_version_line(stdout, l->a[i].path, &l->a[i].v);
        putchar('\n');
    }
}

static void show_text_env(struct cat_str env)
{
    for (size_t i = 0; i < env.n;) {
        size_t len = strnlen(env.p + i, env.n - i);
        printf("              ");
        cli_put_bytes(stdout, env.p + i, len);
        putchar('\n');
        i += len + 1;
    }
}

static void show_text_writer(struct cat_reader *rd, uint64_t id)
{
    struct cat_proc p;
    struct cat_image im;
    printf("writer        ");
    lineage_render_proc_text(stdout, rd, id, "              ");
    putchar('\n');
    if (cat_proc_get(rd, id, &p))
        return;
    int img = cat_proc_last_image(rd, id, &im) == 0;
    printf("  exe         ");
    struct cat_str exe = img && im.exe.n ? im.exe : p.exe;
    cli_put_bytes(stdout, exe.p, exe.n);
    printf("\n  gid         %u   pgid %u   sid %u\n  env\n", p.gid, p.pgid, p.sid);
    show_text_env(p.env);
    printf("  parents\n");
    for (int n = 0; p.parent_id && n < SHOW_PARENTS_MAX; n++) {
        uint64_t parent = p.parent_id;
        printf("              ");
        render_proc_cmdline(stdout, rd, parent);
        putchar('\n');
        if (cat_proc_get(rd, parent, &p))
            break;
    }
}

static void show_text(struct cat_reader *rd, const struct show_data *d)
{
    const struct cat_version *v = &d->v;
    char hex[65], size[32], when[32];
    lineage_render_version_line(stdout, d->path, v);
    printf("\n");
    render_id_hex(v->content_id, hex, 0);
    render_size(size, sizeof size, v->size);
    printf("content id    %s\n", v->origin == CAT_ORIGIN_DELETED ||
           (v->flags & (CAT_V_MISSING | CAT_V_UNSTORED)) ? "(none)" : hex);
    printf("size          %s (%llu bytes)\n", size, (unsigned long long)v->size);
    json_fmt_localtime(when, sizeof when, v->wall_ns);
    printf("recorded      %s (logical time %llu)\n", when, (unsigned long long)v->seq);
    json_fmt_localtime(when, sizeof when, v->mtime_ns);
    printf("mtime         %s\nmode          %04o  uid %u  gid %u\n", when, v->mode & 07777,
           v->uid, v->gid);
    printf("kind          %.*s\norigin        %s", (int)v->kind.n, v->kind.p,
           cat_origin_name(v->origin));
    struct cat_str sp;
    if (v->src_file_id && v->origin != CAT_ORIGIN_DELETED && !cat_file_path(rd, v->src_file_id, &sp)) {
        printf(" from ");
        cli_put_bytes(stdout, sp.p, sp.n);
        printf("@%u", v->src_vno);
    }
    putchar('\n');
    if (v->writer)
        show_text_writer(rd, v->writer);
    show_text_list("inputs", &d->inputs);
    show_text_list("written by the same process", &d->outputs);
    show_text_list("derived from it", &d->derived);
}

/* --- JSON --------------------------------------------------------------- */

static void show_json_list(struct cat_reader *rd, const char *name, const struct show_list *l)
{
    printf(",\n\"%s\":[", name);
    for (size_t i = 0; i < l->n; i++) {
        printf(i ? ",\n" : "\n");
        render_version_json(stdout, rd, l->a[i].path, &l->a[i].v);
    }
    printf("]");
}

static void show_json(struct cat_reader *rd, const struct show_data *d)
{
    printf("{\"version\":");
    render_version_json(stdout, rd, d->path, &d->v);
    printf(",\n\"writer\":");
    if (d->v.writer)
        lineage_render_proc_json(stdout, rd, d->v.writer);
    else
        printf("null");
    printf(",\n\"parents\":[");
    struct cat_proc p;
    int n = 0;
    for (uint64_t id = d->v.writer; id && !cat_proc_get(rd, id, &p) && n < SHOW_PARENTS_MAX;
         id = p.parent_id) {
        if (!p.parent_id)
            break;
        printf(n++ ? ",\n" : "\n");
        lineage_render_proc_json(stdout, rd, p.parent_id);
    }
    printf("]");
    show_json_list(rd, "inputs", &d->inputs);
    show_json_list(rd, "writer_outputs", &d->outputs);
    show_json_list(rd, "derived", &d->derived);
    printf("}\n");
}

static int show_run(const char *arg, const char *at, enum lineage_scope scope, int json)
{
    struct cli_ws ws;
    struct cli_spec sp;
    struct store *st;
    if (cli_ws_find_path(arg, &ws) || cli_spec_parse(&ws, arg, &sp))
        return -1;
    cli_ws_scope(&ws, &scope);
    if ((at && cli_parse_time(at, &sp.at_ns)) ||
        cli_ws_open_store(&ws, STORE_RDONLY | STORE_RANDOM, &st))
        return -1;
    struct cat_reader *rd = NULL;
    struct show_data d;
    memset(&d, 0, sizeof d);
    int rc = cat_read_begin(st, &rd);
    if (!rc)
        rc = cli_spec_resolve(rd, &sp, &d.v);
    if (!rc)
        rc = cat_file_path(rd, d.v.file_id, &d.path);
    if (!rc)
        rc = show_collect(rd, scope, &d);
    if (!rc)
        (json ? show_json : show_text)(rd, &d);
    free(d.inputs.a);
    free(d.outputs.a);
    free(d.derived.a);
    cat_read_end(rd);
    store_close(st);
    return rc;
}

int cmd_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "at", required_argument, NULL, 'a' },
        { "scope", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int json = 0, opt;
    const char *at = NULL;
    enum lineage_scope scope = CLI_SCOPE_UNSET;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+ja:s:h", longopts, NULL)) != -1) {
        if (opt == 'j') json = 1;
        else if (opt == 'a') at = optarg;
        else if (opt == 's' && lineage_scope_parse(optarg, &scope))
            return cli_usage(SHOW_USAGE, "%s", pv_errmsg());
        else if (opt == 'h') { printf("usage: %s\n", SHOW_USAGE); return 0; }
        else if (opt != 's') return cli_usage(SHOW_USAGE, "bad arguments");
    }
    if (optind + 1 != argc)
        return cli_usage(SHOW_USAGE, "expected one PATH[@N]");
    return show_run(argv[optind], at, scope, json) ? cli_fail("show") : 0;
}
