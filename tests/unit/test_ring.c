/*
 * test_ring.c - fs/ring.c without a FUSE connection: replies that belong
 * to no ring request are left to /dev/fuse, the queues' threads and buffers
 * come and go cleanly (ASan checks the leaks), and when the kernel refuses
 * the registration (here: a pipe, which has no io_uring commands) every
 * queue stops and reports it, which is what makes the mount fall back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <linux/fuse.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "fs/ring.h"

/* "0-N" in sysfs: the queue count the kernel expects. */
static int possible_cpus(void)
{
    unsigned lo = 0, hi = 0;
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    assert_non_null(f);
    int n = fscanf(f, "%u-%u", &lo, &hi);
    fclose(f);
    return n == 2 ? (int)hi + 1 : 1;
}

static void test_reply_without_ring_request_is_not_taken(void **state)
{
    (void)state;
    struct fuse_out_header oh = { .len = sizeof oh, .unique = 42 };
    struct iovec iov[1] = { { &oh, sizeof oh } };
    ssize_t res = 7;
    assert_int_equal(ring_reply(iov, 1, &res), 0);
    assert_int_equal(ring_reply_pipe(0, sizeof oh, &res), 0);
    assert_int_equal(res, 7);                       /* untouched */
    assert_int_equal(ring_queues(), 0);
}

static void test_prepare_then_stop_before_start(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ring_prepare(NULL, p[0], 1 << 20, NULL), 0);
    assert_int_equal(ring_queues(), 0);             /* nothing serves yet */
    ring_stop();                                    /* threads waiting: quit */
    ring_stop();                                    /* harmless twice */
    assert_int_equal(ring_start(), 0);              /* no ring: nothing */
    assert_int_equal(ring_queues(), 0);
    close(p[0]);
    close(p[1]);
}

static void test_refused_registration_stops_every_queue(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    FILE *log = tmpfile();
    assert_non_null(log);
    pv_log_open(log, PV_LOG_WARN);
    assert_int_equal(ring_prepare(NULL, p[0], 1 << 20, NULL), 0);
    assert_int_equal(ring_start(), 0);
    struct timespec nap = { 0, 10 * 1000 * 1000 };
    for (int i = 0; i < 300 && ring_queues() > 0; i++)
        nanosleep(&nap, NULL);
    assert_int_equal(ring_queues(), 0);
    assert_int_equal(ring_served(), 0);
    ring_stop();
    pv_log_open(NULL, PV_LOG_WARN);
    /* Every queue ran, registered, and was refused, each saying so once
     * (0 queues would also be 0 live ones: this is what tells them apart). */
    char line[256];
    int refused = 0;
    rewind(log);
    while (fgets(line, sizeof line, log))
        refused += strstr(line, "FUSE ring queue") &&
                   strstr(line, "its requests go through /dev/fuse") != NULL;
    fclose(log);
    assert_int_equal(refused, possible_cpus());
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_without_ring_request_is_not_taken),
        cmocka_unit_test(test_prepare_then_stop_before_start),
        cmocka_unit_test(test_refused_registration_stops_every_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
