/*
 * load.c - read a policy, validate it against the schema, layer it on the
 * built-in default, and name the result by its content id.
 *
 * yamltree.c has already bounded the input and built a tree; this file
 * only knows the schema.  Each mapping is walked against a table of keys,
 * and every error carries the position of the node it is about.  Loading
 * builds a fresh struct pol and touches nothing else, so a daemon can try a
 * reload and keep the old policy if it fails.
 */
#include "policies/pol_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "common/err.h"

struct ld {
    struct pol *p;
    struct pol_error *err;
};

typedef int (*field_fn)(struct ld *l, const struct yn *v);
struct field {
    const char *key;
    field_fn fn;
};

static int bad(struct ld *l, const struct yn *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct ld *l, const struct yn *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err->msg, sizeof l->err->msg, fmt, ap);
    va_end(ap);
    l->err->line = n ? n->line : 1;
    l->err->col = n ? n->col : 1;
    return -EINVAL;
}

/* A matcher error (message in pv_errmsg) reported at node n. */
static int bad_pv(struct ld *l, const struct yn *n, int rc, const char *what)
{
    if (rc == -ENOMEM)
        return bad(l, n, "out of memory");
    return bad(l, n, "bad %s '%s': %s", what, n->s, pv_errmsg());
}

static int is_null(const struct yn *n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    if (n->type != YN_SCALAR || !n->plain)
        return 0;
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        if (!strcmp(n->s, nulls[i]))
            return 1;
    return 0;
}

static const char *describe(const struct yn *n)
{
    if (n->type == YN_MAP)
        return "a mapping";
    if (n->type == YN_SEQ)
        return "a list";
    return is_null(n) ? "nothing" : n->plain ? "a plain value" : "a quoted string";
}

/* Make room for one more element in a vector of `size`-byte items. */
static int grow(void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void *nv = realloc(*v, c * size);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = c;
    return 0;
}

#define VEC_PUSH(vec, item)                                                 \
    (grow((void **)&(vec).v, (vec).n, &(vec).cap, sizeof *(vec).v) ? -ENOMEM \
     : ((vec).v[(vec).n++] = (item), 0))

/* --- scalars ------------------------------------------------------------ */

static int want_string(struct ld *l, const struct yn *n, const char *key)
{
    if (n->type != YN_SCALAR || is_null(n))
        return bad(l, n, "%s: expected a string, found %s", key, describe(n));
    return 0;
}

static int get_bool(struct ld *l, const struct yn *n, const char *key, int *out)
{
    if (n->type == YN_SCALAR && n->plain && !strcmp(n->s, "true"))
        *out = 1;
    else if (n->type == YN_SCALAR && n->plain && !strcmp(n->s, "false"))
        *out = 0;
    else if (n->type == YN_SCALAR && !is_null(n))
        return bad(l, n, "%s: expected true or false, found '%s'", key, n->s);
    else
        return bad(l, n, "%s: expected true or false, found %s", key, describe(n));
    return 0;
}

/* Digits, then a unit from `units` (each with its multiplier). */
struct unit {
    const char *name;
    uint64_t mult;
};

static int get_scaled(struct ld *l, const struct yn *n, const char *key,
                      const struct unit *units, const char *hint, uint64_t *out)
{
    if (n->type != YN_SCALAR || !n->plain || is_null(n))
        return bad(l, n, "%s: expected %s, found %s", key, hint, describe(n));
    const char *s = n->s;
    if (*s == '-')
        return bad(l, n, "%s: must not be negative", key);
    if (*s < '0' || *s > '9')
        return bad(l, n, "%s: expected %s, found '%s'", key, hint, s);
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return bad(l, n, "%s: number too large", key);
        v = v * 10 + d;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(s, u->name))
            continue;
        if (v && u->mult > UINT64_MAX / v)
            return bad(l, n, "%s: number too large", key);
        *out = v * u->mult;
        return 0;
    }
    return bad(l, n, "%s: expected %s, found '%s'", key, hint, n->s);
}

static int get_uint(struct ld *l, const struct yn *n, const char *key, uint64_t *out)
{
    static const struct unit none[] = { { "", 1 }, { NULL, 0 } };
    return get_scaled(l, n, key, none, "a whole number", out);
}

