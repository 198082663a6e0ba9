/*
 * lineage_render.c - text, JSON, JSON lines, PROV-JSON and DOT renderings of
 * a lineage graph; see lineage_render.h.
 *
 * Each renderer first loads every node's version and path (strings borrowed
 * from the reader) and the distinct writer processes, then writes.  Node
 * ids are "v<file>_<vno>" and process ids "p<id>" in every format, so a
 * graph can be joined across formats.
 */
#include "store/lineage_render.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/json.h"
#include "store/render.h"

struct lr_node {
    struct cat_version v;
    struct cat_str path;
};

struct lr {
    FILE *f;
    struct cat_reader *rd;
    const struct lineage_graph *g;
    struct lr_node *n;          /* per graph node                         */
    uint64_t *procs;            /* distinct writers, sorted               */
    size_t n_procs;
    size_t *adj, *adj_off;      /* children in the printed direction (CSR) */
    unsigned char *printed;     /* text: already shown                    */
};

static int lr_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int lr_load(struct lr *r)
{
    const struct lineage_graph *g = r->g;
    r->n = calloc(g->n_nodes + 1, sizeof *r->n);
    r->procs = calloc(g->n_nodes + 1, sizeof *r->procs);
    if (!r->n || !r->procs)
        return pv_err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_nodes; i++) {
        int rc = cat_version_get(r->rd, g->nodes[i].file_id, g->nodes[i].vno, &r->n[i].v);
        if (!rc)
            rc = cat_file_path(r->rd, g->nodes[i].file_id, &r->n[i].path);
        if (rc)
            return rc;
        if (r->n[i].v.writer)
            r->procs[r->n_procs++] = r->n[i].v.writer;
    }
    qsort(r->procs, r->n_procs, sizeof *r->procs, lr_cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < r->n_procs; i++)
        if (!k || r->procs[k - 1] != r->procs[i])
            r->procs[k++] = r->procs[i];
    r->n_procs = k;
    return 0;
}

/* Children of each node in the direction of the walk: inputs going up,
 * derived versions going down. */
static int lr_adjacency(struct lr *r)
{
    const struct lineage_graph *g = r->g;
    r->adj_off = calloc(g->n_nodes + 1, sizeof *r->adj_off);
    r->adj = calloc(g->n_edges + 1, sizeof *r->adj);
    r->printed = calloc(g->n_nodes + 1, 1);
    if (!r->adj_off || !r->adj || !r->printed)
        return pv_err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_edges; i++)
        r->adj_off[g->down ? g->edges[i].input : g->edges[i].derived]++;
    size_t sum = 0;
    for (size_t i = 0; i <= g->n_nodes; i++) {
        size_t c = i < g->n_nodes ? r->adj_off[i] : 0;
        r->adj_off[i] = sum;
        sum += c;
    }
    size_t *fill = calloc(g->n_nodes + 1, sizeof *fill);
    if (!fill)
        return pv_err(-ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_edges; i++) {
        size_t from = g->down ? g->edges[i].input : g->edges[i].derived;
        size_t to = g->down ? g->edges[i].derived : g->edges[i].input;
        r->adj[r->adj_off[from] + fill[from]++] = to;
    }
    free(fill);
    return 0;
}

static void lr_free(struct lr *r)
{
    free(r->n);
    free(r->procs);
    free(r->adj);
    free(r->adj_off);
    free(r->printed);
}

/* --- shared bits ------------------------------------------------------------ */

static size_t lr_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n || (len == 2 && c < 0xc2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

void lineage_render_bytes(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = lr_utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
        } else if (len == 1 && p[i] >= 0x20 && p[i] != 0x7f && p[i] != '\\') {
            fputc(p[i++], f);
        } else {
            fprintf(f, p[i] == '\n' ? "\\n" : p[i] == '\\' ? "\\\\" : "\\x%02x", p[i]);
            i++;
        }
    }
}

static void lr_short_id(const struct cat_version *v, char *id)
{
    if (v->origin == CAT_ORIGIN_DELETED)
        strcpy(id, "-");
    else if (v->flags & (CAT_V_MISSING | CAT_V_UNSTORED))
        strcpy(id, "(no content)");
    else
        render_id_hex(v->content_id, id, 1);
}

