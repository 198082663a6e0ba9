/*
 * wire.c - amend the FUSE conversation libfuse 3.14 holds.  See wire.h.
 *
 * The kernel structures come from <linux/fuse.h> (7.38 on Debian 12); the
 * few later additions (passthrough) are defined here with their upstream
 * values.  Every amendment is a copy: libfuse's buffers are never written.
 */
#include "fs/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "fs/ring.h"

/* Linux 6.9 (protocol 7.40). */
#define FUSE_PASSTHROUGH_FLAGS2  (1u << 5)      /* FUSE_PASSTHROUGH >> 32 */
#ifndef FOPEN_PASSTHROUGH
#define FOPEN_PASSTHROUGH        (1u << 7)
#endif
#define WIRE_STACK_DEPTH         1  /* backing files sit on a plain fs */

struct wire_backing_map {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};
#define WIRE_IOC_BACKING_OPEN  _IOW(229, 1, struct wire_backing_map)
#define WIRE_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* What the request being served on this thread asked for, and what its
 * reply should carry. */
struct wire_req {
    uint32_t opcode;
    int kill;               /* *_KILL_SUIDGID was set                 */
    int backing;            /* > 0: make the open reply passthrough   */
    int direct;
};
static _Thread_local struct wire_req wire_cur;

static struct {
    int fd;                 /* /dev/fuse                              */
    struct fuse_session *se;
    int want_pt, want_ring;
    atomic_ullong init_unique;  /* INIT's id until it is answered      */
    uint64_t offered;       /* the kernel's INIT flags, flags2 << 32    */
    atomic_int pt, killpriv, pt_offered, ring_offered;
} wire = { .fd = -1 };

int wire_passthrough(void) { return atomic_load(&wire.pt); }
int wire_killpriv(void) { return atomic_load(&wire.killpriv); }
int wire_passthrough_offered(void) { return atomic_load(&wire.pt_offered); }
int wire_ring_offered(void) { return atomic_load(&wire.ring_offered); }
int wire_kill_suidgid(void) { return wire_cur.kill; }

/* ---- requests ------------------------------------------------------------ */

static const void *wire_arg(const void *buf, size_t n, size_t need)
{
    return n >= sizeof(struct fuse_in_header) + need
               ? (const char *)buf + sizeof(struct fuse_in_header) : NULL;
}

static void wire_note_init(const struct fuse_in_header *h, const void *buf,
                           size_t n)
{
    const struct fuse_init_in *in = wire_arg(buf, n, sizeof(*in));
    if (!in)
        return;
    wire.offered = in->flags;
    if (in->flags & FUSE_INIT_EXT)
        wire.offered |= (uint64_t)in->flags2 << 32;
    atomic_store(&wire.init_unique, h->unique);
}

/* Only the flags that matter here: whether to drop privilege bits.  CREATE
 * is not among them: the kernel sends it for a free name (see op_create). */
static void wire_inspect(const void *buf, size_t n)
{
    const struct fuse_in_header *h = buf;
    wire_cur = (struct wire_req){ .opcode = h->opcode };
    switch (h->opcode) {
    case FUSE_INIT:
        wire_note_init(h, buf, n);
        break;
    case FUSE_WRITE: {
        const struct fuse_write_in *in = wire_arg(buf, n, sizeof(*in));
        wire_cur.kill = in && (in->write_flags & FUSE_WRITE_KILL_SUIDGID);
        break;
    }
    case FUSE_SETATTR: {
        const struct fuse_setattr_in *in = wire_arg(buf, n, sizeof(*in));
        wire_cur.kill = in && (in->valid & FATTR_KILL_SUIDGID);
        break;
    }
    case FUSE_OPEN: {
        const struct fuse_open_in *in = wire_arg(buf, n, sizeof(*in));
        wire_cur.kill = in && (in->open_flags & FUSE_OPEN_KILL_SUIDGID);
        break;
    }
    default:
        break;
    }
}

static ssize_t wire_read(int fd, void *buf, size_t len, void *ud)
{
    (void)ud;
    ssize_t n = read(fd, buf, len);
    if (n >= (ssize_t)sizeof(struct fuse_in_header))
        wire_inspect(buf, (size_t)n);
    return n;
}

