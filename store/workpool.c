/* workpool.c - persistent helper threads sharing a loop; see workpool.h. */
#include "store/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct workpool_helper {
    struct workpool *pool;
    unsigned worker;
    pthread_t tid;
};

struct workpool {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    /* the current run, under mu */
    void (*fn)(void *, size_t, unsigned);
    void *ctx;
    size_t n, next;
    unsigned active;        /* helpers inside fn right now */
    uint64_t gen;           /* bumped per run, so helpers notice new work */
    int quit;
    unsigned nhelpers;
    struct workpool_helper helper[WORKPOOL_MAX];
};

/* Claim and run items until none are left; called with mu held. */
static void workpool_drain(struct workpool *p, unsigned worker, int is_helper)
{
    while (p->next < p->n) {
        size_t i = p->next++;
        void (*fn)(void *, size_t, unsigned) = p->fn;
        void *ctx = p->ctx;
        p->active += is_helper;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, i, worker);
        pthread_mutex_lock(&p->mu);
        if (is_helper && --p->active == 0)
            pthread_cond_signal(&p->done);
    }
}

static void *workpool_main(void *arg)
{
    struct workpool_helper *h = arg;
    struct workpool *p = h->pool;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->quit)
            break;
        seen = p->gen;
        workpool_drain(p, h->worker, 1);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int workpool_create(struct workpool **out, unsigned nthreads)
{
    *out = NULL;
    if (nthreads <= 1)
        return 0;
    struct workpool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    if (nthreads > WORKPOOL_MAX)
        nthreads = WORKPOOL_MAX;
    for (unsigned w = 1; w < nthreads; w++) {
        struct workpool_helper *h = &p->helper[p->nhelpers];
        *h = (struct workpool_helper){ p, p->nhelpers + 1, 0 };
        if (!pthread_create(&h->tid, NULL, workpool_main, h))
            p->nhelpers++;      /* one that fails to start: less parallelism */
    }
    *out = p;
    return 0;
}

void workpool_destroy(struct workpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned k = 0; k < p->nhelpers; k++)
        pthread_join(p->helper[k].tid, NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void workpool_start(struct workpool *p, size_t n,
                    void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx)
{
    if (!p || !p->nhelpers || n < 2) {
        for (size_t i = 0; i < n; i++)
            fn(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn, p->ctx = ctx, p->n = n, p->next = 0;
    p->gen++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void workpool_join(struct workpool *p)
{
    if (!p || !p->nhelpers)
        return;
    pthread_mutex_lock(&p->mu);
    workpool_drain(p, 0, 0);
    while (p->active)       /* only helpers that claimed an item */
        pthread_cond_wait(&p->done, &p->mu);
    p->n = 0;
    pthread_mutex_unlock(&p->mu);
}

void workpool_run(struct workpool *p, size_t n,
                  void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx)
{
    workpool_start(p, n, fn, ctx);
    workpool_join(p);
}

unsigned workpool_default_threads(void)
{
    /* Read once: glibc reads /sys/devices/system/cpu/online on every call,
     * and the daemon begins a content batch per snapshot batch. */
    static _Atomic unsigned cached;
    unsigned c = atomic_load(&cached);
    if (!c) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c = n < 1 ? 1 : n > WORKPOOL_CPU_MAX ? WORKPOOL_CPU_MAX : (unsigned)n;
        atomic_store(&cached, c);
    }
    return c;
}
