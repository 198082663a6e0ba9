/*
 * yamltree.c - turn policy text into a small tree of scalars, sequences and
 * mappings with positions, refusing anything a policy never needs.
 *
 * The input is untrusted (a file in a shared repository), so this layer
 * bounds everything before the schema sees it: a pre-scan rejects invalid
 * UTF-8, tabs and control characters with exact positions (libyaml's own
 * messages for these are vague); the libyaml event parser then runs with a
 * depth cap, a node cap, a per-mapping key cap and a scalar size cap, and
 * anchors, aliases and tags are refused outright, so "billion laughs"
 * alias bombs cannot expand.  Duplicate keys are rejected here because
 * libyaml accepts them.  Positions are 1-based lines and columns counted in
 * characters, as libyaml counts them.
 */
#include "policies/pol_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YT_MAX_KEYS 64      /* the widest mapping in the schema has 11 keys */

static int yt_fail(struct pol_error *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int yt_fail(struct pol_error *err, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->line = line;
    err->col = col;
    return -EINVAL;
}

/* Length of a valid UTF-8 sequence at s (1..4) and its code point, or 0. */
static size_t u8strict(const unsigned char *s, size_t n, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF ? 2 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (!len || len > n)
        return 0;
    unsigned c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates and beyond U+10FFFF. */
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static int char_check(unsigned c, size_t off, struct pol_error *err, int line, int col)
{
    if (c == '\t')
        return yt_fail(err, line, col, "tab character; YAML indents with spaces "
                       "(write \\t inside double quotes if you mean a tab)");
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F))
        return yt_fail(err, line, col, "control character U+%04X", c);
    if (c == 0x2028 || c == 0x2029)
        return yt_fail(err, line, col, "Unicode line separator U+%04X", c);
    if (c == 0xFEFF && off)
        return yt_fail(err, line, col, "byte order mark U+FEFF after the start of the file");
    if (c == 0xFFFE || c == 0xFFFF)
        return yt_fail(err, line, col, "non-character U+%04X", c);
    return 0;
}

/* Reject bytes YAML or this schema cannot take, with their position. */
static int prescan(const char *buf, size_t len, struct pol_error *err)
{
    const unsigned char *u = (const unsigned char *)buf;
    int line = 1, col = 1;
    size_t i = 0;
    if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF)
        i = 3;
    while (i < len) {
        unsigned c;
        if (u[i] == '\n' || u[i] == '\r') {
            i += (u[i] == '\r' && i + 1 < len && u[i + 1] == '\n') ? 2 : 1;
            line++;
            col = 1;
            continue;
        }
        size_t n = u8strict(u + i, len - i, &c);
        if (!n)
            return yt_fail(err, line, col, "invalid UTF-8 (byte 0x%02X)", u[i]);
        int rc = char_check(c, i, err, line, col);
        if (rc)
            return rc;
        i += n;
        col++;
    }
    return 0;
}

struct yt {
    struct yn *stack[POL_MAX_DEPTH + 1];
    int depth;
    size_t nodes;
    struct pol_error *err;
};

static struct yn *yn_new(struct yt *t, enum yn_type type, yaml_mark_t m)
{
    if (++t->nodes > POL_MAX_NODES) {
        yt_fail(t->err, (int)m.line + 1, (int)m.column + 1,
                "more than %d YAML nodes", POL_MAX_NODES);
        return NULL;
    }
    struct yn *n = calloc(1, sizeof *n);
    if (!n) {
        yt_fail(t->err, 0, 0, "out of memory");
        return NULL;
    }
    n->type = type;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

void yt_free(struct yn *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        yt_free(n->kid[i]);
    free(n->kid);
    free(n->s);
    free(n);
}

/* Append a child to the innermost open collection (which owns it after). */
static int yt_attach(struct yt *t, struct yn *n)
{
    struct yn *parent = t->stack[t->depth];
    int is_key = parent->type == YN_MAP && parent->n % 2 == 0;
    if (is_key && n->type != YN_SCALAR) {
        yt_fail(t->err, n->line, n->col, "mapping keys must be plain strings");
        yt_free(n);
        return -EINVAL;
    }
    if (is_key) {
        if (parent->n / 2 >= YT_MAX_KEYS) {
            yt_fail(t->err, n->line, n->col, "more than %d keys in one mapping", YT_MAX_KEYS);
            yt_free(n);
            return -EINVAL;
        }
        for (size_t i = 0; i < parent->n; i += 2) {
            if (!strcmp(parent->kid[i]->s, n->s)) {
                yt_fail(t->err, n->line, n->col, "duplicate key '%s' (first at line %d)",
                        n->s, parent->kid[i]->line);
                yt_free(n);
                return -EINVAL;
            }
        }
    }
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct yn **k = realloc(parent->kid, cap * sizeof *k);
        if (!k) {
            yt_free(n);
            return yt_fail(t->err, 0, 0, "out of memory");
        }
        parent->kid = k;
        parent->cap = cap;
    }
    parent->kid[parent->n++] = n;
    return 0;
}

