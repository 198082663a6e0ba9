/*
 * redact.c - keep secrets out of the store: argv words and environment
 * values pass through here before they are recorded.
 *
 * Three rules, all from the policy: a variable whose name matches
 * redact.env loses its whole value; a command-line word that is a
 * redact.flags flag hides the next word ("--token X") or what follows '='
 * ("--token=X"); and every word and value is searched for the
 * redact.patterns regular expressions (POSIX ERE, case-insensitive), whose
 * last parenthesised group, or whole match if there is no group, is
 * replaced.  Output is built snprintf-style so callers can size buffers.
 */
#include "policies/pol_int.h"

#include <stdlib.h>
#include <string.h>

/* Writes what fits of the output (always NUL-terminated if cap > 0) and
 * counts the full length. */
struct out {
    char *buf;
    size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + 1 < o->cap) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static size_t finish(struct out *o)
{
    if (o->cap)
        o->buf[o->len < o->cap ? o->len : o->cap - 1] = 0;
    return o->len;
}

/* One regex over s; result appended to o. */
static void apply_one(const struct redex *r, const char *s, struct out *o)
{
    size_t ng = r->re.re_nsub;
    regmatch_t m[10];
    size_t nm = ng + 1 < 10 ? ng + 1 : 10;
    int flags = 0;
    while (*s && !regexec(&r->re, s, nm, m, flags)) {
        regmatch_t hide = m[0];
        if (ng && m[nm - 1].rm_so >= 0)
            hide = m[nm - 1];
        if (m[0].rm_eo == m[0].rm_so) {     /* empty match: step past a char */
            size_t step = (size_t)m[0].rm_so + (s[m[0].rm_so] != 0);
            put(o, s, step);
            s += step;
            if (!step)
                break;
        } else {
            put(o, s, (size_t)hide.rm_so);
            if (hide.rm_eo > hide.rm_so)
                put(o, POL_REDACTED, strlen(POL_REDACTED));
            put(o, s + hide.rm_eo, (size_t)(m[0].rm_eo - hide.rm_eo));
            s += m[0].rm_eo;
        }
        flags = REG_NOTBOL;
    }
    put(o, s, strlen(s));
}

/* All patterns over one NUL-free string, each over the previous output. */
static void apply_all(const struct pol *p, const char *s, struct out *o)
{
    char *cur = strdup(s);
    for (size_t i = 0; cur && i < p->patterns.n; i++) {
        struct out t = { NULL, 0, 0 };
        apply_one(&p->patterns.v[i], cur, &t);     /* measure */
        char *next = malloc(t.len + 1);
        if (next) {
            t = (struct out){ next, t.len + 1, 0 };
            apply_one(&p->patterns.v[i], cur, &t);
            finish(&t);
        }
        free(cur);
        cur = next;
    }
    /* Out of memory: say so rather than risk leaking the original. */
    if (cur)
        put(o, cur, strlen(cur));
    else
        put(o, POL_REDACTED, strlen(POL_REDACTED));
    free(cur);
}

/* Walk NUL-separated words; `word` handles each NUL-free one. */
static size_t each_word(const struct pol *p, const char *in, size_t len, char *buf,
                        size_t cap, void (*word)(const struct pol *, const char *,
                                                 int *, struct out *))
{
    struct out o = { buf, cap, 0 };
    int state = 0;
    for (size_t i = 0; i < len;) {
        const char *nul = memchr(in + i, 0, len - i);
        size_t n = nul ? (size_t)(nul - (in + i)) : len - i;
        char *w = strndup(in + i, n);
        if (w)
            word(p, w, &state, &o);
        else
            put(&o, POL_REDACTED, strlen(POL_REDACTED));
        free(w);
        i += n;
        if (nul) {
            put(&o, "", 1);
            i++;
        }
    }
    return finish(&o);
}

static void plain_word(const struct pol *p, const char *w, int *state, struct out *o)
{
    (void)state;
    apply_all(p, w, o);
}

/* *state is 1 when the previous word was a bare secret flag. */
static void argv_word(const struct pol *p, const char *w, int *state, struct out *o)
{
    int was_flag = *state;
    *state = 0;
    if (was_flag) {
        put(o, POL_REDACTED, strlen(POL_REDACTED));
        return;
    }
    if (*w == '-' && names_match(&p->redact_flags, w, 1)) {
        *state = 1;
        put(o, w, strlen(w));
        return;
    }
    const char *eq = strchr(w, '=');
    if (*w == '-' && eq) {
        char *flag = strndup(w, (size_t)(eq - w));
        int secret = flag && names_match(&p->redact_flags, flag, 1);
        free(flag);
        if (secret) {
            put(o, w, (size_t)(eq + 1 - w));
            put(o, POL_REDACTED, strlen(POL_REDACTED));
            return;
        }
    }
    apply_all(p, w, o);
}

size_t pol_redact(const struct pol *p, const char *in, size_t len, char *out, size_t outlen)
{
    return each_word(p, in, len, out, outlen, plain_word);
}

size_t pol_redact_argv(const struct pol *p, const char *in, size_t len, char *out,
                       size_t outlen)
{
    return each_word(p, in, len, out, outlen, argv_word);
}

size_t pol_redact_env(const struct pol *p, const char *name, const char *value,
                      char *out, size_t outlen)
{
    if (pol_env_secret(p, name)) {
        struct out o = { out, outlen, 0 };
        put(&o, POL_REDACTED, strlen(POL_REDACTED));
        return finish(&o);
    }
    return pol_redact(p, value, strlen(value), out, outlen);
}

/* One "NAME=VALUE" word of an environment block. */
static void env_word(const struct pol *p, const char *w, int *state, struct out *o)
{
    (void)state;
    const char *eq = strchr(w, '=');
    char *name = eq ? strndup(w, (size_t)(eq - w)) : NULL;
    if (name && pol_env_allowed(p, name)) {
        put(o, w, (size_t)(eq + 1 - w));
        if (pol_env_secret(p, name))
            put(o, POL_REDACTED, strlen(POL_REDACTED));
        else
            apply_all(p, eq + 1, o);
        put(o, "", 1);
    }
    free(name);
}

size_t pol_env_filter(const struct pol *p, const char *in, size_t len, char *out,
                      size_t outlen)
{
    struct out o = { out, outlen, 0 };
    for (size_t i = 0; i < len;) {
        const char *nul = memchr(in + i, 0, len - i);
        size_t n = nul ? (size_t)(nul - (in + i)) : len - i;
        char *w = strndup(in + i, n);
        if (w)
            env_word(p, w, NULL, &o);
        free(w);
        i += n + (nul != NULL);
    }
    return finish(&o);
}
