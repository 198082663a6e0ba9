/* test_content.c - the content store: round trips, dedup, compression,
 * incremental ingest, crash recovery, corruption, disk full, gc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "store/content.h"
#include "store/pack.h"
#include "store/store.h"

struct fx {
    char root[64];      /* temporary directory */
    char sdir[96];      /* the store inside it */
    char file[96];      /* a scratch file */
    struct store *st;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    strcpy(f->root, "/tmp/provfs-content.XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->sdir, sizeof f->sdir, "%s/.provfs", f->root);
    snprintf(f->file, sizeof f->file, "%s/file", f->root);
    if (store_open(&f->st, f->sdir, STORE_CREATE))
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    char cmd[160];
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "%s/small", f->root);
    umount2(cmd, MNT_DETACH);       /* after a failed disk-full test */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
}

/* Compressible but not trivially: words from a small vocabulary. */
static void fill_text(uint8_t *p, size_t n, uint64_t seed)
{
    static const char *w[] = { "epoch", "loss", "0.4312", "accuracy", "model",
                               "train", "val", "\n", ",", "batch" };
    uint64_t x = seed + 7;
    size_t i = 0;
    while (i < n) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        const char *s = w[x % 10];
        for (size_t k = 0; s[k] && i < n; k++)
            p[i++] = (uint8_t)s[k];
        if (i < n)
            p[i++] = ' ';
    }
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static int ingest(struct store *st, const char *path, const struct content_prev *prev,
                  uint8_t id[32])
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint64_t size;
    int rc = content_ingest_fd(st, fd, prev, id, &size);
    close(fd);
    return rc;
}

struct membuf {
    uint8_t *p;
    size_t n, cap;
};

static int mem_sink(void *ctx, const void *buf, size_t n)
{
    struct membuf *m = ctx;
    if (m->n + n > m->cap)
        return -EOVERFLOW;
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return 0;
}

/* The stored content equals p[0..n), read both ways. */
static void assert_content(struct store *st, const uint8_t id[32], const uint8_t *p, size_t n)
{
    struct membuf m = { malloc(n + 1), 0, n + 1 };
    assert_int_equal(content_read(st, id, mem_sink, &m), 0);
    assert_int_equal(m.n, n);
    assert_memory_equal(m.p, p, n);
    /* pread: odd sizes at odd offsets, crossing chunk boundaries */
    for (size_t off = 0; off < n; off += n / 7 + 1) {
        size_t len = 200001 < n - off ? 200001 : n - off;
        assert_int_equal(content_pread(st, id, m.p, len, off), (ssize_t)len);
        assert_memory_equal(m.p, p + off, len);
    }
    assert_int_equal(content_pread(st, id, m.p, 10, n), 0);
    free(m.p);
}

static void report_print(void *ctx, const char *msg)
{
    int *n = ctx;
    (*n)++;
    print_message("# fsck: %s\n", msg);
}

static int fsck(struct store *st)
{
    int n = 0;
    int rc = content_fsck(st, 0, report_print, &n);
    assert_true(rc >= 0);
    assert_int_equal(rc, n);
    return rc;
}

static void test_roundtrip(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)5 << 20;
    uint8_t *p = malloc(n), id[32], want[32];
    fill_random(p, n / 2, 1);
    fill_text(p + n / 2, n - n / 2, 1);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, id), 0);
    sha256(p, n, want);
    assert_memory_equal(id, want, 32);
    assert_int_equal(content_exists(f->st, id), 1);
    uint64_t size, nchunks, refs;
    assert_int_equal(content_stat(f->st, id, &size, &nchunks, &refs), 0);
    assert_int_equal(size, n);
    assert_true(nchunks > 20);
    assert_int_equal(refs, 1);
    assert_content(f->st, id, p, n);
    assert_int_equal(fsck(f->st), 0);
    char hex[65];
    uint8_t back[32];
    content_id_hex(id, hex);
    assert_int_equal(content_id_parse(hex, back), 0);
    assert_memory_equal(back, id, 32);
    assert_int_equal(content_id_parse("xyz", back), -EINVAL);
    /* A read-only store (the CLI's) reads, and refuses to write. */
    struct store *ro;
    struct content_batch *bt;
    assert_int_equal(store_open(&ro, f->sdir, STORE_RDONLY), 0);
    assert_content(ro, id, p, n);
    assert_int_equal(content_batch_begin(ro, &bt), -EROFS);
    assert_int_equal(content_unref(ro, id), -EROFS);
    assert_int_equal(content_gc(ro, NULL), -EROFS);
    store_close(ro);
    free(p);
}

