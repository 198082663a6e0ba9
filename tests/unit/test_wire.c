/*
 * test_wire.c - fs/wire.c over pipes standing in for /dev/fuse: what it
 * reads from a request (the kill-privilege flags, INIT's offer) and how it
 * amends replies (INIT flags, passthrough opens), and that it leaves every
 * other reply byte for byte as libfuse wrote it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs/ring.h"
#include "fs/wire.h"

#define PT_FLAGS2   (1u << 5)       /* FUSE_PASSTHROUGH >> 32 */
#define FOPEN_PT    (1u << 7)       /* FOPEN_PASSTHROUGH      */

/* backing_id: "padding" in Debian 12's header, the 4 bytes after open_flags. */
static int32_t backing_of(const struct fuse_open_out *o)
{
    int32_t id;
    memcpy(&id, (const char *)o + offsetof(struct fuse_open_out, open_flags) + 4, 4);
    return id;
}

struct pipes {
    int req[2];     /* requests: the test writes, wire_read reads  */
    int rep[2];     /* replies: wire_writev writes, the test reads */
};

static int setup(void **state)
{
    static struct pipes p;
    assert_int_equal(pipe(p.req), 0);
    assert_int_equal(pipe(p.rep), 0);
    *state = &p;
    return 0;
}

static int teardown(void **state)
{
    struct pipes *p = *state;
    close(p->req[0]); close(p->req[1]);
    close(p->rep[0]); close(p->rep[1]);
    return 0;
}

/* Feed one request (header + argument) through wire_read. */
static void feed(const struct fuse_custom_io *io, struct pipes *p, uint32_t opcode,
                 uint64_t unique, const void *arg, size_t len)
{
    unsigned char buf[512], got[512];
    struct fuse_in_header h = { .len = (uint32_t)(sizeof h + len),
                                .opcode = opcode, .unique = unique, .nodeid = 2 };
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, arg, len);
    assert_int_equal(write(p->req[1], buf, sizeof h + len), (ssize_t)(sizeof h + len));
    assert_int_equal(io->read(p->req[0], got, sizeof got, NULL), (ssize_t)(sizeof h + len));
    assert_memory_equal(got, buf, sizeof h + len);
}

/* Send a reply (header + payload) through wire_writev; read back what
 * reached the "device". */
static size_t answer(const struct fuse_custom_io *io, struct pipes *p, uint64_t unique,
                     int error, const void *payload, size_t len, void *out)
{
    struct fuse_out_header oh = { .len = (uint32_t)(sizeof oh + len),
                                  .error = error, .unique = unique };
    struct iovec iov[2] = { { &oh, sizeof oh }, { (void *)payload, len } };
    ssize_t n = io->writev(p->rep[1], iov, len ? 2 : 1, NULL);
    assert_int_equal(n, (ssize_t)(sizeof oh + len));
    unsigned char buf[512];
    assert_int_equal(read(p->rep[0], buf, (size_t)n), n);
    memcpy(out, buf + sizeof oh, len);
    return len;
}

static void init_handshake(const struct fuse_custom_io *io, struct pipes *p,
                           uint32_t flags, uint32_t flags2, struct fuse_init_out *out)
{
    struct fuse_init_in in = { .major = 7, .minor = 41, .flags = flags, .flags2 = flags2 };
    feed(io, p, FUSE_INIT, 1, &in, sizeof in);
    struct fuse_init_out lib = { .major = 7, .minor = 38,
                                 .flags = FUSE_INIT_EXT | FUSE_ASYNC_READ };
    answer(io, p, 1, 0, &lib, sizeof lib, out);
}

static void test_init_adds_offered_features(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_init_out out;
    init_handshake(io, p, FUSE_INIT_EXT | FUSE_HANDLE_KILLPRIV_V2, PT_FLAGS2, &out);
    assert_true(out.flags & FUSE_HANDLE_KILLPRIV_V2);
    assert_true(out.flags & FUSE_ASYNC_READ);           /* libfuse's kept */
    assert_int_equal(out.flags2 & PT_FLAGS2, PT_FLAGS2);
    assert_int_equal(out.unused[0], 1);                 /* max_stack_depth */
    assert_int_equal(wire_passthrough(), 1);
    assert_int_equal(wire_passthrough_offered(), 1);
    assert_int_equal(wire_killpriv(), 1);
}

static void test_init_adds_nothing_not_offered(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_init_out out;
    init_handshake(io, p, FUSE_INIT_EXT, 0, &out);
    assert_false(out.flags & FUSE_HANDLE_KILLPRIV_V2);
    assert_int_equal(out.flags2, 0);
    assert_int_equal(out.unused[0], 0);
    assert_int_equal(wire_passthrough(), 0);
    assert_int_equal(wire_passthrough_offered(), 0);
    assert_int_equal(wire_killpriv(), 0);
}

static void test_init_passthrough_off_by_option(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 0);
    struct fuse_init_out out;
    init_handshake(io, p, FUSE_INIT_EXT | FUSE_HANDLE_KILLPRIV_V2, PT_FLAGS2, &out);
    assert_int_equal(out.flags2 & PT_FLAGS2, 0);
    assert_int_equal(wire_passthrough(), 0);
    assert_int_equal(wire_passthrough_offered(), 1);
    assert_int_equal(wire_killpriv(), 1);
}

/* The kernel offers FUSE over io_uring, but with no session to serve it
 * (as here) or with uring=off the flag must not be taken: a kernel told
 * "ring" would hold every request until queues registered. */
