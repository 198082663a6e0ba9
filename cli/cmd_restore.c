/*
 * cmd_restore.c - `provfs restore PATH[@N] [--at TIME] [-o OUT] [--force]`.
 *
 * Nothing is overwritten without a version of it being kept:
 *  - mounted: the restore is announced to the daemon (so the version it
 *    makes is recorded as restored from PATH@N) and written through the
 *    mount, whose write-open first keeps an origin version of a file that
 *    had none;
 *  - not mounted: a file that changed since its last version is first
 *    stored as an external version, then replaced atomically (temporary
 *    file + rename), and the restored version is recorded;
 *  - -o OUT writes elsewhere and refuses to replace an existing OUT
 *    unless --force.
 * The bytes written are re-hashed and must equal the recorded content id.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/spec.h"
#include "common/err.h"
#include "fs/capture.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/render.h"
#include "store/store.h"

#define RESTORE_USAGE "provfs restore PATH[@N] [--at TIME] [-o OUT] [--force]"

struct rs_sink {
    int fd;
    EVP_MD_CTX *md;
};

static int rs_sink_write(void *ctx, const void *buf, size_t n)
{
    struct rs_sink *s = ctx;
    EVP_DigestUpdate(s->md, buf, n);
    return cli_write_all(&s->fd, buf, n);
}

/* Stream version v into fd; verify the SHA-256 of what was written. */
static int rs_write(struct store *st, const struct cat_version *v, int fd)
{
    struct rs_sink s = { fd, EVP_MD_CTX_new() };
    if (!s.md || !EVP_DigestInit_ex(s.md, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(s.md);
        return pv_err(-ENOMEM, "out of memory");
    }
    int rc = content_read(st, v->content_id, rs_sink_write, &s);
    uint8_t md[32];
    unsigned int mdlen = 32;
    EVP_DigestFinal_ex(s.md, md, &mdlen);
    EVP_MD_CTX_free(s.md);
    if (!rc && memcmp(md, v->content_id, 32))
        rc = pv_err(-EUCLEAN, "the restored bytes do not hash to the recorded content id "
                    "(the store is damaged: run provfs fsck)");
    if (!rc && fsync(fd))
        rc = pv_errno(-errno, "syncing");
    return rc;
}

/* mkdir -p of the directories above path (relative to dirfd). */
static int rs_mkparents(int dirfd, const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
        *p = 0;
        if (mkdirat(dirfd, buf, 0777) && errno != EEXIST)
            return pv_errno(-errno, "creating %s", buf);
        *p = '/';
    }
    return 0;
}

/* Write to a temporary file beside dst, then rename it over dst. */
static int rs_write_atomic(struct store *st, const struct cat_version *v, int dirfd,
                           const char *dst)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.provfs-restore.%d", dst, (int)getpid());
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, v->mode & 07777);
    if (fd < 0)
        return pv_errno(-errno, "creating %s", tmp);
    int rc = rs_write(st, v, fd);
    if (close(fd) && !rc)
        rc = pv_errno(-errno, "closing %s", tmp);
    if (!rc && renameat(dirfd, tmp, dirfd, dst))
        rc = pv_errno(-errno, "renaming into place");
    if (rc)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

static void rs_hex(char *out, const char *s)
{
    for (; *s; s++, out += 2)
        sprintf(out, "%02x", (unsigned char)*s);
    *out = 0;
}

