/* test_lineage.c - the lineage rule (store/lineage.c) on small hand-built
 * catalogs: which versions count as inputs and outputs, and walks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/capture.h"
#include "store/catalog.h"
#include "store/lineage.h"
#include "store/store.h"

static char tmpdir[64];
static struct store *st;

static struct cat_str S(const char *s)
{
    struct cat_str r = { s, s ? strlen(s) : 0 };
    return r;
}

/* A process with one image running exe, first seen at seq. */
static void proc_exe(uint64_t id, uint64_t parent, uint32_t pgid, const char *in,
                     const char *out, const char *exe, uint64_t seq);

/* A process with one image; stdin/stdout identities as given. */
static void proc(uint64_t id, uint64_t parent, uint32_t pgid, const char *in, const char *out)
{
    proc_exe(id, parent, pgid, in, out, "/bin/prog", 0);
}

static void proc_exe(uint64_t id, uint64_t parent, uint32_t pgid, const char *in,
                     const char *out, const char *exe, uint64_t seq)
{
    struct cat_rec r[2];
    memset(r, 0, sizeof r);
    r[0].type = CAT_REC_PROC;
    struct cat_proc *p = &r[0].u.proc;
    memset(p->boot_id, 7, 16);
    p->id = id;
    p->start = id * 10;
    p->tgid = (uint32_t)(1000 + id);
    p->pgid = pgid;
    p->parent_id = parent;
    p->argv = S("prog");
    p->seq = seq;
    p->fd[0] = S(in);
    p->fd[1] = S(out);
    r[1].type = CAT_REC_IMAGE;
    r[1].u.image = (struct cat_image){ .proc_id = id, .seq = seq, .exe = S(exe), .argv = S("prog") };
    r[1].u.image.fd[0] = S(in);
    r[1].u.image.fd[1] = S(out);
    assert_int_equal(cat_commit(st, r, 2), 0);
}

static void ev2(uint64_t seq, uint32_t op, uint64_t pid, const char *path, const char *path2,
                uint64_t arg)
{
    struct cat_rec r;
    memset(&r, 0, sizeof r);
    r.type = CAT_REC_EVENT;
    r.u.event = (struct cat_event){ .seq = seq, .op = op, .proc_id = pid, .path = S(path),
                                    .path2 = S(path2), .arg = arg, .wall_ns = seq };
    assert_int_equal(cat_commit(st, &r, 1), 0);
}

static void ev(uint64_t seq, uint32_t op, uint64_t pid, const char *path)
{
    ev2(seq, op, pid, path, NULL, op == CAP_OPEN_WRITE ? O_WRONLY | O_TRUNC : 0);
}

static void ver(const char *path, uint64_t seq, uint32_t origin, uint64_t writer,
                const char *src, uint32_t src_vno)
{
    struct cat_version v;
    memset(&v, 0, sizeof v);
    v.seq = seq;
    v.wall_ns = seq;
    v.origin = origin;
    v.writer = writer;
    v.kind = S("other");
    if (src) {
        struct cat_reader *rd;
        assert_int_equal(cat_read_begin(st, &rd), 0);
        assert_int_equal(cat_file_find(rd, src, &v.src_file_id), 0);
        cat_read_end(rd);
        v.src_vno = src_vno;
    }
    assert_int_equal(cat_version_commit(st, path, &v), 0);
}

/*
 * The catalog, in logical time:
 *   p1 (pgid 1, stdin pipe:[9]) reads a, writes b@1 at 8, reads c after.
 *   p2, child of p1, reads d.        p3 feeds p1 through pipe:[9], reads e.
 *   p4 (pgid 4, unrelated) reads f.  p6 (pgid 1, p1's group) reads j.
 *   b@1 is renamed to g; p5 (cp) reads g and writes h@1.
 *   p7 reads "late" before its origin version was stamped; writes o7.
 *   x, y derive from a (p8, p9); p10 reads x and y, writes z.
 *   p11 appends (no O_TRUNC) to b, giving b@2 derived from b@1... but
 *   b was renamed away; so p11 appends to h instead: h@2 <- h@1.
 */
