/*
 * pol_int.h - what the files of policies/ share and nobody else may use:
 * the compiled glob, the YAML tree the loader validates, and struct pol.
 */
#ifndef POL_INT_H
#define POL_INT_H

#include <regex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "policies/policy.h"

/* --- glob.c: path globs ------------------------------------------------ */

enum gc_type { GC_SEG, GC_ANY, GC_STARSTAR };

/* How a GC_SEG component is matched: most real patterns are a literal
 * name ("Makefile") or a star and a literal ("*.pyc"), which need no
 * wildcard engine; that matters on the FUSE hot path. */
enum seg_how { SEG_GLOB, SEG_LITERAL, SEG_SUFFIX };

struct gcomp {
    enum gc_type type;
    const char *seg;        /* GC_SEG: the component, escapes still in it */
    size_t len;
    enum seg_how how;
};

/* One compiled path pattern.  comp[0..ncomp) matches the path itself;
 * comp[0..ncomp+2) adds "one or more components", which is how a pattern
 * matching a directory also matches everything below it. */
struct pol_glob {
    char *text;             /* as written, including a leading '!'        */
    char *body;             /* private copy the components point into     */
    unsigned negate : 1, dir_only : 1;
    size_t ncomp;
    struct gcomp *comp;
};

/* Compile; on a bad pattern -EINVAL with a message (no position). */
int glob_compile(struct pol_glob *g, const char *text, int allow_negate);
void glob_free(struct pol_glob *g);
/* A path split into components: the matcher's view of a query. */
struct gpath {
    size_t n;
    int is_dir;             /* the query ended in '/'                      */
    const char **seg;
    size_t *len;
    const char *segbuf[64]; /* inline storage for typical depths           */
    size_t lenbuf[64];
};
int gpath_split(struct gpath *gp, const char *relpath);
void gpath_free(struct gpath *gp);
/* Does g match the path or one of its ancestor directories?  (Ignores
 * g->negate: that is for the caller's last-match-wins loop.) */
int glob_matches(const struct pol_glob *g, const struct gpath *gp);
/* One component against a segment pattern ('*', '?', [..], '\'); exposed
 * for name globs (env vars, comm), where '/' is just a character. */
int seg_match(const char *pat, size_t plen, const char *s, size_t slen);
int seg_match_icase(const char *pat, size_t plen, const char *s, size_t slen);
/* Validate a segment-pattern (brackets closed, no dangling '\'). */
int seg_check(const char *pat, size_t plen);

/* --- yamltree.c: bounded libyaml event stream -> tree ------------------ */

enum yn_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct yn {
    enum yn_type type;
    int line, col;          /* 1-based start of the node                  */
    int plain;              /* scalar written without quotes               */
    char *s;                /* scalar text, NUL-terminated                 */
    size_t slen;
    struct yn **kid;        /* SEQ: items; MAP: key, value, key, value...  */
    size_t n, cap;
};

/* Parse buf into *root (NULL for an empty document).  On error fills err
 * (file not set) and returns -EINVAL. */
int yt_parse(const char *buf, size_t len, struct yn **root, struct pol_error *err);
void yt_free(struct yn *n);

/* --- struct pol ------------------------------------------------------- */

struct kindrule {
    struct pol_glob g;
    enum pol_kind kind;
};

/* A name glob list (env names, comm, exe, flags): '!' negates. */
struct namerule {
    char *text;             /* as written                                  */
    const char *pat;        /* text without the '!'                        */
    int negate;
};

struct redex {
    char *text;
    regex_t re;
};

struct globvec { struct pol_glob *v; size_t n, cap; };
struct kindvec { struct kindrule *v; size_t n, cap; };
struct namevec { struct namerule *v; size_t n, cap; };
struct redexvec { struct redex *v; size_t n, cap; };

struct pol {
    atomic_uint refs;
    char *name;
    uint8_t id[32];
    char idhex[65];
    struct globvec track, ignore, hash_only, never;
    struct kindvec kinds;
    struct namevec env_allow, redact_env, redact_flags, ign_comm, ign_exe;
    struct redexvec patterns;
    uint64_t max_size;
    enum pol_scope scope;
    struct pol_retention ret;
    int prov_listed;
};

/* query.c: last-match-wins over a name list; 1 matched, 0 not (or negated). */
int names_match(const struct namevec *r, const char *s, int icase);

#endif
