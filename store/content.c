/*
 * content.c - ingest: chunk a file, store new chunks, build its manifest,
 * commit batches of contents in one transaction.
 *
 * Incremental ingest.  Given the previous content and the dirty ranges, the
 * walk over the file alternates two modes:
 *   reuse  - the old manifest has a chunk starting exactly here whose bytes
 *            are all clean: take it as is (chunk boundaries depend only on
 *            the bytes since the last boundary, so a full re-chunking would
 *            cut exactly there too);
 *   chunk  - otherwise read and chunk; after every new boundary, go back to
 *            reuse if an old chunk starts at the same offset and is clean.
 * The old last chunk was cut by end-of-file, not by content, so it is reused
 * only if the size did not change.  The result is identical to a full
 * ingest of the same bytes.  The whole-content hash resumes from the saved
 * midstate when only bytes past the old end changed (an append); otherwise
 * reused regions are read once more, for hashing only.
 */
#include "store/content.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "store/chunker.h"
#include "store/content_int.h"
#include "store/pack.h"
#include "store/store_int.h"
#include "store/workpool.h"

#define INGEST_WIN ((size_t)4 << 20)     /* read window; > CHUNKER_MAX */
/* The window is filled this much at a time, each piece hashed and chunked
 * while it is still in the CPU's cache (fewer trips to memory than reading
 * 4 MiB, then hashing 4 MiB, then chunking 4 MiB). */
#define INGEST_PIECE ((size_t)256 << 10)
#define BATCH_RTXN_USES 4096             /* lookups per read snapshot */
/* Compressed outputs of one window's chunks: compressBound of each, i.e.
 * the window plus 1/256 plus a little per chunk (at most 256 chunks). */
#define INGEST_ARENA (INGEST_WIN + INGEST_WIN / 128 + 65536)

struct pend_chunk {
    uint8_t id[32];
    struct chunk_rec rec;
};

struct pend_content {
    uint8_t id[32];
    uint64_t size;
    struct man_entry *ents;
    size_t n, cap;
    uint8_t mid[SHA256MID_MAX];
    size_t midlen;
};

/* A chunk cut in the current read window, waiting to be hashed, looked up,
 * compressed and appended: the window's chunks are processed together so
 * hashing and compression run on several threads. */
struct wchunk {
    const uint8_t *data;
    uint32_t len;
    int is_new;
    uint8_t id[32];
    uint8_t *zout;      /* in the batch's arena */
    size_t zlen;        /* 0 = keep raw */
    struct chunk_rec rec;   /* where it was appended, if new */
    int err;            /* the append failed (message in batch errmsg) */
};

struct pack_end {
    uint64_t pack, end;
    unsigned holds;     /* appends made there (pack_unhold at the end) */
};

struct content_batch {
    struct store *st;
    struct pend_chunk *pc;          /* chunks written by this batch */
    size_t npc, cappc;
    uint32_t *set;                  /* open addressing over pc: index+1 */
    size_t setcap;
    struct pend_content *cs;
    size_t ncs, capcs;
    struct pack_end *pe;            /* highest byte written, per pack */
    size_t npe, cappe;
    ZSTD_CCtx *zc[WORKPOOL_MAX];    /* one per worker, made on first use */
    unsigned nthreads;
    struct workpool *pool;          /* made at the first flush; NULL = 1 */
    uint8_t *win, *arena;           /* read window; compressed outputs */
    uint8_t *wbuf[2];               /* win is one of them, never fwc's */
    struct wchunk *wc;              /* chunks cut, not yet processed */
    size_t nwc, capwc;
    struct wchunk *fwc;             /* in flight: being compressed and
                                       appended by the helpers (nfwc > 0) */
    size_t nfwc, capfwc;
    int err;                        /* an in-flight append failed: the
                                       batch cannot commit */
    unsigned char errmsg_taken;     /* first failing helper fills errmsg */
    char errmsg[PV_ERRMAX];
    MDB_txn *rtxn;                  /* dedup lookups against the store */
    unsigned rtxn_uses;
    int (*hook)(void *, MDB_txn *);
    void *hook_ctx;
    struct pack_mark mark;          /* where the batch began appending */
    uint64_t napp;                  /* pack appends by this batch */
};

