/*
 * prov.c - the .prov virtual tree; see prov.h and provfs-prov(7).
 *
 * Nodes are created on lookup and kept in a table indexed by node id
 * ((index << 1) | 1).  A node is its virtual path plus what the path
 * names (a workspace path, a version, a process...).  Whether the thing
 * exists is checked against the catalog at lookup, so a stale node just
 * answers ENOENT later.  Generated files are rendered into memory at open
 * (open_memstream) by the shared renderers; version contents stream from
 * the content store.
 */
#include "fs/prov.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/log.h"
#include "fs/capture.h"
#include "fs/fspol.h"
#include "fs/snapshot.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/json.h"
#include "store/lineage.h"
#include "store/lineage_render.h"
#include "store/render.h"
#include "store/store.h"

#define PROV_EV_CHUNK 10000     /* events per .prov/events/ file */
#define PROV_TIMEOUT  1.0

enum pk {
    PK_ROOT, PK_README, PK_STATS, PK_EVENTS, PK_EVCHUNK, PK_PROCS, PK_PROC,
    PK_PROCFILE, PK_BYHASH, PK_HASHFILE, PK_TREE, PK_META, PK_VERSIONS,
    PK_VDATA, PK_VJSON,
};

struct pnode {
    enum pk kind;
    char *vpath;                /* below .prov, "" for .prov itself */
    char *path;                 /* workspace path for tree nodes    */
    char *leaf;                 /* meta or process file name        */
    uint64_t id;                /* proc id, first event seq         */
    uint32_t vno;
    uint8_t hash[32];
    size_t hnext;               /* next index in the vpath hash chain */
};

/* An open .prov file.  Reference-counted: a read still replying when the
 * handle is released (the kernel abandons a request whose caller died,
 * then releases) must not see its buffer freed under it. */
struct pfile {
    atomic_int refs;
    char *buf;                  /* generated content, or NULL       */
    size_t len;
    int data;                   /* stream `id` from the store       */
    uint8_t id[32];
    uint64_t size;
};

struct pdirent {
    char *name;
    mode_t type;
};

struct pdir {
    struct pdirent *ents;
    size_t n, cap;
};

static struct {
    const struct fuse_lowlevel_ops *inner;
    struct fuse_lowlevel_ops ops;
    struct store *st;
    pthread_mutex_t lock;
    struct pnode **nodes;       /* by index; 0 unused               */
    size_t n, cap;
    size_t buckets[1 << 14];    /* vpath hash -> first index, 0 = none */
    uint64_t start_ns;          /* time of everything without a time of its own */
} pv = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Per-file metadata; lineage.* are the ancestors of the current version,
 * impact.* its descendants, in each renderer's format. */
static const struct {
    const char *name;
    int down;
    enum lineage_format fmt;
} prov_graphs[] = {
    { "lineage.txt", 0, LINEAGE_FMT_TEXT },  { "lineage.json", 0, LINEAGE_FMT_JSON },
    { "lineage.prov.json", 0, LINEAGE_FMT_PROV_JSON }, { "lineage.dot", 0, LINEAGE_FMT_DOT },
    { "impact.txt", 1, LINEAGE_FMT_TEXT },   { "impact.json", 1, LINEAGE_FMT_JSON },
};
#define PROV_NGRAPHS (sizeof prov_graphs / sizeof prov_graphs[0])

static const char *const prov_meta_names[] = {
    "log", "versions", "lineage.txt", "lineage.json", "lineage.prov.json", "lineage.dot",
    "impact.txt", "impact.json", NULL
};

/* --- nodes -------------------------------------------------------------- */

static int prov_is(fuse_ino_t ino)
{
    return (ino & 1) && ino != FUSE_ROOT_ID;
}

static struct pnode *prov_node(fuse_ino_t ino)
{
    size_t i = ino >> 1;
    pthread_mutex_lock(&pv.lock);
    struct pnode *n = i < pv.n ? pv.nodes[i] : NULL;
    pthread_mutex_unlock(&pv.lock);
    return n;
}

/* Find or add the node for vpath; its other fields come from `tmpl`. */
static fuse_ino_t prov_intern(const struct pnode *tmpl)
{
    size_t b = pv_hash_str(tmpl->vpath) & (sizeof pv.buckets / sizeof pv.buckets[0] - 1);
    pthread_mutex_lock(&pv.lock);
    for (size_t i = pv.buckets[b]; i; i = pv.nodes[i]->hnext) {
        if (!strcmp(pv.nodes[i]->vpath, tmpl->vpath)) {
            pthread_mutex_unlock(&pv.lock);
            return (fuse_ino_t)(i << 1 | 1);
        }
    }
    if (pv.n == pv.cap) {
        size_t cap = pv.cap ? pv.cap * 2 : 64;
        struct pnode **nn = realloc(pv.nodes, cap * sizeof *nn);
        if (!nn) {
            pthread_mutex_unlock(&pv.lock);
            return 0;
        }
        pv.nodes = nn;
        pv.cap = cap;
        if (!pv.n)
            pv.n = 1;
    }
    struct pnode *n = malloc(sizeof *n);
    if (!n) {
        pthread_mutex_unlock(&pv.lock);
        return 0;
    }
    *n = *tmpl;
    n->vpath = strdup(tmpl->vpath);
    n->path = tmpl->path ? strdup(tmpl->path) : NULL;
    n->leaf = tmpl->leaf ? strdup(tmpl->leaf) : NULL;
    size_t i = pv.n++;
    pv.nodes[i] = n;
    n->hnext = pv.buckets[b];
    pv.buckets[b] = i;
    pthread_mutex_unlock(&pv.lock);
    return (fuse_ino_t)(i << 1 | 1);
}