/* ---- replies ------------------------------------------------------------- */

/* Add what we want and the kernel offered to libfuse's INIT answer. */
static void wire_amend_init(struct fuse_init_out *out)
{
    uint32_t add = 0, add2 = 0;
    if (wire.offered & FUSE_HANDLE_KILLPRIV_V2)
        add |= FUSE_HANDLE_KILLPRIV_V2;
    int offered = (wire.offered >> 32 & FUSE_PASSTHROUGH_FLAGS2) &&
                  (out->flags & FUSE_INIT_EXT);
    atomic_store(&wire.pt_offered, offered);
    int pt = wire.want_pt && offered && !(out->flags & FUSE_WRITEBACK_CACHE);
    if (pt) {
        add2 |= FUSE_PASSTHROUGH_FLAGS2;
        out->unused[0] = WIRE_STACK_DEPTH;      /* max_stack_depth */
    }
    out->flags |= add;
    out->flags2 |= add2;
    atomic_store(&wire.killpriv, add != 0);
    atomic_store(&wire.pt, add2 != 0);
    pv_info("kernel features: killpriv_v2 %s, passthrough %s (%s by the kernel)",
            add ? "on" : "off", add2 ? "on" : "off", offered ? "offered" : "not offered");
}

/* The largest payload the kernel will put in one request: what a ring
 * entry's buffer must hold (the kernel refuses smaller ones). */
static size_t wire_max_payload(const struct fuse_init_out *out)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (out->flags & FUSE_MAX_PAGES) ? out->max_pages : 32;
    size_t n = pages * page;
    if (n < out->max_write)
        n = out->max_write;
    return n < FUSE_MIN_READ_BUFFER ? FUSE_MIN_READ_BUFFER : n;
}

/* Take FUSE over io_uring when the kernel offers it and the queues could
 * be set up: 1 if the flag was added.  Off otherwise, and said why. */
static int wire_amend_ring(struct fuse_init_out *out)
{
    int offered = (wire.offered >> 32 & RING_INIT_FLAG2) && (out->flags & FUSE_INIT_EXT);
    atomic_store(&wire.ring_offered, offered);
    if (!wire.want_ring || !offered || !wire.se) {
        pv_info("FUSE over io_uring: off (%s)", !wire.want_ring ? "uring=off" :
                !offered ? "not offered: the fuse module's enable_uring is N" : "no session");
        return 0;
    }
    if (ring_prepare(wire.se, wire.fd, wire_max_payload(out), wire_inspect)) {
        pv_warn("FUSE over io_uring: off (%s)", pv_errmsg());
        return 0;
    }
    out->flags2 |= RING_INIT_FLAG2;
    return 1;
}

/* fuse_open_out closes both an OPEN reply and a CREATE reply. */
static void wire_amend_open(struct fuse_open_out *out, int backing)
{
    out->open_flags &= ~(uint32_t)(FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR);
    out->open_flags |= FOPEN_PASSTHROUGH;
    if (wire_cur.direct)
        out->open_flags |= FOPEN_DIRECT_IO;
    /* backing_id since 7.40, "padding" in older headers: same bytes. */
    int32_t id = backing;
    memcpy((char *)out + offsetof(struct fuse_open_out, open_flags) + 4, &id, 4);
}

/* Every reply leaves here: through the ring when it answers a ring
 * request, else to /dev/fuse. */
static ssize_t wire_send(int fd, struct iovec *iov, int count)
{
    ssize_t res;
    if (ring_reply(iov, count, &res))
        return res;
    return writev(fd, iov, count);
}