/* ---- small growable arrays -------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return pv_err(-ENOMEM, "out of memory");
    *p = q;
    *cap = c;
    return 0;
}

/* ---- the batch's set of pending chunks -------------------------------- */

static size_t set_slot(const uint8_t id[32], size_t cap)
{
    uint64_t h;
    memcpy(&h, id, 8);          /* ids are uniformly random already */
    return (size_t)(h & (cap - 1));
}

static struct pend_chunk *set_find(struct content_batch *b, const uint8_t id[32])
{
    if (!b->setcap)
        return NULL;
    for (size_t i = set_slot(id, b->setcap);; i = (i + 1) & (b->setcap - 1)) {
        uint32_t v = b->set[i];
        if (!v)
            return NULL;
        if (!memcmp(b->pc[v - 1].id, id, 32))
            return &b->pc[v - 1];
    }
}

static int set_rehash(struct content_batch *b)
{
    size_t cap = b->setcap ? b->setcap * 2 : 1024;
    uint32_t *s = calloc(cap, sizeof *s);
    if (!s)
        return pv_err(-ENOMEM, "out of memory");
    for (size_t k = 0; k < b->npc; k++) {
        size_t i = set_slot(b->pc[k].id, cap);
        while (s[i])
            i = (i + 1) & (cap - 1);
        s[i] = (uint32_t)(k + 1);
    }
    free(b->set);
    b->set = s;
    b->setcap = cap;
    return 0;
}

static int batch_add_pending(struct content_batch *b, const uint8_t id[32],
                             const struct chunk_rec *rec)
{
    int rc = grow((void **)&b->pc, &b->cappc, b->npc + 1, sizeof *b->pc);
    if (rc)
        return rc;
    memcpy(b->pc[b->npc].id, id, 32);
    b->pc[b->npc++].rec = *rec;
    if (b->npc * 2 > b->setcap)
        return set_rehash(b);   /* also inserts the new one */
    size_t i = set_slot(id, b->setcap);
    while (b->set[i])
        i = (i + 1) & (b->setcap - 1);
    b->set[i] = (uint32_t)b->npc;
    return 0;
}

static int batch_note_pack(struct content_batch *b, uint64_t pack, uint64_t end)
{
    for (size_t i = 0; i < b->npe; i++)
        if (b->pe[i].pack == pack) {
            if (end > b->pe[i].end)
                b->pe[i].end = end;
            b->pe[i].holds++;
            return 0;
        }
    int rc = grow((void **)&b->pe, &b->cappe, b->npe + 1, sizeof *b->pe);
    if (rc) {
        pack_unhold(b->st, pack, 1);
        return rc;
    }
    b->pe[b->npe++] = (struct pack_end){ pack, end, 1 };
    return 0;
}

/* Is the chunk already stored, or written earlier in this batch? */
static int batch_has_chunk(struct content_batch *b, const uint8_t id[32])
{
    if (set_find(b, id))
        return 1;
    /* Renew the read snapshot now and then so a long ingest does not pin
     * old LMDB pages (and sees chunks other writers committed meanwhile). */
    if (++b->rtxn_uses >= BATCH_RTXN_USES) {
        mdb_txn_reset(b->rtxn);
        int rc = mdb_txn_renew(b->rtxn);
        if (rc)
            return store_mdb_err(rc, "renewing a read transaction");
        b->rtxn_uses = 0;
    }
    /* A chunk nobody references may be freed by gc before this batch
     * commits: store it again rather than depend on it. */
    struct chunk_rec r;
    int rc = chunk_rec_get(b->st, b->rtxn, id, &r);
    return rc == 0 ? r.refs > 0 : rc == -ENOENT ? 0 : rc;
}

/* ---- batch lifecycle -------------------------------------------------- */

static void batch_free(struct content_batch *b);

