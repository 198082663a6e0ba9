/*
 * query.c - answer the daemon's questions about paths and processes.
 *
 * Every list is an ordered set of rules and the last rule that matches
 * decides ('!' rules decide "no"), so a later line can carve an exception
 * out of an earlier one, and a user file (appended after the default)
 * overrides the default.  These functions are called on the FUSE hot path:
 * they allocate nothing for paths up to 64 components deep.
 */
#include "policies/pol_int.h"

#include <errno.h>
#include <string.h>

/* Last matching rule: 1 positive, 0 negated or none. */
static int globs_decide(const struct globvec *v, const struct gpath *gp)
{
    for (size_t i = v->n; i-- > 0;)
        if (glob_matches(&v->v[i], gp))
            return !v->v[i].negate;
    return 0;
}

int names_match(const struct namevec *r, const char *s, int icase)
{
    size_t n = strlen(s);
    for (size_t i = r->n; i-- > 0;) {
        const char *pat = r->v[i].pat;
        size_t pl = strlen(pat);
        if (icase ? seg_match_icase(pat, pl, s, n) : seg_match(pat, pl, s, n))
            return !r->v[i].negate;
    }
    return 0;
}

/* provfs's own directories are never provenance, whatever the policy. */
static int is_internal(const struct gpath *gp)
{
    return gp->n && ((gp->len[0] == 7 && !memcmp(gp->seg[0], ".provfs", 7)) ||
                     (gp->len[0] == 5 && !memcmp(gp->seg[0], ".prov", 5)));
}

int pol_is_ignored(const struct pol *p, const char *relpath)
{
    struct gpath gp;
    if (gpath_split(&gp, relpath))
        return 0;   /* out of memory: recording too much beats losing lineage */
    int ign = 0;
    if (gp.n)
        ign = is_internal(&gp) || (p->track.n && !globs_decide(&p->track, &gp)) ||
              globs_decide(&p->ignore, &gp);
    gpath_free(&gp);
    return ign;
}

enum pol_kind pol_kind_of(const struct pol *p, const char *relpath)
{
    struct gpath gp;
    enum pol_kind k = POL_OTHER;
    if (gpath_split(&gp, relpath))
        return k;
    for (size_t i = p->kinds.n; i-- > 0;) {
        if (glob_matches(&p->kinds.v[i].g, &gp)) {
            k = p->kinds.v[i].kind;
            break;
        }
    }
    gpath_free(&gp);
    return k;
}

static const char *const kind_names[POL_NKINDS] = {
    "dataset", "model", "code", "config", "metrics", "other" };

const char *pol_kind_name(enum pol_kind k)
{
    return (unsigned)k < POL_NKINDS ? kind_names[k] : "other";
}

int pol_kind_parse(const char *name, enum pol_kind *out)
{
    for (int k = 0; k < POL_NKINDS; k++) {
        if (!strcmp(name, kind_names[k])) {
            *out = (enum pol_kind)k;
            return 0;
        }
    }
    return -EINVAL;
}

enum pol_snap pol_snapshot_mode(const struct pol *p, const char *relpath, uint64_t size)
{
    struct gpath gp;
    enum pol_snap m = POL_SNAP_FULL;
    if (gpath_split(&gp, relpath))
        return size > p->max_size ? POL_SNAP_HASH_ONLY : m;
    if (globs_decide(&p->never, &gp))
        m = POL_SNAP_NONE;
    else if (globs_decide(&p->hash_only, &gp) || size > p->max_size)
        m = POL_SNAP_HASH_ONLY;
    gpath_free(&gp);
    return m;
}

const char *pol_snap_name(enum pol_snap s)
{
    return s == POL_SNAP_FULL ? "full" : s == POL_SNAP_HASH_ONLY ? "hash-only" : "none";
}

int pol_env_allowed(const struct pol *p, const char *name)
{
    return names_match(&p->env_allow, name, 0);
}

int pol_env_secret(const struct pol *p, const char *name)
{
    return names_match(&p->redact_env, name, 1);
}

int pol_proc_ignored(const struct pol *p, const char *exe, const char *comm)
{
    return (comm && names_match(&p->ign_comm, comm, 0)) ||
           (exe && names_match(&p->ign_exe, exe, 0));
}

enum pol_scope pol_scope(const struct pol *p)
{
    return p->scope;
}

const struct pol_retention *pol_retention(const struct pol *p)
{
    return &p->ret;
}

int pol_prov_listed(const struct pol *p)
{
    return p->prov_listed;
}

const uint8_t *pol_content_id(const struct pol *p)
{
    return p->id;
}

const char *pol_content_hex(const struct pol *p)
{
    return p->idhex;
}

const char *pol_name(const struct pol *p)
{
    return p->name;
}
