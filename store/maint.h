/*
 * maint.h - store maintenance above the content layer: counting versions,
 * cross-checking the catalog against the content store (fsck), and
 * dropping versions (gc).  Used by `provfs stats`, `fsck`, `gc`, `status`.
 *
 * Memory: nothing here holds an index in memory.  Walks use cursors; the
 * reference cross-check loads at most MAINT_REF_BATCH contents at a time
 * (sorted, as the cursor yields them) and walks the versions once per such
 * slice, so a store of any size is checked in a bounded ~12 MiB.
 *
 * A version "holds content" when its bytes are stored: not a deletion
 * record, not missing (snapshot failed), not hash-only, not unstored.  Each
 * such version holds exactly one reference on its content (content.h).
 */
#ifndef STORE_MAINT_H
#define STORE_MAINT_H

#include <stddef.h>
#include <stdint.h>

#include "store/catalog.h"

struct store;

#define MAINT_REF_BATCH (256u * 1024)
/* Contents per slice of the reference cross-check (tests lower it). */
extern size_t maint_ref_batch;

/* 1 if v holds a reference on stored content. */
int maint_version_stored(const struct cat_version *v);

struct maint_vcounts {
    uint64_t versions;      /* every record, tombstones included          */
    uint64_t stored;        /* holding content                            */
    uint64_t missing;       /* CAT_V_MISSING: the snapshot failed         */
    uint64_t hash_only;     /* content id only                            */
    uint64_t unstored;      /* policy: no content, no hash                */
    uint64_t deleted;       /* tombstones                                 */
};
/* One cursor walk over every version. */
int maint_version_counts(struct cat_reader *rd, struct maint_vcounts *out);

/* Every version of every file, in (file id, version) order, starting at
 * file from_file_id.  A non-zero return from cb stops and is returned. */
int maint_versions_walk(struct cat_reader *rd, uint64_t from_file_id,
                        cat_version_cb cb, void *ctx);

/* Which version of a file, for dropping. */
struct maint_vref {
    uint64_t file_id;
    uint32_t vno;
};

struct maint_drop_result {
    uint64_t versions;      /* records deleted                              */
    uint64_t released;      /* content references dropped                   */
    uint64_t bytes;         /* sizes of the dropped versions that had content */
    uint64_t dangling;      /* versions whose content was already gone      */
};
/* Delete n version records and release their content references, in one
 * write transaction (the caller bounds n).  Records already gone are
 * skipped.  Results are added to *res.  Chunks left without references
 * are freed later by content_gc(). */
int maint_drop_versions(struct store *st, const struct maint_vref *refs, size_t n,
                        struct maint_drop_result *res);

/* Progress: phase is a short word ("versions", "references", ...). */
typedef void (*maint_progress_fn)(void *ctx, const char *phase, uint64_t done,
                                  uint64_t total);

/* Cross-check the catalog, in one read snapshot:
 *  - every version decodes, is numbered from 1 and belongs to a file;
 *  - every version holding content names a content that exists, of the
 *    version's size;
 *  - each content's reference count equals the number of versions naming
 *    it (a content no version names is reported too);
 *  - paths and file ids map one to one (no path has two files, so no
 *    path's version numbering is split or duplicated);
 *  - events name existing processes and files; the per-process and
 *    per-file event indexes, images, children and process keys point at
 *    existing records.
 * report(ctx, sentence) is called once per problem; progress may be NULL.
 * Returns the number of problems, or a negative errno if it could not run. */
int maint_check_catalog(struct store *st, void (*report)(void *ctx, const char *problem),
                        maint_progress_fn progress, void *ctx);

#endif
