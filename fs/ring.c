/*
 * ring.c - FUSE over io_uring for libfuse 3.14.  See ring.h.
 *
 * The kernel structures are defined here with their upstream values
 * (include/uapi/linux/fuse.h, protocol 7.42); Debian 12's headers predate
 * them.  Each entry is one mapping: the request header block the kernel
 * writes at its start, and the payload one page in.  The space between is
 * where a request is rebuilt, so the payload (a WRITE's data) is never
 * copied again: the fixed header lands right before it.
 */
#include "fs/ring.h"

#include <errno.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

#define RING_CMD_REGISTER         1
#define RING_CMD_COMMIT_AND_FETCH 2
#define RING_HEAD_SPACE           4096   /* header block + rebuild room */
#define RING_OP_IN_MAX            128
#define RING_MAX_QUEUES           1024

struct ring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

struct ring_req_header {
    char in_out[128];               /* fuse_in_header, then fuse_out_header */
    char op_in[RING_OP_IN_MAX];     /* the request's fixed argument         */
    struct ring_ent_in_out io;
};

struct ring_cmd_req {               /* the SQE's 80-byte command area */
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

_Static_assert(sizeof(struct ring_req_header) + sizeof(struct fuse_in_header) +
               RING_OP_IN_MAX <= RING_HEAD_SPACE, "rebuild room");

struct ring_queue;

struct ring_ent {
    struct ring_queue *q;
    char *mem;                      /* RING_HEAD_SPACE + payload bytes */
    struct ring_req_header *hdr;    /* == mem                          */
    char *payload;                  /* mem + RING_HEAD_SPACE           */
    struct iovec iov[2];
    uint64_t commit_id, unique;
    int cmd;                        /* the command last submitted      */
    int live;                       /* registered and not cancelled    */
};

struct ring_queue {
    int qid, evfd, uring_ok, started, warned;
    pthread_t thread;
    struct io_uring uring;
    struct ring_ent ent[RING_DEPTH];
};

static struct {
    struct fuse_session *se;
    int devfd;
    size_t payload;
    ring_inspect_fn inspect;
    int nq;
    struct ring_queue *q;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int go;                         /* 0 wait, 1 register, -1 quit     */
    atomic_int live;                /* queue threads still serving     */
    atomic_int quit;                /* ring_stop: leave the loop       */
    atomic_ullong served;
} ring = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* The ring entry whose request this thread is serving. */
static _Thread_local struct ring_ent *ring_cur;

int ring_queues(void) { return atomic_load(&ring.live); }
uint64_t ring_served(void) { return atomic_load(&ring.served); }

/* ---- setup --------------------------------------------------------------- */

static int ring_queue_init(struct ring_queue *q, int qid)
{
    q->qid = qid;
    q->evfd = eventfd(0, EFD_CLOEXEC);
    if (q->evfd < 0)
        return pv_errno(-errno, "eventfd for FUSE ring queue %d", qid);
    struct io_uring_params p = {
        .flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
        .cq_entries = 2 * (RING_DEPTH + 1),
    };
    int rc = io_uring_queue_init_params(RING_DEPTH + 1, &q->uring, &p);
    if (rc < 0)
        return pv_errno(rc, "io_uring for FUSE ring queue %d", qid);
    q->uring_ok = 1;
    if ((rc = io_uring_register_files(&q->uring, &ring.devfd, 1)) < 0)
        return pv_errno(rc, "registering /dev/fuse with io_uring");
    for (int i = 0; i < RING_DEPTH; i++) {
        struct ring_ent *e = &q->ent[i];
        e->q = q;
        e->mem = mmap(NULL, RING_HEAD_SPACE + ring.payload, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (e->mem == MAP_FAILED) {
            e->mem = NULL;
            return pv_errno(-errno, "FUSE ring buffers");
        }
        e->hdr = (struct ring_req_header *)e->mem;
        e->payload = e->mem + RING_HEAD_SPACE;
        e->iov[0] = (struct iovec){ e->hdr, sizeof *e->hdr };
        e->iov[1] = (struct iovec){ e->payload, ring.payload };
    }
    return 0;
}

static void ring_queue_free(struct ring_queue *q)
{
    for (int i = 0; i < RING_DEPTH; i++)
        if (q->ent[i].mem)
            munmap(q->ent[i].mem, RING_HEAD_SPACE + ring.payload);
    if (q->uring_ok)
        io_uring_queue_exit(&q->uring);
    if (q->evfd >= 0)
        close(q->evfd);
}

/* ---- submissions --------------------------------------------------------- */

/* The SQ has a slot per entry, and an entry has at most one command in
 * flight, so a slot is always free. */
static void ring_submit_cmd(struct ring_queue *q, struct ring_ent *e, int cmd)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->uring);
    if (!sqe) {                             /* not expected: flush, retry */
        io_uring_submit(&q->uring);
        if (!(sqe = io_uring_get_sqe(&q->uring))) {
            pv_error("FUSE ring queue %d: no submission slot", q->qid);
            return;
        }
    }
    memset(sqe, 0, 2 * sizeof *sqe);        /* SQE128 */
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->flags = IOSQE_FIXED_FILE;
    sqe->fd = 0;
    sqe->cmd_op = (uint32_t)cmd;
    e->cmd = cmd;
    io_uring_sqe_set_data(sqe, e);
    struct ring_cmd_req *r = (struct ring_cmd_req *)sqe->cmd;
    r->qid = (uint16_t)q->qid;
    if (cmd == RING_CMD_REGISTER) {
        sqe->addr = (uint64_t)(uintptr_t)e->iov;
        sqe->len = 2;
    } else {
        r->commit_id = e->commit_id;
    }
}

