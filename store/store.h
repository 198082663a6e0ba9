/*
 * store.h - the on-disk state of a workspace, under <workspace>/.provfs/.
 *
 * One LMDB environment (.provfs/lmdb/) holds every index as a named
 * database; pack files (.provfs/packs/) hold chunk bytes.  This header is the
 * store's public face for opening and closing; the catalog (events,
 * processes, files, versions) is in catalog.h, content in content.h.
 *
 * The store depends on no other provfs module except common/.  It may be
 * opened by the daemon (read-write, one at a time) and by any number of CLI
 * processes (read-only, or read-write for restore/gc) concurrently: LMDB's
 * lock file serializes writers across processes.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <stdint.h>

struct store;

enum {
    STORE_CREATE = 1 << 0,  /* create .provfs/ and the databases if absent */
    STORE_RDONLY = 1 << 1,  /* read-only transactions only */
    STORE_RANDOM = 1 << 2,  /* point lookups (lineage): no read-ahead on the
                               catalog map; on a cold cache an ancestor walk
                               reads 4 KiB pages instead of 128 KiB runs */
};

/* Open the store in directory `dir` (the .provfs directory itself; it may be
 * a /proc/PID/fd/N/.provfs path when the workspace is overlaid). */
int store_open(struct store **out, const char *dir, unsigned flags);
void store_close(struct store *st);

/* The directory the store lives in, as given to store_open(). */
const char *store_dir(const struct store *st);

/* Current wall-clock time in nanoseconds since the epoch. */
uint64_t store_now_ns(void);

#endif
