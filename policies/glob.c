/*
 * glob.c - the path matcher: gitignore-like globs with '**'.
 *
 * fnmatch(3) has no '**' and no notion of "this directory and everything
 * below", so provfs has its own.  Semantics (also in provfs-policy(5)):
 *   - A pattern without '/' (other than a trailing one) matches a name at
 *     any depth: "*.pyc" == "**" "/" "*.pyc".  With a '/' before the end, or
 *     a leading '/', it is anchored at the workspace root.
 *   - A trailing '/' matches directories only.  Queries say "directory" by
 *     ending the path in '/'.
 *   - A pattern that matches a directory also matches everything below it.
 *   - '**' as a whole component matches zero or more components; a
 *     trailing "/" "**" matches one or more (what is inside, not the directory).
 *   - '*' matches any run of characters and '?' one character (UTF-8), never
 *     '/'.  "[a-z]", "[!a-z]" and "[^a-z]" are classes; '\' quotes the next
 *     character.  '*' matches a leading dot: "*" matches ".env".
 * Matching works component by component with the classic linear
 * "remember the last star" backtracking at both levels, so no pattern can
 * take exponential time.  The pattern is split once at load time.
 */
#include "policies/pol_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* Decode one UTF-8 character at s[0..n); invalid bytes decode as
 * themselves, one byte long, so any byte string can be matched. */
static size_t u8dec(const char *s, size_t n, unsigned *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len = u[0] < 0x80 ? 1 : u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC0 ? 2 : 0;
    if (len <= 1 || len > n) {
        *cp = u[0];
        return 1;
    }
    unsigned c = u[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        c = c << 6 | (u[i] & 0x3F);
    }
    *cp = c;
    return len;
}

static unsigned fold(unsigned c, int icase)
{
    return icase && c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Parse the class starting at pat[i] == '['.  Sets *end past the ']' and
 * *hit to whether cp is a member.  -1 if malformed (unclosed, reversed). */
static int class_scan(const char *pat, size_t plen, size_t i, unsigned cp,
                      int icase, size_t *end, int *hit)
{
    int neg = 0, in = 0;
    i++;
    if (i < plen && (pat[i] == '!' || pat[i] == '^')) {
        neg = 1;
        i++;
    }
    size_t first = i;
    cp = fold(cp, icase);
    while (i < plen && (pat[i] != ']' || i == first)) {
        unsigned lo, hi;
        if (pat[i] == '\\' && ++i >= plen)
            return -1;
        i += u8dec(pat + i, plen - i, &lo);
        hi = lo;
        if (i + 1 < plen && pat[i] == '-' && pat[i + 1] != ']') {
            i++;
            if (pat[i] == '\\' && ++i >= plen)
                return -1;
            i += u8dec(pat + i, plen - i, &hi);
            if (hi < lo)
                return -1;
        }
        if ((cp >= fold(lo, icase) && cp <= fold(hi, icase)) || (cp >= lo && cp <= hi))
            in = 1;
    }
    if (i >= plen)
        return -1;
    *end = i + 1;
    *hit = in != neg;
    return 0;
}

/* Does one pattern element at pat[*pi] match the character at s[*si]?
 * Advances both on a match. */
static int elem_match(const char *pat, size_t plen, size_t *pi,
                      const char *s, size_t slen, size_t *si, int icase)
{
    unsigned c, pc;
    size_t cl = u8dec(s + *si, slen - *si, &c);
    size_t i = *pi;
    if (pat[i] == '?') {
        *pi = i + 1;
    } else if (pat[i] == '[') {
        size_t end;
        int hit;
        if (class_scan(pat, plen, i, c, icase, &end, &hit) || !hit)
            return 0;
        *pi = end;
    } else {
        if (pat[i] == '\\' && i + 1 < plen)
            i++;
        i += u8dec(pat + i, plen - i, &pc);
        if (fold(pc, icase) != fold(c, icase))
            return 0;
        *pi = i;
    }
    *si += cl;
    return 1;
}

static int seg_match_ci(const char *pat, size_t plen, const char *s,
                        size_t slen, int icase)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            star = ++pi;
            mark = si;
            continue;
        }
        if (pi < plen && elem_match(pat, plen, &pi, s, slen, &si, icase))
            continue;
        if (star == (size_t)-1)
            return 0;
        /* Let the last star eat one more character and retry after it. */
        unsigned c;
        mark += u8dec(s + mark, slen - mark, &c);
        si = mark;
        pi = star;
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