void lineage_render_version_line(FILE *f, struct cat_str path, const struct cat_version *v)
{
    char id[16], when[32];
    lr_short_id(v, id);
    json_fmt_localtime(when, sizeof when, v->wall_ns);
    lineage_render_bytes(f, path.p, path.n);
    fprintf(f, "@%u  %.*s  %s  %s", v->vno, (int)(v->kind.n ? v->kind.n : 1),
            v->kind.n ? v->kind.p : "-", id, when);
    if (v->origin != CAT_ORIGIN_WRITTEN)
        fprintf(f, "  (%s)", cat_origin_name(v->origin));
}

/* The image to show for a process: its last one (the program it became). */
static void lr_proc_image(struct cat_reader *rd, const struct cat_proc *p, struct cat_str *exe,
                          struct cat_str *argv)
{
    struct cat_image im;
    int img = cat_proc_last_image(rd, p->id, &im) == 0;
    *exe = img && im.exe.n ? im.exe : p->exe;
    *argv = img && im.argv.n ? im.argv : p->argv;
}

void lineage_render_proc_text(FILE *f, struct cat_reader *rd, uint64_t proc_id,
                              const char *indent)
{
    struct cat_proc p;
    char when[32];
    render_proc_cmdline(f, rd, proc_id);
    if (cat_proc_get(rd, proc_id, &p))
        return;
    json_fmt_localtime(when, sizeof when, p.wall_ns);
    fprintf(f, "\n%scwd ", indent);
    lineage_render_bytes(f, p.cwd.p, p.cwd.n);
    fprintf(f, "  uid %u  pid %u  started %s", p.uid, p.tgid, when);
}

void lineage_render_proc_json(FILE *f, struct cat_reader *rd, uint64_t proc_id)
{
    struct cat_proc p;
    struct cat_str exe, argv;
    if (cat_proc_get(rd, proc_id, &p)) {
        fprintf(f, "{\"id\":\"p%llu\"}", (unsigned long long)proc_id);
        return;
    }
    lr_proc_image(rd, &p, &exe, &argv);
    fprintf(f, "{\"id\":\"p%llu\",\"pid\":%u,\"exe\":", (unsigned long long)proc_id, p.tgid);
    json_str(f, exe.p, exe.n);
    fputs(",\"argv\":", f);
    json_strv(f, argv.p, argv.n);
    fputs(",\"cwd\":", f);
    json_str(f, p.cwd.p, p.cwd.n);
    fprintf(f, ",\"uid\":%u,\"gid\":%u,\"pgid\":%u,\"parent\":", p.uid, p.gid, p.pgid);
    if (p.parent_id)
        fprintf(f, "\"p%llu\"", (unsigned long long)p.parent_id);
    else
        fputs("null", f);
    fputs(",\"start\":", f);
    json_time(f, p.wall_ns);
    fputs(",\"env\":", f);
    json_strv(f, p.env.p, p.env.n);
    fputc('}', f);
}

static void lr_node_id(FILE *f, const struct lineage_node *n)
{
    fprintf(f, "v%llu_%u", (unsigned long long)n->file_id, n->vno);
}

/* --- text ---------------------------------------------------------------- */

static void lr_text_node(struct lr *r, size_t i, const char *prefix, int last, int top);

/* Deeper than this the tree stops indenting further: a chain of thousands
 * of versions (an appended log) would otherwise cost quadratic space in
 * prefixes and be unreadable anyway.  JSON and DOT have no such limit. */
#define LR_TEXT_MAX_LEVELS 200

static void lr_text_children(struct lr *r, size_t i, const char *prefix)
{
    size_t lo = r->adj_off[i], hi = r->adj_off[i + 1];
    if (lo < hi && strlen(prefix) / 3 >= LR_TEXT_MAX_LEVELS) {
        fprintf(r->f, "%s└─ ... (deeper than %d levels: use --depth or --json)\n", prefix,
                LR_TEXT_MAX_LEVELS);
        return;
    }
    for (size_t k = lo; k < hi; k++)
        lr_text_node(r, r->adj[k], prefix, k + 1 == hi, 0);
}