static void test_empty_file(void **state)
{
    struct fx *f = *state;
    uint8_t id[32], want[32];
    write_file(f->file, "", 0);
    assert_int_equal(ingest(f->st, f->file, NULL, id), 0);
    sha256("", 0, want);
    assert_memory_equal(id, want, 32);
    assert_content(f->st, id, (const uint8_t *)"", 0);
    assert_int_equal(fsck(f->st), 0);
}

static void test_dedup_identical_files(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)3 << 20;
    uint8_t *p = malloc(n), a[32], b[32];
    struct content_stats s1, s2;
    fill_text(p, n, 2);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    assert_int_equal(content_stats(f->st, &s1), 0);
    assert_int_equal(ingest(f->st, f->file, NULL, b), 0);
    assert_int_equal(content_stats(f->st, &s2), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(s1.stored_bytes, s2.stored_bytes);
    assert_int_equal(s1.pack_bytes, s2.pack_bytes);
    assert_int_equal(s2.contents, 1);
    assert_int_equal(s2.logical_bytes, 2 * n);
    assert_true(s2.stored_bytes < n / 2);     /* text compresses */
    /* Same bytes inside a different file: chunks are shared too. */
    uint8_t *q = malloc(n + 100);
    fill_random(q, 100, 9);
    memcpy(q + 100, p, n);
    write_file(f->file, q, n + 100);
    assert_int_equal(ingest(f->st, f->file, NULL, b), 0);
    assert_int_equal(content_stats(f->st, &s2), 0);
    print_message("# shifted copy added %llu stored bytes of %zu\n",
                  (unsigned long long)(s2.stored_bytes - s1.stored_bytes), n);
    assert_true(s2.stored_bytes - s1.stored_bytes < n / 8);
    assert_int_equal(fsck(f->st), 0);
    free(p);
    free(q);
}

static void test_incompressible_kept_raw(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)2 << 20;
    uint8_t *p = malloc(n), id[32];
    struct content_stats s;
    fill_random(p, n, 3);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, id), 0);
    assert_int_equal(content_stats(f->st, &s), 0);
    assert_int_equal(s.chunk_bytes, n);
    assert_int_equal(s.stored_bytes, n);      /* raw: not a byte of overhead */
    assert_content(f->st, id, p, n);
    free(p);
}

/* Ingest `path` fully in the same store: must be the very same content
 * (same id, no new chunk) as the incremental result. */
static void assert_same_as_full(struct fx *f, const uint8_t *id)
{
    struct content_stats s1, s2;
    uint8_t full[32];
    assert_int_equal(content_stats(f->st, &s1), 0);
    assert_int_equal(ingest(f->st, f->file, NULL, full), 0);
    assert_int_equal(content_stats(f->st, &s2), 0);
    assert_memory_equal(full, id, 32);
    assert_int_equal(s1.chunks, s2.chunks);
    assert_int_equal(s1.pack_bytes, s2.pack_bytes);
}

static void test_incremental_append(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)8 << 20, add = (size_t)1 << 20;
    uint8_t *p = malloc(n + add), a[32], b[32], want[32];
    struct content_stats s1, s2;
    fill_random(p, n + add, 4);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    assert_int_equal(content_stats(f->st, &s1), 0);
    write_file(f->file, p, n + add);
    struct content_range r = { n, add };
    struct content_prev prev = { .dirty = &r, .ndirty = 1 };
    memcpy(prev.id, a, 32);
    assert_int_equal(ingest(f->st, f->file, &prev, b), 0);
    sha256(p, n + add, want);
    assert_memory_equal(b, want, 32);
    assert_int_equal(content_stats(f->st, &s2), 0);
    /* Only the old last chunk and the appended bytes are new. */
    assert_true(s2.chunk_bytes - s1.chunk_bytes <= add + (256 << 10));
    assert_content(f->st, b, p, n + add);
    assert_same_as_full(f, b);
    assert_int_equal(fsck(f->st), 0);
    free(p);
}

