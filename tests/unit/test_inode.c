/*
 * test_inode.c - the inode table (fs/inode.h) against a real temporary
 * directory: lookups and forgets, hard links, paths after renames, the
 * descriptor cache bound, pins surviving eviction, reopening by handle.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/inode.h"

struct fix {
    char dir[64];
    int rootfd;
    struct ino_table *t;
};

static void mkfile(struct fix *f, const char *rel, const char *content)
{
    int fd = openat(f->rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    size_t n = strlen(content);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
}

static int setup_n(void **state, unsigned max_fds)
{
    struct fix *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/provfs-inode.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->rootfd = open(f->dir, O_RDONLY | O_DIRECTORY);
    if (f->rootfd < 0 || ino_table_new(&f->t, f->rootfd, max_fds) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_n(state, 8); }

static int teardown(void **state)
{
    struct fix *f = *state;
    char cmd[128];
    ino_table_free(f->t);
    close(f->rootfd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Look rel (one component) up under parent. */
static struct ino_node *look(struct fix *f, struct ino_node *parent,
                             const char *name, struct stat *st)
{
    struct ino_node *n = NULL;
    struct stat tmp;
    int pfd = ino_fd_get(f->t, parent);
    assert_true(pfd >= 0);
    assert_int_equal(ino_lookup(f->t, parent, pfd, name, &n, st ? st : &tmp), 0);
    ino_fd_put(f->t, parent);
    return n;
}

static unsigned long nodes(struct fix *f)
{
    struct ino_stats s;
    ino_get_stats(f->t, &s);
    return s.nodes;
}

static unsigned long fds(struct fix *f)
{
    struct ino_stats s;
    ino_get_stats(f->t, &s);
    return s.fds;
}

static int count_fds(void)
{
    int n = 0;
    char p[32];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        n += access(p, F_OK) == 0;
    }
    return n;
}