static void lr_text_node(struct lr *r, size_t i, const char *prefix, int last, int top)
{
    FILE *f = r->f;
    const struct lr_node *n = &r->n[i];
    size_t plen = strlen(prefix);
    char *sub = malloc(plen + 8);
    if (!sub)
        return;
    fprintf(f, "%s%s", prefix, top ? "" : last ? "└─ " : "├─ ");
    lineage_render_version_line(f, n->path, &n->v);
    if (r->printed[i]) {
        fputs("  (see above)\n", f);
        free(sub);
        return;
    }
    r->printed[i] = 1;
    fputc('\n', f);
    snprintf(sub, plen + 8, "%s%s", prefix, top ? "" : last ? "   " : "│  ");
    if (n->v.writer && !r->g->down) {
        size_t sl = strlen(sub);
        char *ind = malloc(sl + 16);
        if (ind) {
            int kids = r->adj_off[i + 1] > r->adj_off[i];
            snprintf(ind, sl + 16, "%s%s   ", sub, kids ? "│" : " ");
            fprintf(f, "%s%s by ", sub, kids ? "├─" : "└─");
            lineage_render_proc_text(f, r->rd, n->v.writer, ind);
            fputc('\n', f);
            free(ind);
        }
    }
    lr_text_children(r, i, sub);
    free(sub);
}

static int lr_text(struct lr *r)
{
    if (r->g->whole) {
        for (size_t i = 0; i < r->g->n_nodes; i++) {
            lineage_render_version_line(r->f, r->n[i].path, &r->n[i].v);
            fputc('\n', r->f);
        }
        return 0;
    }
    if (r->g->n_nodes)
        lr_text_node(r, 0, "", 1, 1);
    if (r->g->truncated)
        fputs("(more beyond the depth limit; use --depth)\n", r->f);
    return 0;
}

/* --- JSON ------------------------------------------------------------------ */

static const char *lr_edge_type(const struct lr_node *derived)
{
    return derived->v.origin == CAT_ORIGIN_WRITTEN ? "used" : cat_origin_name(derived->v.origin);
}

static void lr_json_node(struct lr *r, size_t i)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return;
    render_version_json(m, r->rd, r->n[i].path, &r->n[i].v);
    fclose(m);
    fputs("{\"id\":\"", r->f);
    lr_node_id(r->f, &r->g->nodes[i]);
    fprintf(r->f, "\",\"depth\":%d,", r->g->nodes[i].depth);
    fputs(len > 1 ? buf + 1 : "}", r->f);     /* splice the version's fields */
    free(buf);
}

static void lr_json_edge(struct lr *r, size_t e)
{
    const struct lineage_edge *ed = &r->g->edges[e];
    fputs("{\"derived\":\"", r->f);
    lr_node_id(r->f, &r->g->nodes[ed->derived]);
    fputs("\",\"input\":\"", r->f);
    lr_node_id(r->f, &r->g->nodes[ed->input]);
    fprintf(r->f, "\",\"type\":\"%s\"", lr_edge_type(&r->n[ed->derived]));
    if (r->n[ed->derived].v.writer)
        fprintf(r->f, ",\"process\":\"p%llu\"", (unsigned long long)r->n[ed->derived].v.writer);
    fputc('}', r->f);
}

static int lr_json(struct lr *r)
{
    FILE *f = r->f;
    const struct lineage_graph *g = r->g;
    fputs("{\"root\":", f);
    if (g->whole || !g->n_nodes) {
        fputs("null", f);
    } else {
        fputc('"', f);
        lr_node_id(f, &g->nodes[0]);
        fputc('"', f);
    }
    fprintf(f, ",\"direction\":\"%s\",\"scope\":\"%s\",\"truncated\":%s,\n\"nodes\":[",
            g->whole ? "all" : g->down ? "descendants" : "ancestors",
            lineage_scope_name(g->scope), g->truncated ? "true" : "false");
    for (size_t i = 0; i < g->n_nodes; i++) {
        fputs(i ? ",\n" : "\n", f);
        lr_json_node(r, i);
    }
    fputs("],\n\"processes\":[", f);
    for (size_t i = 0; i < r->n_procs; i++) {
        fputs(i ? ",\n" : "\n", f);
        lineage_render_proc_json(f, r->rd, r->procs[i]);
    }
    fputs("],\n\"edges\":[", f);
    for (size_t i = 0; i < g->n_edges; i++) {
        fputs(i ? ",\n" : "\n", f);
        lr_json_edge(r, i);
    }
    fputs("]}\n", f);
    return 0;
}

static int lr_jsonl(struct lr *r)
{
    for (size_t i = 0; i < r->g->n_nodes; i++) {
        fputs("{\"type\":\"version\",\"node\":", r->f);
        lr_json_node(r, i);
        fputs("}\n", r->f);
    }
    for (size_t i = 0; i < r->n_procs; i++) {
        fputs("{\"type\":\"process\",\"process\":", r->f);
        lineage_render_proc_json(r->f, r->rd, r->procs[i]);
        fputs("}\n", r->f);
    }
    for (size_t i = 0; i < r->g->n_edges; i++) {
        fputs("{\"type\":\"edge\",\"edge\":", r->f);
        lr_json_edge(r, i);
        fputs("}\n", r->f);
    }
    return 0;
}