/* --- what exists -------------------------------------------------------- */

struct prov_probe {
    const char *name;
    size_t len;
    int found;
};

static int prov_probe_child(void *ctx, uint64_t id, struct cat_str name)
{
    struct prov_probe *p = ctx;
    (void)id;
    if (name.n == p->len && !memcmp(name.p, p->name, p->len)) {
        p->found = 1;
        return 1;
    }
    return 0;
}

/* Does the catalog know path as a file with versions, or as a directory
 * above such files? *file_id is set for a file. */
static int prov_tree_exists(struct cat_reader *rd, const char *path, uint64_t *file_id,
                            int *is_file)
{
    struct cat_version v;
    *is_file = cat_file_find(rd, path, file_id) == 0 &&
               cat_version_get(rd, *file_id, 0, &v) == 0;
    if (*is_file)
        return 1;
    const char *slash = strrchr(path, '/');
    char parent[PATH_MAX];
    size_t pl = slash ? (size_t)(slash - path) : 0;
    memcpy(parent, path, pl);
    parent[pl] = 0;
    const char *base = slash ? slash + 1 : path;
    struct prov_probe pr = { base, strlen(base), 0 };
    cat_path_children(rd, parent, prov_probe_child, &pr);
    return pr.found;
}

static int prov_is_meta(const char *name)
{
    for (int i = 0; prov_meta_names[i]; i++)
        if (!strcmp(name, prov_meta_names[i]))
            return 1;
    return 0;
}

/* Parse "N" or "N.json" (N >= 1); returns 1 for data, 2 for json, 0 else. */
static int prov_parse_version_name(const char *name, uint32_t *vno)
{
    char *end;
    unsigned long n = strtoul(name, &end, 10);
    if (end == name || n == 0 || n > UINT32_MAX || name[0] == '0')
        return 0;
    *vno = (uint32_t)n;
    return !*end ? 1 : !strcmp(end, ".json") ? 2 : 0;
}

static char *prov_join(char *buf, size_t len, const char *a, const char *b)
{
    snprintf(buf, len, "%s%s%s", a, *a ? "/" : "", b);
    return buf;
}

static const char *const prov_proc_files[] = {
    "cmdline", "exe", "cwd", "env", "parent", "inputs", "outputs", "info.json", NULL
};

static int prov_child_root(const char *name, struct pnode *t)
{
    static const struct { const char *name; enum pk kind; } top[] = {
        { "README", PK_README }, { "stats", PK_STATS }, { "events", PK_EVENTS },
        { "processes", PK_PROCS }, { "by-hash", PK_BYHASH }, { "tree", PK_TREE },
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
        if (!strcmp(name, top[i].name)) {
            t->kind = top[i].kind;
            t->path = (char *)"";
            return 0;
        }
    }
    return -ENOENT;
}

static int prov_child_tree(struct cat_reader *rd, const struct pnode *par, const char *name,
                           struct pnode *t, char *buf, size_t len)
{
    uint64_t id;
    int is_file;
    if (par->path[0] && prov_is_meta(name) &&
        prov_tree_exists(rd, par->path, &id, &is_file) && is_file) {
        t->kind = strcmp(name, "versions") ? PK_META : PK_VERSIONS;
        t->path = par->path;
        t->leaf = (char *)name;
        t->id = id;
        return 0;
    }
    prov_join(buf, len, par->path, name);
    if (!prov_tree_exists(rd, buf, &id, &is_file))
        return -ENOENT;
    t->kind = PK_TREE;
    t->path = buf;
    return 0;
}

static int prov_child_version(struct cat_reader *rd, const struct pnode *par,
                              const char *name, struct pnode *t)
{
    struct cat_version v;
    int what = prov_parse_version_name(name, &t->vno);
    if (!what || cat_version_get(rd, par->id, t->vno, &v) ||
        (what == 1 && (v.origin == CAT_ORIGIN_DELETED ||
                       (v.flags & (CAT_V_MISSING | CAT_V_HASH_ONLY | CAT_V_UNSTORED)))))
        return -ENOENT;
    t->kind = what == 1 ? PK_VDATA : PK_VJSON;
    t->path = par->path;
    t->id = par->id;
    return 0;
}

