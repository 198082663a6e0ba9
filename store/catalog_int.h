/*
 * catalog_int.h - private to store/: what the catalog lends the store's
 * maintenance code (maint.c: fsck cross-checks, version retention), which
 * walks the raw databases with cursors inside one reader's snapshot, and
 * the lineage code (a reader's store, to open more readers on threads).
 * Nothing outside store/ includes this file.
 */
#ifndef STORE_CATALOG_INT_H
#define STORE_CATALOG_INT_H

#include <lmdb.h>

#include "store/catalog.h"

/* The reader's LMDB read transaction (valid until cat_read_end). */
MDB_txn *cat_reader_txn(struct cat_reader *rd);
struct store *cat_reader_store(struct cat_reader *rd);
/* Decode a DB_VERSIONS / DB_EVENTS record; -EUCLEAN if malformed. */
int cat_version_decode(const MDB_val *k, const MDB_val *v, struct cat_version *out);
int cat_event_decode(const MDB_val *k, const MDB_val *v, struct cat_event *out);

#endif