static void test_init_ring_offer_not_taken_without_queues(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_init_out out;
    init_handshake(io, p, FUSE_INIT_EXT, PT_FLAGS2 | RING_INIT_FLAG2, &out);
    assert_int_equal(out.flags2 & RING_INIT_FLAG2, 0);
    assert_int_equal(out.flags2 & PT_FLAGS2, PT_FLAGS2);   /* the rest still taken */
    assert_int_equal(wire_ring_offered(), 1);
    assert_int_equal(ring_queues(), 0);
}

static void test_kill_flags_per_request(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_write_in w = { .size = 1, .write_flags = FUSE_WRITE_KILL_SUIDGID };
    feed(io, p, FUSE_WRITE, 7, &w, sizeof w);
    assert_int_equal(wire_kill_suidgid(), 1);
    w.write_flags = 0;
    feed(io, p, FUSE_WRITE, 8, &w, sizeof w);
    assert_int_equal(wire_kill_suidgid(), 0);
    struct fuse_setattr_in sa = { .valid = FATTR_SIZE | FATTR_KILL_SUIDGID };
    feed(io, p, FUSE_SETATTR, 9, &sa, sizeof sa);
    assert_int_equal(wire_kill_suidgid(), 1);
    struct fuse_open_in o = { .flags = 01001, .open_flags = FUSE_OPEN_KILL_SUIDGID };
    feed(io, p, FUSE_OPEN, 10, &o, sizeof o);
    assert_int_equal(wire_kill_suidgid(), 1);
    /* The next request starts clean: the flag never leaks. */
    feed(io, p, FUSE_GETATTR, 11, &sa, sizeof sa);
    assert_int_equal(wire_kill_suidgid(), 0);
    /* A truncated request is not read past its end. */
    feed(io, p, FUSE_WRITE, 12, &w, 4);
    assert_int_equal(wire_kill_suidgid(), 0);
}

static void test_open_reply_made_passthrough(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_open_in o = { .flags = 0 };
    feed(io, p, FUSE_OPEN, 20, &o, sizeof o);
    wire_reply_passthrough(42, 0);
    struct fuse_open_out lib = { .fh = 0x1234, .open_flags = FOPEN_KEEP_CACHE | FOPEN_NOFLUSH };
    struct fuse_open_out out;
    answer(io, p, 20, 0, &lib, sizeof lib, &out);
    assert_int_equal(out.fh, 0x1234);
    assert_int_equal(out.open_flags, FOPEN_PT | FOPEN_NOFLUSH);  /* no KEEP_CACHE */
    assert_int_equal(backing_of(&out), 42);
    /* Used once: the next open reply is libfuse's own. */
    feed(io, p, FUSE_OPEN, 21, &o, sizeof o);
    answer(io, p, 21, 0, &lib, sizeof lib, &out);
    assert_memory_equal(&out, &lib, sizeof lib);
}

static void test_create_reply_direct(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_create_in c = { .flags = 01 };
    feed(io, p, FUSE_CREATE, 30, &c, sizeof c);
    wire_reply_passthrough(7, 1);
    unsigned char lib[sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)];
    memset(lib, 0xab, sizeof(struct fuse_entry_out));
    struct fuse_open_out oo = { .fh = 9 };
    memcpy(lib + sizeof(struct fuse_entry_out), &oo, sizeof oo);
    unsigned char out[sizeof lib];
    answer(io, p, 30, 0, lib, sizeof lib, out);
    assert_memory_equal(out, lib, sizeof(struct fuse_entry_out));   /* entry untouched */
    struct fuse_open_out got;
    memcpy(&got, out + sizeof(struct fuse_entry_out), sizeof got);
    assert_int_equal(got.fh, 9);
    assert_int_equal(got.open_flags, FOPEN_PT | FOPEN_DIRECT_IO);
    assert_int_equal(backing_of(&got), 7);
}

static void test_other_replies_untouched(void **state)
{
    struct pipes *p = *state;
    const struct fuse_custom_io *io = wire_io(-1, 1);
    struct fuse_open_in o = { 0 };
    struct fuse_open_out lib = { .fh = 5, .open_flags = FOPEN_KEEP_CACHE }, out;
    /* An error reply to an open that asked for passthrough. */
    feed(io, p, FUSE_OPEN, 40, &o, sizeof o);
    wire_reply_passthrough(3, 0);
    struct fuse_out_header oh = { .len = sizeof oh, .error = -ENOENT, .unique = 40 };
    struct iovec iov = { &oh, sizeof oh };
    assert_int_equal(io->writev(p->rep[1], &iov, 1, NULL), (ssize_t)sizeof oh);
    struct fuse_out_header back;
    assert_int_equal(read(p->rep[0], &back, sizeof back), (ssize_t)sizeof back);
    assert_memory_equal(&back, &oh, sizeof oh);
    /* A request that is not an open, even with a stale request to amend. */
    feed(io, p, FUSE_GETATTR, 41, &o, sizeof o);
    wire_reply_passthrough(3, 0);
    answer(io, p, 41, 0, &lib, sizeof lib, &out);
    assert_memory_equal(&out, &lib, sizeof lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_adds_offered_features, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_adds_nothing_not_offered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_passthrough_off_by_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_ring_offer_not_taken_without_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_flags_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_reply_made_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_reply_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_replies_untouched, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