/* Classify parent/name; -ENOENT if nothing is there. */
static int prov_child(struct cat_reader *rd, const struct pnode *par, const char *name,
                      struct pnode *t, char *buf, size_t len)
{
    struct cat_proc p;
    char *end;
    switch (par->kind) {
    case PK_ROOT:
        return prov_child_root(name, t);
    case PK_EVENTS: {
        unsigned long long a, b;
        char tail[8];
        if (sscanf(name, "%llu-%llu.%7s", &a, &b, tail) != 3 || strcmp(tail, "jsonl") ||
            a % PROV_EV_CHUNK != 1 || b != a + PROV_EV_CHUNK - 1)
            return -ENOENT;
        struct cat_event e;
        uint64_t maxseq, maxproc;
        if (cat_max_ids(rd, &maxseq, &maxproc) || a > maxseq)
            return -ENOENT;
        (void)e;
        t->kind = PK_EVCHUNK;
        t->id = a;
        return 0;
    }
    case PK_PROCS:
        t->id = strtoull(name, &end, 10);
        if (*end || !t->id || name[0] == '0' || cat_proc_get(rd, t->id, &p))
            return -ENOENT;
        t->kind = PK_PROC;
        return 0;
    case PK_PROC:
        for (int i = 0; prov_proc_files[i]; i++) {
            if (!strcmp(name, prov_proc_files[i])) {
                t->kind = PK_PROCFILE;
                t->id = par->id;
                t->leaf = (char *)prov_proc_files[i];
                return 0;
            }
        }
        return -ENOENT;
    case PK_BYHASH:
        if (content_id_parse(name, t->hash) || content_exists(pv.st, t->hash) != 1)
            return -ENOENT;
        t->kind = PK_HASHFILE;
        return 0;
    case PK_TREE:
        return prov_child_tree(rd, par, name, t, buf, len);
    case PK_VERSIONS:
        return prov_child_version(rd, par, name, t);
    default:
        return -ENOTDIR;
    }
}

/* --- rendering ------------------------------------------------------------ */

static const char prov_readme[] =
"This is .prov, the provenance of this workspace, generated by provfs.\n"
"Everything here is read-only and made on demand from the record in\n"
".provfs/; see provfs-prov(7).\n"
"\n"
"  stats                        store size, logical size, dedup ratio\n"
"  events/A-B.jsonl             the event log, 10000 events a file, JSON lines\n"
"  processes/ID/                cmdline exe cwd env parent inputs outputs info.json\n"
"  by-hash/SHA256               a content by its id (root only; not listed)\n"
"  tree/PATH/log                the versions of PATH, newest first\n"
"  tree/PATH/versions/N         the content of version N (sha256sum = its id)\n"
"  tree/PATH/versions/N.json    the metadata of version N\n"
"  tree/PATH/lineage.{txt,json,prov.json,dot}  where the current version came from\n"
"  tree/PATH/impact.{txt,json}  what was made from it\n"
"\n"
"A version's files have the owner, group and read permissions the file had,\n"
"so only those who could read the file can read its versions.\n";

static int prov_render_stats(struct cat_reader *rd, FILE *f)
{
    struct content_stats cs;
    struct cat_counts cc;
    int rc = content_stats(pv.st, &cs);
    if (rc || (rc = cat_counts(rd, &cc)))
        return rc;
    double ratio = cs.stored_bytes ? (double)cs.logical_bytes / (double)cs.stored_bytes : 0;
    fprintf(f, "logical_bytes: %llu\nstored_bytes: %llu\npack_bytes: %llu\n"
            "dedup_compression_ratio: %.2f\ncontents: %llu\nchunks: %llu\n"
            "events: %llu\nprocesses: %llu\nfiles: %llu\ngaps: %llu\n",
            (unsigned long long)cs.logical_bytes, (unsigned long long)cs.stored_bytes,
            (unsigned long long)cs.pack_bytes, ratio, (unsigned long long)cs.contents,
            (unsigned long long)cs.chunks, (unsigned long long)cc.events,
            (unsigned long long)cc.procs, (unsigned long long)cc.files,
            (unsigned long long)cc.gaps);
    return 0;
}

struct prov_evctx { FILE *f; uint64_t last; };

static int prov_event_line(void *arg, const struct cat_event *e)
{
    struct prov_evctx *c = arg;
    if (e->seq > c->last)
        return 1;
    fprintf(c->f, "{\"seq\":%llu,\"time\":", (unsigned long long)e->seq);
    json_time(c->f, e->wall_ns);
    fprintf(c->f, ",\"op\":\"%s\",\"proc\":%llu,\"path\":", cap_op_name(e->op),
            (unsigned long long)e->proc_id);
    json_str(c->f, e->path.p, e->path.n);
    if (e->path2.n) {
        fputs(",\"path2\":", c->f);
        json_str(c->f, e->path2.p, e->path2.n);
    }
    fprintf(c->f, ",\"arg\":%llu}\n", (unsigned long long)e->arg);
    return 0;
}

struct prov_ioctx { FILE *f; int outputs; };

static int prov_io_line(void *arg, const struct cat_event *e)
{
    struct prov_ioctx *c = arg;
    int is_out = e->op == CAP_CLOSE_WRITE;
    int is_in = e->op == CAP_OPEN_READ;
    if ((c->outputs && is_out) || (!c->outputs && is_in)) {
        fwrite(e->path.p, 1, e->path.n, c->f);
        fputc('\n', c->f);
    }
    return 0;
}

static void prov_put_list(FILE *f, struct cat_str s)
{
    for (size_t i = 0; i < s.n; i++)
        fputc(s.p[i] ? s.p[i] : '\n', f);
    if (s.n && s.p[s.n - 1])
        fputc('\n', f);
}