/* --- PROV-JSON --------------------------------------------------------------- */

static void lr_prov_entity(struct lr *r, size_t i)
{
    FILE *f = r->f;
    const struct cat_version *v = &r->n[i].v;
    char hex[65];
    fputs("\"provfs:", f);
    lr_node_id(f, &r->g->nodes[i]);
    fputs("\":{\"prov:label\":", f);
    char *lab = NULL;
    size_t ll = 0;
    FILE *m = open_memstream(&lab, &ll);
    if (m) {
        fwrite(r->n[i].path.p, 1, r->n[i].path.n, m);
        fprintf(m, "@%u", v->vno);
        fclose(m);
        json_str(f, lab, ll);
        free(lab);
    }
    fputs(",\"provfs:path\":", f);
    json_str(f, r->n[i].path.p, r->n[i].path.n);
    fprintf(f, ",\"provfs:version\":%u,\"provfs:origin\":\"%s\",\"provfs:kind\":", v->vno,
            cat_origin_name(v->origin));
    json_str(f, v->kind.p, v->kind.n);
    if (v->origin != CAT_ORIGIN_DELETED && !(v->flags & (CAT_V_MISSING | CAT_V_UNSTORED))) {
        render_id_hex(v->content_id, hex, 0);
        fprintf(f, ",\"provfs:sha256\":\"%s\"", hex);
    }
    fprintf(f, ",\"provfs:size\":%llu}", (unsigned long long)v->size);
}

static void lr_prov_activity(struct lr *r, uint64_t id)
{
    FILE *f = r->f;
    struct cat_proc p;
    struct cat_str exe, argv;
    fprintf(f, "\"provfs:p%llu\":{", (unsigned long long)id);
    if (cat_proc_get(r->rd, id, &p)) {
        fputc('}', f);
        return;
    }
    lr_proc_image(r->rd, &p, &exe, &argv);
    fputs("\"prov:startTime\":", f);
    json_time(f, p.wall_ns);
    char *lab = NULL;
    size_t ll = 0;
    FILE *m = open_memstream(&lab, &ll);
    if (m) {
        for (size_t k = 0; k < argv.n; k++)
            fputc(argv.p[k] ? argv.p[k] : ' ', m);
        fclose(m);
        while (ll && lab[ll - 1] == ' ')
            ll--;
        fputs(",\"prov:label\":", f);
        json_str(f, lab, ll);
        free(lab);
    }
    fputs(",\"provfs:exe\":", f);
    json_str(f, exe.p, exe.n);
    fputs(",\"provfs:cwd\":", f);
    json_str(f, p.cwd.p, p.cwd.n);
    fprintf(f, ",\"provfs:pid\":%u}", p.tgid);
}

static int lr_prov_uid(struct lr *r, uint64_t id)
{
    struct cat_proc p;
    return cat_proc_get(r->rd, id, &p) ? -1 : (int)p.uid;
}

/* A relation "_:<tag><n>": {fields}. */
static void lr_prov_rel(FILE *f, const char *tag, size_t n, int *first)
{
    fprintf(f, "%s\"_:%s%zu\":{", *first ? "\n" : ",\n", tag, n);
    *first = 0;
}

static int lr_cmp_used(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] != y[0] ? (x[0] < y[0] ? -1 : 1) : x[1] < y[1] ? -1 : x[1] > y[1];
}

/* "used": one per (writer, input) pair, however many versions the writer
 * made from that input. */
static void lr_prov_used(struct lr *r)
{
    const struct lineage_graph *g = r->g;
    uint64_t (*pairs)[2] = calloc(g->n_edges + 1, sizeof *pairs);
    size_t n = 0;
    int first = 1;
    fputs(",\n\"used\":{", r->f);
    for (size_t e = 0; pairs && e < g->n_edges; e++) {
        uint64_t w = r->n[g->edges[e].derived].v.writer;
        if (w) {
            pairs[n][0] = w;
            pairs[n++][1] = g->edges[e].input;
        }
    }
    if (n)
        qsort(pairs, n, sizeof *pairs, lr_cmp_used);
    for (size_t k = 0; k < n; k++) {
        if (k && pairs[k][0] == pairs[k - 1][0] && pairs[k][1] == pairs[k - 1][1])
            continue;
        lr_prov_rel(r->f, "u", k, &first);
        fprintf(r->f, "\"prov:activity\":\"provfs:p%llu\",\"prov:entity\":\"provfs:",
                (unsigned long long)pairs[k][0]);
        lr_node_id(r->f, &g->nodes[pairs[k][1]]);
        fputs("\"}", r->f);
    }
    fputs("}", r->f);
    free(pairs);
}