/* Hand the reply now in the entry's header and payload to the kernel; it
 * goes with the next io_uring_enter, which also waits for the next request. */
static void ring_commit(struct ring_ent *e, const struct fuse_out_header *oh,
                        size_t n)
{
    struct fuse_out_header out = *oh;
    out.len = (uint32_t)(sizeof out + n);
    memcpy(e->hdr->in_out, &out, sizeof out);
    e->hdr->io.payload_sz = (uint32_t)n;
    ring_submit_cmd(e->q, e, RING_CMD_COMMIT_AND_FETCH);
    ring_cur = NULL;
}

static void ring_fail(struct ring_ent *e, int err)
{
    struct fuse_out_header oh = { .error = -err, .unique = e->unique };
    ring_commit(e, &oh, 0);
}

/* ---- replies (called by wire.c on the serving thread) -------------------- */

int ring_reply(const struct iovec *iov, int count, ssize_t *res)
{
    struct ring_ent *e = ring_cur;
    const struct fuse_out_header *oh = iov[0].iov_base;
    if (!e || iov[0].iov_len < sizeof *oh || oh->unique != e->unique)
        return 0;
    size_t n = 0;
    for (int i = 1; i < count; i++) {
        if (iov[i].iov_len > ring.payload - n) {
            pv_warn("FUSE reply of %zu+ bytes exceeds the ring's %zu", n + iov[i].iov_len,
                    ring.payload);
            ring_fail(e, EIO);
            errno = EINVAL;
            *res = -1;
            return 1;
        }
        memmove(e->payload + n, iov[i].iov_base, iov[i].iov_len);
        n += iov[i].iov_len;
    }
    ring_commit(e, oh, n);
    *res = (ssize_t)(sizeof *oh + n);
    return 1;
}