static int prov_render_procfile(struct cat_reader *rd, const struct pnode *n, FILE *f)
{
    struct cat_proc p;
    struct cat_image im;
    int rc = cat_proc_get(rd, n->id, &p);
    if (rc)
        return rc;
    int img = cat_proc_last_image(rd, n->id, &im) == 0;
    const char *leaf = n->leaf;
    if (!strcmp(leaf, "cmdline"))
        prov_put_list(f, img ? im.argv : p.argv);
    else if (!strcmp(leaf, "exe"))
        fprintf(f, "%.*s\n", (int)(img ? im.exe.n : p.exe.n), img ? im.exe.p : p.exe.p);
    else if (!strcmp(leaf, "cwd"))
        fprintf(f, "%.*s\n", (int)p.cwd.n, p.cwd.p);
    else if (!strcmp(leaf, "env"))
        prov_put_list(f, p.env);
    else if (!strcmp(leaf, "parent") && p.parent_id)
        fprintf(f, "%llu\n", (unsigned long long)p.parent_id);
    else if (!strcmp(leaf, "inputs") || !strcmp(leaf, "outputs")) {
        struct prov_ioctx c = { f, leaf[0] == 'o' };
        return cat_proc_events(rd, n->id, prov_io_line, &c);
    } else if (!strcmp(leaf, "info.json")) {
        render_proc_json(f, rd, &p);
        fputc('\n', f);
    }
    return 0;
}

struct prov_logctx { FILE *f; struct cat_reader *rd; int count; };

static int prov_log_line(void *arg, const struct cat_version *v)
{
    struct prov_logctx *c = arg;
    if (!c->count++)
        render_log_header(c->f);
    render_log_line(c->f, c->rd, v);
    return 0;
}

static int prov_render_version_json(struct cat_reader *rd, const struct pnode *n, FILE *f)
{
    struct cat_version v;
    int rc = cat_version_get(rd, n->id, n->vno, &v);
    if (rc)
        return rc;
    render_version_json(f, rd, (struct cat_str){ n->path, strlen(n->path) }, &v);
    fputc('\n', f);
    return 0;
}

/* lineage.* / impact.*: the graph of the current version, as the CLI's
 * `provfs lineage [--down] --format F PATH` renders it (same walk, same
 * renderer; the scope is the policy's). */
static int prov_render_graph(struct cat_reader *rd, const struct pnode *n, FILE *f)
{
    struct cat_version v;
    struct lineage_graph *g = NULL;
    enum lineage_scope scope = LINEAGE_SCOPE_PROCESS;
    struct pol *p = fspol_get();
    if (p && pol_scope(p) == POL_SCOPE_JOB)
        scope = LINEAGE_SCOPE_JOB;
    pol_free(p);
    for (size_t i = 0; i < PROV_NGRAPHS; i++) {
        if (strcmp(n->leaf, prov_graphs[i].name))
            continue;
        int rc = cat_version_get(rd, n->id, 0, &v);
        if (!rc)
            rc = lineage_walk(rd, v.file_id, v.vno, prov_graphs[i].down, -1, scope, &g);
        if (!rc)
            rc = lineage_render(f, rd, g, prov_graphs[i].fmt);
        lineage_graph_free(g);
        return rc;
    }
    return -ENOENT;
}

/* Render a generated file into f. */
static int prov_render(struct cat_reader *rd, const struct pnode *n, FILE *f)
{
    switch (n->kind) {
    case PK_README:
        fputs(prov_readme, f);
        return 0;
    case PK_STATS:
        return prov_render_stats(rd, f);
    case PK_EVCHUNK: {
        struct prov_evctx c = { f, n->id + PROV_EV_CHUNK - 1 };
        int rc = cat_events_scan(rd, n->id, prov_event_line, &c);
        return rc < 0 ? rc : 0;
    }
    case PK_PROCFILE:
        return prov_render_procfile(rd, n, f);
    case PK_META:
        if (!strcmp(n->leaf, "log")) {
            struct prov_logctx c = { f, rd, 0 };
            return cat_versions_scan(rd, n->id, 1, prov_log_line, &c);
        }
        return prov_render_graph(rd, n, f);
    case PK_VJSON:
        return prov_render_version_json(rd, n, f);
    default:
        return -EISDIR;
    }
}