static void lr_prov_section(struct lr *r, const char *name, int kind)
{
    FILE *f = r->f;
    const struct lineage_graph *g = r->g;
    int first = 1;
    fprintf(f, ",\n\"%s\":{", name);
    for (size_t e = 0; e < g->n_edges; e++) {
        const struct lineage_edge *ed = &g->edges[e];
        uint64_t w = r->n[ed->derived].v.writer;
        if (kind == 1) {                /* wasDerivedFrom */
            lr_prov_rel(f, "d", e, &first);
            fputs("\"prov:generatedEntity\":\"provfs:", f);
            lr_node_id(f, &g->nodes[ed->derived]);
            fputs("\",\"prov:usedEntity\":\"provfs:", f);
            lr_node_id(f, &g->nodes[ed->input]);
            if (w)
                fprintf(f, "\",\"prov:activity\":\"provfs:p%llu", (unsigned long long)w);
            fprintf(f, "\",\"provfs:how\":\"%s\"}", lr_edge_type(&r->n[ed->derived]));
        }
    }
    for (size_t i = 0; kind == 2 && i < g->n_nodes; i++) {     /* wasGeneratedBy */
        if (!r->n[i].v.writer)
            continue;
        lr_prov_rel(f, "g", i, &first);
        fputs("\"prov:entity\":\"provfs:", f);
        lr_node_id(f, &g->nodes[i]);
        fprintf(f, "\",\"prov:activity\":\"provfs:p%llu\",\"prov:time\":",
                (unsigned long long)r->n[i].v.writer);
        json_time(f, r->n[i].v.wall_ns);
        fputc('}', f);
    }
    for (size_t i = 0; kind == 3 && i < r->n_procs; i++) {     /* wasAssociatedWith */
        int uid = lr_prov_uid(r, r->procs[i]);
        if (uid < 0)
            continue;
        lr_prov_rel(f, "a", i, &first);
        fprintf(f, "\"prov:activity\":\"provfs:p%llu\",\"prov:agent\":\"provfs:uid%d\"}",
                (unsigned long long)r->procs[i], uid);
    }
    fputs("}", f);
}

static void lr_prov_agents(struct lr *r)
{
    int *uids = calloc(r->n_procs + 1, sizeof *uids);
    size_t n = 0;
    fputs(",\n\"agent\":{", r->f);
    for (size_t i = 0; uids && i < r->n_procs; i++) {
        int uid = lr_prov_uid(r, r->procs[i]), dup = uid < 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = uids[k] == uid;
        if (dup)
            continue;
        fprintf(r->f, "%s\"provfs:uid%d\":{\"prov:type\":{\"$\":\"prov:Person\","
                "\"type\":\"prov:QUALIFIED_NAME\"},\"provfs:uid\":%d}", n ? ",\n" : "\n", uid, uid);
        uids[n++] = uid;
    }
    fputs("}", r->f);
    free(uids);
}

static int lr_prov(struct lr *r)
{
    FILE *f = r->f;
    fputs("{\"prefix\":{\"provfs\":\"urn:provfs:\"},\n\"entity\":{", f);
    for (size_t i = 0; i < r->g->n_nodes; i++) {
        fputs(i ? ",\n" : "\n", f);
        lr_prov_entity(r, i);
    }
    fputs("},\n\"activity\":{", f);
    for (size_t i = 0; i < r->n_procs; i++) {
        fputs(i ? ",\n" : "\n", f);
        lr_prov_activity(r, r->procs[i]);
    }
    fputs("}", f);
    lr_prov_agents(r);
    lr_prov_used(r);
    lr_prov_section(r, "wasDerivedFrom", 1);
    lr_prov_section(r, "wasGeneratedBy", 2);
    lr_prov_section(r, "wasAssociatedWith", 3);
    fputs("}\n", f);
    return 0;
}

/* --- DOT -------------------------------------------------------------------- */

/* A DOT string body: quotes and backslashes escaped, invalid UTF-8 and
 * control bytes as \xNN shown literally. */
