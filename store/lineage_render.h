/*
 * lineage_render.h - one renderer per format for a lineage graph (design 2):
 * the CLI (lineage, impact, export) and the .prov tree call the same code,
 * so `provfs lineage --format dot X` and `.prov/tree/X/lineage.dot` are the
 * same bytes.
 *
 *   text       a tree for people; a version reached twice is printed once,
 *              later mentions say "(see above)"
 *   json       {"root", "direction", "nodes", "processes", "edges"}
 *   jsonl      one JSON object per line: versions, processes, edges (export)
 *   prov-json  W3C PROV-JSON: entities = versions, activities = processes,
 *              agents = users; used, wasGeneratedBy, wasDerivedFrom,
 *              wasAssociatedWith
 *   dot        Graphviz: versions as notes, processes as boxes
 *
 * The reader must be the one the graph was walked with (or newer).
 */
#ifndef STORE_LINEAGE_RENDER_H
#define STORE_LINEAGE_RENDER_H

#include <stdio.h>

#include "store/catalog.h"
#include "store/lineage.h"

enum lineage_format {
    LINEAGE_FMT_TEXT,
    LINEAGE_FMT_JSON,
    LINEAGE_FMT_JSONL,
    LINEAGE_FMT_PROV_JSON,
    LINEAGE_FMT_DOT,
};

/* "text", "json", "jsonl", "prov-json", "dot"; -EINVAL (message set) if unknown. */
int lineage_format_parse(const char *s, enum lineage_format *out);

/* Write g in the given format.  0, or a negative errno (catalog errors). */
int lineage_render(FILE *f, struct cat_reader *rd, const struct lineage_graph *g,
                   enum lineage_format fmt);

/* One version as a line for people: "path@n  kind  shortid  time  origin". */
void lineage_render_version_line(FILE *f, struct cat_str path, const struct cat_version *v);

/* A process for people: "p12 argv..." then, indented by `indent`, the
 * cwd, user, exe and start time on a second line. */
void lineage_render_proc_text(FILE *f, struct cat_reader *rd, uint64_t proc_id,
                              const char *indent);

/* A process as a JSON object: id, pid, exe, argv, cwd, uid, gid, env,
 * start time, parent id. */
void lineage_render_proc_json(FILE *f, struct cat_reader *rd, uint64_t proc_id);

/* Path bytes for people (control bytes and invalid UTF-8 escaped). */
void lineage_render_bytes(FILE *f, const char *p, size_t n);

#endif
