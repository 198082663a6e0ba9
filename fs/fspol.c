/* fspol.c - the daemon's policy and its reload; see fspol.h. */
#include "fs/fspol.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

static struct {
    pthread_mutex_t lock;
    struct pol *cur;
    int rootfd;
    char *override;
    char last_error[1100];
} fp = { .lock = PTHREAD_MUTEX_INITIALIZER, .rootfd = -1 };

static int fspol_load(struct pol **out)
{
    struct pol_error e;
    int rc = pol_load_workspace(out, fp.rootfd, fp.override, &e);
    if (rc && e.line)
        return pv_err(rc, "%s:%d:%d: %s", e.file, e.line, e.col, e.msg);
    return rc;
}

int fspol_init(int rootfd, const char *override)
{
    fp.rootfd = rootfd;
    if (override && !(fp.override = strdup(override)))
        return pv_err(-ENOMEM, "out of memory");
    struct pol *p;
    int rc = fspol_load(&p);
    if (rc)
        return rc;
    fp.cur = p;
    pv_info("policy in force: %s (%.12s)", pol_name(p), pol_content_hex(p));
    return 0;
}

void fspol_fini(void)
{
    pthread_mutex_lock(&fp.lock);
    pol_free(fp.cur);
    fp.cur = NULL;
    free(fp.override);
    fp.override = NULL;
    pthread_mutex_unlock(&fp.lock);
}

struct pol *fspol_get(void)
{
    pthread_mutex_lock(&fp.lock);
    struct pol *p = fp.cur ? pol_ref(fp.cur) : NULL;
    pthread_mutex_unlock(&fp.lock);
    return p;
}

int fspol_reload(void)
{
    if (fp.override || fp.rootfd < 0)
        return 0;
    struct pol *p;
    int rc = fspol_load(&p);
    pthread_mutex_lock(&fp.lock);
    if (rc) {
        snprintf(fp.last_error, sizeof fp.last_error, "%s", pv_errmsg());
        pthread_mutex_unlock(&fp.lock);
        pv_error("policy not reloaded, the previous one stays in force: %s", pv_errmsg());
        return rc;
    }
    struct pol *old = fp.cur;
    fp.cur = p;
    fp.last_error[0] = 0;
    pthread_mutex_unlock(&fp.lock);
    pol_free(old);
    pv_info("policy reloaded: %s (%.12s)", pol_name(p), pol_content_hex(p));
    return 0;
}

void fspol_describe(char *buf, size_t len, char *err, size_t errlen)
{
    pthread_mutex_lock(&fp.lock);
    if (fp.cur)
        snprintf(buf, len, "%s %s", pol_name(fp.cur), pol_content_hex(fp.cur));
    else
        snprintf(buf, len, "none");
    snprintf(err, errlen, "%s", fp.last_error);
    pthread_mutex_unlock(&fp.lock);
}
