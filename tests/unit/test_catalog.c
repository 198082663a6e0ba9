/* test_catalog.c - codec, catalog and JSON escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/catalog.h"
#include "store/codec.h"
#include "store/json.h"
#include "store/store.h"

static char tmpdir[64];

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/provfs-cat.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char dir[128];
    snprintf(dir, sizeof dir, "%s/.provfs", tmpdir);
    struct store *st;
    assert_int_equal(store_open(&st, dir, STORE_CREATE), 0);
    *state = st;
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct cat_str S(const char *s)
{
    struct cat_str r = { s, strlen(s) };
    return r;
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    struct cbuf b;
    cbuf_init(&b);
    uint64_t vals[] = { 0, 1, 127, 128, 300, UINT32_MAX, UINT64_MAX };
    for (size_t i = 0; i < 7; i++)
        cbuf_put_u64(&b, vals[i]);
    cbuf_put_bytes(&b, "a\0b", 3);
    cbuf_put_str(&b, NULL);
    assert_int_equal(b.err, 0);
    struct cread r;
    cread_init(&r, b.p, b.len);
    for (size_t i = 0; i < 7; i++)
        assert_true(cread_u64(&r) == vals[i]);
    size_t n;
    const uint8_t *p = cread_bytes(&r, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "a\0b", 3);
    cread_bytes(&r, &n);
    assert_int_equal(n, 0);
    assert_false(cread_more(&r));
    /* missing trailing fields read as zero, without error */
    assert_int_equal(cread_u64(&r), 0);
    assert_int_equal(r.err, 0);
    /* a truncated string is an error */
    cbuf_reset(&b);
    cbuf_put_u64(&b, 10);
    cbuf_put_raw(&b, "abc", 3);
    cread_init(&r, b.p, b.len);
    cread_bytes(&r, &n);
    assert_int_equal(r.err, -EBADMSG);
    cbuf_free(&b);
}

static struct cat_rec proc_rec(uint64_t id, uint64_t parent, uint32_t tgid)
{
    struct cat_rec r = { .type = CAT_REC_PROC };
    struct cat_proc *p = &r.u.proc;
    memset(p->boot_id, 0xab, 16);
    p->id = id;
    p->start = 1000 + id;
    p->tgid = tgid;
    p->ppid = 1;
    p->parent_id = parent;
    p->uid = 1000;
    p->seq = id;
    p->wall_ns = 1700000000000000000ull;
    p->comm = S("python3");
    p->exe = S("/usr/bin/python3.11");
    p->argv = (struct cat_str){ "python3\0train.py\0--lr\0" "0.1", 25 };
    p->cwd = S("/work/ws");
    p->fd[0] = S("pipe:[4242]");
    return r;
}

static struct cat_rec event_rec(uint64_t seq, uint32_t op, uint64_t proc, const char *path)
{
    struct cat_rec r = { .type = CAT_REC_EVENT };
    r.u.event.seq = seq;
    r.u.event.op = op;
    r.u.event.proc_id = proc;
    r.u.event.path = S(path);
    r.u.event.wall_ns = 1700000000000000000ull + seq;
    return r;
}