/* Render into a malloc'ed buffer. */
static int prov_render_buf(const struct pnode *n, char **buf, size_t *len)
{
    struct cat_reader *rd;
    int rc = cat_read_begin(pv.st, &rd);
    if (rc)
        return rc;
    FILE *f = open_memstream(buf, len);
    if (!f) {
        cat_read_end(rd);
        return -ENOMEM;
    }
    rc = prov_render(rd, n, f);
    cat_read_end(rd);
    if (fclose(f) && !rc)
        rc = -ENOMEM;
    if (rc) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* --- attributes ----------------------------------------------------------- */

static int prov_is_dir(enum pk k)
{
    return k == PK_ROOT || k == PK_EVENTS || k == PK_PROCS || k == PK_PROC ||
           k == PK_BYHASH || k == PK_TREE || k == PK_VERSIONS;
}

static struct timespec prov_ts(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    return ts;
}

/* Owner, read bits and time of a version: what the file had then. */
static void prov_version_attr(const struct cat_version *v, struct stat *st)
{
    st->st_uid = v->uid;
    st->st_gid = v->gid;
    st->st_mode = (st->st_mode & S_IFMT) | (v->mode & 0444);
    st->st_mtim = st->st_ctim = st->st_atim = prov_ts(v->wall_ns);
}

/* tree/PATH/ and its versions/ belong to the file: its current owner,
 * and r-x where the file has r, so a private file's history is as closed
 * to other users as the file itself. */
static int prov_stat_file_dir(const struct pnode *n, struct stat *st)
{
    if ((n->kind != PK_TREE && n->kind != PK_VERSIONS) || !n->path || !n->path[0])
        return 0;
    struct cat_reader *rd;
    struct cat_version v;
    uint64_t id;
    if (cat_read_begin(pv.st, &rd))
        return 0;
    if (cat_file_find(rd, n->path, &id) == 0 && cat_version_get(rd, id, 0, &v) == 0 &&
        v.origin != CAT_ORIGIN_DELETED) {
        mode_t r = v.mode & 0444;
        st->st_mode = S_IFDIR | r | r >> 2;
        st->st_uid = v.uid;
        st->st_gid = v.gid;
    }
    cat_read_end(rd);
    return 0;
}

static int prov_stat(const struct pnode *n, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = pv_hash_str(n->vpath) | 1ull << 63;
    st->st_nlink = 1;
    st->st_mode = prov_is_dir(n->kind) ? S_IFDIR | 0555 : S_IFREG | 0444;
    if (n->kind == PK_HASHFILE || n->kind == PK_PROCFILE)
        st->st_mode = S_IFREG | 0400;   /* no owner to check against: root */
    /* Stable times (tar and rsync compare them between two stats): the
     * mount's start, unless the thing is a version, which has its own. */
    st->st_mtim = st->st_ctim = st->st_atim = prov_ts(pv.start_ns);
    struct cat_reader *rd;
    struct cat_version v;
    if (prov_is_dir(n->kind)) {
        st->st_nlink = 2;
        return prov_stat_file_dir(n, st);
    }
    int rc = cat_read_begin(pv.st, &rd);
    if (rc)
        return rc;
    if (n->kind == PK_VDATA || n->kind == PK_VJSON || n->kind == PK_META) {
        rc = cat_version_get(rd, n->id, n->kind == PK_META ? 0 : n->vno, &v);
        if (!rc) {
            prov_version_attr(&v, st);
            if (n->kind == PK_VDATA)
                st->st_size = (off_t)v.size;
        }
    }
    cat_read_end(rd);
    if (rc)
        return rc;
    if (n->kind == PK_HASHFILE) {
        uint64_t size;
        if ((rc = content_stat(pv.st, n->hash, &size, NULL, NULL)))
            return rc;
        st->st_size = (off_t)size;
    } else if (n->kind != PK_VDATA) {
        /* Generated: the size is what a read returns, so cp and tar work. */
        char *buf;
        size_t len;
        if ((rc = prov_render_buf(n, &buf, &len)))
            return rc;
        free(buf);
        st->st_size = (off_t)len;
    }
    st->st_blocks = (st->st_size + 511) / 512;
    return 0;
}

/* --- directory listings --------------------------------------------------- */

static int prov_dir_add(struct pdir *d, const char *name, size_t len, mode_t type)
{
    if (d->n && strlen(d->ents[d->n - 1].name) == len &&
        !memcmp(d->ents[d->n - 1].name, name, len))
        return 0;   /* a path that is both a file and a directory: once */
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 32;
        struct pdirent *e = realloc(d->ents, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        d->ents = e;
        d->cap = cap;
    }
    if (!(d->ents[d->n].name = strndup(name, len)))
        return -ENOMEM;
    d->ents[d->n++].type = type;
    return 0;
}

static int prov_list_tree_child(void *ctx, uint64_t id, struct cat_str name)
{
    (void)id;
    return prov_dir_add(ctx, name.p, name.n, S_IFDIR);
}

struct prov_vlist { struct pdir *d; };

static int prov_list_version(void *ctx, const struct cat_version *v)
{
    struct pdir *d = ctx;
    char name[32];
    int n = snprintf(name, sizeof name, "%u", v->vno);
    int rc = 0;
    if (v->origin != CAT_ORIGIN_DELETED &&
        !(v->flags & (CAT_V_MISSING | CAT_V_HASH_ONLY | CAT_V_UNSTORED)))
        rc = prov_dir_add(d, name, (size_t)n, S_IFREG);
    n = snprintf(name, sizeof name, "%u.json", v->vno);
    return rc ? rc : prov_dir_add(d, name, (size_t)n, S_IFREG);
}

static int prov_list_procs(void *ctx, const struct cat_proc *p)
{
    char name[32];
    int n = snprintf(name, sizeof name, "%llu", (unsigned long long)p->id);
    return prov_dir_add(ctx, name, (size_t)n, S_IFDIR);
}

static int prov_list(struct cat_reader *rd, const struct pnode *n, struct pdir *d)
{
    static const char *const top[] = { "README", "stats", "events", "processes",
                                       "by-hash", "tree", NULL };
    uint64_t id, maxseq, maxproc;
    int is_file, rc = 0;
    switch (n->kind) {
    case PK_ROOT:
        for (int i = 0; top[i] && !rc; i++)
            rc = prov_dir_add(d, top[i], strlen(top[i]), i < 2 ? S_IFREG : S_IFDIR);
        return rc;
    case PK_EVENTS:
        if ((rc = cat_max_ids(rd, &maxseq, &maxproc)))
            return rc;
        for (uint64_t a = 1; a <= maxseq && !rc; a += PROV_EV_CHUNK) {
            char name[64];
            int len = snprintf(name, sizeof name, "%llu-%llu.jsonl", (unsigned long long)a,
                               (unsigned long long)(a + PROV_EV_CHUNK - 1));
            rc = prov_dir_add(d, name, (size_t)len, S_IFREG);
        }
        return rc;
    case PK_PROCS:
        return cat_procs_scan(rd, prov_list_procs, d);
    case PK_PROC:
        for (int i = 0; prov_proc_files[i] && !rc; i++)
            rc = prov_dir_add(d, prov_proc_files[i], strlen(prov_proc_files[i]), S_IFREG);
        return rc;
    case PK_TREE:
        if (n->path[0] && prov_tree_exists(rd, n->path, &id, &is_file) && is_file) {
            for (int i = 0; prov_meta_names[i] && !rc; i++)
                rc = prov_dir_add(d, prov_meta_names[i], strlen(prov_meta_names[i]),
                                  strcmp(prov_meta_names[i], "versions") ? S_IFREG : S_IFDIR);
        }
        return rc ? rc : cat_path_children(rd, n->path, prov_list_tree_child, d);
    case PK_VERSIONS:
        return cat_versions_scan(rd, n->id, 0, prov_list_version, d);
    default:
        return 0;   /* by-hash is reachable by name only */
    }
}

static void prov_dir_free(struct pdir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ents[i].name);
    free(d->ents);
    free(d);
}

