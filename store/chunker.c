/* chunker.c - FastCDC-style gear-hash chunking; see chunker.h. */
#include "store/chunker.h"

#include <errno.h>
#include <pthread.h>

static uint64_t chunker_gear[256];
static pthread_once_t chunker_gear_once = PTHREAD_ONCE_INIT;

/* splitmix64: a tiny, well-mixed generator.  The seed is part of the on-disk
 * format: changing it changes every chunk boundary (dedup against old data
 * would be lost, though nothing would break). */
static uint64_t chunker_splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void chunker_gear_fill(void)
{
    uint64_t seed = 0x70726f7666732d31ull;  /* "provfs-1" */
    for (int i = 0; i < 256; i++)
        chunker_gear[i] = chunker_splitmix(&seed);
}

/* A mask of `bits` one-bits spread evenly over bits 63..16. */
static uint64_t chunker_mask(unsigned bits)
{
    uint64_t m = 0;
    for (unsigned i = 0; i < bits; i++)
        m |= 1ull << (63 - (i * 48) / bits);
    return m;
}

static unsigned chunker_log2(uint32_t v)
{
    unsigned b = 0;
    while (v >>= 1)
        b++;
    return b;
}

int chunker_init(struct chunker *c, const struct chunker_params *params)
{
    struct chunker_params d = { CHUNKER_MIN, CHUNKER_AVG, CHUNKER_MAX };
    const struct chunker_params *p = params ? params : &d;
    if (p->avg < 256 || (p->avg & (p->avg - 1)) || p->min >= p->avg ||
        p->avg >= p->max)
        return -EINVAL;
    pthread_once(&chunker_gear_once, chunker_gear_fill);
    c->p = *p;
    /* Normalization level 2, as the FastCDC paper recommends: two bits
     * stricter before avg, two looser after. */
    unsigned bits = chunker_log2(p->avg);
    c->mask_s = chunker_mask(bits + 2);
    c->mask_l = chunker_mask(bits - 2);
    chunker_reset(c);
    return 0;
}

void chunker_reset(struct chunker *c)
{
    c->fp = 0;
    c->pos = 0;
}

/* Scan buf[i..end) with one mask; returns the index just past a cut, or end. */
static size_t chunker_scan(struct chunker *c, const uint8_t *buf, size_t i,
                           size_t end, uint64_t mask, int *cut)
{
    uint64_t fp = c->fp;
    for (; i < end; i++) {
        fp = (fp << 1) + chunker_gear[buf[i]];
        if (!(fp & mask)) {
            *cut = 1;
            i++;
            break;
        }
    }
    c->fp = fp;
    return i;
}

size_t chunker_feed(struct chunker *c, const uint8_t *buf, size_t n, int *cut)
{
    size_t i = 0;
    *cut = 0;
    /* Sub-minimum bytes are skipped unhashed: no cut may fall there, and the
     * hash at a candidate only depends on the last 64 bytes anyway. */
    if (c->pos < c->p.min) {
        size_t skip = c->p.min - c->pos;
        if (skip >= n) {
            c->pos += n;
            return n;
        }
        i = skip;
        c->pos = c->p.min;
    }
    if (c->pos < c->p.avg) {
        size_t end = i + (c->p.avg - c->pos) < n ? i + (c->p.avg - c->pos) : n;
        size_t j = chunker_scan(c, buf, i, end, c->mask_s, cut);
        c->pos += j - i;
        i = j;
        if (*cut || i == n)
            goto out;
    }
    size_t end = i + (c->p.max - c->pos) < n ? i + (c->p.max - c->pos) : n;
    size_t j = chunker_scan(c, buf, i, end, c->mask_l, cut);
    c->pos += j - i;
    i = j;
    if (c->pos >= c->p.max)
        *cut = 1;
out:
    if (*cut)
        chunker_reset(c);
    return i;
}
