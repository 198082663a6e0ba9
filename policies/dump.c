/*
 * dump.c - print the effective policy as YAML: what `provfs policy show`
 * prints and what the content id is the SHA-256 of.
 *
 * The output is canonical: every key, fixed order, `inherit: false` and the
 * full lists, every pattern double-quoted with escapes, so loading it gives
 * the same policy and dumping that gives the same bytes.  Written by hand
 * rather than with libyaml's emitter so the layout is stable across libyaml
 * versions (the content id depends on it).
 */
#include "policies/pol_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb {
    char *s;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_printf(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Characters YAML will not take raw inside double quotes (or that would
 * not survive the loader's pre-scan) become escapes. */
static int needs_escape(unsigned c)
{
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0x2028 ||
           c == 0x2029 || c == 0xFEFF || c == 0xFFFE || c == 0xFFFF;
}

static void sb_quote(struct sb *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *u = (const unsigned char *)s; *u;) {
        unsigned c = *u;
        size_t n = 1;
        if (c >= 0xC0) {    /* values are valid UTF-8: the loader checked */
            n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            c &= 0x3F >> (n - 1);
            for (size_t i = 1; i < n && u[i]; i++)
                c = c << 6 | (u[i] & 0x3F);
        }
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (needs_escape(c))
            sb_printf(b, "\\u%04X", c);
        else
            sb_put(b, (const char *)u, n);
        for (size_t i = 0; i < n && *u; i++)
            u++;
    }
    sb_put(b, "\"", 1);
}

/* "  key:" then " []" or one "- item" line per string. */
static void sb_list(struct sb *b, int indent, const char *key,
                    const char *const *items, size_t n)
{
    sb_printf(b, "%*s%s:%s\n", indent, "", key, n ? "" : " []");
    for (size_t i = 0; i < n; i++) {
        sb_printf(b, "%*s  - ", indent, "");
        sb_quote(b, items[i]);
        sb_put(b, "\n", 1);
    }
}

/* A list of rules as their source texts: n elements of `stride` bytes from
 * `base`, each with its `const char *` text at offset `off`. */
static void texts(struct sb *b, int indent, const char *key, const void *base,
                  size_t n, size_t stride, size_t off)
{
    const char **t = malloc((n + 1) * sizeof *t);
    if (!t) {
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(&t[i], (const char *)base + i * stride + off, sizeof t[i]);
    sb_list(b, indent, key, t, n);
    free(t);
}

static void globs(struct sb *b, int indent, const char *key, const struct globvec *v)
{
    texts(b, indent, key, v->v, v->n, sizeof *v->v, offsetof(struct pol_glob, text));
}

static void names(struct sb *b, int indent, const char *key, const struct namevec *v)
{
    texts(b, indent, key, v->v, v->n, sizeof *v->v, offsetof(struct namerule, text));
}

/* Consecutive rules of one kind become one "- KIND:" item. */
static void kinds(struct sb *b, const struct kindvec *v)
{
    sb_printf(b, "kinds:%s\n", v->n ? "" : " []");
    for (size_t i = 0; i < v->n;) {
        size_t j = i;
        sb_printf(b, "  - %s:\n", pol_kind_name(v->v[i].kind));
        for (; j < v->n && v->v[j].kind == v->v[i].kind; j++) {
            sb_put(b, "      - ", 8);
            sb_quote(b, v->v[j].g.text);
            sb_put(b, "\n", 1);
        }
        i = j;
    }
}

/* The largest unit that divides v exactly, so 2 GiB prints as "2GiB". */
static void scaled(struct sb *b, const char *key, uint64_t v,
                   const char *const *unit, const uint64_t *mult, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        if (v % mult[i] == 0) {
            sb_printf(b, "  %s: %" PRIu64 "%s\n", key, v / mult[i], unit[i]);
            return;
        }
    }
    sb_printf(b, "  %s: %" PRIu64 "\n", key, v);
}

static void sections(struct sb *b, const struct pol *p)
{
    static const char *const su[] = { "TiB", "GiB", "MiB", "KiB" };
    static const uint64_t sm[] = { 1ull << 40, 1ull << 30, 1ull << 20, 1ull << 10 };
    static const char *const du[] = { "w", "d", "h", "m" };
    static const uint64_t dm[] = { 604800, 86400, 3600, 60 };
    sb_printf(b, "snapshot:\n");
    scaled(b, "max_size", p->max_size, su, sm, 4);
    globs(b, 2, "hash_only", &p->hash_only);
    globs(b, 2, "never", &p->never);
    sb_printf(b, "env:\n");
    names(b, 2, "allow", &p->env_allow);
    sb_printf(b, "redact:\n");
    names(b, 2, "env", &p->redact_env);
    names(b, 2, "flags", &p->redact_flags);
    const char **t = malloc((p->patterns.n + 1) * sizeof *t);
    for (size_t i = 0; t && i < p->patterns.n; i++)
        t[i] = p->patterns.v[i].text;
    if (t)
        sb_list(b, 2, "patterns", t, p->patterns.n);
    else
        b->oom = 1;
    free(t);
    sb_printf(b, "processes:\n");
    names(b, 2, "ignore_comm", &p->ign_comm);
    names(b, 2, "ignore_exe", &p->ign_exe);
    sb_printf(b, "lineage:\n  scope: %s\n", p->scope == POL_SCOPE_JOB ? "job" : "process");
    sb_printf(b, "retention:\n  keep_last: %" PRIu64 "\n", p->ret.keep_last);
    scaled(b, "keep_within", p->ret.keep_within, du, dm, 4);
    const char *k[POL_NKINDS];
    size_t nk = 0;
    for (int i = 0; i < POL_NKINDS; i++)
        if (p->ret.lineage_of & (1u << i))
            k[nk++] = pol_kind_name((enum pol_kind)i);
    sb_list(b, 2, "keep_lineage_of", k, nk);
    sb_printf(b, "prov:\n  listed: %s\n", p->prov_listed ? "true" : "false");
}

int pol_dump(const struct pol *p, char **out, size_t *len)
{
    struct sb b = { 0 };
    sb_printf(&b, "version: 1\ninherit: false\n");
    globs(&b, 0, "track", &p->track);
    globs(&b, 0, "ignore", &p->ignore);
    kinds(&b, &p->kinds);
    sections(&b, p);
    if (b.oom) {
        free(b.s);
        return -ENOMEM;
    }
    *out = b.s;
    *len = b.len;
    return 0;
}
