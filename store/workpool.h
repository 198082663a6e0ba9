/*
 * workpool.h - run a loop body on several threads: fn(ctx, i, worker) for
 * every i in [0, n), items handed out one at a time, worker in
 * [0, nthreads) so the body can use per-worker scratch (a compression
 * context).  The calling thread is worker 0; the others are started for the
 * call and joined before it returns (a few tens of microseconds, paid per
 * 4 MiB of ingest, so a persistent pool would buy nothing measurable).
 */
#ifndef STORE_WORKPOOL_H
#define STORE_WORKPOOL_H

#include <stddef.h>

#define WORKPOOL_MAX 8

void workpool_run(unsigned nthreads, size_t n,
                  void (*fn)(void *ctx, size_t i, unsigned worker), void *ctx);

/* Threads worth using here: online CPUs, at most WORKPOOL_MAX. */
unsigned workpool_default_threads(void);

#endif
