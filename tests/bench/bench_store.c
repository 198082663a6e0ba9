/*
 * bench_store.c - drive the content store for scripts/bench-store.
 *
 *   bench_store ingest STOREDIR PATH...      ingest files / directory trees,
 *                                            group-committing every 64 files
 *   bench_store append STOREDIR FILE ID OLDSIZE
 *                                            incremental ingest of FILE, known
 *                                            to be content ID plus bytes
 *                                            appended after OLDSIZE
 *   bench_store cat STOREDIR ID              stream a content to stdout
 *   bench_store verify STOREDIR ID FILE      random content_pread calls
 *                                            compared with FILE
 *   bench_store stats STOREDIR | fsck STOREDIR | gc STOREDIR
 *
 * Prints one machine-readable line per command: key=value pairs.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/content.h"
#include "store/store.h"

#define BATCH_FILES 64

static struct store *g_st;
static struct content_batch *g_batch;
static int g_inbatch;
static uint64_t g_files, g_bytes;
static uint8_t g_last[32];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s (%d)\n", what, pv_errmsg(), rc);
    exit(1);
}

static void flush_batch(void)
{
    if (!g_batch)
        return;
    int rc = content_batch_commit(g_batch);
    g_batch = NULL;
    g_inbatch = 0;
    if (rc)
        die("commit", rc);
}

static int ingest_one(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "bench_store: %s: %s\n", path, strerror(errno));
        return 0;
    }
    int rc = 0;
    if (!g_batch) {
        rc = content_batch_begin(g_st, &g_batch);
        if (!rc && getenv("BENCH_THREADS"))
            content_batch_set_threads(g_batch, (unsigned)atoi(getenv("BENCH_THREADS")));
    }
    uint64_t size = 0;
    if (!rc)
        rc = content_batch_add_fd(g_batch, fd, NULL, g_last, &size);
    close(fd);
    if (rc)
        die(path, rc);
    g_files++;
    g_bytes += size;
    if (++g_inbatch == BATCH_FILES)
        flush_batch();
    return 0;
}

static int walk_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    return type == FTW_F ? ingest_one(path) : 0;
}

static int cmd_ingest(int argc, char **argv)
{
    double t0 = now();
    for (int i = 0; i < argc; i++)
        if (nftw(argv[i], walk_cb, 64, FTW_PHYS))
            die(argv[i], -errno);
    flush_batch();
    double dt = now() - t0;
    char hex[65];
    content_id_hex(g_last, hex);
    printf("files=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f mbps=%.1f last=%s\n",
           g_files, g_bytes, dt, g_bytes / dt / 1e6, hex);
    return 0;
}

static int cmd_append(char **argv)
{
    struct content_prev prev;
    struct content_range r = { strtoull(argv[2], NULL, 10), UINT64_MAX / 2 };
    uint8_t id[32];
    uint64_t size;
    if (content_id_parse(argv[1], prev.id))
        die("id", -EINVAL);
    prev.dirty = &r;
    prev.ndirty = 1;
    int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die(argv[0], -errno);
    double t0 = now();
    int rc = content_ingest_fd(g_st, fd, &prev, id, &size);
    double dt = now() - t0;
    close(fd);
    if (rc)
        die("append", rc);
    char hex[65];
    content_id_hex(id, hex);
    printf("bytes=%" PRIu64 " seconds=%.4f id=%s\n", size, dt, hex);
    return 0;
}

static int out_sink(void *ctx, const void *buf, size_t n)
{
    (void)ctx;
    return fwrite(buf, 1, n, stdout) == n ? 0 : -EIO;
}

/* 1000 random reads of random sizes (up to 1 MiB), checked against FILE. */
static int cmd_verify(char **argv)
{
    uint8_t id[32];
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (content_id_parse(argv[0], id) || fd < 0 || fstat(fd, &sb))
        die("verify", -EINVAL);
    uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);
    uint64_t size = (uint64_t)sb.st_size, x = 88172645463325252ull;
    int bad = 0;
    for (int i = 0; i < 1000 && a && b; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        uint64_t off = size ? x % (size + 1) : 0;
        size_t len = (size_t)(x >> 40) % (1 << 20);
        ssize_t want = pread(fd, b, len, (off_t)off);
        ssize_t got = content_pread(g_st, id, a, len, off);
        if (got != want || (got > 0 && memcmp(a, b, (size_t)got)))
            bad++;
    }
    printf("preads=1000 mismatches=%d\n", bad);
    free(a);
    free(b);
    close(fd);
    return bad != 0;
}

static void report(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "fsck: %s\n", msg);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_store ingest|append|cat|stats|fsck|gc STOREDIR ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    int rdonly = !strcmp(cmd, "cat") || !strcmp(cmd, "stats") || !strcmp(cmd, "fsck") ||
                 !strcmp(cmd, "verify");
    int rc = store_open(&g_st, argv[2], rdonly ? STORE_RDONLY : STORE_CREATE);
    if (rc)
        die("open", rc);
    argc -= 3, argv += 3;
    if (!strcmp(cmd, "ingest")) {
        cmd_ingest(argc, argv);
    } else if (!strcmp(cmd, "append") && argc == 3) {
        cmd_append(argv);
    } else if (!strcmp(cmd, "cat") && argc == 1) {
        uint8_t id[32];
        if (content_id_parse(argv[0], id) || (rc = content_read(g_st, id, out_sink, NULL)))
            die("cat", rc);
    } else if (!strcmp(cmd, "verify") && argc == 2) {
        rc = cmd_verify(argv);
        store_close(g_st);
        return rc;
    } else if (!strcmp(cmd, "stats")) {
        struct content_stats s;
        if ((rc = content_stats(g_st, &s)))
            die("stats", rc);
        printf("logical=%" PRIu64 " chunk_bytes=%" PRIu64 " stored=%" PRIu64
               " pack_bytes=%" PRIu64 " chunks=%" PRIu64 " contents=%" PRIu64 "\n",
               s.logical_bytes, s.chunk_bytes, s.stored_bytes, s.pack_bytes,
               s.chunks, s.contents);
    } else if (!strcmp(cmd, "fsck")) {
        rc = content_fsck(g_st, 0, report, NULL);
        printf("problems=%d\n", rc);
        store_close(g_st);
        return rc != 0;
    } else if (!strcmp(cmd, "gc")) {
        struct content_gc_result r;
        if ((rc = content_gc(g_st, &r)))
            die("gc", rc);
        printf("chunks_freed=%" PRIu64 " bytes_freed=%" PRIu64 "\n", r.chunks_freed, r.bytes_freed);
    } else {
        fprintf(stderr, "bench_store: bad command or arguments\n");
        return 2;
    }
    store_close(g_st);
    return 0;
}
