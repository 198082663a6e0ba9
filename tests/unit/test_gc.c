/* test_gc.c - store/maint: version counts, walking every version, dropping
 * versions with their content references, and the catalog cross-checks of
 * fsck (reference counts in slices, versions naming missing contents). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/maint.h"
#include "store/store.h"

struct fx {
    char root[64];
    char sdir[96];
    char file[96];
    struct store *st;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->root, "/tmp/provfs-gc.XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->sdir, sizeof f->sdir, "%s/.provfs", f->root);
    snprintf(f->file, sizeof f->file, "%s/file", f->root);
    if (store_open(&f->st, f->sdir, STORE_CREATE))
        return -1;
    maint_ref_batch = MAINT_REF_BATCH;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc;
}

struct add {
    struct store *st;
    const char *path;
    struct cat_version v;
};

static int add_hook(void *ctx, struct MDB_txn *txn)
{
    struct add *a = ctx;
    return cat_version_add(a->st, txn, a->path, strlen(a->path), &a->v);
}

/* A written version of path holding `text` (ingested, one reference). */
static uint32_t add_version(struct fx *f, const char *path, const char *text, uint8_t id[32])
{
    int fd = open(f->file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    struct content_batch *b;
    struct add a = { f->st, path, { 0 } };
    assert_int_equal(content_batch_begin(f->st, &b), 0);
    assert_int_equal(content_batch_add_fd(b, fd, NULL, a.v.content_id, &a.v.size), 0);
    a.v.origin = CAT_ORIGIN_WRITTEN;
    a.v.wall_ns = store_now_ns();
    content_batch_set_hook(b, add_hook, &a);
    assert_int_equal(content_batch_commit(b), 0);
    close(fd);
    if (id)
        memcpy(id, a.v.content_id, 32);
    return a.v.vno;
}

/* A version without stored content (tombstone, missing, hash only). */
static uint32_t add_bare(struct fx *f, const char *path, uint32_t origin, uint32_t flags,
                         const uint8_t *id)
{
    struct cat_version v = { .origin = origin, .flags = flags, .wall_ns = store_now_ns() };
    if (id)
        memcpy(v.content_id, id, 32);
    assert_int_equal(cat_version_commit(f->st, path, &v), 0);
    return v.vno;
}

static uint64_t file_id(struct fx *f, const char *path)
{
    struct cat_reader *rd;
    uint64_t id = 0;
    assert_int_equal(cat_read_begin(f->st, &rd), 0);
    assert_int_equal(cat_file_find(rd, path, &id), 0);
    cat_read_end(rd);
    return id;
}

struct problems {
    int n;
    char last[512];
};

static void collect(void *ctx, const char *msg)
{
    struct problems *p = ctx;
    p->n++;
    snprintf(p->last, sizeof p->last, "%s", msg);
}

static int check(struct fx *f, struct problems *p)
{
    memset(p, 0, sizeof *p);
    return maint_check_catalog(f->st, collect, NULL, p);
}

static void test_counts(void **state)
{
    struct fx *f = *state;
    uint8_t id[32];
    add_version(f, "a", "alpha", id);
    add_version(f, "a", "beta", NULL);
    add_version(f, "b", "alpha", NULL);             /* same content as a@1 */
    add_bare(f, "a", CAT_ORIGIN_DELETED, 0, NULL);
    add_bare(f, "c", CAT_ORIGIN_WRITTEN, CAT_V_MISSING, NULL);
    add_bare(f, "d", CAT_ORIGIN_WRITTEN, CAT_V_HASH_ONLY, id);
    struct cat_reader *rd;
    struct maint_vcounts c;
    assert_int_equal(cat_read_begin(f->st, &rd), 0);
    assert_int_equal(maint_version_counts(rd, &c), 0);
    cat_read_end(rd);
    assert_int_equal(c.versions, 6);
    assert_int_equal(c.stored, 3);
    assert_int_equal(c.deleted, 1);
    assert_int_equal(c.missing, 1);
    assert_int_equal(c.hash_only, 1);
    uint64_t refs = 0;
    assert_int_equal(content_stat(f->st, id, NULL, NULL, &refs), 0);
    assert_int_equal(refs, 2);
    struct problems p;
    assert_int_equal(check(f, &p), 0);
}

struct seen {
    uint64_t file[16];
    uint32_t vno[16];
    int n;
};

static int remember(void *ctx, const struct cat_version *v)
{
    struct seen *s = ctx;
    s->file[s->n] = v->file_id;
    s->vno[s->n++] = v->vno;
    return s->n == 16;
}

static void test_walk_all_in_order(void **state)
{
    struct fx *f = *state;
    add_version(f, "x", "1", NULL);
    add_version(f, "y", "2", NULL);
    add_version(f, "x", "3", NULL);
    add_version(f, "y", "4", NULL);
    uint64_t fx_ = file_id(f, "x"), fy = file_id(f, "y");
    struct cat_reader *rd;
    struct seen s = { 0 };
    assert_int_equal(cat_read_begin(f->st, &rd), 0);
    assert_int_equal(maint_versions_walk(rd, 0, remember, &s), 0);
    assert_int_equal(s.n, 4);
    assert_true(s.file[0] == fx_ && s.vno[0] == 1 && s.file[1] == fx_ && s.vno[1] == 2);
    assert_true(s.file[2] == fy && s.vno[2] == 1 && s.file[3] == fy && s.vno[3] == 2);
    memset(&s, 0, sizeof s);
    assert_int_equal(maint_versions_walk(rd, fy, remember, &s), 0);
    assert_int_equal(s.n, 2);
    assert_true(s.file[0] == fy);
    cat_read_end(rd);
}

static void test_drop_releases_references(void **state)
{
    struct fx *f = *state;
    uint8_t shared[32], own[32];
    add_version(f, "a", "shared bytes", shared);
    add_version(f, "a", "only in a@2", own);
    add_version(f, "b", "shared bytes", NULL);
    add_bare(f, "a", CAT_ORIGIN_DELETED, 0, NULL);
    uint64_t fa = file_id(f, "a");
    struct maint_vref drop[] = { { fa, 1 }, { fa, 2 }, { fa, 3 }, { fa, 99 } };
    struct maint_drop_result res = { 0 };
    assert_int_equal(maint_drop_versions(f->st, drop, 4, &res), 0);
    assert_int_equal(res.versions, 3);          /* a@99 never existed */
    assert_int_equal(res.released, 2);          /* the tombstone held none */
    assert_int_equal(res.bytes, strlen("shared bytes") + strlen("only in a@2"));
    assert_int_equal(res.dangling, 0);
    assert_int_equal(content_exists(f->st, own), 0);
    uint64_t refs = 0;
    assert_int_equal(content_stat(f->st, shared, NULL, NULL, &refs), 0);
    assert_int_equal(refs, 1);                  /* b@1 still holds it */
    struct content_gc_result gc;
    assert_int_equal(content_gc(f->st, &gc), 0);
    assert_true(gc.chunks_freed >= 1);
    struct problems p;
    assert_int_equal(check(f, &p), 0);
    assert_int_equal(content_fsck(f->st, 0, NULL, NULL), 0);
    struct cat_reader *rd;
    struct cat_version v;
    assert_int_equal(cat_read_begin(f->st, &rd), 0);
    assert_int_equal(cat_version_get(rd, fa, 2, &v), -ENOENT);
    cat_read_end(rd);
    /* Dropping it again is a no-op. */
    memset(&res, 0, sizeof res);
    assert_int_equal(maint_drop_versions(f->st, drop, 2, &res), 0);
    assert_int_equal(res.versions, 0);
}

static void test_check_finds_wrong_refcount(void **state)
{
    struct fx *f = *state;
    uint8_t id[32];
    add_version(f, "a", "counted twice", id);
    assert_int_equal(content_ref(f->st, id), 0);    /* a reference no version holds */
    struct problems p;
    assert_int_equal(check(f, &p), 1);
    assert_non_null(strstr(p.last, "reference count 2, but 1 version names it"));
}

static void test_check_finds_missing_content(void **state)
{
    struct fx *f = *state;
    uint8_t bogus[32];
    memset(bogus, 0xab, sizeof bogus);
    add_version(f, "ok", "fine", NULL);
    add_bare(f, "lost", CAT_ORIGIN_WRITTEN, 0, bogus);
    struct problems p;
    assert_int_equal(check(f, &p), 1);
    assert_non_null(strstr(p.last, "lost@1: its content abababab"));
    assert_non_null(strstr(p.last, "is not in the store"));
}

/* The reference cross-check in slices of 2 contents finds a bad count in
 * a later slice, and reports a content no version names. */
static void test_check_in_slices(void **state)
{
    struct fx *f = *state;
    char text[32];
    uint8_t ids[7][32];
    for (int i = 0; i < 7; i++) {
        snprintf(text, sizeof text, "content number %d", i);
        add_version(f, "many", text, ids[i]);
    }
    maint_ref_batch = 2;
    struct problems p;
    assert_int_equal(check(f, &p), 0);
    /* The largest id lands in the last slice. */
    int last = 0;
    for (int i = 1; i < 7; i++)
        if (memcmp(ids[i], ids[last], 32) > 0)
            last = i;
    assert_int_equal(content_ref(f->st, ids[last]), 0);
    assert_int_equal(check(f, &p), 1);
    char hex[65];
    content_id_hex(ids[last], hex);
    assert_non_null(strstr(p.last, hex));
    /* Drop the version but not the reference: nothing names it. */
    struct maint_vref one = { file_id(f, "many"), (uint32_t)last + 1 };
    struct maint_drop_result res = { 0 };
    assert_int_equal(maint_drop_versions(f->st, &one, 1, &res), 0);
    assert_int_equal(check(f, &p), 1);
    assert_non_null(strstr(p.last, "reference count 1, but 0 versions name it"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_counts),
        T(test_walk_all_in_order),
        T(test_drop_releases_references),
        T(test_check_finds_wrong_refcount),
        T(test_check_finds_missing_content),
        T(test_check_in_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