static ssize_t wire_send_init(int fd, const struct iovec *iov)
{
    struct fuse_init_out out;
    memcpy(&out, iov[1].iov_base, sizeof out);
    wire_amend_init(&out);
    int ring = wire_amend_ring(&out);
    atomic_store(&wire.init_unique, 0);
    struct iovec v[2] = { iov[0], { &out, sizeof out } };
    ssize_t n = writev(fd, v, 2);
    if (ring && (n < 0 || ring_start()))
        ring_stop();
    return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *ud)
{
    (void)ud;
    const struct fuse_out_header *oh = iov[0].iov_base;
    int backing = wire_cur.backing;
    wire_cur.backing = 0;
    if (count != 2 || iov[0].iov_len < sizeof(*oh) || oh->error)
        return wire_send(fd, iov, count);
    unsigned long long init = atomic_load(&wire.init_unique);
    if (init && oh->unique == init &&
        iov[1].iov_len == sizeof(struct fuse_init_out))
        return wire_send_init(fd, iov);
    struct iovec v[2] = { iov[0], iov[1] };
    int opens = wire_cur.opcode == FUSE_OPEN || wire_cur.opcode == FUSE_CREATE;
    unsigned char copy[256];
    if (backing > 0 && opens && iov[1].iov_len >= sizeof(struct fuse_open_out) &&
        iov[1].iov_len <= sizeof copy) {
        memcpy(copy, iov[1].iov_base, iov[1].iov_len);
        struct fuse_open_out out;
        size_t at = iov[1].iov_len - sizeof out;
        memcpy(&out, copy + at, sizeof out);
        wire_amend_open(&out, backing);
        memcpy(copy + at, &out, sizeof out);
        v[1] = (struct iovec){ copy, iov[1].iov_len };
    }
    return wire_send(fd, v, 2);
}

void wire_reply_passthrough(int id, int direct)
{
    wire_cur.backing = id;
    wire_cur.direct = direct;
}

/* ---- backing files ------------------------------------------------------- */

int wire_backing_open(int fd)
{
    struct wire_backing_map map = { .fd = fd };
    int id = ioctl(wire.fd, WIRE_IOC_BACKING_OPEN, &map);
    if (id > 0)
        return id;
    int e = id < 0 ? errno : EIO;
    if (e == EPERM || e == ENOTTY || e == EINVAL) {
        /* The kernel refuses backing files on this connection: serve
         * reads ourselves from now on rather than asking every time. */
        if (atomic_exchange(&wire.pt, 0))
            pv_warn("kernel passthrough refused (%s): reads go through the daemon",
                    strerror(e));
    }
    return -e;
}

void wire_backing_close(int id)
{
    uint32_t v = (uint32_t)id;
    if (id > 0 && ioctl(wire.fd, WIRE_IOC_BACKING_CLOSE, &v) < 0)
        pv_debug("closing backing id %d: %s", id, strerror(errno));
}

/* READ replies: libfuse moves file data to /dev/fuse through a pipe; keep
 * that (no reply that needs amending goes this way), but a ring request's
 * reply is read out of the pipe into its entry. */
static ssize_t wire_splice_send(int fdin, off_t *offin, int fdout, off_t *offout,
                                size_t len, unsigned int flags, void *ud)
{
    (void)ud;
    ssize_t res;
    if (ring_reply_pipe(fdin, len, &res))
        return res;
    return splice(fdin, offin, fdout, offout, len, flags);
}

void wire_inval_attr(fuse_ino_t ino)
{
    int rc = fuse_lowlevel_notify_inval_inode(wire.se, ino, -1, 0);
    if (rc && rc != -ENOENT)
        pv_debug("attribute invalidation of %llu: %s", (unsigned long long)ino,
                 strerror(-rc));
}

static const struct fuse_custom_io wire_custom_io = {
    .read = wire_read,
    .writev = wire_writev,
    .splice_send = wire_splice_send,
};

const struct fuse_custom_io *wire_io(int devfd, int want_pt)
{
    wire.fd = devfd;
    wire.want_pt = want_pt;
    atomic_store(&wire.init_unique, 0);
    atomic_store(&wire.pt, 0);
    atomic_store(&wire.killpriv, 0);
    atomic_store(&wire.pt_offered, 0);
    atomic_store(&wire.ring_offered, 0);
    return &wire_custom_io;
}

int wire_install(struct fuse_session *se, int want_pt, int want_ring)
{
    const struct fuse_custom_io *io = wire_io(fuse_session_fd(se), want_pt);
    wire.se = se;
    wire.want_ring = want_ring;
    int rc = fuse_session_custom_io(se, io, wire.fd);
    return rc ? pv_err(rc, "could not hook the FUSE session's I/O") : 0;
}
