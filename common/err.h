/*
 * err.h - the one error convention used by every provfs module.
 *
 * Every fallible function returns an int: 0 (or a non-negative count) on
 * success, a negative errno value on failure.  When the errno alone would not
 * tell a user what went wrong, the function also leaves a human sentence in a
 * thread-local buffer with pv_err(); callers read it with pv_errmsg().  The
 * CLI prints "provfs: <what>: <pv_errmsg()>".  This mirrors libgit2's
 * giterr_last(): the return code is for control flow, the message is for
 * people, and neither needs an out-parameter threaded through every call.
 */
#ifndef PV_ERR_H
#define PV_ERR_H

#include <errno.h>

#define PV_ERRMAX 1024

/* Record a message (printf-style) and return code, which must be negative.
 * Usage: return pv_err(-EINVAL, "bad version number '%s'", s); */
int pv_err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Like pv_err() but appends ": strerror(-code)". */
int pv_errno(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("opening store: ..."). */
int pv_errctx(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message set on this thread, or strerror of the last code. */
const char *pv_errmsg(void);
void pv_errclear(void);

#endif
