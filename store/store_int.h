/*
 * store_int.h - private to store/: the struct behind `struct store` and the
 * named databases.  Nothing outside store/ includes this file.
 *
 * Keys are fixed-width big-endian integers or raw hashes so LMDB cursors walk
 * them in numeric order; values are records encoded with codec.h.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <lmdb.h>
#include <stdint.h>

#include "store/store.h"

enum store_db {
    DB_META,      /* string -> value: schema, counters                    */
    DB_PATHS,     /* path bytes -> file id (u64be)                        */
    DB_FILES,     /* file id -> file record                               */
    DB_VERSIONS,  /* file id, version no (u64be,u32be) -> version record  */
    DB_PROCS,     /* proc id -> process record                            */
    DB_PROCKEYS,  /* boot id[16], start ticks, tgid -> proc id            */
    DB_IMAGES,    /* proc id, image no -> exec image record               */
    DB_CHILDREN,  /* parent proc id, child proc id -> ""                  */
    DB_EVENTS,    /* seq (u64be) -> event record                          */
    DB_PROCEVENTS,/* proc id, seq -> ""   (events of a process)           */
    DB_FILEEVENTS,/* file id, seq -> ""   (events touching a file)        */
    DB_CHUNKS,    /* chunk sha256 -> chunk record (pack, offset, sizes, refs) */
    DB_CONTENTS,  /* content sha256 -> manifest (chunk list), refcount    */
    DB_PACKS,     /* pack id -> pack record (committed length)            */
    DB_MANIFESTS, /* content sha256, start offset (u64be) -> chunk list part */
    DB_LINEAGE,   /* pipe ends, process groups, writer -> versions (catalog.c) */
    DB_COUNT
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    int dirfd;          /* the .provfs directory */
    unsigned flags;
    char *dir;
    struct pack_state *packs;       /* pack.c: writer and read descriptors */
    struct content_cache *ccache;   /* content.c: recently read chunks */
};

/* Big-endian helpers for keys. */
static inline void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}
static inline uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Databases added after a store was created may be absent when it is opened
 * read-only; their handle is STORE_NODB until a writable open creates them. */
#define STORE_NODB ((MDB_dbi)-1)
static inline int store_has_db(const struct store *st, enum store_db db)
{
    return st->dbi[db] != STORE_NODB;
}

/* catalog.c: fill DB_LINEAGE from the records of an older store (or one
 * indexed by an older layout: meta "lineage-index" holds the version). */
#define CAT_LINEAGE_INDEX_VERSION "2"

int cat_lineage_index_build(struct store *st, MDB_txn *txn);

/* Map an LMDB return code to the project's convention (negative errno),
 * recording `what` in the error message. */
int store_mdb_err(int rc, const char *what);

/* Begin a transaction; returns 0 or a negative errno. */
int store_txn_begin(struct store *st, unsigned flags, MDB_txn **txn);

/* content.c: set up / tear down the content layer (called by store_open and
 * store_close); attach also cuts uncommitted pack tails (design 4). */
int content_attach(struct store *st);
void content_detach(struct store *st);

/* content.c: add delta (+1 or -1) to a content's reference count inside the
 * caller's write transaction, so a version record and its content reference
 * commit together.  At 0 the content and its manifest are removed and its
 * chunks lose a reference each (content_gc frees them). */
int content_ref_txn(struct store *st, MDB_txn *txn, const uint8_t id[32], int delta);

#endif
