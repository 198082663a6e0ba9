/* err.c - thread-local error messages; see err.h for the convention. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[PV_ERRMAX];

static void err_vset(const char *fmt, va_list ap)
{
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
}

int pv_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(fmt, ap);
    va_end(ap);
    return code;
}

int pv_errno(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(fmt, ap);
    va_end(ap);
    size_t n = strlen(err_buf);
    snprintf(err_buf + n, sizeof err_buf - n, ": %s", strerror(-code));
    return code;
}

int pv_errctx(int code, const char *fmt, ...)
{
    char old[PV_ERRMAX];
    memcpy(old, err_buf, sizeof old);
    if (!old[0])
        snprintf(old, sizeof old, "%s", strerror(-code));
    va_list ap;
    va_start(ap, fmt);
    err_vset(fmt, ap);
    va_end(ap);
    size_t n = strlen(err_buf);
    snprintf(err_buf + n, sizeof err_buf - n, ": %s", old);
    return code;
}

const char *pv_errmsg(void)
{
    return err_buf[0] ? err_buf : "unknown error";
}

void pv_errclear(void)
{
    err_buf[0] = 0;
}
