/* hash.h - FNV-1a over a C string: .prov's stable inode numbers and the
 * snapshot queue's index of paths in flight. */
#ifndef PV_HASH_H
#define PV_HASH_H

#include <stdint.h>

static inline uint64_t pv_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

#endif