/* --- operations ------------------------------------------------------------ */

static void prov_reply_entry(fuse_req_t req, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    struct pnode *n = ino ? prov_node(ino) : NULL;
    int rc = n ? prov_stat(n, &e.attr) : -ENOMEM;
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    e.ino = ino;
    e.attr_timeout = e.entry_timeout = PROV_TIMEOUT;
    fuse_reply_entry(req, &e);
}

/* .prov shows what was done before it was asked: versions and events
 * queued before this request are committed first (bounded: only work
 * queued before the call).  Neither queue waits on FUSE, so a FUSE thread
 * may wait for them. */
static void prov_settle(void)
{
    snap_flush();
    cap_flush();
}

static void w_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (parent == FUSE_ROOT_ID && !strcmp(name, PROV_NAME)) {
        struct pnode t = { .kind = PK_ROOT, .vpath = (char *)"" };
        prov_reply_entry(req, prov_intern(&t));
        return;
    }
    if (!prov_is(parent)) {
        pv.inner->lookup(req, parent, name);
        return;
    }
    struct pnode *par = prov_node(parent), t;
    struct cat_reader *rd;
    char vpath[PATH_MAX + 64], buf[PATH_MAX];
    prov_settle();
    memset(&t, 0, sizeof t);
    int rc = par ? cat_read_begin(pv.st, &rd) : -ENOENT;
    if (!rc) {
        rc = prov_child(rd, par, name, &t, buf, sizeof buf);
        cat_read_end(rd);
    }
    if (rc) {
        fuse_reply_err(req, -rc);
        return;
    }
    t.vpath = prov_join(vpath, sizeof vpath, par->vpath, name);
    prov_reply_entry(req, prov_intern(&t));
}

static void w_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    if (prov_is(ino))
        fuse_reply_none(req);   /* nodes stay: they are small and few */
    else
        pv.inner->forget(req, ino, nlookup);
}

static void w_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *fd)
{
    size_t k = 0;
    for (size_t i = 0; i < count; i++)
        if (!prov_is(fd[i].ino))
            fd[k++] = fd[i];
    if (k)
        pv.inner->forget_multi(req, k, fd);
    else
        fuse_reply_none(req);
}

static void w_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->getattr(req, ino, fi);
        return;
    }
    struct stat st;
    struct pnode *n = prov_node(ino);
    int rc = n ? prov_stat(n, &st) : -ENOENT;
    if (rc)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, PROV_TIMEOUT);
}

/* Everything that would change .prov: read-only file system. */
#define PROV_ROFS(cond, call)                 \
    do {                                      \
        if (cond)                             \
            fuse_reply_err(req, EROFS);       \
        else                                  \
            call;                             \
    } while (0)

static void w_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int valid,
                      struct fuse_file_info *fi)
{
    PROV_ROFS(prov_is(ino), pv.inner->setattr(req, ino, a, valid, fi));
}

static void w_mknod(fuse_req_t req, fuse_ino_t p, const char *name, mode_t m, dev_t r)
{
    PROV_ROFS(prov_is(p), pv.inner->mknod(req, p, name, m, r));
}

static void w_mkdir(fuse_req_t req, fuse_ino_t p, const char *name, mode_t m)
{
    PROV_ROFS(prov_is(p), pv.inner->mkdir(req, p, name, m));
}

static void w_symlink(fuse_req_t req, const char *link, fuse_ino_t p, const char *name)
{
    PROV_ROFS(prov_is(p), pv.inner->symlink(req, link, p, name));
}

static void w_unlink(fuse_req_t req, fuse_ino_t p, const char *name)
{
    PROV_ROFS(prov_is(p), pv.inner->unlink(req, p, name));
}

static void w_rmdir(fuse_req_t req, fuse_ino_t p, const char *name)
{
    PROV_ROFS(prov_is(p), pv.inner->rmdir(req, p, name));
}

static void w_rename(fuse_req_t req, fuse_ino_t p, const char *name, fuse_ino_t np,
                     const char *newname, unsigned flags)
{
    PROV_ROFS(prov_is(p) || prov_is(np), pv.inner->rename(req, p, name, np, newname, flags));
}