int seg_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    return seg_match_ci(pat, plen, s, slen, 0);
}

int seg_match_icase(const char *pat, size_t plen, const char *s, size_t slen)
{
    return seg_match_ci(pat, plen, s, slen, 1);
}

int seg_check(const char *pat, size_t plen)
{
    for (size_t i = 0; i < plen; i++) {
        if (pat[i] == '\\') {
            if (++i >= plen)
                return pv_err(-EINVAL, "'\\' at the end of a pattern quotes nothing");
        } else if (pat[i] == '[') {
            size_t end;
            int hit;
            if (class_scan(pat, plen, i, 0, 0, &end, &hit))
                return pv_err(-EINVAL, "unclosed or reversed character class '[...]'");
            i = end - 1;
        }
    }
    return 0;
}

/* Is this component a '**' (whole), or does it misuse '**' inside? */
static int comp_stars(const char *c, size_t n)
{
    if (n == 2 && c[0] == '*' && c[1] == '*')
        return 1;
    for (size_t i = 0; i + 1 < n; i++) {
        if (c[i] == '\\') {
            i++;
            continue;
        }
        if (c[i] == '*' && c[i + 1] == '*')
            return -1;
    }
    return 0;
}

static enum seg_how seg_how(const char *s, size_t n)
{
    size_t first = s[0] == '*' ? 1 : 0;
    for (size_t i = first; i < n; i++)
        if (strchr("*?[\\", s[i]))
            return SEG_GLOB;
    return first ? SEG_SUFFIX : SEG_LITERAL;
}

static int add_comp(struct pol_glob *g, enum gc_type t, const char *s, size_t n)
{
    /* Collapse "**" "/" "**": same meaning, less backtracking. */
    if (t == GC_STARSTAR && g->ncomp && g->comp[g->ncomp - 1].type == GC_STARSTAR)
        return 0;
    g->comp[g->ncomp++] = (struct gcomp){ t, s, n, t == GC_SEG ? seg_how(s, n) : SEG_GLOB };
    return 0;
}

static int split_body(struct pol_glob *g, char *body, int anchored)
{
    size_t slashes = 0;
    for (char *c = body; *c; c++)
        slashes += *c == '/';
    /* components + leading ** + trailing (ANY **) + prefix (ANY **) */
    g->comp = calloc(slashes + 6, sizeof *g->comp);
    if (!g->comp)
        return -ENOMEM;
    if (!anchored)
        add_comp(g, GC_STARSTAR, NULL, 0);
    for (char *c = body;;) {
        char *e = strchrnul(c, '/');
        size_t n = (size_t)(e - c);
        int st = comp_stars(c, n);
        if (n == 0)
            return pv_err(-EINVAL, "empty path component ('//')");
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return pv_err(-EINVAL, "'.' and '..' components never match (paths are normalized)");
        if (st < 0)
            return pv_err(-EINVAL, "'**' must be a whole path component ('a/**/b', not 'a**')");
        int rc = seg_check(c, n);
        if (rc)
            return rc;
        if (st)
            add_comp(g, GC_STARSTAR, NULL, 0);
        else
            add_comp(g, GC_SEG, c, n);
        if (!*e)
            break;
        c = e + 1;
    }
    /* A trailing '**' means "something inside": one or more components. */
    if (g->comp[g->ncomp - 1].type == GC_STARSTAR) {
        g->ncomp--;
        add_comp(g, GC_ANY, NULL, 0);
        add_comp(g, GC_STARSTAR, NULL, 0);
    }
    g->comp[g->ncomp] = (struct gcomp){ GC_ANY, NULL, 0, SEG_GLOB };
    g->comp[g->ncomp + 1] = (struct gcomp){ GC_STARSTAR, NULL, 0, SEG_GLOB };
    return 0;
}

int glob_compile(struct pol_glob *g, const char *text, int allow_negate)
{
    memset(g, 0, sizeof *g);
    const char *b = text;
    if (*b == '!') {
        if (!allow_negate)
            return pv_err(-EINVAL, "negation ('!') is not allowed here");
        g->negate = 1;
        b++;
    }
    if (!*b)
        return pv_err(-EINVAL, "empty pattern");
    g->text = strdup(text);
    g->body = strdup(b);
    if (!g->text || !g->body) {
        glob_free(g);
        return -ENOMEM;
    }
    size_t n = strlen(g->body);
    int anchored = 0;
    if (g->body[n - 1] == '/') {
        g->dir_only = 1;
        g->body[--n] = 0;
    }
    char *body = g->body;
    if (*body == '/') {
        anchored = 1;
        body++;
    }
    int rc = 0;
    if (!*body)
        rc = pv_err(-EINVAL, "pattern names the workspace root, which is never matched");
    else if (strchr(body, '/'))
        anchored = 1;
    if (!rc)
        rc = split_body(g, body, anchored);
    if (rc)
        glob_free(g);
    return rc;
}

