/*
 * store.c - open and close the LMDB environment under .provfs/.
 *
 * The map size is set large (it is only address space; the file grows as
 * data is written).  MDB_NOTLS lets one read transaction be used by whatever
 * thread the FUSE loop hands a request to.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

#define STORE_MAPSIZE ((size_t)1 << 40)   /* 1 TiB of address space */
#define STORE_SCHEMA  "1"

static const char *const store_db_names[DB_COUNT] = {
    [DB_META] = "meta",          [DB_PATHS] = "paths",
    [DB_FILES] = "files",        [DB_VERSIONS] = "versions",
    [DB_PROCS] = "procs",        [DB_PROCKEYS] = "prockeys",
    [DB_IMAGES] = "images",      [DB_CHILDREN] = "children",
    [DB_EVENTS] = "events",      [DB_PROCEVENTS] = "procevents",
    [DB_FILEEVENTS] = "fileevents",
    [DB_CHUNKS] = "chunks",      [DB_CONTENTS] = "contents",
    [DB_PACKS] = "packs",        [DB_MANIFESTS] = "manifests",
    [DB_LINEAGE] = "lineage",
};

int store_mdb_err(int rc, const char *what)
{
    int code;
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: code = -ENOENT; break;
    case MDB_MAP_FULL: case ENOSPC: code = -ENOSPC; break;
    case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
    case MDB_VERSION_MISMATCH: code = -EUCLEAN; break;
    case MDB_READERS_FULL: code = -EAGAIN; break;
    default: code = rc > 0 ? -rc : -EIO; break;
    }
    return pv_err(code, "%s: %s", what, mdb_strerror(rc));
}

int store_txn_begin(struct store *st, unsigned flags, MDB_txn **txn)
{
    if (st->flags & STORE_RDONLY)
        flags |= MDB_RDONLY;
    return store_mdb_err(mdb_txn_begin(st->env, NULL, flags, txn),
                         "starting a store transaction");
}

uint64_t store_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *store_dir(const struct store *st)
{
    return st->dir;
}

static int store_mkdirs(const char *dir)
{
    char sub[4096];
    if (mkdir(dir, 0700) && errno != EEXIST)
        return pv_errno(-errno, "creating %s", dir);
    const char *subs[] = { "lmdb", "packs" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, subs[i]);
        if (mkdir(sub, 0700) && errno != EEXIST)
            return pv_errno(-errno, "creating %s", sub);
    }
    return 0;
}

/* Databases that stores created before them lack; a writable open
 * (STORE_CREATE, as the daemon does) creates them. */
static int store_db_optional(int db)
{
    return db == DB_LINEAGE;
}

/* Fill databases that an older store was created without. */
static int store_upgrade(struct store *st, MDB_txn *txn)
{
    MDB_val k = { 13, "lineage-index" }, v;
    int rc = mdb_get(txn, st->dbi[DB_META], &k, &v);
    if (rc == 0 && v.mv_size == 1 && *(char *)v.mv_data == CAT_LINEAGE_INDEX_VERSION[0])
        return 0;
    if (rc && rc != MDB_NOTFOUND)
        return store_mdb_err(rc, "reading the store's metadata");
    if ((rc = cat_lineage_index_build(st, txn)))
        return rc;
    v = (MDB_val){ 1, CAT_LINEAGE_INDEX_VERSION };
    return store_mdb_err(mdb_put(txn, st->dbi[DB_META], &k, &v, 0), "marking the lineage index");
}

/* Without the right to build it, an index of an older layout is as good as
 * none: readers then say so instead of answering from half an index. */
static void store_check_index(struct store *st, MDB_txn *txn)
{
    MDB_val k = { 13, "lineage-index" }, v;
    if (!store_has_db(st, DB_LINEAGE))
        return;
    if (mdb_get(txn, st->dbi[DB_META], &k, &v) || v.mv_size != 1 ||
        *(char *)v.mv_data != CAT_LINEAGE_INDEX_VERSION[0])
        st->dbi[DB_LINEAGE] = STORE_NODB;
}

static int store_open_dbs(struct store *st)
{
    MDB_txn *txn;
    unsigned create = (st->flags & STORE_CREATE) ? MDB_CREATE : 0;
    /* Opening named databases needs a write txn the first time. */
    int rc = mdb_txn_begin(st->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return store_mdb_err(rc, "opening the catalog");
    for (int i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, store_db_names[i], create, &st->dbi[i]);
        if (rc == MDB_NOTFOUND && store_db_optional(i)) {
            st->dbi[i] = STORE_NODB;
            continue;
        }
        if (rc) {
            mdb_txn_abort(txn);
            if (rc == MDB_NOTFOUND)
                return pv_err(-EUCLEAN, "catalog database '%s' is missing "
                              "(store created by another version, or damaged)",
                              store_db_names[i]);
            return store_mdb_err(rc, store_db_names[i]);
        }
    }
    if (!create)
        store_check_index(st, txn);
    if (create && (rc = store_upgrade(st, txn))) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (create) {
        MDB_val k = { 6, "schema" }, v = { 1, STORE_SCHEMA };
        rc = mdb_put(txn, st->dbi[DB_META], &k, &v, MDB_NOOVERWRITE);
        if (rc && rc != MDB_KEYEXIST) {
            mdb_txn_abort(txn);
            return store_mdb_err(rc, "writing the schema version");
        }
    }
    return store_mdb_err(mdb_txn_commit(txn), "opening the catalog");
}

static int store_open_env(struct store *st)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/lmdb", st->dir);
    int rc = mdb_env_create(&st->env);
    if (!rc) rc = mdb_env_set_mapsize(st->env, STORE_MAPSIZE);
    if (!rc) rc = mdb_env_set_maxdbs(st->env, DB_COUNT + 8);
    if (!rc) rc = mdb_env_set_maxreaders(st->env, 512);
    if (rc)
        return store_mdb_err(rc, "setting up LMDB");
    unsigned fl = MDB_NOTLS;
    if (st->flags & STORE_RANDOM)
        fl |= MDB_NORDAHEAD;
    if (st->flags & STORE_RDONLY)
        fl |= MDB_RDONLY;
    rc = mdb_env_open(st->env, path, fl, 0600);
    if (rc == ENOENT)
        return pv_err(-ENOENT, "no provfs store at %s", st->dir);
    if (rc == EACCES && (st->flags & STORE_RDONLY))
        return pv_err(-EACCES, "cannot read the store at %s: permission denied", st->dir);
    return store_mdb_err(rc, "opening the catalog");
}

int store_open(struct store **out, const char *dir, unsigned flags)
{
    *out = NULL;
    if ((flags & STORE_CREATE) && (flags & STORE_RDONLY))
        return pv_err(-EINVAL, "store_open: CREATE and RDONLY together");
    if (flags & STORE_CREATE) {
        int rc = store_mkdirs(dir);
        if (rc)
            return rc;
    }
    struct store *st = calloc(1, sizeof *st);
    if (!st || !(st->dir = strdup(dir))) {
        free(st);
        return pv_err(-ENOMEM, "out of memory");
    }
    st->flags = flags;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = st->dirfd < 0 ? pv_errno(-errno, "opening %s", dir) : 0;
    if (!rc)
        rc = store_open_env(st);
    if (!rc)
        rc = store_open_dbs(st);
    if (!rc)
        rc = content_attach(st);
    if (rc) {
        store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    content_detach(st);
    if (st->env)
        mdb_env_close(st->env);
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->dir);
    free(st);
}
