/* log.c - timestamped log lines, safe to call from any thread. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <time.h>

static FILE *log_file;
static enum pv_loglevel log_max = PV_LOG_WARN;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void pv_log_open(FILE *f, enum pv_loglevel max)
{
    pthread_mutex_lock(&log_lock);
    log_file = f;
    log_max = max;
    pthread_mutex_unlock(&log_lock);
}

void pv_log(enum pv_loglevel lvl, const char *fmt, ...)
{
    static const char *names[] = { "error", "warn", "info", "debug" };
    if (lvl > log_max)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    FILE *f = log_file ? log_file : stderr;
    fprintf(f, "%s.%03ldZ provfs[%s]: ", when, ts.tv_nsec / 1000000, names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
    pthread_mutex_unlock(&log_lock);
}