static void path_is(struct fix *f, struct ino_node *n, const char *want)
{
    char buf[PATH_MAX];
    int l = ino_path(f->t, n, buf, sizeof(buf));
    assert_int_equal(l, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_root_path(void **state)
{
    struct fix *f = *state;
    char buf[8];
    path_is(f, ino_root(f->t), "");
    assert_int_equal(ino_child_path(f->t, ino_root(f->t), "a", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "a");
    assert_int_equal(nodes(f), 1);
}

static void test_lookup_forget(void **state)
{
    struct fix *f = *state;
    struct stat st, real;
    mkfile(f, "a", "x");
    assert_int_equal(fstatat(f->rootfd, "a", &real, 0), 0);
    struct ino_node *a = look(f, ino_root(f->t), "a", &st);
    assert_int_equal(st.st_ino, real.st_ino);
    assert_int_equal(a->ino, real.st_ino);
    assert_true(S_ISREG(a->type));
    assert_int_equal(a->nlookup, 1);
    assert_ptr_equal(look(f, ino_root(f->t), "a", NULL), a);
    assert_int_equal(a->nlookup, 2);
    assert_int_equal(nodes(f), 2);
    ino_forget(f->t, a, 1);
    assert_int_equal(nodes(f), 2);
    ino_forget(f->t, a, 1);
    assert_int_equal(nodes(f), 1);
    assert_int_equal(fds(f), 0);
}

/* Looking up a known inode again costs no descriptor: the process's
 * descriptor count stays put, the lookups are still counted, and a name
 * that now leads to another inode gets that inode's node. */
static void test_known_lookup_no_fd(void **state)
{
    struct fix *f = *state;
    struct stat st, real;
    mkfile(f, "a", "x");
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    int before = count_fds();
    for (int i = 0; i < 10; i++)
        assert_ptr_equal(look(f, ino_root(f->t), "a", &st), a);
    assert_int_equal(count_fds(), before);
    assert_int_equal(a->nlookup, 11);
    assert_int_equal(fstatat(f->rootfd, "a", &real, 0), 0);
    assert_int_equal(st.st_ino, real.st_ino);
    assert_int_equal(st.st_size, 1);

    /* Replace the name: the next lookup is of a new inode. */
    mkfile(f, "b", "yy");
    assert_int_equal(renameat(f->rootfd, "b", f->rootfd, "a"), 0);
    struct ino_node *b = look(f, ino_root(f->t), "a", &st);
    assert_ptr_not_equal(b, a);
    assert_int_equal(st.st_size, 2);
    assert_int_equal(b->nlookup, 1);
    ino_forget(f->t, a, 11);
    ino_forget(f->t, b, 1);
    assert_int_equal(nodes(f), 1);
}

/* Listings: a directory may be listed from the kernel's cache until two of
 * its non-directory children have been looked up by name; lookups of
 * subdirectories do not count, and a file is never "listable". */
static void test_listing_lookups(void **state)
{
    struct fix *f = *state;
    assert_int_equal(mkdirat(f->rootfd, "d", 0755), 0);
    assert_int_equal(mkdirat(f->rootfd, "d/sub", 0755), 0);
    mkfile(f, "d/a", "1");
    struct ino_node *d = look(f, ino_root(f->t), "d", NULL);
    struct ino_node *a = look(f, d, "a", NULL);
    assert_true(ino_listing_cacheable(d));
    assert_false(ino_listing_cacheable(a));
    for (int i = 0; i < 5; i++)
        ino_note_child_lookup(d, S_IFDIR | 0755);
    assert_true(ino_listing_cacheable(d));
    ino_note_child_lookup(d, S_IFREG | 0644);
    assert_true(ino_listing_cacheable(d));
    ino_note_child_lookup(d, S_IFLNK | 0777);
    assert_false(ino_listing_cacheable(d));
    for (int i = 0; i < 5; i++)
        ino_note_child_lookup(d, S_IFREG | 0644);
    assert_int_equal(atomic_load(&d->child_looks), INO_LIST_LOOKS);
    assert_false(ino_listing_cacheable(d));
    ino_forget(f->t, a, 1);
    ino_forget(f->t, d, 1);
}

/* The last forget of an unlinked file closes its cached descriptor (which
 * frees the file on disk) after the table lock is dropped, and does close
 * it: no descriptor outlives the node. */
static void test_forget_unlinked_closes(void **state)
{
    struct fix *f = *state;
    mkfile(f, "gone", "data");
    int before = count_fds();
    struct ino_node *n = look(f, ino_root(f->t), "gone", NULL);
    assert_int_equal(fds(f), 1);
    assert_int_equal(count_fds(), before + 1);
    assert_int_equal(unlinkat(f->rootfd, "gone", 0), 0);
    ino_set_gone(f->t, n);
    ino_forget(f->t, n, 1);
    assert_int_equal(nodes(f), 1);
    assert_int_equal(fds(f), 0);
    assert_int_equal(count_fds(), before);
}

static void test_lookup_missing(void **state)
{
    struct fix *f = *state;
    struct ino_node *n = NULL;
    struct stat st;
    assert_int_equal(ino_lookup(f->t, ino_root(f->t), f->rootfd, "nope", &n, &st),
                     -ENOENT);
    assert_null(n);
    assert_int_equal(nodes(f), 1);
}

static void test_hard_links_share_node(void **state)
{
    struct fix *f = *state;
    mkfile(f, "a", "x");
    assert_int_equal(linkat(f->rootfd, "a", f->rootfd, "b", 0), 0);
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    struct ino_node *b = look(f, ino_root(f->t), "b", NULL);
    assert_ptr_equal(a, b);
    assert_int_equal(a->nlookup, 2);
    path_is(f, a, "b");         /* last seen under */
    ino_forget(f->t, a, 2);
    assert_int_equal(nodes(f), 1);
}

static void test_nested_paths_and_rename(void **state)
{
    struct fix *f = *state;
    assert_int_equal(mkdirat(f->rootfd, "d", 0755), 0);
    assert_int_equal(mkdirat(f->rootfd, "d/e", 0755), 0);
    assert_int_equal(mkdirat(f->rootfd, "g", 0755), 0);
    mkfile(f, "d/e/file", "x");
    struct ino_node *d = look(f, ino_root(f->t), "d", NULL);
    struct ino_node *e = look(f, d, "e", NULL);
    struct ino_node *file = look(f, e, "file", NULL);
    struct ino_node *g = look(f, ino_root(f->t), "g", NULL);
    path_is(f, file, "d/e/file");
    char buf[PATH_MAX];
    assert_int_equal(ino_child_path(f->t, e, "new", buf, sizeof(buf)), 7);
    assert_string_equal(buf, "d/e/new");

    /* Moving a directory moves every path below it. */
    assert_int_equal(renameat(f->rootfd, "d/e", f->rootfd, "g/renamed"), 0);
    assert_int_equal(ino_set_name(f->t, e, g, "renamed"), 0);
    path_is(f, file, "g/renamed/file");
    path_is(f, e, "g/renamed");

    /* d lost its child: forgetting it frees it; g keeps e, e keeps file. */
    ino_forget(f->t, d, 1);
    assert_int_equal(nodes(f), 4);
    ino_forget(f->t, file, 1);
    ino_forget(f->t, e, 1);
    ino_forget(f->t, g, 1);
    assert_int_equal(nodes(f), 1);
}

static void test_parent_outlives_forget(void **state)
{
    struct fix *f = *state;
    assert_int_equal(mkdirat(f->rootfd, "p", 0755), 0);
    mkfile(f, "p/c", "x");
    struct ino_node *p = look(f, ino_root(f->t), "p", NULL);
    struct ino_node *c = look(f, p, "c", NULL);
    ino_forget(f->t, p, 1);     /* the child still points at it */
    assert_int_equal(nodes(f), 3);
    path_is(f, c, "p/c");
    ino_forget(f->t, c, 1);     /* frees both */
    assert_int_equal(nodes(f), 1);
}

static void test_pin_keeps_node(void **state)
{
    struct fix *f = *state;
    mkfile(f, "a", "x");
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    ino_ref(f->t, a);           /* an open file */
    ino_forget(f->t, a, 1);
    assert_int_equal(nodes(f), 2);
    path_is(f, a, "a");
    ino_unref(f->t, a);
    assert_int_equal(nodes(f), 1);
}

static void test_gone_and_revived(void **state)
{
    struct fix *f = *state;
    char buf[PATH_MAX];
    mkfile(f, "a", "x");
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    ino_name_removed(f->t, a, ino_root(f->t), "other");
    path_is(f, a, "a");         /* not its name: unaffected */
    ino_name_removed(f->t, a, ino_root(f->t), "a");
    assert_int_equal(ino_path(f->t, a, buf, sizeof(buf)), -ENOENT);
    assert_ptr_equal(look(f, ino_root(f->t), "a", NULL), a);
    path_is(f, a, "a");
    ino_set_gone(f->t, a);
    assert_int_equal(ino_path(f->t, a, buf, sizeof(buf)), -ENOENT);
    ino_forget(f->t, a, 2);
}

static void test_path_too_long(void **state)
{
    struct fix *f = *state;
    char buf[4];
    mkfile(f, "abcdef", "x");
    struct ino_node *a = look(f, ino_root(f->t), "abcdef", NULL);
    assert_int_equal(ino_path(f->t, a, buf, sizeof(buf)), -ENAMETOOLONG);
    assert_int_equal(ino_child_path(f->t, ino_root(f->t), "abcd", buf, sizeof(buf)),
                     -ENAMETOOLONG);
    ino_forget(f->t, a, 1);
}

static void test_find(void **state)
{
    struct fix *f = *state;
    struct stat st;
    mkfile(f, "a", "x");
    struct ino_node *a = look(f, ino_root(f->t), "a", &st);
    assert_ptr_equal(ino_find(f->t, st.st_dev, st.st_ino), a);
    assert_null(ino_find(f->t, st.st_dev, st.st_ino + 1000000));
    ino_forget(f->t, a, 1);
    assert_int_equal(nodes(f), 2);      /* ino_find pinned it */
    ino_unref(f->t, a);
    assert_int_equal(nodes(f), 1);
}

/* 100 files through a cache of 8: the bound holds and every node can still
 * be reached (reopened by handle). */
static void test_lru_bound(void **state)
{
    struct fix *f = *state;
    struct ino_node *n[100];
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        mkfile(f, name, name);
        n[i] = look(f, ino_root(f->t), name, NULL);
        assert_true(fds(f) <= 8);
    }
    assert_int_equal(nodes(f), 101);
    for (int i = 0; i < 100; i++) {
        struct stat st;
        int fd = ino_fd_get(f->t, n[i]);
        assert_true(fd >= 0);
        assert_int_equal(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
        assert_int_equal(st.st_ino, n[i]->ino);
        ino_fd_put(f->t, n[i]);
        assert_true(fds(f) <= 8);
    }
    for (int i = 0; i < 100; i++)
        ino_forget(f->t, n[i], 1);
    assert_int_equal(nodes(f), 1);
    assert_int_equal(fds(f), 0);
}

/* A borrowed descriptor is never closed under its borrower. */
static void test_pinned_fd_survives_eviction(void **state)
{
    struct fix *f = *state;
    char name[16];
    struct stat st;
    mkfile(f, "keep", "x");
    struct ino_node *k = look(f, ino_root(f->t), "keep", NULL);
    int fd = ino_fd_get(f->t, k);
    assert_true(fd >= 0);
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "g%d", i);
        mkfile(f, name, name);
        ino_forget(f->t, look(f, ino_root(f->t), name, NULL), 1);
    }
    assert_int_equal(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
    assert_int_equal(st.st_ino, k->ino);
    assert_int_equal(ino_fd_get(f->t, k), fd);  /* same cached fd */
    ino_fd_put(f->t, k);
    ino_fd_put(f->t, k);
    ino_forget(f->t, k, 1);
    assert_int_equal(fds(f), 0);
}

static void test_open_after_rename(void **state)
{
    struct fix *f = *state;
    char buf[16] = {0};
    assert_int_equal(mkdirat(f->rootfd, "d", 0755), 0);
    mkfile(f, "d/a", "content");
    struct ino_node *d = look(f, ino_root(f->t), "d", NULL);
    struct ino_node *a = look(f, d, "a", NULL);
    /* Evict a's descriptor, then move it behind the table's back: the
     * handle still finds it. */
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof(name), "h%d", i);
        mkfile(f, name, "x");
        ino_forget(f->t, look(f, ino_root(f->t), name, NULL), 1);
    }
    assert_int_equal(renameat(f->rootfd, "d/a", f->rootfd, "moved"), 0);
    int fd = ino_open(f->t, a, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
    assert_string_equal(buf, "content");
    close(fd);
    fd = ino_open(f->t, ino_root(f->t), O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    close(fd);
    ino_forget(f->t, a, 1);
    ino_forget(f->t, d, 1);
    assert_int_equal(nodes(f), 1);
}

static void test_unlinked_is_stale(void **state)
{
    struct fix *f = *state;
    mkfile(f, "a", "x");
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    for (int i = 0; i < 20; i++) {      /* evict a's descriptor */
        char name[16];
        snprintf(name, sizeof(name), "h%d", i);
        mkfile(f, name, "x");
        ino_forget(f->t, look(f, ino_root(f->t), name, NULL), 1);
    }
    assert_int_equal(unlinkat(f->rootfd, "a", 0), 0);
    sync();
    int fd = ino_fd_get(f->t, a);
    /* ext4 refuses handles of deleted inodes; either way no wrong file. */
    if (fd >= 0) {
        struct stat st;
        assert_int_equal(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
        assert_int_equal(st.st_ino, a->ino);
        ino_fd_put(f->t, a);
    } else {
        assert_int_equal(fd, -ESTALE);
    }
    ino_forget(f->t, a, 1);
}

/* The kernel still holds a deleted file's node (its FORGET not yet
 * served) when the file system hands the inode number to a new file, as
 * ext4 does: a lookup of the new file must get a node of its own, reachable
 * by its own handle, not the old node and its stale handle (ESTALE).
 * ext4's choice of numbers cannot be steered from here, so the old node is
 * made to look like that: same number, gone, a handle of another
 * generation (one byte changed). */
static void test_reused_number_gets_new_node(void **state)
{
    struct fix *f = *state;
    char buf[8] = {0};
    mkfile(f, "a", "new");
    struct ino_node *a = look(f, ino_root(f->t), "a", NULL);
    assert_true(a->handle_bytes > 0);
    ino_set_gone(f->t, a);              /* what UNLINK through the mount does */
    a->handle[a->handle_bytes - 1] ^= 0xff;
    struct ino_node *b = look(f, ino_root(f->t), "a", NULL);
    assert_ptr_not_equal(b, a);
    assert_int_equal(b->ino, a->ino);
    struct ino_node *found = ino_find(f->t, a->dev, a->ino);
    assert_ptr_equal(found, b);         /* the old node left the hash */
    ino_unref(f->t, found);
    for (int i = 0; i < 20; i++) {      /* evict b's descriptor */
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        mkfile(f, name, "x");
        ino_forget(f->t, look(f, ino_root(f->t), name, NULL), 1);
    }
    int fd = ino_open(f->t, b, O_RDONLY);   /* by b's own handle */
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 3);
    assert_string_equal(buf, "new");
    close(fd);
    assert_int_equal(nodes(f), 2);      /* root and the new: the old one is
                                           out of the table, alive */
    ino_forget(f->t, a, 1);             /* the old one's FORGET frees it */
    assert_int_equal(nodes(f), 2);
    ino_forget(f->t, b, 1);
    assert_int_equal(nodes(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_known_lookup_no_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_unlinked_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hard_links_share_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_paths_and_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parent_outlives_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_keeps_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_and_revived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_lookups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lru_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinned_fd_survives_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlinked_is_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reused_number_gets_new_node, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