static void w_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t np, const char *name)
{
    PROV_ROFS(prov_is(ino) || prov_is(np), pv.inner->link(req, ino, np, name));
}

static void w_create(fuse_req_t req, fuse_ino_t p, const char *name, mode_t m,
                     struct fuse_file_info *fi)
{
    PROV_ROFS(prov_is(p), pv.inner->create(req, p, name, m, fi));
}

static void w_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *v,
                       size_t size, int flags)
{
    PROV_ROFS(prov_is(ino), pv.inner->setxattr(req, ino, name, v, size, flags));
}

static void w_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    PROV_ROFS(prov_is(ino), pv.inner->removexattr(req, ino, name));
}

static void w_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    PROV_ROFS(prov_is(ino), pv.inner->fallocate(req, ino, mode, off, len, fi));
}

static void w_readlink(fuse_req_t req, fuse_ino_t ino)
{
    if (prov_is(ino))
        fuse_reply_err(req, EINVAL);
    else
        pv.inner->readlink(req, ino);
}

static void w_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->open(req, ino, fi);
        return;
    }
    struct pnode *n = prov_node(ino);
    if (!n || prov_is_dir(n->kind)) {
        fuse_reply_err(req, n ? EISDIR : ENOENT);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    prov_settle();
    struct pfile *f = calloc(1, sizeof *f);
    int rc = f ? 0 : -ENOMEM;
    if (f)
        atomic_init(&f->refs, 1);
    struct cat_reader *rd;
    struct cat_version v;
    if (!rc && n->kind == PK_HASHFILE) {
        f->data = 1;
        memcpy(f->id, n->hash, 32);
        rc = content_stat(pv.st, n->hash, &f->size, NULL, NULL);
    } else if (!rc && n->kind == PK_VDATA && !(rc = cat_read_begin(pv.st, &rd))) {
        if (!(rc = cat_version_get(rd, n->id, n->vno, &v))) {
            f->data = 1;
            memcpy(f->id, v.content_id, 32);
            f->size = v.size;
        }
        cat_read_end(rd);
    } else if (!rc) {
        rc = prov_render_buf(n, &f->buf, &f->len);
        fi->direct_io = 1;  /* regenerated at each open: sizes may move */
    }
    if (rc) {
        free(f);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->keep_cache = f->data;   /* a version never changes */
    fi->fh = (uint64_t)(uintptr_t)f;
    if (fuse_reply_open(req, fi)) {
        free(f->buf);
        free(f);
    }
}

static void prov_file_put(struct pfile *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1) {
        free(f->buf);
        free(f);
    }
}

static void w_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->read(req, ino, size, off, fi);
        return;
    }
    struct pfile *f = (struct pfile *)(uintptr_t)fi->fh;
    atomic_fetch_add(&f->refs, 1);
    if (!f->data) {
        size_t o = (size_t)off < f->len ? (size_t)off : f->len;
        fuse_reply_buf(req, f->buf + o, size < f->len - o ? size : f->len - o);
    } else {
        char *buf = malloc(size ? size : 1);
        ssize_t n = buf ? content_pread(pv.st, f->id, buf, size, (uint64_t)off) : -ENOMEM;
        if (n < 0)
            fuse_reply_err(req, (int)-n);
        else
            fuse_reply_buf(req, buf, (size_t)n);
        free(buf);
    }
    prov_file_put(f);
}

static void w_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *b, off_t off,
                        struct fuse_file_info *fi)
{
    PROV_ROFS(prov_is(ino), pv.inner->write_buf(req, ino, b, off, fi));
}

static void w_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->release(req, ino, fi);
        return;
    }
    prov_file_put((struct pfile *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void w_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    if (prov_is(ino))
        fuse_reply_err(req, 0);
    else
        pv.inner->fsync(req, ino, datasync, fi);
}

static void w_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->opendir(req, ino, fi);
        return;
    }
    prov_settle();
    struct pnode *n = prov_node(ino);
    struct pdir *d = calloc(1, sizeof *d);
    struct cat_reader *rd;
    int rc = !n ? -ENOENT : !prov_is_dir(n->kind) ? -ENOTDIR : !d ? -ENOMEM
           : cat_read_begin(pv.st, &rd);
    if (!rc) {
        rc = prov_list(rd, n, d);
        cat_read_end(rd);
    }
    if (rc < 0) {
        if (d)
            prov_dir_free(d);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi))
        prov_dir_free(d);
}

static void prov_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                         struct fuse_file_info *fi, int plus)
{
    struct pdir *d = (struct pdir *)(uintptr_t)fi->fh;
    struct pnode *n = prov_node(ino);
    char *buf = malloc(size), *p = buf, vpath[PATH_MAX + 64];
    size_t rem = size;
    if (!buf || !n) {
        free(buf);
        fuse_reply_err(req, buf ? ENOENT : ENOMEM);
        return;
    }
    for (size_t i = (size_t)off; i < d->n; i++) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.attr.st_ino = pv_hash_str(prov_join(vpath, sizeof vpath, n->vpath, d->ents[i].name)) |
                        1ull << 63;
        e.attr.st_mode = d->ents[i].type;
        /* ino 0 in readdirplus: names only; stat comes by lookup. */
        size_t sz = plus ? fuse_add_direntry_plus(req, p, rem, d->ents[i].name, &e, (off_t)i + 1)
                         : fuse_add_direntry(req, p, rem, d->ents[i].name, &e.attr, (off_t)i + 1);
        if (sz > rem)
            break;
        p += sz;
        rem -= sz;
    }
    fuse_reply_buf(req, buf, size - rem);
    free(buf);
}

