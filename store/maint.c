/*
 * maint.c - version counts, catalog cross-checks and version dropping; see
 * maint.h.
 *
 * It reads the catalog's raw databases (catalog_int.h) and the content
 * headers (content_int.h: the reference counts) in one LMDB snapshot, so a
 * check run while the daemon commits compares one consistent state.  It
 * writes only through catalog keys (DB_VERSIONS: file id u64be + vno u32be)
 * and content_ref_txn, so the version and the reference go together.
 */
#include "store/maint.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/catalog_int.h"
#include "store/content.h"
#include "store/content_int.h"
#include "store/store_int.h"

size_t maint_ref_batch = MAINT_REF_BATCH;

int maint_version_stored(const struct cat_version *v)
{
    return v->origin != CAT_ORIGIN_DELETED &&
           !(v->flags & (CAT_V_MISSING | CAT_V_HASH_ONLY | CAT_V_UNSTORED));
}

/* --- walking ------------------------------------------------------------ */

typedef int (*maint_raw_fn)(void *ctx, const MDB_val *k, const MDB_val *v);

/* Walk database db from key `start` (klen bytes; 0: from the first) in the
 * reader's snapshot, calling fn on each record; non-zero from fn stops. */
static int maint_walk(struct cat_reader *rd, enum store_db db, const void *start,
                      size_t klen, maint_raw_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(cat_reader_txn(rd), cat_reader_store(rd)->dbi[db], &cur);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    MDB_val k = { klen, (void *)start }, v;
    int op = klen ? MDB_SET_RANGE : MDB_FIRST, ret = 0;
    while (!ret && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        ret = fn(ctx, &k, &v);
    }
    mdb_cursor_close(cur);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = store_mdb_err(rc, "walking the store");
    return ret;
}

static uint64_t maint_entries(struct cat_reader *rd, enum store_db db)
{
    MDB_stat s;
    return mdb_stat(cat_reader_txn(rd), cat_reader_store(rd)->dbi[db], &s) ? 0 : s.ms_entries;
}

struct maint_vwalk {
    cat_version_cb cb;
    void *ctx;
};

static int maint_vwalk_one(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct maint_vwalk *w = arg;
    struct cat_version ver;
    int rc = cat_version_decode(k, v, &ver);
    return rc ? rc : w->cb(w->ctx, &ver);
}

int maint_versions_walk(struct cat_reader *rd, uint64_t from_file_id,
                        cat_version_cb cb, void *ctx)
{
    uint8_t key[12];
    be64_put(key, from_file_id);
    be32_put(key + 8, 0);
    struct maint_vwalk w = { cb, ctx };
    return maint_walk(rd, DB_VERSIONS, key, sizeof key, maint_vwalk_one, &w);
}

static int maint_count_one(void *arg, const struct cat_version *v)
{
    struct maint_vcounts *c = arg;
    c->versions++;
    if (v->origin == CAT_ORIGIN_DELETED)
        c->deleted++;
    else if (v->flags & CAT_V_MISSING)
        c->missing++;
    else if (v->flags & CAT_V_HASH_ONLY)
        c->hash_only++;
    else if (v->flags & CAT_V_UNSTORED)
        c->unstored++;
    else
        c->stored++;
    return 0;
}

int maint_version_counts(struct cat_reader *rd, struct maint_vcounts *out)
{
    memset(out, 0, sizeof *out);
    return maint_versions_walk(rd, 0, maint_count_one, out);
}

/* --- dropping ------------------------------------------------------------ */