static void test_incremental_patch_and_truncate(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)8 << 20;
    uint8_t *p = malloc(n), a[32], b[32], c[32], want[32];
    struct content_stats s1, s2;
    fill_random(p, n, 5);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    assert_int_equal(content_stats(f->st, &s1), 0);
    struct content_range r[3] = { { 5000000, 100 }, { 100, 10 }, { 3000000, 4096 } };
    for (int i = 0; i < 3; i++)
        fill_random(p + r[i].off, r[i].len, 50 + i);
    write_file(f->file, p, n);
    struct content_prev prev = { .dirty = r, .ndirty = 3 };
    memcpy(prev.id, a, 32);
    assert_int_equal(ingest(f->st, f->file, &prev, b), 0);
    sha256(p, n, want);
    assert_memory_equal(b, want, 32);
    assert_int_equal(content_stats(f->st, &s2), 0);
    print_message("# 3 patches re-stored %llu bytes\n",
                  (unsigned long long)(s2.chunk_bytes - s1.chunk_bytes));
    assert_true(s2.chunk_bytes - s1.chunk_bytes <= 3 * 2 * (256 << 10));
    assert_content(f->st, b, p, n);
    assert_same_as_full(f, b);
    /* Truncate to the middle of a chunk. */
    size_t m = 6000001;
    write_file(f->file, p, m);
    struct content_prev prev2 = { .ndirty = 0 };
    memcpy(prev2.id, b, 32);
    assert_int_equal(ingest(f->st, f->file, &prev2, c), 0);
    sha256(p, m, want);
    assert_memory_equal(c, want, 32);
    assert_content(f->st, c, p, m);
    assert_same_as_full(f, c);
    assert_int_equal(fsck(f->st), 0);
    free(p);
}

/* Random rounds of patches, appends and truncations, each ingested
 * incrementally from the previous round: always the same content as a
 * full ingest. */
static void test_incremental_random(void **state)
{
    struct fx *f = *state;
    size_t cap = (size_t)12 << 20, n = (size_t)3 << 20;
    uint8_t *p = malloc(cap), prev_id[32], id[32], want[32];
    uint64_t x = 12345;
    fill_random(p, n, 20);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, prev_id), 0);
    for (int round = 0; round < 12; round++) {
        struct content_range r[4];
        size_t nr = 0;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int kind = (int)(x % 3);
        if (kind == 0 || nr == 0) {         /* a few patches */
            for (int k = 0; k < 3; k++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                size_t off = x % n, len = 1 + (x >> 32) % 70000;
                if (off + len > n)
                    len = n - off;
                fill_random(p + off, len, x);
                r[nr++] = (struct content_range){ off, len };
            }
        }
        if (kind == 1 && n + (1 << 20) < cap) {   /* append */
            size_t len = 1 + (x >> 20) % (1 << 20);
            fill_random(p + n, len, x + 1);
            r[nr++] = (struct content_range){ n, len };
            n += len;
        } else if (kind == 2) {             /* truncate */
            n -= (x >> 24) % (n / 4);
        }
        write_file(f->file, p, n);
        struct content_prev prev = { .dirty = r, .ndirty = nr };
        memcpy(prev.id, prev_id, 32);
        assert_int_equal(ingest(f->st, f->file, &prev, id), 0);
        sha256(p, n, want);
        assert_memory_equal(id, want, 32);
        assert_same_as_full(f, id);
        memcpy(prev_id, id, 32);
    }
    assert_content(f->st, prev_id, p, n);
    assert_int_equal(fsck(f->st), 0);
    free(p);
}

static void test_batch_group_commit(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)1 << 20;
    uint8_t *p = malloc(n), a[32], b[32];
    char other[128];
    struct content_batch *bt;
    snprintf(other, sizeof other, "%s/other", f->root);
    fill_random(p, n, 6);
    write_file(f->file, p, n);
    fill_text(p, n, 6);
    write_file(other, p, n);
    assert_int_equal(content_batch_begin(f->st, &bt), 0);
    int fd1 = open(f->file, O_RDONLY), fd2 = open(other, O_RDONLY);
    assert_int_equal(content_batch_add_fd(bt, fd1, NULL, a, NULL), 0);
    assert_int_equal(content_batch_add_fd(bt, fd2, NULL, b, NULL), 0);
    close(fd1);
    close(fd2);
    assert_int_equal(content_exists(f->st, a), 0);     /* not before commit */
    assert_int_equal(content_batch_commit(bt), 0);
    assert_int_equal(content_exists(f->st, a), 1);
    assert_int_equal(content_exists(f->st, b), 1);
    assert_content(f->st, b, p, n);
    assert_int_equal(fsck(f->st), 0);
    free(p);
}

