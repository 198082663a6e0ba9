/* clock.h - deadlines for pthread_cond_timedwait, shared by the daemon's
 * group-commit windows (capture's event writer, snapshot tombstones). */
#ifndef PV_CLOCK_H
#define PV_CLOCK_H

#include <time.h>

/* CLOCK_REALTIME now plus ns (0 <= ns < 1 s): the absolute time that
 * pthread_cond_timedwait takes with a default condition variable. */
static inline struct timespec pv_deadline_ns(long ns)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += ns;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

#endif