static int ring_read_full(int fd, void *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t r = read(fd, (char *)buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int ring_reply_pipe(int pipefd, size_t len, ssize_t *res)
{
    struct ring_ent *e = ring_cur;
    struct fuse_out_header oh;
    if (!e)
        return 0;
    /* libfuse's splice pipe is per thread: what is in it answers the
     * request this thread serves. */
    if (len < sizeof oh || len - sizeof oh > ring.payload ||
        ring_read_full(pipefd, &oh, sizeof oh) ||
        ring_read_full(pipefd, e->payload, len - sizeof oh)) {
        pv_warn("FUSE ring: could not move a %zu-byte reply out of its pipe", len);
        ring_fail(e, EIO);
        errno = EIO;
        *res = -1;
        return 1;
    }
    ring_commit(e, &oh, len - sizeof oh);
    *res = (ssize_t)len;
    return 1;
}

/* ---- serving ------------------------------------------------------------- */

/* Rebuild the request as /dev/fuse delivers it (header, fixed argument,
 * the rest) right before the payload, and let libfuse dispatch it. */
static void ring_serve(struct ring_ent *e)
{
    struct fuse_in_header in;
    memcpy(&in, e->hdr->in_out, sizeof in);
    size_t pay = e->hdr->io.payload_sz;
    e->commit_id = e->hdr->io.commit_id;
    e->unique = in.unique;
    ring_cur = e;
    if (in.len < sizeof in + pay || in.len - sizeof in - pay > RING_OP_IN_MAX ||
        pay > ring.payload) {
        pv_warn("FUSE ring: malformed request (opcode %u, len %u, payload %zu)",
                in.opcode, in.len, pay);
        ring_fail(e, EIO);
        return;
    }
    size_t fixed = in.len - sizeof in - pay;
    char *start = e->payload - fixed - sizeof in;
    memcpy(start, &in, sizeof in);
    memcpy(start + sizeof in, e->hdr->op_in, fixed);
    if (ring.inspect)
        ring.inspect(start, in.len);
    struct fuse_buf buf = { .size = in.len, .mem = start };
    fuse_session_process_buf(ring.se, &buf);
    atomic_fetch_add_explicit(&ring.served, 1, memory_order_relaxed);
    if (ring_cur) {
        /* Every request that reaches the ring has a reply; without one
         * the caller would wait forever. */
        pv_warn("FUSE ring: opcode %u got no reply", in.opcode);
        ring_fail(e, EIO);
    }
}

/* One completion.  1 when the queue should stop. */
static int ring_complete(struct ring_queue *q, struct io_uring_cqe *cqe)
{
    struct ring_ent *e = io_uring_cqe_get_data(cqe);
    if (!e)
        return 1;                           /* the stop eventfd */
    if (cqe->res == 0) {
        ring_serve(e);
        return 0;
    }
    if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
        /* Only REGISTER is refused this way (the connection is not
         * initialized yet): try again shortly. */
        usleep(1000);
        ring_submit_cmd(q, e, e->cmd);
        return 0;
    }
    e->live = 0;
    if (cqe->res != -ENOTCONN && cqe->res != -ECANCELED && !q->warned++)
        pv_warn("FUSE ring queue %d: %s: its requests go through /dev/fuse",
                q->qid, strerror(-cqe->res));
    for (int i = 0; i < RING_DEPTH; i++)
        if (q->ent[i].live)
            return 0;
    return 1;                               /* the kernel ended the ring */
}

static void ring_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set))
        pv_debug("FUSE ring queue %d stays unpinned: %s", cpu, strerror(errno));
}

/* Wait for ring_start (1) or ring_stop (-1). */
static int ring_wait_go(void)
{
    pthread_mutex_lock(&ring.lock);
    while (!ring.go)
        pthread_cond_wait(&ring.cond, &ring.lock);
    int go = ring.go;
    pthread_mutex_unlock(&ring.lock);
    return go;
}

static void ring_set_go(int go)
{
    pthread_mutex_lock(&ring.lock);
    ring.go = go;
    pthread_cond_broadcast(&ring.cond);
    pthread_mutex_unlock(&ring.lock);
}

