/*
 * wire.h - the FUSE protocol features that libfuse 3.14 cannot negotiate.
 *
 * Debian 12's libfuse speaks protocol 7.38 and knows nothing of two
 * kernel features that matter for speed:
 *
 *  - FUSE_HANDLE_KILLPRIV_V2: the server, not the kernel, drops the
 *    set-user-ID/set-group-ID bits on write, truncate and chown.  Without
 *    it the kernel asks for security.capability (a GETXATTR round trip)
 *    before every write and re-reads the attributes after every chown.
 *  - FUSE_PASSTHROUGH (Linux 6.9): reads of a file opened through the mount
 *    go straight to the backing file in the kernel, with no round trip and
 *    no second page cache.
 *
 * libfuse lets a session read requests and write replies through our own
 * functions (fuse_session_custom_io), and this module uses that seam: it
 * notes what each request asked for, adds the two flags to the INIT reply
 * when the kernel offers them, and marks an OPEN or CREATE reply
 * passthrough when the operation asked for it on the same thread.  Every
 * request is read and answered by one thread (a worker of libfuse's loop,
 * or an io_uring queue thread, ring.h), so thread-local state ties a
 * request to its reply.  It also takes FUSE over io_uring when the kernel
 * offers it, and sends each reply to the ring or to /dev/fuse.
 *
 * When the kernel lacks a feature, nothing is added and the mount works
 * as before; wire_passthrough() and wire_killpriv() say what is in force.
 */
#ifndef FS_WIRE_H
#define FS_WIRE_H

#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

/* Route the session's I/O through this module.  Call after the mount and
 * before the loop starts (INIT is the loop's first request).  want_pt = 0
 * never offers passthrough (mount -o passthrough=off); want_ring = 0 never
 * takes FUSE over io_uring (-o uring=off, ring.h). */
int wire_install(struct fuse_session *se, int want_pt, int want_ring);

/* The I/O functions themselves, set up for /dev/fuse descriptor devfd
 * (wire_install uses this; unit tests drive them over pipes). */
const struct fuse_custom_io *wire_io(int devfd, int want_pt);

/* After INIT: 1 if the kernel accepted the flag. */
int wire_passthrough(void);
int wire_killpriv(void);

/* After INIT: 1 if the kernel offered passthrough (whether or not taken). */
int wire_passthrough_offered(void);

/* After INIT: 1 if the kernel offered FUSE over io_uring (ring.h says
 * whether it serves). */
int wire_ring_offered(void);

/* The request this thread is serving asked the server to drop the
 * set-user-ID and set-group-ID bits (a write, truncate or O_TRUNC open by
 * a caller without CAP_FSETID). */
int wire_kill_suidgid(void);

/* Register a backing file with the kernel: a backing id > 0, or -errno.
 * A failure with EPERM turns passthrough off for the rest of the mount. */
int wire_backing_open(int fd);
void wire_backing_close(int id);

/* Make the next OPEN or CREATE reply sent by this thread a passthrough open
 * on backing id `id`; `direct` keeps reads and writes coming to the server
 * (FOPEN_DIRECT_IO) while mmap goes to the backing file. */
void wire_reply_passthrough(int id, int direct);

/* Make the kernel drop its cached attributes of `ino` (after we changed
 * them behind its back, e.g. the mode in kill-privilege handling).  Safe
 * inside a request handler: it takes no inode lock. */
void wire_inval_attr(fuse_ino_t ino);

#endif