static void test_unref_and_gc(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)2 << 20;
    uint8_t *p = malloc(n), a[32], b[32];
    struct content_stats s;
    struct content_gc_result g;
    fill_random(p, n, 7);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    fill_random(p, n, 8);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, b), 0);
    assert_int_equal(content_ref(f->st, a), 0);
    assert_int_equal(content_unref(f->st, a), 0);
    assert_int_equal(content_exists(f->st, a), 1);
    assert_int_equal(content_unref(f->st, a), 0);
    assert_int_equal(content_exists(f->st, a), 0);
    assert_int_equal(content_stats(f->st, &s), 0);
    assert_true(s.dead_chunks > 0);
    assert_int_equal(fsck(f->st), 0);
    assert_int_equal(content_gc(f->st, &g), 0);
    assert_int_equal(g.chunks_freed, s.dead_chunks);
    assert_true(g.bytes_freed >= n);
    assert_int_equal(content_stats(f->st, &s), 0);
    assert_int_equal(s.dead_chunks, 0);
    print_message("# gc freed %llu bytes; packs now use %llu\n",
                  (unsigned long long)g.bytes_freed, (unsigned long long)s.pack_bytes);
    assert_true(s.pack_bytes < n + n / 2);    /* the holes are real */
    assert_content(f->st, b, p, n);
    assert_int_equal(fsck(f->st), 0);
    assert_int_equal(content_unref(f->st, a), -ENOENT);
    free(p);
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (uint64_t)sb.st_size;
}

static void test_crash_before_commit(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)2 << 20;
    uint8_t *p = malloc(n), a[32];
    char pack[160];
    fill_random(p, n, 10);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    snprintf(pack, sizeof pack, "%s/packs/pack-000001", f->sdir);
    uint64_t committed = file_size(pack);
    store_close(f->st);
    f->st = NULL;
    fill_random(p, n, 11);
    write_file(f->file, p, n);
    pid_t pid = fork();
    if (pid == 0) {     /* write pack bytes, then die before the commit */
        struct store *st;
        struct content_batch *b;
        uint8_t id[32];
        int fd = open(f->file, O_RDONLY);
        /* A file's last window is stored while the next file is read: the
         * second add makes sure the first one's bytes are in the pack. */
        if (store_open(&st, f->sdir, 0) || content_batch_begin(st, &b) ||
            content_batch_add_fd(b, fd, NULL, id, NULL) ||
            content_batch_add_fd(b, fd, NULL, id, NULL))
            _exit(1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(file_size(pack) > committed);
    assert_int_equal(store_open(&f->st, f->sdir, 0), 0);
    assert_int_equal(file_size(pack), committed);
    assert_int_equal(fsck(f->st), 0);
    fill_random(p, n, 10);
    assert_content(f->st, a, p, n);
    free(p);
}

static void test_corrupt_chunk_named(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)1 << 20;
    uint8_t *p = malloc(n), a[32];
    char pack[160];
    fill_random(p, n, 12);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    snprintf(pack, sizeof pack, "%s/packs/pack-000001", f->sdir);
    int fd = open(pack, O_RDWR);
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, 100000), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, 100000), 1);
    close(fd);
    int problems = 0;
    int rc = content_fsck(f->st, 0, report_print, &problems);
    assert_true(rc >= 2);       /* the chunk, and the content using it */
    struct membuf m = { malloc(n), 0, n };
    assert_int_equal(content_read(f->st, a, mem_sink, &m), -EUCLEAN);
    assert_non_null(strstr(pv_errmsg(), "chunk "));
    assert_non_null(strstr(pv_errmsg(), "damaged"));
    free(m.p);
    free(p);
}

/* Packs roll (here every 1 MiB) while a batch is open; reopening the store
 * (recovery) must not cut a rolled pack whose bytes a batch still needs. */
static void test_pack_roll(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)5 << 20;
    uint8_t *p = malloc(n), a[32], b[32];
    char other[128];
    struct content_batch *bt;
    snprintf(other, sizeof other, "%s/other", f->root);
    pack_roll_size = 1 << 20;
    fill_random(p, n, 14);
    write_file(f->file, p, n);
    assert_int_equal(content_batch_begin(f->st, &bt), 0);
    int fd = open(f->file, O_RDONLY);
    assert_int_equal(content_batch_add_fd(bt, fd, NULL, a, NULL), 0);
    close(fd);
    /* Another process opening the store read-write runs recovery now. */
    struct store *st2;
    assert_int_equal(store_open(&st2, f->sdir, 0), 0);
    store_close(st2);
    assert_int_equal(content_batch_commit(bt), 0);
    assert_content(f->st, a, p, n);
    fill_random(p, n, 15);
    write_file(other, p, n);
    assert_int_equal(ingest(f->st, other, NULL, b), 0);
    assert_content(f->st, b, p, n);
    pack_roll_size = PACK_ROLL;
    store_close(f->st);
    assert_int_equal(store_open(&f->st, f->sdir, 0), 0);
    assert_content(f->st, b, p, n);
    assert_int_equal(fsck(f->st), 0);
    char pack[160];
    snprintf(pack, sizeof pack, "%s/packs/pack-000006", f->sdir);
    assert_int_equal(access(pack, F_OK), 0);     /* it did roll */
    free(p);
}

