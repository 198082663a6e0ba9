/* spec.c - PATH@N and --at TIME; see spec.h. */
#include "cli/spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"

int cli_spec_parse(const struct cli_ws *ws, const char *arg, struct cli_spec *out)
{
    char buf[PATH_MAX];
    memset(out, 0, sizeof *out);
    if (strlen(arg) >= sizeof buf)
        return pv_err(-ENAMETOOLONG, "path too long");
    strcpy(buf, arg);
    char *at = strrchr(buf, '@');
    if (at && at[1]) {
        char *end;
        long n = strtol(at + 1, &end, 10);
        if (!*end) {
            out->vno = n;
            *at = 0;
        }
    }
    if (!buf[0])
        return pv_err(-EINVAL, "'%s' names no file", arg);
    return cli_ws_relpath(ws, buf, out->path, sizeof out->path);
}

struct spec_walk {
    long want;          /* index from newest, 0-based */
    long i;
    struct cat_version *out;
    int found;
};

static int spec_nth(void *ctx, const struct cat_version *v)
{
    struct spec_walk *w = ctx;
    if (w->i++ == w->want) {
        *w->out = *v;
        w->found = 1;
        return 1;
    }
    return 0;
}

int cli_spec_resolve(struct cat_reader *rd, const struct cli_spec *sp, struct cat_version *out)
{
    uint64_t id;
    if (cat_file_find(rd, sp->path, &id))
        return pv_err(-ENOENT, "%s: no versions recorded", sp->path);
    if (sp->at_ns) {
        /* the newest version whose wall time is <= at */
        struct cat_version v;
        int rc = cat_version_get(rd, id, 0, &v);
        for (uint32_t n = rc ? 0 : v.vno; n >= 1; n--) {
            if (cat_version_get(rd, id, n, &v))
                continue;
            if (v.wall_ns <= sp->at_ns) {
                *out = v;
                return 0;
            }
        }
        return pv_err(-ENOENT, "%s: no version existed at that time", sp->path);
    }
    if (sp->vno > 0) {
        int rc = cat_version_get(rd, id, (uint32_t)sp->vno, out);
        return rc ? pv_err(rc, "%s@%ld: no such version", sp->path, sp->vno) : 0;
    }
    struct spec_walk w = { -sp->vno, 0, out, 0 };
    int rc = cat_versions_scan(rd, id, 1, spec_nth, &w);
    if (rc < 0)
        return rc;
    if (!w.found)
        return sp->vno ? pv_err(-ENOENT, "%s@%ld: there are not that many versions",
                                sp->path, sp->vno)
                       : pv_err(-ENOENT, "%s: no versions recorded", sp->path);
    return 0;
}

void cli_spec_name(const struct cat_version *v, const char *path, char *buf, size_t len)
{
    snprintf(buf, len, "%s@%u", path, v->vno);
}