void glob_free(struct pol_glob *g)
{
    free(g->text);
    free(g->body);
    free(g->comp);
    memset(g, 0, sizeof *g);
}

int gpath_split(struct gpath *gp, const char *relpath)
{
    size_t cap = 1;
    for (const char *c = relpath; *c; c++)
        cap += *c == '/';
    gp->seg = gp->segbuf;
    gp->len = gp->lenbuf;
    if (cap > 64) {
        gp->seg = malloc(cap * sizeof *gp->seg);
        gp->len = malloc(cap * sizeof *gp->len);
        if (!gp->seg || !gp->len) {
            gpath_free(gp);
            return -ENOMEM;
        }
    }
    gp->n = 0;
    gp->is_dir = 0;
    for (const char *c = relpath; *c;) {
        const char *e = strchrnul(c, '/');
        if (e > c) {    /* skip empty components: "a//b" is "a/b" */
            gp->seg[gp->n] = c;
            gp->len[gp->n++] = (size_t)(e - c);
        }
        gp->is_dir = *e == '/';
        c = *e ? e + 1 : e;
    }
    return 0;
}

void gpath_free(struct gpath *gp)
{
    if (gp->seg != gp->segbuf)
        free((void *)gp->seg);
    if (gp->len != gp->lenbuf)
        free(gp->len);
    gp->seg = gp->segbuf;
    gp->len = gp->lenbuf;
}

static int comp_match(const struct gcomp *c, const char *s, size_t n)
{
    switch (c->how) {
    case SEG_LITERAL:
        return n == c->len && !memcmp(s, c->seg, n);
    case SEG_SUFFIX:
        return n >= c->len - 1 && !memcmp(s + n - (c->len - 1), c->seg + 1, c->len - 1);
    default:
        return seg_match(c->seg, c->len, s, n);
    }
}

/* Components of a pattern against all components of a path; the same
 * star-backtracking as seg_match_ci, one level up. */
static int comps_match(const struct gcomp *c, size_t m, const struct gpath *gp)
{
    size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < gp->n) {
        if (pi < m && c[pi].type == GC_STARSTAR) {
            star = ++pi;
            mark = si;
            continue;
        }
        if (pi < m && (c[pi].type == GC_ANY ||
                       comp_match(&c[pi], gp->seg[si], gp->len[si]))) {
            pi++;
            si++;
            continue;
        }
        if (star == (size_t)-1)
            return 0;
        si = ++mark;
        pi = star;
    }
    while (pi < m && c[pi].type == GC_STARSTAR)
        pi++;
    return pi == m;
}

int glob_matches(const struct pol_glob *g, const struct gpath *gp)
{
    if (gp->n == 0)
        return 0;
    /* An unanchored name ("*.pyc", "build/") matches when any component
     * does: an ancestor is a directory, the last one is the path itself. */
    if (g->ncomp == 2 && g->comp[0].type == GC_STARSTAR && g->comp[1].type == GC_SEG) {
        size_t last = gp->n - 1;
        for (size_t i = 0; i < last; i++)
            if (comp_match(&g->comp[1], gp->seg[i], gp->len[i]))
                return 1;
        return (!g->dir_only || gp->is_dir) &&
               comp_match(&g->comp[1], gp->seg[last], gp->len[last]);
    }
    if ((!g->dir_only || gp->is_dir) && comps_match(g->comp, g->ncomp, gp))
        return 1;
    return comps_match(g->comp, g->ncomp + 2, gp);
}

int pol_glob_match(const char *pattern, const char *relpath)
{
    struct pol_glob g;
    struct gpath gp;
    int rc = glob_compile(&g, pattern, 0);
    if (rc)
        return rc;
    rc = gpath_split(&gp, relpath);
    if (!rc) {
        rc = glob_matches(&g, &gp);
        gpath_free(&gp);
    }
    glob_free(&g);
    return rc;
}
