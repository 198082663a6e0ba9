/*
 * log.h - the daemon's and CLI's diagnostic log.
 *
 * The daemon logs to a file (see provfs(1): <runtime dir>/<id>.log) because a
 * daemonized process has no terminal; the CLI logs to stderr.  Provenance
 * failures are logged here and never turned into errors for the user's own
 * file operations.
 */
#ifndef PV_LOG_H
#define PV_LOG_H

#include <stdio.h>

enum pv_loglevel { PV_LOG_ERROR, PV_LOG_WARN, PV_LOG_INFO, PV_LOG_DEBUG };

void pv_log_open(FILE *f, enum pv_loglevel max);
void pv_log(enum pv_loglevel lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define pv_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_warn(...)  pv_log(PV_LOG_WARN, __VA_ARGS__)
#define pv_info(...)  pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)

#endif
