/*
 * workpool.h - a few helper threads for a loop body: workpool_run() calls
 * fn(ctx, i, worker) for every i in [0, n), items handed out one at a time,
 * worker in [0, nthreads) so the body can keep per-worker scratch (a
 * compression context).
 *
 * The calling thread works too, and it never waits for a helper that has
 * not claimed an item: on a loaded machine a helper that is slow to be
 * scheduled costs nothing (the run degrades to one thread), instead of
 * stalling every run on a wake-up, which is what a fork-join per run did.
 * Helpers live as long as the pool (one per ingest batch).
 */
#ifndef STORE_WORKPOOL_H
#define STORE_WORKPOOL_H

#include <stddef.h>

#define WORKPOOL_MAX 16       /* I/O-bound users (catalog prefetch) want many */
#define WORKPOOL_CPU_MAX 8    /* CPU-bound default: workpool_default_threads */

struct workpool;

/* nthreads counts the caller; 1 (or a failure to start any helper) gives a
 * pool that runs everything in the caller.  Returns 0 or -ENOMEM. */
int workpool_create(struct workpool **out, unsigned nthreads);
void workpool_destroy(struct workpool *p);

/* p may be NULL: then the loop simply runs here, as worker 0. */
void workpool_run(struct workpool *p, size_t n,
                  void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx);

/* The same run in two halves, so the caller can do other work meanwhile:
 * start hands the items to the helpers (with no helpers it runs them all
 * at once, here); join has the caller take what is left, then waits for
 * the items helpers claimed.  Every start needs its join before the next
 * start, and before the items' data may change. */
void workpool_start(struct workpool *p, size_t n,
                    void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx);
void workpool_join(struct workpool *p);

/* Threads worth using for CPU work: online CPUs, at most WORKPOOL_CPU_MAX
 * (counted once). */
unsigned workpool_default_threads(void);

#endif