static void lr_dot_bytes(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = lr_utf8_len(p + i, n - i);
        if (len > 1) {
            fwrite(p + i, 1, len, f);
            i += len;
            continue;
        }
        if (len == 1 && p[i] >= 0x20 && p[i] != 0x7f) {
            if (p[i] == '"' || p[i] == '\\')
                fputc('\\', f);
            fputc(p[i], f);
        } else {
            fprintf(f, "\\\\x%02x", p[i]);
        }
        i++;
    }
}

static void lr_dot_proc(struct lr *r, uint64_t id)
{
    struct cat_proc p;
    struct cat_str exe, argv;
    fprintf(r->f, "  \"p%llu\" [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe9f6\", "
            "label=\"p%llu ", (unsigned long long)id, (unsigned long long)id);
    if (!cat_proc_get(r->rd, id, &p)) {
        lr_proc_image(r->rd, &p, &exe, &argv);
        size_t n = argv.n;
        while (n && !argv.p[n - 1])
            n--;
        for (size_t k = 0; k < n && k < 120; k++) {
            size_t run = strnlen(argv.p + k, n - k);
            lr_dot_bytes(r->f, argv.p + k, run);
            k += run;
            if (k < n)
                fputc(' ', r->f);
        }
    }
    fputs("\"];\n", r->f);
}

static int lr_dot(struct lr *r)
{
    FILE *f = r->f;
    const struct lineage_graph *g = r->g;
    fputs("digraph lineage {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n", f);
    for (size_t i = 0; i < g->n_nodes; i++) {
        char id[16];
        lr_short_id(&r->n[i].v, id);
        fputs("  \"", f);
        lr_node_id(f, &g->nodes[i]);
        fprintf(f, "\" [shape=note%s, label=\"", i == 0 && !g->whole ? ", penwidth=2" : "");
        lr_dot_bytes(f, r->n[i].path.p, r->n[i].path.n);
        fprintf(f, "@%u\\n", r->n[i].v.vno);
        lr_dot_bytes(f, r->n[i].v.kind.p, r->n[i].v.kind.n);
        fprintf(f, " %s\"];\n", id);
        if (r->n[i].v.writer) {
            fputs("  \"", f);
            lr_node_id(f, &g->nodes[i]);
            fprintf(f, "\" -> \"p%llu\" [label=\"wasGeneratedBy\"];\n",
                    (unsigned long long)r->n[i].v.writer);
        }
    }
    for (size_t i = 0; i < r->n_procs; i++)
        lr_dot_proc(r, r->procs[i]);
    for (size_t e = 0; e < g->n_edges; e++) {
        const struct lineage_edge *ed = &g->edges[e];
        uint64_t w = r->n[ed->derived].v.writer;
        if (w)
            fprintf(f, "  \"p%llu\" -> \"", (unsigned long long)w);
        else {
            fputs("  \"", f);
            lr_node_id(f, &g->nodes[ed->derived]);
            fputs("\" -> \"", f);
        }
        lr_node_id(f, &g->nodes[ed->input]);
        fprintf(f, "\" [label=\"%s\"];\n", w ? "used" : lr_edge_type(&r->n[ed->derived]));
    }
    fputs("}\n", f);
    return 0;
}

/* --- dispatch ------------------------------------------------------------------ */

int lineage_format_parse(const char *s, enum lineage_format *out)
{
    static const char *const names[] = { "text", "json", "jsonl", "prov-json", "dot" };
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum lineage_format)i;
            return 0;
        }
    return pv_err(-EINVAL, "unknown format '%s' (text, json, jsonl, prov-json, dot)", s);
}

int lineage_render(FILE *f, struct cat_reader *rd, const struct lineage_graph *g,
                   enum lineage_format fmt)
{
    struct lr r;
    memset(&r, 0, sizeof r);
    r.f = f;
    r.rd = rd;
    r.g = g;
    int rc = lr_load(&r);
    if (!rc && fmt == LINEAGE_FMT_TEXT)
        rc = lr_adjacency(&r);
    if (!rc) {
        switch (fmt) {
        case LINEAGE_FMT_TEXT:      rc = lr_text(&r); break;
        case LINEAGE_FMT_JSON:      rc = lr_json(&r); break;
        case LINEAGE_FMT_JSONL:     rc = lr_jsonl(&r); break;
        case LINEAGE_FMT_PROV_JSON: rc = lr_prov(&r); break;
        case LINEAGE_FMT_DOT:       rc = lr_dot(&r); break;
        }
    }
    lr_free(&r);
    return rc;
}
