/*
 * lineage.h - the lineage rule (design 3, provfs(1) LINEAGE): which file
 * versions a version was derived from, and what was derived from it.
 * Used by the CLI (lineage, impact, show, diff, export), by gc (a kept
 * version keeps its inputs) and by the .prov tree.
 *
 * The rule, in one place (provfs(1), LINEAGE, states the same):
 *  - A version that appeared by rename, link or restore has one input: its
 *    source (src_file_id, src_vno).
 *  - Pre-existing, external and deleted (tombstone) versions have none.
 *  - A written version V of X, made by process P at logical time V.seq,
 *    has as inputs the versions *used* before V.seq by any process of P's
 *    working set R(P):
 *      process scope: P, closed under "child of" (DB children index) and
 *        "feeds through a pipe" (some image of Q has stdout "pipe:[N]" and
 *        some image of a member has stdin "pipe:[N]", same boot);
 *      job scope: the same closure, started from every process of P's
 *        process group (same boot id and pgid) instead of P alone.
 *    plus the uses P inherited at fork: while P (then its parent, ...) was
 *    forked without exec (its first image has the exe and argv of its
 *    parent's image at its birth), the parent's uses before that birth.
 *    A use is an open-read, or an open-write without O_TRUNC of a file
 *    that already had a version (its bytes are carried forward: append,
 *    in-place edit).  The version used is the one current at the use's
 *    seq (cat_version_at); if there was none yet and the file's first
 *    version is an origin (pre-existing/external) version, that one.
 *  Inputs always have a smaller seq than the version, so the graph is a DAG.
 *
 * The reverse walk (outputs) is the exact inverse: from the file's uses
 * during the version's lifetime (reads, renames, links, restores; the
 * catalog's 'U' index) to the readers, up through their parents, pipe
 * consumers and (job scope) process-group peers, to the versions those
 * processes wrote after the use, and down to fork-only children born after
 * the use.
 *
 * All functions take an open cat_reader and leave it usable; results refer
 * to (file_id, vno) pairs.  Errors follow common/err.h.
 */
#ifndef STORE_LINEAGE_H
#define STORE_LINEAGE_H

#include <stddef.h>
#include <stdint.h>

#include "store/catalog.h"

enum lineage_scope {
    LINEAGE_SCOPE_PROCESS = 0,  /* the writer, its descendants, pipe feeders */
    LINEAGE_SCOPE_JOB = 1,      /* the same, from the writer's whole process group */
};

/* "process" / "job" <-> enum; lineage_scope_parse returns -EINVAL if unknown. */
const char *lineage_scope_name(enum lineage_scope scope);

/* How many readers helper threads have expanded ahead of a --down walk in
 * this process (the cold-cache prefetch in lineage.c): for tests. */
unsigned long lineage_prefetched(void);
int lineage_scope_parse(const char *s, enum lineage_scope *out);

/* Called once per distinct version; a non-zero return stops the walk and
 * is returned by the caller. */
typedef int (*lineage_version_cb)(void *ctx, uint64_t file_id, uint32_t vno);

/* The direct inputs of version vno of file_id (vno 0: the current one),
 * each reported once, in no particular order. */
int lineage_inputs(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                   enum lineage_scope scope, lineage_version_cb cb, void *ctx);

/* The direct outputs: versions whose inputs include (file_id, vno). */
int lineage_outputs(struct cat_reader *rd, uint64_t file_id, uint32_t vno,
                    enum lineage_scope scope, lineage_version_cb cb, void *ctx);

/* The same, for many versions read through one reader (gc, export): a
 * query keeps what it learnt (each process's uses and working set, each
 * file's version list) between calls, so asking for every version of a
 * store costs each fact once instead of once per version.  The query is
 * bound to rd's snapshot; free it before cat_read_end(rd). */
struct lineage_query;
int lineage_query_new(struct cat_reader *rd, enum lineage_scope scope,
                      struct lineage_query **out);
int lineage_query_inputs(struct lineage_query *q, uint64_t file_id, uint32_t vno,
                         lineage_version_cb cb, void *ctx);
int lineage_query_outputs(struct lineage_query *q, uint64_t file_id, uint32_t vno,
                          lineage_version_cb cb, void *ctx);
void lineage_query_free(struct lineage_query *q);

/* A walk's result: a DAG of versions.  Edges always point from a derived
 * version to one of its inputs, whichever way the walk went. */
struct lineage_node {
    uint64_t file_id;
    uint32_t vno;
    int depth;                  /* distance from the root (root: 0)        */
};

struct lineage_edge {
    size_t derived, input;      /* indexes into nodes                      */
};

struct lineage_graph {
    struct lineage_node *nodes; /* nodes[0] is the root (unless whole)     */
    size_t n_nodes;
    struct lineage_edge *edges;
    size_t n_edges;
    int down;                   /* walked to descendants                   */
    int whole;                  /* every version (export): no root         */
    int truncated;              /* the depth limit cut some paths          */
    enum lineage_scope scope;
    void *priv;                 /* lineage.c: node lookup                  */
};

/* Ancestors (down = 0) or descendants (down = 1) of a version, at most
 * max_depth edges away (max_depth < 0: no limit). */
int lineage_walk(struct cat_reader *rd, uint64_t file_id, uint32_t vno, int down,
                 int max_depth, enum lineage_scope scope, struct lineage_graph **out);

/* Every version and every derivation in the store (provfs export). */
int lineage_walk_all(struct cat_reader *rd, enum lineage_scope scope,
                     struct lineage_graph **out);

void lineage_graph_free(struct lineage_graph *g);

#endif