static void *ring_thread(void *arg)
{
    struct ring_queue *q = arg;
    ring_pin(q->qid);
    if (ring_wait_go() < 0)
        return NULL;
    for (int i = 0; i < RING_DEPTH; i++) {
        q->ent[i].live = 1;
        ring_submit_cmd(q, &q->ent[i], RING_CMD_REGISTER);
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&q->uring);
    io_uring_prep_poll_add(sqe, q->evfd, POLLIN);
    io_uring_sqe_set_data(sqe, NULL);
    for (int stop = 0; !stop && !atomic_load(&ring.quit);) {
        int rc = io_uring_submit_and_wait(&q->uring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            /* Never give up here: until its entries are registered, the
             * kernel holds every request of the mount.  Reap what came
             * and retry (ring_stop sets quit). */
            if (!q->warned++)
                pv_warn("FUSE ring queue %d: %s: retrying", q->qid, strerror(-rc));
            usleep(10000);
        }
        unsigned head, n = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&q->uring, head, cqe) {
            n++;
            stop |= ring_complete(q, cqe);
        }
        io_uring_cq_advance(&q->uring, n);
    }
    atomic_fetch_sub(&ring.live, 1);
    return NULL;
}

/* The threads exist before INIT is answered (a kernel that has been told
 * "ring" waits for every queue), and wait there for ring_start. */
static int ring_spawn(void)
{
    ring.go = 0;
    for (int i = 0; i < ring.nq; i++) {
        struct ring_queue *q = &ring.q[i];
        int rc = pthread_create(&q->thread, NULL, ring_thread, q);
        if (rc)
            return pv_errno(-rc, "starting FUSE ring queue %d", i);
        q->started = 1;
        char name[16];
        snprintf(name, sizeof name, "provfs-ring%u", (unsigned)i & 0xffu);
        pthread_setname_np(q->thread, name);
    }
    return 0;
}

int ring_start(void)
{
    if (!ring.q)
        return 0;
    atomic_store(&ring.live, ring.nq);
    atomic_store(&ring.quit, 0);
    ring_set_go(1);
    pv_info("FUSE over io_uring: %d queues of %d entries", ring.nq, RING_DEPTH);
    return 0;
}

void ring_stop(void)
{
    atomic_store(&ring.quit, 1);
    if (!ring.go)
        ring_set_go(-1);
    for (int i = 0; ring.q && i < ring.nq; i++) {
        struct ring_queue *q = &ring.q[i];
        if (q->started) {
            uint64_t one = 1;
            if (write(q->evfd, &one, sizeof one) != sizeof one)
                pv_warn("could not wake FUSE ring queue %d", i);
            pthread_join(q->thread, NULL);
        }
        ring_queue_free(q);
    }
    atomic_store(&ring.live, 0);
    free(ring.q);
    ring.q = NULL;
    ring.nq = 0;
}

/* The kernel makes one queue per possible CPU and carries nothing until
 * every one has registered, so the count must be the kernel's: possible
 * CPUs (which may exceed the present ones), numbered from 0 without gaps
 * (a request goes to the queue numbered as its caller's CPU). */
static int ring_possible_cpus(void)
{
    FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
    unsigned lo, hi;
    char rest;
    int n = f ? fscanf(f, "%u-%u%c", &lo, &hi, &rest) : 0;
    if (f)
        fclose(f);
    if (n == 1 && lo == 0)
        return 1;                           /* "0" */
    if (n >= 2 && lo == 0 && (n == 2 || rest == '\n') && hi < RING_MAX_QUEUES)
        return (int)hi + 1;                 /* "0-N" */
    return -1;
}

int ring_prepare(struct fuse_session *se, int devfd, size_t payload,
                 ring_inspect_fn inspect)
{
    int nq = ring_possible_cpus();
    if (nq < 1)
        return pv_err(-EINVAL, "the possible CPUs are not 0-N: not using the FUSE ring");
    ring.se = se;
    ring.devfd = devfd;
    ring.payload = payload;
    ring.inspect = inspect;
    ring.q = calloc((size_t)nq, sizeof *ring.q);
    if (!ring.q)
        return pv_err(-ENOMEM, "out of memory");
    ring.nq = nq;
    for (int i = 0; i < nq; i++)
        ring.q[i].evfd = -1;
    for (int i = 0; i < nq; i++) {
        int rc = ring_queue_init(&ring.q[i], i);
        if (rc) {
            ring_stop();
            return rc;
        }
    }
    int rc = ring_spawn();
    if (rc)
        ring_stop();
    return rc;
}
