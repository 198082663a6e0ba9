/*
 * spec.h - naming a version on the command line: PATH, PATH@N (version N),
 * PATH@-K (K before the current one), and --at TIME (the version current
 * at a time).  Shared by log, cat, restore, show, lineage and diff.
 */
#ifndef CLI_SPEC_H
#define CLI_SPEC_H

#include <limits.h>
#include <stdint.h>

#include "store/catalog.h"

struct cli_ws;

struct cli_spec {
    char path[PATH_MAX];        /* workspace-relative */
    long vno;                   /* >0 absolute, <=0 relative to current (0 = current) */
    unsigned long long at_ns;   /* --at: 0 if not given */
};

/* Split "PATH[@N]" (a trailing "@N" with N an integer; a name that really
 * ends in "@3" can be given as "name@3@0"). */
int cli_spec_parse(const struct cli_ws *ws, const char *arg, struct cli_spec *out);

/* Resolve a spec to a version.  -ENOENT (message set) if there is none. */
int cli_spec_resolve(struct cat_reader *rd, const struct cli_spec *sp,
                     struct cat_version *out);

/* "path@N" for messages. */
void cli_spec_name(const struct cat_version *v, const char *path, char *buf, size_t len);

#endif