/* Anchors, aliases and tags: a policy needs none, and refusing them is
 * the simplest complete defence against alias expansion attacks. */
static int no_extras(struct yt *t, const yaml_event_t *e, const yaml_char_t *anchor,
                     const yaml_char_t *tag)
{
    int line = (int)e->start_mark.line + 1, col = (int)e->start_mark.column + 1;
    if (anchor)
        return yt_fail(t->err, line, col, "YAML anchors (&%s) are not allowed in a policy", anchor);
    if (tag)
        return yt_fail(t->err, line, col, "YAML tags (%s) are not allowed in a policy; "
                       "quote patterns that start with '!', e.g. \"!keep.csv\"", tag);
    return 0;
}

static int on_scalar(struct yt *t, const yaml_event_t *e, struct yn **root)
{
    int rc = no_extras(t, e, e->data.scalar.anchor, e->data.scalar.tag);
    if (rc)
        return rc;
    size_t len = e->data.scalar.length;
    int line = (int)e->start_mark.line + 1, col = (int)e->start_mark.column + 1;
    if (len > POL_MAX_SCALAR)
        return yt_fail(t->err, line, col, "string longer than %d bytes", POL_MAX_SCALAR);
    if (memchr(e->data.scalar.value, 0, len))
        return yt_fail(t->err, line, col, "NUL character in a string");
    struct yn *n = yn_new(t, YN_SCALAR, e->start_mark);
    if (!n)
        return -EINVAL;
    n->s = strndup((const char *)e->data.scalar.value, len);
    if (!n->s) {
        yt_free(n);
        return yt_fail(t->err, 0, 0, "out of memory");
    }
    n->slen = len;
    n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (t->depth < 0) {
        *root = n;
        return 0;
    }
    return yt_attach(t, n);
}

static int on_open(struct yt *t, const yaml_event_t *e, struct yn **root)
{
    int is_map = e->type == YAML_MAPPING_START_EVENT;
    int rc = is_map ? no_extras(t, e, e->data.mapping_start.anchor, e->data.mapping_start.tag)
                    : no_extras(t, e, e->data.sequence_start.anchor, e->data.sequence_start.tag);
    if (rc)
        return rc;
    if (t->depth + 1 >= POL_MAX_DEPTH)
        return yt_fail(t->err, (int)e->start_mark.line + 1, (int)e->start_mark.column + 1,
                       "nesting deeper than %d levels", POL_MAX_DEPTH);
    struct yn *n = yn_new(t, is_map ? YN_MAP : YN_SEQ, e->start_mark);
    if (!n)
        return -EINVAL;
    if (t->depth < 0)
        *root = n;
    else if ((rc = yt_attach(t, n)))
        return rc;
    t->stack[++t->depth] = n;
    return 0;
}

static void parser_error(const yaml_parser_t *p, struct pol_error *err)
{
    const char *hint = "";
    yaml_mark_t m = p->problem_mark;
    /* A bad alias or tag is reported where it starts: that is the '*' or
     * '!' the user has to quote. */
    if (p->context && strstr(p->context, "alias")) {
        hint = " (quote patterns that start with '*', e.g. \"*.csv\")";
        m = p->context_mark;
    } else if (p->context && strstr(p->context, "tag")) {
        hint = " (quote patterns that start with '!', e.g. \"!keep.csv\")";
        m = p->context_mark;
    }
    yt_fail(err, (int)m.line + 1, (int)m.column + 1,
            "YAML syntax: %s%s%s%s", p->problem ? p->problem : "error",
            p->context ? " " : "", p->context ? p->context : "", hint);
}

/* Handle one event; 1 at the end of the stream. */
static int on_event(struct yt *t, const yaml_event_t *e, struct yn **root, int *docs)
{
    int line = (int)e->start_mark.line + 1, col = (int)e->start_mark.column + 1;
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            return yt_fail(t->err, line, col, "only one YAML document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return yt_fail(t->err, line, col, "YAML aliases (*%s) are not allowed in a policy; "
                       "quote patterns that start with '*', e.g. \"*.csv\"",
                       e->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        return on_scalar(t, e, root);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        return on_open(t, e, root);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        t->depth--;
        return 0;
    case YAML_STREAM_END_EVENT:
        return 1;
    default:
        return 0;
    }
}

int yt_parse(const char *buf, size_t len, struct yn **root, struct pol_error *err)
{
    *root = NULL;
    int rc = prescan(buf, len, err);
    if (rc)
        return rc;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return yt_fail(err, 0, 0, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    struct yt t = { .depth = -1, .err = err };
    int docs = 0;
    for (rc = 0; rc == 0;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            parser_error(&p, err);
            rc = -EINVAL;
            break;
        }
        rc = on_event(&t, &e, root, &docs);
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    if (rc < 0) {
        yt_free(*root);
        *root = NULL;
        return rc;
    }
    return 0;
}
