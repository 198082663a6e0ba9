/* workpool.c - fork-join loop over a few threads; see workpool.h. */
#include "store/workpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

struct workpool_job {
    void (*fn)(void *, size_t, unsigned);
    void *ctx;
    size_t n;
    atomic_size_t next;
};

struct workpool_arg {
    struct workpool_job *job;
    unsigned worker;
};

static void workpool_loop(struct workpool_job *job, unsigned worker)
{
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n)
            return;
        job->fn(job->ctx, i, worker);
    }
}

static void *workpool_thread(void *p)
{
    struct workpool_arg *a = p;
    workpool_loop(a->job, a->worker);
    return NULL;
}

void workpool_run(unsigned nthreads, size_t n,
                  void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx)
{
    struct workpool_job job = { fn, ctx, n, 0 };
    pthread_t tid[WORKPOOL_MAX];
    struct workpool_arg arg[WORKPOOL_MAX];
    unsigned started = 0;
    if (nthreads > WORKPOOL_MAX)
        nthreads = WORKPOOL_MAX;
    if (nthreads > n)
        nthreads = (unsigned)n;
    /* A thread that fails to start only means less parallelism. */
    for (unsigned w = 1; w < nthreads; w++) {
        arg[started] = (struct workpool_arg){ &job, w };
        if (!pthread_create(&tid[started], NULL, workpool_thread, &arg[started]))
            started++;
    }
    workpool_loop(&job, 0);
    for (unsigned k = 0; k < started; k++)
        pthread_join(tid[k], NULL);
}

unsigned workpool_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > WORKPOOL_MAX ? WORKPOOL_MAX : (unsigned)n;
}