/* Mounted: announce, write through the mount, wait for the version. */
static int rs_mounted(struct cli_ws *ws, struct store *st, const struct cli_spec *sp,
                      const struct cat_version *v)
{
    static char req[4 * PATH_MAX + 64];
    char src[2 * PATH_MAX + 1], ans[64];
    rs_hex(src, sp->path);
    snprintf(req, sizeof req, "restore %u %s %s", v->vno, src, src);
    if (fs_runtime_request(&ws->rt, req, ans, sizeof ans) || strncmp(ans, "ok", 2))
        return pv_err(-EIO, "the daemon did not accept the restore (%s)", ans);
    int dirfd = open(ws->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return pv_errno(-errno, "opening %s", ws->root);
    int rc = rs_mkparents(dirfd, sp->path);
    int fd = rc ? -1 : openat(dirfd, sp->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                              v->mode & 07777);
    if (!rc && fd < 0)
        rc = pv_errno(-errno, "opening %s for writing", sp->path);
    if (!rc)
        rc = rs_write(st, v, fd);
    if (fd >= 0 && close(fd) && !rc)
        rc = pv_errno(-errno, "closing %s", sp->path);
    close(dirfd);
    if (!rc && fs_runtime_request(&ws->rt, "sync", ans, sizeof ans))
        fprintf(stderr, "provfs: restore: warning: %s\n", pv_errmsg());
    return rc;
}

/* Not mounted: keep, replace, record.  Each step commits before the next
 * one can lose anything. */
struct rs_rec {
    struct store *st;
    const char *path;
    const struct cat_version *src;  /* NULL: an external version */
    const uint8_t *id;
    struct stat sb;
};

static void rs_fill_stat(struct cat_version *v, const struct stat *sb)
{
    v->size = (uint64_t)sb->st_size;
    v->mode = sb->st_mode;
    v->uid = sb->st_uid;
    v->gid = sb->st_gid;
    v->ino = sb->st_ino;
    v->mtime_ns = (uint64_t)sb->st_mtim.tv_sec * 1000000000u + (uint64_t)sb->st_mtim.tv_nsec;
    v->ctime_ns = (uint64_t)sb->st_ctim.tv_sec * 1000000000u + (uint64_t)sb->st_ctim.tv_nsec;
}

/* Batch hook: one version (external or restored) and, for a restore, the
 * event that takes its logical time. */
static int rs_record_hook(void *ctx, struct MDB_txn *txn)
{
    struct rs_rec *r = ctx;
    struct cat_version v = { 0 };
    int rc = cat_next_seq_txn(r->st, txn, &v.seq);
    if (rc)
        return rc;
    v.wall_ns = store_now_ns();
    rs_fill_stat(&v, &r->sb);
    memcpy(v.content_id, r->id, 32);
    v.origin = r->src ? CAT_ORIGIN_RESTORED : CAT_ORIGIN_EXTERNAL;
    if (r->src) {
        v.src_file_id = r->src->file_id;
        v.src_vno = r->src->vno;
        if ((rc = content_ref_txn(r->st, txn, r->id, 1)))
            return rc;
        struct cat_rec ev = { .type = CAT_REC_EVENT };
        ev.u.event.seq = v.seq;
        ev.u.event.wall_ns = v.wall_ns;
        ev.u.event.op = CAP_RESTORE;
        ev.u.event.path = (struct cat_str){ r->path, strlen(r->path) };
        ev.u.event.path2 = ev.u.event.path;
        ev.u.event.arg = r->src->vno;
        if ((rc = cat_commit_txn(r->st, txn, &ev, 1)))
            return rc;
    }
    return cat_version_add(r->st, txn, r->path, strlen(r->path), &v);
}

/* If the file on disk is not its last version, store it as external. */
static int rs_keep_current(struct store *st, int dirfd, const char *path)
{
    struct stat sb;
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : pv_errno(-errno, "opening %s", path);
    struct cat_reader *rd;
    struct cat_version last;
    uint64_t id;
    int same = 0, rc = fstat(fd, &sb) ? pv_errno(-errno, "fstat") : cat_read_begin(st, &rd);
    if (!rc) {
        same = cat_file_find(rd, path, &id) == 0 && cat_version_get(rd, id, 0, &last) == 0 &&
               last.origin != CAT_ORIGIN_DELETED && last.size == (uint64_t)sb.st_size &&
               last.ino == sb.st_ino &&
               last.mtime_ns == (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec;
        cat_read_end(rd);
    }
    struct content_batch *b = NULL;
    uint8_t cid[32];
    uint64_t size;
    struct rs_rec r = { st, path, NULL, cid, sb };
    if (!rc && !same && !(rc = content_batch_begin(st, &b)) &&
        !(rc = content_batch_add_fd(b, fd, NULL, cid, &size))) {
        content_batch_set_hook(b, rs_record_hook, &r);
        rc = content_batch_commit(b);
        b = NULL;
    }
    if (b)
        content_batch_abort(b);
    close(fd);
    return rc ? pv_errctx(rc, "keeping the current content of %s", path) : 0;
}

static int rs_unmounted(struct cli_ws *ws, struct store *st, const struct cli_spec *sp,
                        const struct cat_version *v)
{
    int dirfd = open(ws->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return pv_errno(-errno, "opening %s", ws->root);
    struct rs_rec r = { st, sp->path, v, v->content_id, { 0 } };
    struct content_batch *b;
    int rc = rs_keep_current(st, dirfd, sp->path);
    if (!rc)
        rc = rs_mkparents(dirfd, sp->path);
    if (!rc)
        rc = rs_write_atomic(st, v, dirfd, sp->path);
    if (!rc && fstatat(dirfd, sp->path, &r.sb, AT_SYMLINK_NOFOLLOW))
        rc = pv_errno(-errno, "stat %s", sp->path);
    if (!rc && !(rc = content_batch_begin(st, &b))) {
        content_batch_set_hook(b, rs_record_hook, &r);
        rc = content_batch_commit(b);
    }
    close(dirfd);
    return rc;
}

/* -o OUT: anywhere, never over an existing file unless forced. */
static int rs_to_file(struct store *st, const struct cat_version *v, const char *out, int force)
{
    struct stat sb;
    if (!force && lstat(out, &sb) == 0)
        return pv_err(-EEXIST, "%s exists (use --force to replace it)", out);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (slash == dir)
        strcpy(dir, "/");
    else if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s", slash ? base : out);
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return pv_errno(-errno, "opening %s", dir);
    int rc = rs_write_atomic(st, v, dirfd, name);
    close(dirfd);
    return rc;
}

/* PATH without @N: the newest version that has content. */
static int rs_pick_latest(void *ctx, const struct cat_version *v)
{
    struct cat_version *out = ctx;
    if (v->origin == CAT_ORIGIN_DELETED || (v->flags & (CAT_V_MISSING | CAT_V_HASH_ONLY)))
        return 0;
    *out = *v;
    return 1;
}

static int rs_resolve(struct store *st, const struct cli_spec *sp, int explicit_version,
                      struct cat_version *v)
{
    struct cat_reader *rd;
    char name[PATH_MAX + 16];
    uint64_t id;
    int rc = cat_read_begin(st, &rd);
    if (rc)
        return rc;
    if (explicit_version) {
        rc = cli_spec_resolve(rd, sp, v);
    } else if (!(rc = cat_file_find(rd, sp->path, &id))) {
        v->vno = 0;
        rc = cat_versions_scan(rd, id, 1, rs_pick_latest, v);
        if (rc >= 0)
            rc = v->vno ? 0 : pv_err(-ENOENT, "%s: no version with content to restore", sp->path);
    }
    if (!rc) {
        cli_spec_name(v, sp->path, name, sizeof name);
        rc = cli_version_unreadable(v, name);
    }
    cat_read_end(rd);
    return rc;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "at", required_argument, NULL, 'a' }, { "output", required_argument, NULL, 'o' },
        { "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    const char *at = NULL, *out = NULL;
    int force = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "a:o:fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a': at = optarg; break;
        case 'o': out = optarg; break;
        case 'f': force = 1; break;
        case 'h': printf("usage: %s\n", RESTORE_USAGE); return 0;
        default: return cli_usage(RESTORE_USAGE, "bad arguments");
        }
    }
    if (optind + 1 != argc)
        return cli_usage(RESTORE_USAGE, "expected one PATH[@N]");
    struct cli_ws ws;
    struct cli_spec sp;
    struct cat_version v;
    struct store *st;
    if (cli_ws_find_path(argv[optind], &ws) || cli_spec_parse(&ws, argv[optind], &sp))
        return cli_fail("restore");
    if (at && cli_parse_time(at, &sp.at_ns))
        return cli_usage(RESTORE_USAGE, "%s", pv_errmsg());
    int explicit_version = at || strchr(argv[optind], '@') != NULL;
    unsigned flags = (out || ws.mounted) ? STORE_RDONLY : 0;
    if (cli_ws_open_store(&ws, flags, &st))
        return cli_fail("restore");
    int rc = rs_resolve(st, &sp, explicit_version, &v);
    if (!rc)
        rc = out ? rs_to_file(st, &v, out, force)
           : ws.mounted ? rs_mounted(&ws, st, &sp, &v) : rs_unmounted(&ws, st, &sp, &v);
    store_close(st);
    if (rc)
        return cli_fail("restore");
    char hex[16];
    render_id_hex(v.content_id, hex, 1);
    fprintf(stderr, "provfs: restored %s@%u (%s) to ", sp.path, v.vno, hex);
    cli_put_bytes(stderr, out ? out : sp.path, strlen(out ? out : sp.path));
    fputc('\n', stderr);
    return 0;
}