static int count_events(void *ctx, const struct cat_event *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

static void test_commit_and_read(void **state)
{
    struct store *st = *state;
    struct cat_rec recs[6];
    recs[0] = proc_rec(1, 0, 100);
    recs[1] = proc_rec(2, 1, 101);
    recs[2] = (struct cat_rec){ .type = CAT_REC_IMAGE,
        .u.image = { .proc_id = 2, .n = 0, .seq = 2, .exe = S("/bin/bash"), .argv = S("bash") } };
    recs[3] = event_rec(1, 1, 2, "data/raw.csv");
    recs[4] = event_rec(2, 2, 2, "models/model.pkl");
    recs[5] = event_rec(3, 1, 1, "data/raw.csv");
    assert_int_equal(cat_commit(st, recs, 6), 0);

    struct cat_reader *rd;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    struct cat_counts c;
    cat_counts(rd, &c);
    assert_int_equal(c.events, 3);
    assert_int_equal(c.procs, 2);
    assert_int_equal(c.files, 2);
    assert_int_equal(c.images, 1);
    uint64_t seq, pid;
    assert_int_equal(cat_max_ids(rd, &seq, &pid), 0);
    assert_int_equal(seq, 3);
    assert_int_equal(pid, 2);

    struct cat_proc p;
    assert_int_equal(cat_proc_get(rd, 2, &p), 0);
    assert_int_equal(p.tgid, 101);
    assert_int_equal(p.parent_id, 1);
    assert_int_equal(p.argv.n, 25);
    assert_memory_equal(p.argv.p, "python3\0train.py\0--lr\0" "0.1", 25);
    assert_int_equal(p.fd[0].n, 11);
    uint8_t boot[16];
    memset(boot, 0xab, 16);
    uint64_t id = 0;
    assert_int_equal(cat_proc_find(rd, boot, 1002, 101, &id), 0);
    assert_int_equal(id, 2);
    assert_int_equal(cat_proc_find(rd, boot, 1002, 999, &id), -ENOENT);

    struct cat_image im;
    assert_int_equal(cat_proc_last_image(rd, 2, &im), 0);
    assert_int_equal(im.exe.n, 9);
    assert_int_equal(cat_proc_last_image(rd, 1, &im), -ENOENT);

    int n = 0;
    assert_int_equal(cat_path_events(rd, "data/raw.csv", count_events, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(cat_proc_events(rd, 2, count_events, &n), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(cat_events_scan(rd, 2, count_events, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(cat_path_events(rd, "nope", count_events, &n), -ENOENT);
    cat_read_end(rd);
}

static void test_long_paths_and_gaps(void **state)
{
    struct store *st = *state;
    char a[2000], b[2000];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = 0;
    memcpy(b, a, sizeof b);
    b[1500] = 'y';     /* same 480-byte prefix, different path */
    struct cat_rec recs[3] = { event_rec(1, 1, 0, a), event_rec(2, 1, 0, b),
                               { .type = CAT_REC_GAP, .u.gaps = 5 } };
    assert_int_equal(cat_commit(st, recs, 3), 0);
    struct cat_reader *rd;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    uint64_t ia, ib;
    assert_int_equal(cat_file_find(rd, a, &ia), 0);
    assert_int_equal(cat_file_find(rd, b, &ib), 0);
    assert_true(ia != ib);
    struct cat_event e;
    assert_int_equal(cat_event_get(rd, 2, &e), 0);
    assert_int_equal(e.path.n, 1999);
    assert_int_equal(e.file_id, ib);
    struct cat_counts c;
    cat_counts(rd, &c);
    assert_int_equal(c.gaps, 5);
    cat_read_end(rd);
}

static void test_symlink_target_is_not_a_file(void **state)
{
    struct store *st = *state;
    struct cat_rec r = event_rec(1, 12, 0, "link");
    r.u.event.path2 = S("../outside/target");
    r.u.event.path2_literal = 1;
    assert_int_equal(cat_commit(st, &r, 1), 0);
    struct cat_reader *rd;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    uint64_t id;
    assert_int_equal(cat_file_find(rd, "../outside/target", &id), -ENOENT);
    struct cat_counts c;
    cat_counts(rd, &c);
    assert_int_equal(c.files, 1);
    cat_read_end(rd);
}

static void test_readonly_open_of_missing_store(void **state)
{
    (void)state;
    struct store *st;
    assert_int_equal(store_open(&st, "/nonexistent/.provfs", STORE_RDONLY), -ENOENT);
    assert_null(st);
}

static char *json_of(const char *s, size_t n)
{
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    json_str(f, s, n);
    fclose(f);
    return buf;
}

static void test_json_escaping(void **state)
{
    (void)state;
    assert_string_equal(json_of("a b", 3), "\"a b\"");
    assert_string_equal(json_of("q\"\\\n\t\x01", 6), "\"q\\\"\\\\\\n\\t\\u0001\"");
    assert_string_equal(json_of("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
    /* invalid UTF-8 bytes use surrogateescape */
    assert_string_equal(json_of("a\xff" "b", 3), "\"a\\udcffb\"");
    /* overlong encoding of '/' is invalid */
    assert_string_equal(json_of("\xc0\xaf", 2), "\"\\udcc0\\udcaf\"");
    /* a truncated sequence at the end */
    assert_string_equal(json_of("\xe2\x82", 2), "\"\\udce2\\udc82\"");
}

static int collect_vnos(void *ctx, const struct cat_version *v)
{
    char *out = ctx;
    size_t n = strlen(out);
    out[n] = (char)('0' + v->vno);
    out[n + 1] = 0;
    return 0;
}

static void test_versions(void **state)
{
    struct store *st = *state;
    for (int i = 1; i <= 3; i++) {
        struct cat_version v = { .seq = (uint64_t)i * 10, .size = (uint64_t)i,
                                 .origin = CAT_ORIGIN_WRITTEN, .writer = 7,
                                 .kind = S("model") };
        memset(v.content_id, i, 32);
        assert_int_equal(cat_version_commit(st, "models/m.pkl", &v), 0);
        assert_int_equal(v.vno, i);
    }
    struct cat_version other = { .seq = 15, .origin = CAT_ORIGIN_PREEXISTING };
    assert_int_equal(cat_version_commit(st, "models/n.pkl", &other), 0);
    assert_int_equal(other.vno, 1);

    struct cat_reader *rd;
    assert_int_equal(cat_read_begin(st, &rd), 0);
    uint64_t id;
    assert_int_equal(cat_file_find(rd, "models/m.pkl", &id), 0);
    struct cat_version v;
    assert_int_equal(cat_version_get(rd, id, 0, &v), 0);
    assert_int_equal(v.vno, 3);
    assert_int_equal(v.content_id[31], 3);
    assert_int_equal(v.kind.n, 5);
    assert_int_equal(v.writer, 7);
    assert_string_equal(cat_origin_name(v.origin), "written");
    assert_int_equal(cat_version_get(rd, id, 2, &v), 0);
    assert_int_equal(v.size, 2);
    assert_int_equal(cat_version_get(rd, id, 9, &v), -ENOENT);
    /* the version current at a logical time */
    assert_int_equal(cat_version_at(rd, id, 25, &v), 0);
    assert_int_equal(v.vno, 2);
    assert_int_equal(cat_version_at(rd, id, 30, &v), 0);
    assert_int_equal(v.vno, 3);
    assert_int_equal(cat_version_at(rd, id, 5, &v), -ENOENT);
    char order[16] = "";
    assert_int_equal(cat_versions_scan(rd, id, 0, collect_vnos, order), 0);
    assert_string_equal(order, "123");
    order[0] = 0;
    assert_int_equal(cat_versions_scan(rd, id, 1, collect_vnos, order), 0);
    assert_string_equal(order, "321");
    struct cat_str path;
    assert_int_equal(cat_file_path(rd, id, &path), 0);
    assert_int_equal(path.n, 12);
    assert_memory_equal(path.p, "models/m.pkl", 12);
    cat_read_end(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test_setup_teardown(test_commit_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_paths_and_gaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_target_is_not_a_file, setup, teardown),
        cmocka_unit_test(test_readonly_open_of_missing_store),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
    };
    return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