static void build(void)
{
    proc(1, 0, 1, "pipe:[9]", "/dev/pts/0");
    proc(2, 1, 1, NULL, NULL);
    proc(3, 0, 1, NULL, "pipe:[9]");
    proc(4, 0, 4, NULL, NULL);
    proc(5, 0, 5, NULL, NULL);
    proc(6, 0, 1, NULL, NULL);
    proc(7, 0, 7, NULL, NULL);
    for (uint64_t i = 8; i <= 11; i++)
        proc(i, 0, (uint32_t)i, NULL, NULL);
    const char *origins[] = { "a", "c", "d", "e", "f", "j" };
    for (int i = 0; i < 6; i++)
        ver(origins[i], 1, CAT_ORIGIN_PREEXISTING, 0, NULL, 0);
    ev(2, CAP_OPEN_READ, 1, "a");
    ev(3, CAP_OPEN_READ, 2, "d");
    ev(4, CAP_OPEN_READ, 3, "e");
    ev(5, CAP_OPEN_READ, 4, "f");
    ev(6, CAP_OPEN_READ, 6, "j");
    ev(7, CAP_CREATE, 1, "b");
    ver("b", 8, CAT_ORIGIN_WRITTEN, 1, NULL, 0);
    ev(9, CAP_OPEN_READ, 1, "c");
    ev2(10, CAP_RENAME, 5, "b", "g", 0);
    ver("b", 11, CAT_ORIGIN_DELETED, 5, NULL, 0);   /* p5 renamed b to g */
    ver("g", 11, CAT_ORIGIN_RENAMED, 5, "b", 1);
    ev(12, CAP_OPEN_READ, 5, "g");
    ev(13, CAP_CREATE, 5, "h");
    ver("h", 14, CAT_ORIGIN_WRITTEN, 5, NULL, 0);
    ev(20, CAP_OPEN_READ, 7, "late");
    ver("late", 21, CAT_ORIGIN_PREEXISTING, 0, NULL, 0);
    ev(22, CAP_CREATE, 7, "o7");
    ver("o7", 23, CAT_ORIGIN_WRITTEN, 7, NULL, 0);
    ev(30, CAP_OPEN_READ, 8, "a");
    ver("x", 31, CAT_ORIGIN_WRITTEN, 8, NULL, 0);
    ev(32, CAP_OPEN_READ, 9, "a");
    ver("y", 33, CAT_ORIGIN_WRITTEN, 9, NULL, 0);
    ev(34, CAP_OPEN_READ, 10, "x");
    ev(35, CAP_OPEN_READ, 10, "y");
    ver("z", 36, CAT_ORIGIN_WRITTEN, 10, NULL, 0);
    ev2(40, CAP_OPEN_WRITE, 11, "h", NULL, O_WRONLY | O_APPEND);
    ver("h", 41, CAT_ORIGIN_WRITTEN, 11, NULL, 0);
    /* p12 reads s12 then forks p13 (same program: a Pool worker) and
     * p14, which exec'd another program; both write. */
    proc_exe(12, 0, 12, NULL, NULL, "/bin/py", 49);
    ver("s12", 1, CAT_ORIGIN_PREEXISTING, 0, NULL, 0);
    ev(50, CAP_OPEN_READ, 12, "s12");
    proc_exe(13, 12, 12, NULL, NULL, "/bin/py", 51);
    proc_exe(14, 12, 12, NULL, NULL, "/bin/other", 52);
    ev(53, CAP_CREATE, 13, "o13");
    ver("o13", 54, CAT_ORIGIN_WRITTEN, 13, NULL, 0);
    ev(55, CAP_CREATE, 14, "o14");
    ver("o14", 56, CAT_ORIGIN_WRITTEN, 14, NULL, 0);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/provfs-lin.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/.provfs", tmpdir);
    assert_int_equal(store_open(&st, dir, STORE_CREATE), 0);
    build();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Collect results as a sorted, comma-separated "path@n" list. */
struct names { struct cat_reader *rd; char buf[1024]; char *items[64]; int n; };

static int collect(void *arg, uint64_t file_id, uint32_t vno)
{
    struct names *nm = arg;
    struct cat_str p;
    assert_int_equal(cat_file_path(nm->rd, file_id, &p), 0);
    assert_true(nm->n < 64);
    assert_int_not_equal(asprintf(&nm->items[nm->n++], "%.*s@%u", (int)p.n, p.p, vno), -1);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *joined(struct names *nm)
{
    qsort(nm->items, nm->n, sizeof nm->items[0], cmp);
    nm->buf[0] = 0;
    for (int i = 0; i < nm->n; i++) {
        if (i)
            strcat(nm->buf, ",");
        strcat(nm->buf, nm->items[i]);
        free(nm->items[i]);
    }
    nm->n = 0;
    return nm->buf;
}

static const char *direct(const char *path, uint32_t vno, int down, enum lineage_scope scope)
{
    static struct names nm;
    uint64_t id;
    assert_int_equal(cat_read_begin(st, &nm.rd), 0);
    assert_int_equal(cat_file_find(nm.rd, path, &id), 0);
    int rc = down ? lineage_outputs(nm.rd, id, vno, scope, collect, &nm)
                  : lineage_inputs(nm.rd, id, vno, scope, collect, &nm);
    assert_int_equal(rc, 0);
    cat_read_end(nm.rd);
    return joined(&nm);
}

/* All nodes of a walk except the root. */
static const char *walk(const char *path, uint32_t vno, int down, int depth, int *truncated)
{
    static struct names nm;
    uint64_t id;
    struct lineage_graph *g;
    assert_int_equal(cat_read_begin(st, &nm.rd), 0);
    assert_int_equal(cat_file_find(nm.rd, path, &id), 0);
    assert_int_equal(lineage_walk(nm.rd, id, vno, down, depth, LINEAGE_SCOPE_PROCESS, &g), 0);
    for (size_t i = 1; i < g->n_nodes; i++)
        collect(&nm, g->nodes[i].file_id, g->nodes[i].vno);
    if (truncated)
        *truncated = g->truncated;
    lineage_graph_free(g);
    cat_read_end(nm.rd);
    return joined(&nm);
}

static void test_direct_child_pipe(void **state)
{
    (void)state;
    /* a read by p1, d by its child, e by its pipe feeder; not c (after
     * release), not f (unrelated), not j (same group, process scope). */
    assert_string_equal(direct("b", 1, 0, LINEAGE_SCOPE_PROCESS), "a@1,d@1,e@1");
}

static void test_job_scope(void **state)
{
    (void)state;
    assert_string_equal(direct("b", 1, 0, LINEAGE_SCOPE_JOB), "a@1,d@1,e@1,j@1");
    assert_string_equal(direct("j", 1, 1, LINEAGE_SCOPE_JOB), "b@1");
    assert_string_equal(direct("j", 1, 1, LINEAGE_SCOPE_PROCESS), "");
}

static void test_origin_at_first_use(void **state)
{
    (void)state;
    assert_string_equal(direct("o7", 0, 0, LINEAGE_SCOPE_PROCESS), "late@1");
    assert_string_equal(direct("late", 1, 1, LINEAGE_SCOPE_PROCESS), "o7@1");
    assert_string_equal(direct("a", 1, 0, LINEAGE_SCOPE_PROCESS), "");
}

static void test_rename_copy_append(void **state)
{
    (void)state;
    assert_string_equal(direct("g", 1, 0, LINEAGE_SCOPE_PROCESS), "b@1");
    assert_string_equal(direct("h", 1, 0, LINEAGE_SCOPE_PROCESS), "g@1");
    assert_string_equal(direct("h", 2, 0, LINEAGE_SCOPE_PROCESS), "h@1");
    assert_string_equal(direct("b", 1, 1, LINEAGE_SCOPE_PROCESS), "g@1");
    assert_string_equal(walk("h", 2, 0, -1, NULL), "a@1,b@1,d@1,e@1,g@1,h@1");
    assert_string_equal(walk("e", 1, 1, -1, NULL), "b@1,g@1,h@1,h@2");
}

static void test_down_widely_used(void **state)
{
    (void)state;
    assert_string_equal(direct("a", 1, 1, LINEAGE_SCOPE_PROCESS), "b@1,x@1,y@1");
    assert_string_equal(walk("a", 1, 1, -1, NULL), "b@1,g@1,h@1,h@2,x@1,y@1,z@1");
    /* c was read by p1 after b@1 was made, and p1 wrote nothing later */
    assert_string_equal(direct("c", 1, 1, LINEAGE_SCOPE_PROCESS), "");
    assert_string_equal(direct("f", 1, 1, LINEAGE_SCOPE_PROCESS), "");
}

static void test_fork_inheritance(void **state)
{
    (void)state;
    assert_string_equal(direct("o13", 1, 0, LINEAGE_SCOPE_PROCESS), "s12@1");
    assert_string_equal(direct("o14", 1, 0, LINEAGE_SCOPE_PROCESS), "");
    assert_string_equal(direct("s12", 1, 1, LINEAGE_SCOPE_PROCESS), "o13@1");
}

static void test_dag_dedup(void **state)
{
    (void)state;
    struct cat_reader *rd;
    struct lineage_graph *g;
    uint64_t id;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    assert_int_equal(cat_file_find(rd, "z", &id), 0);
    assert_int_equal(lineage_walk(rd, id, 0, 0, -1, LINEAGE_SCOPE_PROCESS, &g), 0);
    assert_int_equal(g->n_nodes, 4);    /* z, x, y, a once */
    assert_int_equal(g->n_edges, 4);    /* z-x, z-y, x-a, y-a */
    for (size_t i = 0; i < g->n_edges; i++)
        assert_true(g->nodes[g->edges[i].derived].depth < g->nodes[g->edges[i].input].depth);
    lineage_graph_free(g);
    cat_read_end(rd);
}

static void test_depth_limit(void **state)
{
    (void)state;
    int trunc = 0;
    assert_string_equal(walk("h", 2, 0, 1, &trunc), "h@1");
    assert_int_equal(trunc, 1);
    assert_string_equal(walk("h", 2, 0, 2, &trunc), "g@1,h@1");
    assert_string_equal(walk("z", 0, 0, 5, &trunc), "a@1,x@1,y@1");
    assert_int_equal(trunc, 0);
}

static void test_walk_all(void **state)
{
    (void)state;
    struct cat_reader *rd;
    struct lineage_graph *g;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    assert_int_equal(lineage_walk_all(rd, LINEAGE_SCOPE_PROCESS, &g), 0);
    /* 6 origins + b@1 b@2(deleted) g h@1 h@2 late o7 x y z s12 o13 o14 */
    assert_int_equal(g->n_nodes, 19);
    /* b<-a,d,e  g<-b  h1<-g  h2<-h1  o7<-late  x<-a  y<-a  z<-x,y  o13<-s12 */
    assert_int_equal(g->n_edges, 12);
    lineage_graph_free(g);
    cat_read_end(rd);
}

/* A query reused across calls answers as the one-shot functions do. */
static void test_query_reuse(void **state)
{
    (void)state;
    static struct names nm;
    struct lineage_query *q;
    uint64_t b, h, a;
    assert_int_equal(cat_read_begin(st, &nm.rd), 0);
    assert_int_equal(lineage_query_new(nm.rd, LINEAGE_SCOPE_PROCESS, &q), 0);
    assert_int_equal(cat_file_find(nm.rd, "b", &b), 0);
    assert_int_equal(cat_file_find(nm.rd, "h", &h), 0);
    assert_int_equal(cat_file_find(nm.rd, "a", &a), 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(lineage_query_inputs(q, b, 1, collect, &nm), 0);
        assert_string_equal(joined(&nm), "a@1,d@1,e@1");
        assert_int_equal(lineage_query_inputs(q, h, 2, collect, &nm), 0);
        assert_string_equal(joined(&nm), "h@1");
        assert_int_equal(lineage_query_outputs(q, a, 1, collect, &nm), 0);
        assert_string_equal(joined(&nm), "b@1,x@1,y@1");
    }
    lineage_query_free(q);
    cat_read_end(nm.rd);
}

static void test_scope_names(void **state)
{
    (void)state;
    enum lineage_scope s;
    assert_int_equal(lineage_scope_parse("job", &s), 0);
    assert_int_equal(s, LINEAGE_SCOPE_JOB);
    assert_string_equal(lineage_scope_name(LINEAGE_SCOPE_PROCESS), "process");
    assert_int_equal(lineage_scope_parse("jobs", &s), -EINVAL);
}

/* 24 readers (over LIN_PF_MIN: the walk prefetches them on helper threads):
 * the even ones write after their read, the odd ones only before it. */
static void test_down_many_readers(void **state)
{
    (void)state;
    char path[16], want[512] = "";
    ver("wide", 1, CAT_ORIGIN_PREEXISTING, 0, NULL, 0);
    for (uint64_t i = 0; i < 24; i++) {
        uint64_t id = 200 + i, seq = 1000 + 10 * i;
        proc(id, 0, (uint32_t)id, NULL, NULL);
        snprintf(path, sizeof path, "w%02u", (unsigned)i);
        if (i % 2)
            ver(path, seq - 5, CAT_ORIGIN_WRITTEN, id, NULL, 0);
        ev(seq, CAP_OPEN_READ, id, "wide");
        if (i % 2 == 0) {
            ver(path, seq + 5, CAT_ORIGIN_WRITTEN, id, NULL, 0);
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s@1",
                     *want ? "," : "", path);
        }
    }
    for (int round = 0; round < 3; round++) {
        unsigned long before = lineage_prefetched();
        assert_string_equal(walk("wide", 1, 1, -1, NULL), want);
        /* The helpers ran, once per reader: the result above is the walk's. */
        assert_int_equal(lineage_prefetched() - before, 24);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_child_pipe),
        cmocka_unit_test(test_job_scope),
        cmocka_unit_test(test_origin_at_first_use),
        cmocka_unit_test(test_rename_copy_append),
        cmocka_unit_test(test_down_widely_used),
        cmocka_unit_test(test_fork_inheritance),
        cmocka_unit_test(test_dag_dedup),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_walk_all),
        cmocka_unit_test(test_query_reuse),
        cmocka_unit_test(test_scope_names),
        cmocka_unit_test(test_down_many_readers),   /* last: adds records */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