static void w_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    if (prov_is(ino))
        prov_readdir(req, ino, size, off, fi, 0);
    else
        pv.inner->readdir(req, ino, size, off, fi);
}

static void w_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          struct fuse_file_info *fi)
{
    if (prov_is(ino))
        prov_readdir(req, ino, size, off, fi, 1);
    else
        pv.inner->readdirplus(req, ino, size, off, fi);
}

static void w_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->releasedir(req, ino, fi);
        return;
    }
    prov_dir_free((struct pdir *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void w_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    if (prov_is(ino))
        fuse_reply_err(req, 0);
    else
        pv.inner->fsyncdir(req, ino, datasync, fi);
}

static void w_statfs(fuse_req_t req, fuse_ino_t ino)
{
    pv.inner->statfs(req, prov_is(ino) ? FUSE_ROOT_ID : ino);
}

static void w_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    if (!prov_is(ino))
        pv.inner->access(req, ino, mask);
    else
        fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

static void w_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    if (prov_is(ino))
        fuse_reply_err(req, ENODATA);
    else
        pv.inner->getxattr(req, ino, name, size);
}

static void w_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    if (!prov_is(ino))
        pv.inner->listxattr(req, ino, size);
    else if (size == 0)
        fuse_reply_xattr(req, 0);
    else
        fuse_reply_buf(req, NULL, 0);
}

static void w_copy_file_range(fuse_req_t req, fuse_ino_t in, off_t off_in,
                              struct fuse_file_info *fi_in, fuse_ino_t out, off_t off_out,
                              struct fuse_file_info *fi_out, size_t len, int flags)
{
    /* Out of .prov: EXDEV makes the caller fall back to read + write. */
    if (prov_is(out))
        fuse_reply_err(req, EROFS);
    else if (prov_is(in))
        fuse_reply_err(req, EXDEV);
    else
        pv.inner->copy_file_range(req, in, off_in, fi_in, out, off_out, fi_out, len, flags);
}

static void w_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    struct fuse_file_info *fi)
{
    if (!prov_is(ino)) {
        pv.inner->lseek(req, ino, off, whence, fi);
        return;
    }
    struct pfile *f = (struct pfile *)(uintptr_t)fi->fh;
    off_t size = (off_t)(f->data ? f->size : f->len);
    if (off >= size)
        fuse_reply_err(req, ENXIO);
    else
        fuse_reply_lseek(req, whence == SEEK_HOLE ? size : off);   /* no holes */
}

const struct fuse_lowlevel_ops *prov_wrap_ops(const struct fuse_lowlevel_ops *inner,
                                              struct store *st)
{
    pv.inner = inner;
    pv.st = st;
    pv.start_ns = store_now_ns();
    pv.ops = *inner;
    pv.ops.lookup = w_lookup;
    pv.ops.forget = w_forget;
    pv.ops.forget_multi = w_forget_multi;
    pv.ops.getattr = w_getattr;
    pv.ops.setattr = w_setattr;
    pv.ops.readlink = w_readlink;
    pv.ops.mknod = w_mknod;
    pv.ops.mkdir = w_mkdir;
    pv.ops.symlink = w_symlink;
    pv.ops.unlink = w_unlink;
    pv.ops.rmdir = w_rmdir;
    pv.ops.rename = w_rename;
    pv.ops.link = w_link;
    pv.ops.open = w_open;
    pv.ops.create = w_create;
    pv.ops.read = w_read;
    pv.ops.write_buf = w_write_buf;
    pv.ops.release = w_release;
    pv.ops.fsync = w_fsync;
    pv.ops.opendir = w_opendir;
    pv.ops.readdir = w_readdir;
    pv.ops.readdirplus = w_readdirplus;
    pv.ops.releasedir = w_releasedir;
    pv.ops.fsyncdir = w_fsyncdir;
    pv.ops.statfs = w_statfs;
    pv.ops.access = w_access;
    pv.ops.setxattr = w_setxattr;
    pv.ops.getxattr = w_getxattr;
    pv.ops.listxattr = w_listxattr;
    pv.ops.removexattr = w_removexattr;
    pv.ops.fallocate = w_fallocate;
    pv.ops.copy_file_range = w_copy_file_range;
    pv.ops.lseek = w_lseek;
    return &pv.ops;
}

void prov_fini(void)
{
    pthread_mutex_lock(&pv.lock);
    for (size_t i = 1; i < pv.n; i++) {
        free(pv.nodes[i]->vpath);
        free(pv.nodes[i]->path);
        free(pv.nodes[i]->leaf);
        free(pv.nodes[i]);
    }
    free(pv.nodes);
    pv.nodes = NULL;
    pv.n = pv.cap = 0;
    memset(pv.buckets, 0, sizeof pv.buckets);
    pthread_mutex_unlock(&pv.lock);
}

unsigned long long prov_stable_ino(const char *vpath)
{
    return pv_hash_str(vpath) | 1ull << 63;
}

int prov_listed(void)
{
    struct pol *p = fspol_get();
    int listed = p && pol_prov_listed(p);
    pol_free(p);
    return listed;
}