static int maint_drop_one(struct store *st, MDB_txn *txn, const struct maint_vref *r,
                          struct maint_drop_result *res)
{
    uint8_t key[12];
    be64_put(key, r->file_id);
    be32_put(key + 8, r->vno);
    MDB_val k = { sizeof key, key }, v;
    struct cat_version ver;
    int rc = mdb_get(txn, st->dbi[DB_VERSIONS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;       /* dropped meanwhile (another gc) */
    if (rc)
        return store_mdb_err(rc, "reading a version");
    if ((rc = cat_version_decode(&k, &v, &ver)))
        return rc;
    if (maint_version_stored(&ver)) {
        rc = content_ref_txn(st, txn, ver.content_id, -1);
        if (rc == -ENOENT) {
            res->dangling++;    /* fsck reports it; the record goes anyway */
            rc = 0;
        } else if (!rc) {
            res->released++;
            res->bytes += ver.size;
        }
    }
    if (!rc)
        rc = store_mdb_err(mdb_del(txn, st->dbi[DB_VERSIONS], &k, NULL), "deleting a version");
    if (!rc)
        res->versions++;
    return rc;
}

int maint_drop_versions(struct store *st, const struct maint_vref *refs, size_t n,
                        struct maint_drop_result *res)
{
    MDB_txn *txn;
    struct maint_drop_result r = { 0 };
    int rc = store_txn_begin(st, 0, &txn);
    for (size_t i = 0; !rc && i < n; i++)
        rc = maint_drop_one(st, txn, &refs[i], &r);
    if (rc) {
        if (txn)
            mdb_txn_abort(txn);
        return rc;
    }
    if ((rc = store_mdb_err(mdb_txn_commit(txn), "committing dropped versions")))
        return rc;
    res->versions += r.versions;
    res->released += r.released;
    res->bytes += r.bytes;
    res->dangling += r.dangling;
    return 0;
}

/* --- checking ------------------------------------------------------------- */

struct mref {
    uint8_t id[32];
    uint64_t refs, seen;
};

struct mchk {
    struct cat_reader *rd;
    struct store *st;
    MDB_txn *txn;
    void (*report)(void *, const char *);
    maint_progress_fn progress;
    void *ctx;
    int problems;
    const char *phase;
    uint64_t done, total;
    struct mref *slice;
    size_t nslice, cap;
};

__attribute__((format(printf, 2, 3)))
static void mchk_problem(struct mchk *c, const char *fmt, ...)
{
    char msg[PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->problems++;
    if (c->report)
        c->report(c->ctx, msg);
}

static void mchk_tick(struct mchk *c)
{
    if (++c->done % 4096 == 0 && c->progress)
        c->progress(c->ctx, c->phase, c->done, c->total);
}

static void mchk_phase(struct mchk *c, const char *phase, uint64_t total)
{
    if (c->progress && c->phase)
        c->progress(c->ctx, c->phase, c->total, c->total);
    c->phase = phase;
    c->done = 0;
    c->total = total;
}

static int mchk_has(struct mchk *c, enum store_db db, uint64_t id)
{
    uint8_t key[8];
    be64_put(key, id);
    MDB_val k = { 8, key }, v;
    return mdb_get(c->txn, c->st->dbi[db], &k, &v) == 0;
}

/* "path@N" (or "file N@N" when the file record is gone) for messages. */
static void mchk_vname(struct mchk *c, uint64_t file_id, uint32_t vno, char *buf, size_t len)
{
    struct cat_str p;
    if (cat_file_path(c->rd, file_id, &p) == 0)
        snprintf(buf, len, "%.*s@%" PRIu32, (int)p.n, p.p, vno);
    else
        snprintf(buf, len, "file %" PRIu64 "@%" PRIu32, file_id, vno);
}

/* Versions: decodable, numbered, of a file, naming existing content. */
static int mchk_version(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk *c = arg;
    struct cat_version ver;
    char name[PATH_MAX + 32], hex[65];
    mchk_tick(c);
    if (cat_version_decode(k, v, &ver)) {
        mchk_problem(c, "version record: %s", pv_errmsg());
        return 0;
    }
    mchk_vname(c, ver.file_id, ver.vno, name, sizeof name);
    if (ver.vno == 0)
        mchk_problem(c, "%s: version number 0 (versions are numbered from 1)", name);
    if (!mchk_has(c, DB_FILES, ver.file_id))
        mchk_problem(c, "%s: belongs to file %" PRIu64 ", which is not recorded", name,
                     ver.file_id);
    if (!maint_version_stored(&ver))
        return 0;
    struct content_hdr h;
    int rc = content_hdr_get(c->st, c->txn, ver.content_id, &h);
    content_id_hex(ver.content_id, hex);
    if (rc == -ENOENT)
        mchk_problem(c, "%s: its content %s is not in the store", name, hex);
    else if (rc)
        mchk_problem(c, "%s: content %s: %s", name, hex, pv_errmsg());
    else if (h.size != ver.size)
        mchk_problem(c, "%s: %" PRIu64 " bytes, but its content %s has %" PRIu64, name,
                     ver.size, hex, h.size);
    return 0;
}

/* Load the next slice of contents (ids after `from`, or from the first). */
static int mchk_load_slice(struct mchk *c, uint8_t from[32], int first)
{
    MDB_cursor *cur;
    MDB_val k = { 32, from }, v;
    int rc = mdb_cursor_open(c->txn, c->st->dbi[DB_CONTENTS], &cur);
    if (rc)
        return store_mdb_err(rc, "opening a cursor");
    c->nslice = 0;
    int op = first ? MDB_FIRST : MDB_SET_RANGE;
    while (c->nslice < c->cap && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        struct content_hdr h;
        if (k.mv_size != 32 || (!first && !memcmp(k.mv_data, from, 32)))
            continue;
        struct mref *m = &c->slice[c->nslice++];
        memcpy(m->id, k.mv_data, 32);
        m->refs = content_hdr_decode(&v, &h) ? UINT64_MAX : h.refs;
        m->seen = 0;
    }
    mdb_cursor_close(cur);
    if (c->nslice)
        memcpy(from, c->slice[c->nslice - 1].id, 32);
    return rc && rc != MDB_NOTFOUND ? store_mdb_err(rc, "reading contents") : 0;
}

static int mref_cmp(const void *key, const void *elem)
{
    return memcmp(key, ((const struct mref *)elem)->id, 32);
}

static int mchk_count_ref(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk *c = arg;
    struct cat_version ver;
    mchk_tick(c);
    if (cat_version_decode(k, v, &ver) || !maint_version_stored(&ver))
        return 0;
    struct mref *m = bsearch(ver.content_id, c->slice, c->nslice, sizeof *m, mref_cmp);
    if (m)
        m->seen++;
    return 0;
}

static void mchk_compare_slice(struct mchk *c)
{
    for (size_t i = 0; i < c->nslice; i++) {
        struct mref *m = &c->slice[i];
        char hex[65];
        content_id_hex(m->id, hex);
        if (m->refs == UINT64_MAX)
            mchk_problem(c, "content %s: its record is undecodable", hex);
        else if (m->refs != m->seen)
            mchk_problem(c, "content %s: reference count %" PRIu64 ", but %" PRIu64
                         " version%s name%s it", hex, m->refs, m->seen,
                         m->seen == 1 ? "" : "s", m->seen == 1 ? "s" : "");
    }
}

/* Reference counts, a slice of contents at a time (sort-merge style: the
 * slice is sorted because the cursor yields ids in order). */
static int mchk_refs(struct mchk *c)
{
    uint64_t ncontents = maint_entries(c->rd, DB_CONTENTS);
    uint64_t nver = maint_entries(c->rd, DB_VERSIONS);
    uint8_t from[32] = { 0 };
    int rc = 0;
    size_t batch = maint_ref_batch ? maint_ref_batch : 1;
    c->cap = ncontents < batch ? (size_t)ncontents + 1 : batch;
    if (!(c->slice = malloc(c->cap * sizeof *c->slice)))
        return pv_err(-ENOMEM, "out of memory");
    uint64_t passes = ncontents / (maint_ref_batch ? maint_ref_batch : 1) + 1;
    mchk_phase(c, "references", nver * passes);
    for (int first = 1; !rc; first = 0) {
        if ((rc = mchk_load_slice(c, from, first)) || !c->nslice)
            break;
        rc = maint_walk(c->rd, DB_VERSIONS, NULL, 0, mchk_count_ref, c);
        if (!rc)
            mchk_compare_slice(c);
        if (c->nslice < c->cap)
            break;
    }
    free(c->slice);
    c->slice = NULL;
    return rc;
}

/* Files and paths map one to one. */
static int mchk_file(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk *c = arg;
    char path[PATH_MAX];
    struct cat_str p;
    uint64_t id = k->mv_size == 8 ? be64_get(k->mv_data) : 0, back;
    (void)v;
    mchk_tick(c);
    if (!id || cat_file_path(c->rd, id, &p)) {
        mchk_problem(c, "file record %" PRIu64 " is undecodable", id);
        return 0;
    }
    if (p.n >= sizeof path || memchr(p.p, 0, p.n)) {
        mchk_problem(c, "file %" PRIu64 ": its path is malformed", id);
        return 0;
    }
    memcpy(path, p.p, p.n);
    path[p.n] = 0;
    int rc = cat_file_find(c->rd, path, &back);
    if (rc)
        mchk_problem(c, "file %" PRIu64 " (%s): its path is not indexed", id, path);
    else if (back != id)
        mchk_problem(c, "path %s is recorded as two files, %" PRIu64 " and %" PRIu64
                     " (its versions would be numbered twice)", path, back, id);
    return 0;
}

static int mchk_path(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk *c = arg;
    mchk_tick(c);
    if (v->mv_size != 8 || !mchk_has(c, DB_FILES, be64_get(v->mv_data)))
        mchk_problem(c, "path %.*s names file %" PRIu64 ", which is not recorded",
                     (int)k->mv_size, (const char *)k->mv_data,
                     v->mv_size == 8 ? be64_get(v->mv_data) : 0);
    return 0;
}

static int mchk_event(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk *c = arg;
    struct cat_event e;
    mchk_tick(c);
    if (cat_event_decode(k, v, &e)) {
        mchk_problem(c, "event record: %s", pv_errmsg());
        return 0;
    }
    if (e.proc_id && !mchk_has(c, DB_PROCS, e.proc_id))
        mchk_problem(c, "event %" PRIu64 " names process p%" PRIu64 ", which is not "
                     "recorded", e.seq, e.proc_id);
    uint64_t files[2] = { e.file_id, e.file2_id };
    for (int i = 0; i < 2; i++)
        if (files[i] && !mchk_has(c, DB_FILES, files[i]))
            mchk_problem(c, "event %" PRIu64 " names file %" PRIu64 ", which is not "
                         "recorded", e.seq, files[i]);
    return 0;
}

/* Index records: key = a (u64be) [+ b], each naming records that must exist. */
struct mchk_index {
    struct mchk *c;
    const char *name;
    enum store_db a_db, b_db;   /* DB_COUNT: not checked */
    size_t klen;                /* expected key length */
    int b_in_value;             /* DB_PROCKEYS: the proc id is the value */
};

static int mchk_index_rec(void *arg, const MDB_val *k, const MDB_val *v)
{
    struct mchk_index *x = arg;
    struct mchk *c = x->c;
    mchk_tick(c);
    if (k->mv_size != x->klen || (x->b_in_value && v->mv_size != 8)) {
        mchk_problem(c, "%s: a record of the wrong size", x->name);
        return 0;
    }
    const uint8_t *kp = k->mv_data;
    uint64_t a = x->b_in_value ? 0 : be64_get(kp);
    uint64_t b = x->b_in_value ? be64_get(v->mv_data) : x->klen >= 16 ? be64_get(kp + 8) : 0;
    if (x->a_db != DB_COUNT && !mchk_has(c, x->a_db, a))
        mchk_problem(c, "%s: entry (%" PRIu64 ", %" PRIu64 ") names %" PRIu64
                     ", which is not recorded", x->name, a, b, a);
    if (x->b_db != DB_COUNT && !mchk_has(c, x->b_db, b))
        mchk_problem(c, "%s: entry (%" PRIu64 ", %" PRIu64 ") names %" PRIu64
                     ", which is not recorded", x->name, a, b, b);
    return 0;
}

static int mchk_indexes(struct mchk *c)
{
    static const struct { const char *name; enum store_db db, a, b; size_t klen; int bv; } ix[] = {
        { "process events index", DB_PROCEVENTS, DB_PROCS, DB_EVENTS, 16, 0 },
        { "file events index", DB_FILEEVENTS, DB_FILES, DB_EVENTS, 16, 0 },
        { "exec images", DB_IMAGES, DB_PROCS, DB_COUNT, 12, 0 },
        { "children index", DB_CHILDREN, DB_PROCS, DB_PROCS, 16, 0 },
        { "process keys", DB_PROCKEYS, DB_COUNT, DB_PROCS, 28, 1 },
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof ix / sizeof ix[0]; i++) {
        struct mchk_index x = { c, ix[i].name, ix[i].a, ix[i].b, ix[i].klen, ix[i].bv };
        mchk_phase(c, ix[i].name, maint_entries(c->rd, ix[i].db));
        rc = maint_walk(c->rd, ix[i].db, NULL, 0, mchk_index_rec, &x);
    }
    return rc;
}

static int mchk_run(struct mchk *c)
{
    mchk_phase(c, "versions", maint_entries(c->rd, DB_VERSIONS));
    int rc = maint_walk(c->rd, DB_VERSIONS, NULL, 0, mchk_version, c);
    if (!rc)
        rc = mchk_refs(c);
    if (!rc) {
        mchk_phase(c, "files", maint_entries(c->rd, DB_FILES));
        rc = maint_walk(c->rd, DB_FILES, NULL, 0, mchk_file, c);
    }
    if (!rc) {
        uint64_t npaths = maint_entries(c->rd, DB_PATHS), nfiles = maint_entries(c->rd, DB_FILES);
        mchk_phase(c, "paths", npaths);
        rc = maint_walk(c->rd, DB_PATHS, NULL, 0, mchk_path, c);
        if (!rc && npaths != nfiles)
            mchk_problem(c, "%" PRIu64 " paths but %" PRIu64 " file records", npaths, nfiles);
    }
    if (!rc) {
        mchk_phase(c, "events", maint_entries(c->rd, DB_EVENTS));
        rc = maint_walk(c->rd, DB_EVENTS, NULL, 0, mchk_event, c);
    }
    if (!rc)
        rc = mchk_indexes(c);
    if (!rc)
        mchk_phase(c, NULL, 0);
    return rc;
}

int maint_check_catalog(struct store *st, void (*report)(void *ctx, const char *problem),
                        maint_progress_fn progress, void *ctx)
{
    struct mchk c = { .st = st, .report = report, .progress = progress, .ctx = ctx };
    int rc = cat_read_begin(st, &c.rd);
    if (rc)
        return rc;
    c.txn = cat_reader_txn(c.rd);
    rc = mchk_run(&c);
    cat_read_end(c.rd);
    return rc ? rc : c.problems;
}
