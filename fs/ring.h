/*
 * ring.h - FUSE over io_uring (Linux 6.14+) under libfuse 3.14.
 *
 * Why: every FUSE request is two task wake-ups, and on a small VM a wake-up
 * across CPUs costs tens of microseconds (README, "Metadata").  Over
 * io_uring the kernel keeps one queue per CPU and hands a request to the
 * queue of the CPU the caller runs on; a daemon thread pinned to that CPU
 * answers it, so the wake-up stays on one CPU, and one io_uring_enter both
 * sends the reply and waits for the next request.
 *
 * Debian 12's libfuse predates this transport, so this module carries it:
 * each queue thread rebuilds a request in the layout read(/dev/fuse)
 * would have given, hands it to libfuse (fuse_session_process_buf), and
 * wire.c passes the reply back here (ring_reply) instead of to the device.
 * The /dev/fuse loop keeps running: INIT, FORGET and INTERRUPT always
 * travel that way, and so does everything when the ring is not in use.
 *
 * The kernel offers the transport only when the fuse module's
 * enable_uring parameter is set (/sys/module/fuse/parameters/enable_uring);
 * provfs never sets it.  A kernel that offers it blocks every request after
 * INIT until all queues are registered, so everything that can fail is set
 * up before INIT is answered (ring_prepare), and the flag is taken only
 * when that worked.
 */
#ifndef FS_RING_H
#define FS_RING_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* FUSE_OVER_IO_URING in INIT's flags2 (protocol 7.42). */
#define RING_INIT_FLAG2  (1u << 9)

/* Entries per queue: requests the kernel may hand one CPU's queue before
 * the thread has answered the first. */
#define RING_DEPTH       8

/* Called on the queue thread with each rebuilt request, before libfuse
 * sees it (wire.c notes what the request asked for). */
typedef void (*ring_inspect_fn)(const void *req, size_t len);

/* Allocate the queues for a connection on /dev/fuse descriptor devfd
 * whose largest request payload is `payload` bytes.  0, or -errno when
 * io_uring cannot be used here (nothing is left allocated). */
int ring_prepare(struct fuse_session *se, int devfd, size_t payload,
                 ring_inspect_fn inspect);

/* After the INIT reply reached the kernel: start the queue threads, which
 * register their entries.  Without a prepared ring this does nothing. */
int ring_start(void);

/* Stop and free the queues: after the /dev/fuse loop ended, or when the
 * INIT flag was not taken after all.  Harmless without a ring. */
void ring_stop(void);

/* Queues still serving (0 without a ring, or once the kernel refused or
 * ended it); requests answered through them. */
int ring_queues(void);
uint64_t ring_served(void);

/* If this thread is serving the ring request that reply `iov` answers,
 * commit the reply through the ring and return 1 (*res: bytes, or -1 with
 * errno); else 0, and the caller writes to /dev/fuse as usual. */
int ring_reply(const struct iovec *iov, int count, ssize_t *res);

/* The same for a reply that libfuse has put in a pipe (splice): `len`
 * bytes, header first. */
int ring_reply_pipe(int pipefd, size_t len, ssize_t *res);

#endif