static int get_size(struct ld *l, const struct yn *n, const char *key, uint64_t *out)
{
    static const struct unit u[] = {
        { "", 1 }, { "B", 1 }, { "K", 1ull << 10 }, { "KiB", 1ull << 10 },
        { "M", 1ull << 20 }, { "MiB", 1ull << 20 }, { "G", 1ull << 30 },
        { "GiB", 1ull << 30 }, { "T", 1ull << 40 }, { "TiB", 1ull << 40 },
        { NULL, 0 } };
    return get_scaled(l, n, key, u, "a size (bytes, or a number with K, M, G, T, "
                      "KiB, MiB, GiB or TiB; all powers of 1024)", out);
}

static int get_duration(struct ld *l, const struct yn *n, const char *key, uint64_t *out)
{
    static const struct unit u[] = {
        { "", 1 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
        { "w", 604800 }, { NULL, 0 } };
    return get_scaled(l, n, key, u, "a duration (seconds, or a number with s, m, h, d or w)", out);
}

/* --- lists ------------------------------------------------------------- */

static int want_list(struct ld *l, const struct yn *n, const char *key)
{
    if (n->type != YN_SEQ)
        return bad(l, n, "%s: expected a list, found %s", key, describe(n));
    for (size_t i = 0; i < n->n; i++) {
        int rc = want_string(l, n->kid[i], key);
        if (rc)
            return rc;
    }
    return 0;
}

static int glob_list(struct ld *l, const struct yn *n, const char *key,
                     struct globvec *vec)
{
    int rc = want_list(l, n, key);
    for (size_t i = 0; !rc && i < n->n; i++) {
        struct pol_glob g;
        rc = glob_compile(&g, n->kid[i]->s, 1);
        if (rc)
            return bad_pv(l, n->kid[i], rc, "pattern");
        if ((rc = VEC_PUSH(*vec, g))) {
            glob_free(&g);
            return bad(l, n->kid[i], "out of memory");
        }
    }
    return rc;
}

/* Name globs (env variables, comm, exe, flags): '!' negates. */
static int name_list(struct ld *l, const struct yn *n, const char *key,
                     struct namevec *vec, char must_start)
{
    int rc = want_list(l, n, key);
    for (size_t i = 0; !rc && i < n->n; i++) {
        const struct yn *k = n->kid[i];
        int neg = k->s[0] == '!';
        const char *pat = k->s + neg;
        if (!*pat)
            return bad(l, k, "%s: empty pattern", key);
        if (must_start && *pat != must_start)
            return bad(l, k, "%s: '%s' does not start with '%c'", key, pat, must_start);
        if ((rc = seg_check(pat, strlen(pat))))
            return bad_pv(l, k, rc, "pattern");
        struct namerule r = { strdup(k->s), NULL, neg };
        r.pat = r.text ? r.text + neg : NULL;
        if (!r.text || VEC_PUSH(*vec, r)) {
            free(r.text);
            return bad(l, k, "out of memory");
        }
    }
    return rc;
}

/* --- the schema ---------------------------------------------------------- */

static int walk(struct ld *l, const struct yn *map, const char *where,
                const struct field *fields)
{
    if (map->type != YN_MAP)
        return bad(l, map, "%s: expected a mapping, found %s", where, describe(map));
    for (size_t i = 0; i < map->n; i += 2) {
        const struct yn *k = map->kid[i], *v = map->kid[i + 1];
        const struct field *f = fields;
        while (f->key && strcmp(f->key, k->s))
            f++;
        if (!f->key) {
            char known[256] = "";
            for (f = fields; f->key; f++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s",
                         f == fields ? "" : ", ", f->key);
            return bad(l, k, "unknown key '%s' in %s (known: %s)", k->s, where, known);
        }
        int rc = f->fn ? f->fn(l, v) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int f_version(struct ld *l, const struct yn *v)
{
    uint64_t ver;
    int rc = get_uint(l, v, "version", &ver);
    if (!rc && ver != 1)
        rc = bad(l, v, "version: this provfs reads policy version 1, not %s", v->s);
    return rc;
}

static int f_track(struct ld *l, const struct yn *v) { return glob_list(l, v, "track", &l->p->track); }
static int f_ignore(struct ld *l, const struct yn *v) { return glob_list(l, v, "ignore", &l->p->ignore); }
static int f_hash_only(struct ld *l, const struct yn *v) { return glob_list(l, v, "snapshot.hash_only", &l->p->hash_only); }
static int f_never(struct ld *l, const struct yn *v) { return glob_list(l, v, "snapshot.never", &l->p->never); }
static int f_max_size(struct ld *l, const struct yn *v) { return get_size(l, v, "snapshot.max_size", &l->p->max_size); }
static int f_env_allow(struct ld *l, const struct yn *v) { return name_list(l, v, "env.allow", &l->p->env_allow, 0); }
static int f_red_env(struct ld *l, const struct yn *v) { return name_list(l, v, "redact.env", &l->p->redact_env, 0); }
static int f_red_flags(struct ld *l, const struct yn *v) { return name_list(l, v, "redact.flags", &l->p->redact_flags, '-'); }
static int f_ign_comm(struct ld *l, const struct yn *v) { return name_list(l, v, "processes.ignore_comm", &l->p->ign_comm, 0); }
static int f_ign_exe(struct ld *l, const struct yn *v) { return name_list(l, v, "processes.ignore_exe", &l->p->ign_exe, 0); }
static int f_keep_last(struct ld *l, const struct yn *v) { return get_uint(l, v, "retention.keep_last", &l->p->ret.keep_last); }
static int f_keep_within(struct ld *l, const struct yn *v) { return get_duration(l, v, "retention.keep_within", &l->p->ret.keep_within); }
static int f_listed(struct ld *l, const struct yn *v) { return get_bool(l, v, "prov.listed", &l->p->prov_listed); }

static int f_patterns(struct ld *l, const struct yn *v)
{
    int rc = want_list(l, v, "redact.patterns");
    for (size_t i = 0; !rc && i < v->n; i++) {
        const struct yn *k = v->kid[i];
        if (l->p->patterns.n >= POL_MAX_REGEX)
            return bad(l, k, "redact.patterns: more than %d patterns", POL_MAX_REGEX);
        if (k->slen > 512)
            return bad(l, k, "redact.patterns: pattern longer than 512 bytes");
        /* Back-references make glibc's matcher exponential; nobody needs
         * them to find a secret. */
        for (const char *c = k->s; *c; c++)
            if (c[0] == '\\' && c[1] >= '1' && c[1] <= '9')
                return bad(l, k, "redact.patterns: back-references (\\%c) are not allowed", c[1]);
            else if (c[0] == '\\' && c[1])
                c++;
        struct redex r = { strdup(k->s), { 0 } };
        if (!r.text)
            return bad(l, k, "out of memory");
        int e = regcomp(&r.re, k->s, REG_EXTENDED | REG_ICASE);
        if (e) {
            char msg[128];
            regerror(e, &r.re, msg, sizeof msg);
            free(r.text);
            return bad(l, k, "redact.patterns: bad regular expression '%s': %s", k->s, msg);
        }
        if (VEC_PUSH(l->p->patterns, r)) {
            regfree(&r.re);
            free(r.text);
            return bad(l, k, "out of memory");
        }
    }
    return rc;
}

static int f_scope(struct ld *l, const struct yn *v)
{
    int rc = want_string(l, v, "lineage.scope");
    if (rc)
        return rc;
    if (!strcmp(v->s, "process"))
        l->p->scope = POL_SCOPE_PROCESS;
    else if (!strcmp(v->s, "job"))
        l->p->scope = POL_SCOPE_JOB;
    else
        return bad(l, v, "lineage.scope: expected process or job, found '%s'", v->s);
    return 0;
}

static int kind_name(struct ld *l, const struct yn *n, const char *key, enum pol_kind *k)
{
    int rc = want_string(l, n, key);
    if (!rc && pol_kind_parse(n->s, k))
        rc = bad(l, n, "%s: unknown kind '%s' (kinds: dataset, model, code, config, "
                 "metrics, other)", key, n->s);
    return rc;
}

static int f_lineage_of(struct ld *l, const struct yn *v)
{
    int rc = want_list(l, v, "retention.keep_lineage_of");
    for (size_t i = 0; !rc && i < v->n; i++) {
        enum pol_kind k;
        rc = kind_name(l, v->kid[i], "retention.keep_lineage_of", &k);
        if (!rc)
            l->p->ret.lineage_of |= 1u << k;
    }
    return rc;
}

/* kinds: a list of one-key mappings, KIND: [patterns].  A list, not a
 * mapping, because order matters: the last matching pattern wins. */
static int kinds_item(struct ld *l, const struct yn *item)
{
    if (item->type != YN_MAP || item->n != 2)
        return bad(l, item, "kinds: each item is one 'KIND: [patterns]' mapping, found %s",
                   item->type == YN_MAP ? "a mapping with several keys" : describe(item));
    enum pol_kind k;
    const struct yn *list = item->kid[1];
    int rc = kind_name(l, item->kid[0], "kinds", &k);
    if (!rc)
        rc = want_list(l, list, "kinds");
    for (size_t i = 0; !rc && i < list->n; i++) {
        struct kindrule r = { .kind = k };
        rc = glob_compile(&r.g, list->kid[i]->s, 0);
        if (rc)
            return bad_pv(l, list->kid[i], rc, "pattern");
        if ((rc = VEC_PUSH(l->p->kinds, r))) {
            glob_free(&r.g);
            return bad(l, list->kid[i], "out of memory");
        }
    }
    return rc;
}

static int f_kinds(struct ld *l, const struct yn *v)
{
    if (v->type != YN_SEQ)
        return bad(l, v, "kinds: expected a list of 'KIND: [patterns]' items, found %s",
                   describe(v));
    for (size_t i = 0; i < v->n; i++) {
        int rc = kinds_item(l, v->kid[i]);
        if (rc)
            return rc;
    }
    return 0;
}

#define SECTION(fname, where, ...)                                          \
    static int fname(struct ld *l, const struct yn *v)                      \
    {                                                                       \
        static const struct field f[] = { __VA_ARGS__, { NULL, NULL } };    \
        return walk(l, v, where, f);                                        \
    }

SECTION(f_snapshot, "snapshot", { "max_size", f_max_size }, { "hash_only", f_hash_only },
        { "never", f_never })
SECTION(f_env, "env", { "allow", f_env_allow })
SECTION(f_redact, "redact", { "env", f_red_env }, { "flags", f_red_flags },
        { "patterns", f_patterns })
SECTION(f_processes, "processes", { "ignore_comm", f_ign_comm }, { "ignore_exe", f_ign_exe })
SECTION(f_lineage, "lineage", { "scope", f_scope })
SECTION(f_retention, "retention", { "keep_last", f_keep_last },
        { "keep_within", f_keep_within }, { "keep_lineage_of", f_lineage_of })
SECTION(f_prov, "prov", { "listed", f_listed })
/* inherit is read before the walk (it decides how the rest applies). */
SECTION(f_root, "the policy", { "version", f_version }, { "inherit", NULL },
        { "track", f_track }, { "ignore", f_ignore }, { "kinds", f_kinds },
        { "snapshot", f_snapshot }, { "env", f_env }, { "redact", f_redact },
        { "processes", f_processes }, { "lineage", f_lineage },
        { "retention", f_retention }, { "prov", f_prov })

/* --- struct pol lifetime ------------------------------------------------ */

static void globs_free(struct globvec *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        glob_free(&vec->v[i]);
    free(vec->v);
    memset(vec, 0, sizeof *vec);
}

static void names_free(struct namevec *vec)
{
    for (size_t i = 0; i < vec->n; i++)
        free(vec->v[i].text);
    free(vec->v);
    memset(vec, 0, sizeof *vec);
}

/* inherit: false - drop every list taken from the default. */
static void clear_lists(struct pol *p)
{
    globs_free(&p->track);
    globs_free(&p->ignore);
    globs_free(&p->hash_only);
    globs_free(&p->never);
    for (size_t i = 0; i < p->kinds.n; i++)
        glob_free(&p->kinds.v[i].g);
    free(p->kinds.v);
    memset(&p->kinds, 0, sizeof p->kinds);
    names_free(&p->env_allow);
    names_free(&p->redact_env);
    names_free(&p->redact_flags);
    names_free(&p->ign_comm);
    names_free(&p->ign_exe);
    for (size_t i = 0; i < p->patterns.n; i++) {
        regfree(&p->patterns.v[i].re);
        free(p->patterns.v[i].text);
    }
    free(p->patterns.v);
    memset(&p->patterns, 0, sizeof p->patterns);
    p->ret.lineage_of = 0;
}

struct pol *pol_ref(struct pol *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void pol_free(struct pol *p)
{
    /* acq_rel: the last owner must see every other owner's last use. */
    if (!p || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    clear_lists(p);
    free(p->name);
    free(p);
}

/* Apply one policy text on top of p. */
static int load_layer(struct pol *p, const char *buf, size_t len, struct pol_error *err)
{
    struct ld l = { p, err };
    struct yn *root;
    if (len > POL_MAX_BYTES)
        return bad(&l, NULL, "policy is larger than %u bytes", POL_MAX_BYTES);
    int rc = yt_parse(buf, len, &root, err);
    if (rc)
        return rc;
    if (!root || is_null(root))
        rc = bad(&l, root, "policy is empty; write 'version: 1' to take every default");
    else if (root->type != YN_MAP)
        rc = bad(&l, root, "a policy is a mapping of keys (version, track, ignore, ...), "
                 "found %s", describe(root));
    for (size_t i = 0; !rc && i < root->n; i += 2) {
        int inherit = 1;
        if (strcmp(root->kid[i]->s, "inherit"))
            continue;
        rc = get_bool(&l, root->kid[i + 1], "inherit", &inherit);
        if (!rc && !inherit)
            clear_lists(p);
    }
    if (!rc)
        rc = f_root(&l, root);
    yt_free(root);
    return rc;
}

static int content_id(struct pol *p)
{
    char *text;
    size_t len;
    unsigned int n = 0;
    int rc = pol_dump(p, &text, &len);
    if (rc)
        return rc;
    if (!EVP_Digest(text, len, p->id, &n, EVP_sha256(), NULL) || n != 32)
        rc = pv_err(-EIO, "SHA-256 failed");
    free(text);
    for (int i = 0; i < 32; i++)
        snprintf(p->idhex + 2 * i, 3, "%02x", p->id[i]);
    return rc;
}

/* The message convention of this module: FILE:LINE:COL: MSG. */
static int report(struct pol_error *err, const char *name, int rc)
{
    snprintf(err->file, sizeof err->file, "%s", name);
    if (rc == -ENOMEM && !err->msg[0])
        snprintf(err->msg, sizeof err->msg, "out of memory");
    if (err->line)
        return pv_err(rc, "%s:%d:%d: %s", name, err->line, err->col, err->msg);
    return pv_err(rc, "%s: %s", name, err->msg);
}

static int load_layers(struct pol **out, const char *name, const char *buf,
                       size_t len, int with_user, struct pol_error *err)
{
    struct pol_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    *out = NULL;
    struct pol *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(name))) {
        free(p);
        return report(err, name, -ENOMEM);
    }
    atomic_init(&p->refs, 1);
    p->max_size = UINT64_MAX;
    size_t dlen;
    const char *dtext = pol_default_text(&dlen);
    int rc = load_layer(p, dtext, dlen, err);
    if (rc) {
        pol_free(p);
        return report(err, "<default>", rc);
    }
    if (with_user && (rc = load_layer(p, buf, len, err))) {
        pol_free(p);
        return report(err, name, rc);
    }
    if ((rc = content_id(p))) {
        pol_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int pol_load_buf(struct pol **out, const char *name, const char *buf, size_t len,
                 struct pol_error *err)
{
    return load_layers(out, name, buf, len, 1, err);
}

int pol_load_default(struct pol **out)
{
    return load_layers(out, "<default>", NULL, 0, 0, NULL);
}

static int read_all(int fd, char **buf, size_t *len)
{
    size_t cap = POL_MAX_BYTES + 1, n = 0;
    char *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    while (n < cap) {   /* read one byte past the limit to detect "too big" */
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = -errno;
            free(b);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

int pol_load_at(struct pol **out, int dirfd, const char *name, struct pol_error *err)
{
    struct pol_error local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    *out = NULL;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    int rc = fd < 0 ? -errno : fstat(fd, &st) ? -errno : 0;
    if (!rc && !S_ISREG(st.st_mode))
        rc = -EINVAL;
    char *buf = NULL;
    size_t len = 0;
    if (!rc)
        rc = read_all(fd, &buf, &len);
    if (fd >= 0)
        close(fd);
    if (rc) {
        snprintf(err->msg, sizeof err->msg, "%s",
                 rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return report(err, name, rc);
    }
    rc = pol_load_buf(out, name, buf, len, err);
    free(buf);
    return rc;
}

int pol_load_file(struct pol **out, const char *path, struct pol_error *err)
{
    return pol_load_at(out, AT_FDCWD, path, err);
}

int pol_load_workspace(struct pol **out, int dirfd, const char *override,
                       struct pol_error *err)
{
    if (override)
        return pol_load_file(out, override, err);
    struct stat st;
    if (fstatat(dirfd, POL_FILE, &st, 0) && errno == ENOENT) {
        if (err)
            memset(err, 0, sizeof *err);
        return pol_load_default(out);
    }
    return pol_load_at(out, dirfd, POL_FILE, err);
}
