/* test_workpool.c - store/workpool: every item runs exactly once, on a
 * worker index in range, in both the blocking and the start/join form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/workpool.h"

#define N 1000

struct tally {
    int hits[N];
    int bad_worker;
    unsigned nthreads;
    int slow;
};

static void count(void *ctx, size_t i, unsigned worker)
{
    struct tally *t = ctx;
    __atomic_add_fetch(&t->hits[i], 1, __ATOMIC_RELAXED);
    if (worker >= t->nthreads)
        __atomic_store_n(&t->bad_worker, 1, __ATOMIC_RELAXED);
    if (t->slow && i % 97 == 0)
        usleep(200);    /* let helpers claim items while others sleep */
}

static void assert_each_once(const struct tally *t, size_t n)
{
    for (size_t i = 0; i < N; i++)
        assert_int_equal(t->hits[i], i < n ? 1 : 0);
    assert_int_equal(t->bad_worker, 0);
}

static void test_run_every_item_once(void **state)
{
    (void)state;
    for (unsigned th = 1; th <= 4; th++) {
        struct workpool *p;
        assert_int_equal(workpool_create(&p, th), 0);
        size_t sizes[] = { 0, 1, 2, 3, 57, N };
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            struct tally t;
            memset(&t, 0, sizeof t);
            t.nthreads = th;
            t.slow = 1;
            workpool_run(p, sizes[k], count, &t);
            assert_each_once(&t, sizes[k]);
        }
        workpool_destroy(p);
    }
}

/* The caller works on something else between start and join; after join
 * everything is done, and a second run on the same pool works as well. */
static void test_start_join(void **state)
{
    (void)state;
    struct workpool *p;
    assert_int_equal(workpool_create(&p, 3), 0);
    for (int round = 0; round < 50; round++) {
        struct tally t;
        memset(&t, 0, sizeof t);
        t.nthreads = 3;
        t.slow = round % 2;
        workpool_start(p, N, count, &t);
        if (round % 5 == 0)
            usleep(1000);
        workpool_join(p);
        assert_each_once(&t, N);
    }
    workpool_destroy(p);
}

/* No pool (NULL) or a one-thread pool: start runs everything at once, in
 * the caller, and join has nothing left to do. */
static void test_no_helpers(void **state)
{
    (void)state;
    struct workpool *p;
    assert_int_equal(workpool_create(&p, 1), 0);
    assert_null(p);
    struct tally t;
    memset(&t, 0, sizeof t);
    t.nthreads = 1;
    workpool_start(NULL, N, count, &t);
    assert_each_once(&t, N);
    workpool_join(NULL);
    assert_each_once(&t, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_every_item_once),
        cmocka_unit_test(test_start_join),
        cmocka_unit_test(test_no_helpers),
    };
    return cmocka_run_group_tests_name("workpool", tests, NULL, NULL);
}