/* Disk full: a real tiny tmpfs (needs root; skipped otherwise). */
static void test_disk_full(void **state)
{
    struct fx *f = *state;
    char mnt[96], sdir[128], src[128];
    snprintf(mnt, sizeof mnt, "%s/small", f->root);
    mkdir(mnt, 0700);
    if (mount("provfs-test", mnt, "tmpfs", 0, "size=6m")) {
        print_message("# cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    snprintf(sdir, sizeof sdir, "%s/.provfs", mnt);
    snprintf(src, sizeof src, "%s/big", f->root);   /* outside the tmpfs */
    size_t n = (size_t)16 << 20;
    uint8_t *p = malloc(n), id[32];
    fill_random(p, n, 13);
    write_file(src, p, n);
    struct store *st;
    assert_int_equal(store_open(&st, sdir, STORE_CREATE), 0);
    pv_errclear();
    int rc = ingest(st, src, NULL, id);
    assert_int_equal(rc, -ENOSPC);
    print_message("# %s\n", pv_errmsg());
    assert_non_null(strstr(pv_errmsg(), "full"));
    struct content_stats s;
    assert_int_equal(content_stats(st, &s), 0);
    assert_int_equal(s.contents, 0);
    assert_int_equal(s.chunks, 0);
    assert_int_equal(fsck(st), 0);
    /* The failed write was given back: a small file still fits. */
    write_file(src, p, 100000);
    assert_int_equal(ingest(st, src, NULL, id), 0);
    assert_content(st, id, p, 100000);
    assert_int_equal(fsck(st), 0);
    store_close(st);
    assert_int_equal(umount(mnt), 0);
    free(p);
}

/* Aborting a batch whose last window is still being stored gives all its
 * bytes back: the pack is cut to where it was, and the store stays sound. */
static void test_abort_in_flight(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)3 << 20;
    uint8_t *p = malloc(n), a[32], id[32];
    char pack[160];
    fill_random(p, n, 41);
    write_file(f->file, p, 1000);
    assert_int_equal(ingest(f->st, f->file, NULL, a), 0);
    snprintf(pack, sizeof pack, "%s/packs/pack-000001", f->sdir);
    uint64_t before = file_size(pack);
    write_file(f->file, p, n);
    struct content_batch *b;
    assert_int_equal(content_batch_begin(f->st, &b), 0);
    int fd = open(f->file, O_RDONLY);
    assert_int_equal(content_batch_add_fd(b, fd, NULL, id, NULL), 0);
    close(fd);
    content_batch_abort(b);
    assert_int_equal(file_size(pack), before);
    assert_int_equal(content_exists(f->st, id), 0);
    assert_int_equal(fsck(f->st), 0);
    /* The same content goes in afterwards. */
    assert_int_equal(ingest(f->st, f->file, NULL, id), 0);
    assert_content(f->st, id, p, n);
    free(p);
}

/* 40 MiB of incompressible data cross several 8 MiB writeback kicks, each
 * of which drops the pages of the range kicked before: the content still
 * reads back exactly, in the same process and after reopening the store,
 * and fsck re-hashes every chunk from disk. */
/* Bytes of the store's packs in the page cache, and in all (mincore). */
static void pack_residency(struct fx *f, size_t *resident, size_t *total)
{
    char dir[160], path[512];
    snprintf(dir, sizeof dir, "%s/packs", f->sdir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    *resident = *total = 0;
    long pg = sysconf(_SC_PAGESIZE);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "pack-", 5) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY);
        struct stat sb;
        assert_true(fd >= 0 && fstat(fd, &sb) == 0);
        if (sb.st_size > 0) {
            size_t np = ((size_t)sb.st_size + (size_t)pg - 1) / (size_t)pg;
            void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
            unsigned char *vec = malloc(np);
            assert_true(m != MAP_FAILED && vec);
            assert_int_equal(mincore(m, (size_t)sb.st_size, vec), 0);
            for (size_t i = 0; i < np; i++)
                *resident += (vec[i] & 1) * (size_t)pg;
            *total += (size_t)sb.st_size;
            free(vec);
            munmap(m, (size_t)sb.st_size);
        }
        close(fd);
    }
    closedir(d);
}