int content_batch_begin(struct store *st, struct content_batch **out)
{
    *out = NULL;
    if (st->flags & STORE_RDONLY)
        return pv_err(-EROFS, "the store is open read-only");
    struct content_batch *b = calloc(1, sizeof *b);
    if (!b)
        return pv_err(-ENOMEM, "out of memory");
    b->st = st;
    b->nthreads = workpool_default_threads();
    b->wbuf[0] = malloc(INGEST_WIN);
    b->wbuf[1] = malloc(INGEST_WIN);
    b->win = b->wbuf[0];
    b->arena = malloc(INGEST_ARENA);
    int rc = (!b->wbuf[0] || !b->wbuf[1] || !b->arena)
             ? pv_err(-ENOMEM, "out of memory") : 0;
    if (!rc)
        rc = store_mdb_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &b->rtxn),
                           "starting a read transaction");
    if (!rc)
        rc = pack_mark(st, &b->mark);
    if (rc) {
        batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void content_batch_set_threads(struct content_batch *b, unsigned n)
{
    b->nthreads = n < 1 ? 1 : n > WORKPOOL_MAX ? WORKPOOL_MAX : n;
}

void content_batch_set_hook(struct content_batch *b,
                            int (*hook)(void *ctx, struct MDB_txn *txn), void *ctx)
{
    b->hook = hook;
    b->hook_ctx = ctx;
}

static void batch_free(struct content_batch *b)
{
    if (b->nfwc)            /* helpers may still be reading the window */
        workpool_join(b->pool);
    for (size_t i = 0; i < b->npe; i++)
        pack_unhold(b->st, b->pe[i].pack, b->pe[i].holds);
    if (b->rtxn)
        mdb_txn_abort(b->rtxn);
    for (size_t i = 0; i < b->ncs; i++)
        free(b->cs[i].ents);
    free(b->cs);
    free(b->pc);
    free(b->set);
    free(b->pe);
    workpool_destroy(b->pool);
    for (unsigned i = 0; i < WORKPOOL_MAX; i++)
        ZSTD_freeCCtx(b->zc[i]);
    free(b->wbuf[0]);
    free(b->wbuf[1]);
    free(b->arena);
    free(b->wc);
    free(b->fwc);
    free(b);
}

static int flush_finish(struct content_batch *b);

void content_batch_abort(struct content_batch *b)
{
    if (!b)
        return;
    /* The window in flight first: its appends must be counted (and their
     * packs unheld), or the rollback below would cut under them. */
    flush_finish(b);
    pack_rollback(b->st, &b->mark, b->napp);
    batch_free(b);
}

/* ---- one ingest ------------------------------------------------------- */

struct ingest {
    struct content_batch *b;
    int fd;
    struct pend_content *pc;
    struct sha256mid h;
    uint64_t hashed;            /* bytes [0, hashed) are in h */
    uint64_t pos;               /* where the next chunk starts */
    uint64_t new_size;          /* from fstat, for planning reuse */
    int eof;
    struct chunker ch;
    /* the previous content, if any */
    int have_old;
    uint8_t old_id[32];
    uint64_t old_size;
    struct man_entry *oe;       /* current part of its manifest */
    size_t ocap, on, oi;
    uint64_t ooff;              /* file offset of oe[oi] */
    struct content_range *dirty;/* sorted, merged */
    size_t ndirty;
    /* where this file's appends begin, for ingest_undo; taken once the
     * previous file's last window is stored */
    int marked;
    struct pack_mark mark;
    size_t npc0;
    uint64_t napp0;
};

static ssize_t ingest_pread(int fd, uint8_t *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return pv_errno(-errno, "reading the file to snapshot");
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Feed file bytes [off, off+n) to the whole-content hash, skipping what it
 * already holds (from the midstate, or read ahead). */
static void ingest_hash(struct ingest *g, const uint8_t *buf, uint64_t off, size_t n)
{
    if (off + n <= g->hashed)
        return;
    size_t skip = g->hashed > off ? (size_t)(g->hashed - off) : 0;
    sha256mid_update(&g->h, buf + skip, n - skip);
    g->hashed = off + n;
}

static int ingest_add_entry(struct ingest *g, const uint8_t id[32], uint32_t raw)
{
    struct pend_content *c = g->pc;
    int rc = grow((void **)&c->ents, &c->cap, c->n + 1, sizeof *c->ents);
    if (rc)
        return rc;
    memcpy(c->ents[c->n].id, id, 32);
    c->ents[c->n++].raw = raw;
    return 0;
}

/* Phase 1 (parallel): name each chunk. */
static void work_hash(void *ctx, size_t i, unsigned worker)
{
    struct wchunk *w = &((struct content_batch *)ctx)->wc[i];
    (void)worker;
    chunk_hash(w->data, w->len, w->id);
}

/* Phase 3 (parallel, in the background): compress a new chunk (keep it raw
 * if that does not shrink it) and append it to the pack.  Chunks land in the
 * pack in any order; their records say where. */
static void work_store(void *ctx, size_t i, unsigned worker)
{
    struct content_batch *b = ctx;
    struct wchunk *w = &b->fwc[i];
    if (!w->is_new)
        return;
    if (b->zc[worker] || (b->zc[worker] = ZSTD_createCCtx())) {
        size_t z = ZSTD_compressCCtx(b->zc[worker], w->zout, ZSTD_compressBound(w->len),
                                     w->data, w->len, CONTENT_ZSTD_LEVEL);
        w->zlen = !ZSTD_isError(z) && z < w->len ? z : 0;
    }   /* else no memory for a context: store it raw */
    w->rec = (struct chunk_rec){ .raw = w->len, .stored = w->len };
    const uint8_t *out = w->data;
    if (w->zlen) {
        out = w->zout;
        w->rec.stored = w->zlen;
        w->rec.flags = CHUNK_ZSTD;
    }
    w->err = pack_append(b->st, out, w->rec.stored, &w->rec.pack, &w->rec.off);
    /* pv_err's message is this thread's: keep the first for the caller. */
    if (w->err && !__atomic_test_and_set(&b->errmsg_taken, __ATOMIC_ACQ_REL))
        snprintf(b->errmsg, sizeof b->errmsg, "%s", pv_errmsg());
}

/* Is wc[i] a repeat of an earlier new chunk of the same window? */
static int window_dup(const struct content_batch *b, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (b->wc[k].is_new && !memcmp(b->wc[k].id, b->wc[i].id, 32))
            return 1;
    return 0;
}

/* Account for a chunk a helper appended: the pack stays held until the
 * batch ends, and later lookups find the chunk in the pending set. */
static int note_chunk(struct content_batch *b, const struct wchunk *w)
{
    int rc = batch_note_pack(b, w->rec.pack, w->rec.off + w->rec.stored);
    if (!rc) {
        b->napp++;
        rc = batch_add_pending(b, w->id, &w->rec);
    }
    return rc;
}

/* The window in flight: wait for the helpers to compress and append it,
 * then note its new chunks in order.  A failure here may belong to a file
 * whose ingest has already returned, so it poisons the whole batch. */
static int flush_finish(struct content_batch *b)
{
    int rc = 0, failed = 0;
    if (!b->nfwc)
        return 0;
    workpool_join(b->pool);
    /* Every successful append is noted, even after a failure, so that its
     * pack is unheld and an undo counts it. */
    for (size_t i = 0; i < b->nfwc; i++) {
        const struct wchunk *w = &b->fwc[i];
        if (!w->is_new)
            continue;
        int r = w->err ? w->err : note_chunk(b, w);
        if (r && !rc)
            rc = r, failed = w->err != 0;
    }
    b->nfwc = 0;
    if (failed)
        rc = pv_err(rc, "%s", b->errmsg);
    if (rc)
        b->err = rc;
    return rc;
}

/* Name the chunks cut so far (parallel), look them up and add them to the
 * manifest (in order), then start compressing the new ones in the
 * background and move the reader to the other window.  The caller reads
 * and chunks on while helpers compress: on two CPUs that overlap is most
 * of ingest's speed.  The previous window in flight is finished first, so
 * lookups see every chunk stored before. */
static int flush_start(struct ingest *g)
{
    struct content_batch *b = g->b;
    size_t off = 0;
    int rc = b->nwc ? flush_finish(b) : 0;
    if (rc || !b->nwc)
        return rc;
    if (!g->marked) {
        if ((rc = pack_mark(b->st, &g->mark)))
            return rc;
        g->marked = 1;
        g->npc0 = b->npc;
        g->napp0 = b->napp;
    }
    if (!b->pool && b->nthreads > 1 && b->nwc > 1 &&
        workpool_create(&b->pool, b->nthreads))
        b->nthreads = 1;    /* no memory for a pool: work alone */
    workpool_run(b->pool, b->nwc, work_hash, b);
    for (size_t i = 0; !rc && i < b->nwc; i++) {
        struct wchunk *w = &b->wc[i];
        rc = ingest_add_entry(g, w->id, w->len);
        if (!rc)
            rc = batch_has_chunk(b, w->id);
        if (rc >= 0) {
            w->is_new = !rc && !window_dup(b, i);
            rc = 0;
        }
        w->zout = b->arena + off;
        w->zlen = 0;
        w->err = 0;
        off += w->is_new ? ZSTD_compressBound(w->len) : 0;
    }
    if (rc) {
        b->nwc = 0;
        return rc;
    }
    struct wchunk *t = b->fwc;
    size_t tcap = b->capfwc;
    b->fwc = b->wc, b->capfwc = b->capwc, b->nfwc = b->nwc;
    b->wc = t, b->capwc = tcap, b->nwc = 0;
    workpool_start(b->pool, b->nfwc, work_store, b);
    b->win = b->win == b->wbuf[0] ? b->wbuf[1] : b->wbuf[0];
    return 0;
}

static int ingest_queue(struct ingest *g, const uint8_t *data, size_t n)
{
    struct content_batch *b = g->b;
    int rc = grow((void **)&b->wc, &b->capwc, b->nwc + 1, sizeof *b->wc);
    if (!rc)
        b->wc[b->nwc++] = (struct wchunk){ .data = data, .len = (uint32_t)n };
    return rc;
}

/* ---- the old manifest, walked in step with the file ------------------- */

/* The old chunk at the walk position, or 0 past its end. */
static int old_cur(struct ingest *g, uint64_t *off, uint32_t *len)
{
    if (!g->have_old || g->ooff >= g->old_size)
        return 0;
    if (g->oi == g->on) {
        uint8_t key[40];
        manifest_key(key, g->old_id, g->ooff);
        MDB_val k = { 40, key }, v;
        int rc = mdb_get(g->b->rtxn, g->b->st->dbi[DB_MANIFESTS], &k, &v);
        if (rc || manifest_part_decode(&v, &g->oe, &g->ocap, &g->on) || !g->on) {
            g->have_old = 0;    /* unreadable: fall back to chunking */
            return 0;
        }
        g->oi = 0;
    }
    *off = g->ooff;
    *len = g->oe[g->oi].raw;
    return 1;
}

static void old_next(struct ingest *g)
{
    g->ooff += g->oe[g->oi].raw;
    g->oi++;
}

static int dirty_overlaps(const struct ingest *g, uint64_t a, uint64_t e)
{
    size_t lo = 0, hi = g->ndirty;          /* first range ending after a */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->dirty[mid].off + g->dirty[mid].len <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < g->ndirty && g->dirty[lo].off < e;
}

static int old_reusable(const struct ingest *g, uint64_t off, uint32_t len)
{
    uint64_t end = off + len;
    if (end > g->new_size || end > g->old_size)
        return 0;
    if (end == g->old_size && g->new_size != g->old_size)
        return 0;       /* cut by the old end of file, not by content */
    return !dirty_overlaps(g, off, end);
}

/* After a new boundary at bnd: does an old clean chunk start there? */
static int old_resync(struct ingest *g, uint64_t bnd)
{
    uint64_t off;
    uint32_t len;
    while (old_cur(g, &off, &len) && off < bnd)
        old_next(g);
    return old_cur(g, &off, &len) && off == bnd && old_reusable(g, off, len);
}

/* Hash bytes [g->hashed, end) of a reused region, reading them once. */
static int ingest_hash_upto(struct ingest *g, uint64_t end)
{
    while (g->hashed < end) {
        size_t n = end - g->hashed < INGEST_WIN ? (size_t)(end - g->hashed) : INGEST_WIN;
        ssize_t r = ingest_pread(g->fd, g->b->win, n, g->hashed);
        if (r < 0)
            return (int)r;
        if ((size_t)r < n)
            return pv_err(-EAGAIN, "the file shrank while it was being snapshotted");
        ingest_hash(g, g->b->win, g->hashed, n);
    }
    return 0;
}

/* Reuse old chunks while they fit; returns 1 if it moved. */
static int ingest_reuse(struct ingest *g)
{
    uint64_t off;
    uint32_t len;
    int moved = 0;
    while (old_cur(g, &off, &len) && off == g->pos && old_reusable(g, off, len)) {
        int rc = ingest_add_entry(g, g->oe[g->oi].id, len);
        if (!rc)
            rc = ingest_hash_upto(g, off + len);
        if (rc)
            return rc;
        g->pos += len;
        old_next(g);
        moved = 1;
    }
    return moved;
}

/* Read and chunk from g->pos until end of file, or until the old manifest
 * lines up again. */
static int ingest_chunk(struct ingest *g)
{
    uint8_t *win = g->b->win;
    uint64_t woff = g->pos;
    size_t wlen = 0, cs = 0, si = 0;
    int rc;
    chunker_reset(&g->ch);
    for (;;) {
        if (si == wlen) {
            /* A full window: the queued chunks live in it, so send them
             * off, and carry the uncut tail over to the other window. */
            if (wlen == INGEST_WIN && (rc = flush_start(g)))
                return rc;
            if (wlen == INGEST_WIN && cs) {
                memcpy(g->b->win, win + cs, wlen - cs);
                win = g->b->win;
                woff += cs, wlen -= cs, si -= cs, cs = 0;
            }
            size_t want = INGEST_WIN - wlen < INGEST_PIECE ? INGEST_WIN - wlen : INGEST_PIECE;
            ssize_t n = ingest_pread(g->fd, win + wlen, want, woff + wlen);
            if (n < 0)
                return (int)n;
            ingest_hash(g, win + wlen, woff + wlen, (size_t)n);
            wlen += (size_t)n;
            if (n == 0) {
                g->pos = woff + si;
                g->eof = 1;
                rc = si > cs ? ingest_queue(g, win + cs, si - cs) : 0;
                return rc ? rc : flush_start(g);
            }
        }
        int cut;
        si += chunker_feed(&g->ch, win + si, wlen - si, &cut);
        if (!cut)
            continue;
        if ((rc = ingest_queue(g, win + cs, si - cs)))
            return rc;
        cs = si;
        if (g->have_old && old_resync(g, woff + si)) {
            g->pos = woff + si;
            return flush_start(g);
        }
    }
}

static int range_cmp(const void *a, const void *b)
{
    const struct content_range *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Load what the previous version offers: size, midstate, dirty ranges. */
static int ingest_plan(struct ingest *g, const struct content_prev *prev)
{
    struct content_hdr hdr;
    sha256mid_init(&g->h);
    if (!prev || content_hdr_get(g->b->st, g->b->rtxn, prev->id, &hdr))
        return 0;   /* unknown previous content: a full ingest is correct */
    g->have_old = 1;
    memcpy(g->old_id, prev->id, 32);
    g->old_size = hdr.size;
    if (prev->ndirty) {
        g->dirty = malloc(prev->ndirty * sizeof *g->dirty);
        if (!g->dirty)
            return pv_err(-ENOMEM, "out of memory");
        memcpy(g->dirty, prev->dirty, prev->ndirty * sizeof *g->dirty);
        qsort(g->dirty, prev->ndirty, sizeof *g->dirty, range_cmp);
        size_t n = 0;       /* merge, so binary search sees disjoint ranges */
        for (size_t i = 0; i < prev->ndirty; i++) {
            struct content_range r = g->dirty[i];
            if (r.len > UINT64_MAX - r.off)
                r.len = UINT64_MAX - r.off;     /* "to the end", saturated */
            if (n && r.off <= g->dirty[n - 1].off + g->dirty[n - 1].len) {
                uint64_t e = r.off + r.len, *pe = &g->dirty[n - 1].len;
                if (e > g->dirty[n - 1].off + *pe)
                    *pe = e - g->dirty[n - 1].off;
            } else {
                g->dirty[n++] = r;
            }
        }
        g->ndirty = n;
    }
    int append = g->new_size >= g->old_size &&
                 !dirty_overlaps(g, 0, g->old_size) &&
                 !sha256mid_load(&g->h, hdr.mid, hdr.midlen) &&
                 sha256mid_count(&g->h) == g->old_size;
    if (append)
        g->hashed = g->old_size;
    else
        sha256mid_init(&g->h);
    return 0;
}

static int ingest_run(struct ingest *g)
{
    while (!g->eof) {
        int rc = ingest_reuse(g);
        if (rc < 0)
            return rc;
        rc = ingest_chunk(g);
        if (rc)
            return rc;
    }
    if (g->hashed != g->pos)
        return pv_err(-EAGAIN, "the file changed while it was being snapshotted");
    return 0;
}

/* A failed ingest gives its pack bytes back if they are the pack's tail;
 * its pending chunks must then be forgotten too. */
static void ingest_undo(struct content_batch *b, const struct pack_mark *m,
                        size_t npc0, uint64_t napp0)
{
    if (!pack_rollback(b->st, m, b->napp - napp0))
        return;
    b->npc = npc0;
    /* The cut pack (no roll happened since the mark) may now hold none of
     * the batch's bytes, or fewer: lower its recorded end accordingly. */
    uint64_t end = 0;
    for (size_t i = 0; i < npc0; i++)
        if (b->pc[i].rec.pack == m->pack && b->pc[i].rec.off + b->pc[i].rec.stored > end)
            end = b->pc[i].rec.off + b->pc[i].rec.stored;
    unsigned undone = (unsigned)(b->napp - napp0);
    for (size_t i = 0; i < b->npe; i++) {
        if (b->pe[i].pack != m->pack)
            continue;
        pack_unhold(b->st, m->pack, undone);
        b->pe[i].holds -= undone;
        if (end)
            b->pe[i].end = end;
        else
            b->pe[i] = b->pe[--b->npe];
        break;
    }
    b->napp = napp0;
    free(b->set);
    b->set = NULL;
    b->setcap = 0;
    if (npc0)
        set_rehash(b);      /* on ENOMEM the set is smaller: only less dedup */
}

int content_batch_add_fd(struct content_batch *b, int fd,
                         const struct content_prev *prev,
                         uint8_t out_id[CONTENT_ID_LEN], uint64_t *size)
{
    struct stat sb;
    if (b->err)
        return pv_err(b->err, "an earlier file of this snapshot batch could not be stored");
    if (fstat(fd, &sb))
        return pv_errno(-errno, "inspecting the file to snapshot");
    int rc = grow((void **)&b->cs, &b->capcs, b->ncs + 1, sizeof *b->cs);
    if (rc)
        return rc;
    struct ingest g = { .b = b, .fd = fd, .new_size = (uint64_t)sb.st_size };
    g.pc = &b->cs[b->ncs];
    memset(g.pc, 0, sizeof *g.pc);
    chunker_init(&g.ch, NULL);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = ingest_plan(&g, prev);
    if (!rc)
        rc = ingest_run(&g);
    free(g.oe);
    free(g.dirty);
    if (rc) {
        /* What is in flight may be an earlier file's (then it must be
         * stored) or this one's (then it is undone with the rest). */
        b->nwc = 0;
        flush_finish(b);
        free(g.pc->ents);
        if (g.marked)
            ingest_undo(b, &g.mark, g.npc0, g.napp0);
        return rc;
    }
    sha256mid_final(&g.h, g.pc->id);
    g.pc->size = g.pos;
    g.pc->midlen = sha256mid_save(&g.h, g.pc->mid);
    b->ncs++;
    memcpy(out_id, g.pc->id, 32);
    if (size)
        *size = g.pos;
    return 0;
}

/* ---- commit ----------------------------------------------------------- */

/* One more reference to a chunk named by a manifest being committed. */
static int commit_chunk_ref(struct content_batch *b, MDB_txn *txn, const uint8_t id[32])
{
    struct chunk_rec r;
    int rc = chunk_rec_get(b->st, txn, id, &r);
    if (rc == -ENOENT) {
        struct pend_chunk *p = set_find(b, id);
        if (!p) {
            char hex[65];
            content_id_hex(id, hex);
            return pv_err(-EAGAIN, "chunk %s was freed by gc during the snapshot", hex);
        }
        r = p->rec;
        r.refs = 0;
        rc = 0;
    }
    if (rc)
        return rc;
    r.refs++;
    return chunk_rec_put(b->st, txn, id, &r);
}

static int commit_content(struct content_batch *b, MDB_txn *txn, struct pend_content *c)
{
    struct content_hdr h;
    int rc = content_hdr_get(b->st, txn, c->id, &h);
    if (rc == 0) {              /* stored already: one more reference */
        h.refs++;
        return content_hdr_put(b->st, txn, c->id, &h);
    }
    if (rc != -ENOENT)
        return rc;
    rc = 0;
    uint64_t start = 0;
    for (size_t i = 0; !rc && i < c->n; i++)
        rc = commit_chunk_ref(b, txn, c->ents[i].id);
    for (size_t i = 0; !rc && i < c->n; i += CONTENT_PART_ENTRIES) {
        size_t n = c->n - i < CONTENT_PART_ENTRIES ? c->n - i : CONTENT_PART_ENTRIES;
        rc = manifest_part_put(b->st, txn, c->id, start, c->ents + i, n);
        for (size_t j = 0; j < n; j++)
            start += c->ents[i + j].raw;
    }
    if (rc)
        return rc;
    h = (struct content_hdr){ .size = c->size, .nchunks = c->n, .refs = 1,
                              .created_ns = store_now_ns(), .midlen = c->midlen };
    memcpy(h.mid, c->mid, c->midlen);
    return content_hdr_put(b->st, txn, c->id, &h);
}

int content_batch_commit(struct content_batch *b)
{
    struct store *st = b->st;
    MDB_txn *txn = NULL;
    int rc = flush_finish(b);
    if (!rc && b->err)
        rc = pv_err(b->err, "a file of this snapshot batch could not be stored");
    mdb_txn_abort(b->rtxn);
    b->rtxn = NULL;
    /* Durability order: the bytes first, then the references to them. */
    for (size_t i = 0; !rc && i < b->npe; i++)
        rc = pack_sync(st, b->pe[i].pack, b->pe[i].end);
    if (!rc)
        rc = store_txn_begin(st, 0, &txn);
    for (size_t i = 0; !rc && i < b->ncs; i++)
        rc = commit_content(b, txn, &b->cs[i]);
    for (size_t i = 0; !rc && i < b->npe; i++)
        rc = pack_commit_txn(st, txn, b->pe[i].pack, b->pe[i].end);
    if (!rc && b->hook)
        rc = b->hook(b->hook_ctx, txn);
    if (!rc) {
        rc = store_mdb_err(mdb_txn_commit(txn), "committing snapshots");
        txn = NULL;
        if (rc == -ENOSPC)
            rc = pv_err(rc, "the store's disk is full (committing snapshots)");
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc)
        content_batch_abort(b);
    else
        batch_free(b);
    return rc;
}

int content_ingest_fd(struct store *st, int fd, const struct content_prev *prev,
                      uint8_t out_id[CONTENT_ID_LEN], uint64_t *size)
{
    struct content_batch *b;
    int rc = content_batch_begin(st, &b);
    if (rc)
        return rc;
    rc = content_batch_add_fd(b, fd, prev, out_id, size);
    if (rc) {
        content_batch_abort(b);
        return rc;
    }
    return content_batch_commit(b);
}