static void test_big_ingest_pages_dropped(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)40 << 20;
    uint8_t *p = malloc(n), id[32];
    fill_random(p, n, 31);
    write_file(f->file, p, n);
    assert_int_equal(ingest(f->st, f->file, NULL, id), 0);
    /* Every 8 MiB kick drops the range before it: of ~40 MiB of pack, at
     * most the last ~16 MiB may still be cached (without the drop, all of
     * it is, until memory pressure). */
    size_t res, tot;
    pack_residency(f, &res, &tot);
    print_message("# pack bytes cached after ingest: %zu KiB of %zu KiB\n",
                  res >> 10, tot >> 10);
    assert_true(tot >= (size_t)36 << 20);
    assert_true(res <= (size_t)20 << 20);
    assert_content(f->st, id, p, n);
    store_close(f->st);
    assert_int_equal(store_open(&f->st, f->sdir, 0), 0);
    assert_content(f->st, id, p, n);
    assert_int_equal(fsck(f->st), 0);
    free(p);
}

/* A file's last window is stored while the next file is read, so a full
 * disk can strike after its add_fd has returned 0: the next add_fd says so,
 * the commit fails, and nothing half-stored is left behind. */
static void test_disk_full_deferred(void **state)
{
    struct fx *f = *state;
    char mnt[96], sdir[128], a[128], b[128], filler[128];
    snprintf(mnt, sizeof mnt, "%s/small", f->root);
    mkdir(mnt, 0700);
    if (mount("provfs-test", mnt, "tmpfs", 0, "size=8m")) {
        print_message("# cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    snprintf(sdir, sizeof sdir, "%s/.provfs", mnt);
    snprintf(a, sizeof a, "%s/a", f->root);
    snprintf(b, sizeof b, "%s/b", f->root);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    size_t n = (size_t)3 << 20;     /* under one window: all of it deferred */
    uint8_t *p = malloc(n), id[32];
    fill_random(p, n, 21);
    write_file(a, p, n);
    write_file(b, p, 1000);
    struct store *st;
    assert_int_equal(store_open(&st, sdir, STORE_CREATE), 0);
    struct statvfs vfs;             /* leave 1 MiB: a fits in neither */
    assert_int_equal(statvfs(mnt, &vfs), 0);
    size_t fill = (size_t)vfs.f_bavail * vfs.f_frsize - ((size_t)1 << 20);
    uint8_t *z = calloc(1, fill);
    write_file(filler, z, fill);
    free(z);
    struct content_batch *bt;
    assert_int_equal(content_batch_begin(st, &bt), 0);
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    assert_int_equal(content_batch_add_fd(bt, fa, NULL, id, NULL), 0);
    pv_errclear();
    assert_int_equal(content_batch_add_fd(bt, fb, NULL, id, NULL), -ENOSPC);
    print_message("# %s\n", pv_errmsg());
    assert_non_null(strstr(pv_errmsg(), "full"));
    assert_int_equal(content_batch_add_fd(bt, fb, NULL, id, NULL), -ENOSPC);
    assert_int_equal(content_batch_commit(bt), -ENOSPC);
    close(fa);
    close(fb);
    struct content_stats s;
    assert_int_equal(content_stats(st, &s), 0);
    assert_int_equal(s.contents, 0);
    assert_int_equal(fsck(st), 0);
    /* With room again, the same file goes in and reads back. */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(ingest(st, a, NULL, id), 0);
    assert_content(st, id, p, n);
    assert_int_equal(fsck(st), 0);
    store_close(st);
    assert_int_equal(umount(mnt), 0);
    free(p);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_roundtrip),
        T(test_empty_file),
        T(test_dedup_identical_files),
        T(test_incompressible_kept_raw),
        T(test_incremental_append),
        T(test_incremental_patch_and_truncate),
        T(test_incremental_random),
        T(test_batch_group_commit),
        T(test_unref_and_gc),
        T(test_crash_before_commit),
        T(test_corrupt_chunk_named),
        T(test_pack_roll),
        T(test_disk_full),
        T(test_disk_full_deferred),
        T(test_big_ingest_pages_dropped),
        T(test_abort_in_flight),
    };
    return cmocka_run_group_tests_name("content", tests, NULL, NULL);
}
