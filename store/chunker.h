/*
 * chunker.h - content-defined chunking (FastCDC-style) over a byte stream.
 *
 * A chunk boundary depends only on the bytes since the previous boundary, so
 * an insertion or a patch changes the chunks around it and the chunking
 * re-synchronizes after it: identical runs of bytes in different files or
 * versions produce identical chunks, which is what makes deduplication work.
 *
 * Algorithm: a gear hash (fp = (fp << 1) + GEAR[byte]) over a 256-entry table
 * of fixed pseudo-random 64-bit constants (generated from a fixed seed, so
 * the table, and therefore every boundary, is the same in every build and on
 * every machine).  No cut is considered before `min` bytes; between `min` and
 * `avg` a cut needs the stricter mask (more bits), after `avg` the looser one
 * ("normalized chunking": sizes cluster around avg); a cut is forced at `max`.
 * Mask bits are spread over the upper 48 bits of fp, because bit k of a gear
 * hash depends on only the last k+1 bytes: low bits would make a tiny window.
 *
 * Streaming: the chunker holds no data, only the position in the current
 * chunk and the running hash, so the caller feeds buffers of any size as they
 * arrive and keeps (at most `max` bytes of) the current chunk itself.
 */
#ifndef STORE_CHUNKER_H
#define STORE_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

/* Defaults, and why: 64 KiB average keeps the index small (16 chunk records
 * per MiB, ~160k for a 10 GiB file) while a 10% patch in a few regions of a
 * model checkpoint re-stores only ~one average chunk of slack per region.
 * min = avg/4 skips hashing of a quarter of the bytes and bounds the record
 * overhead of tiny chunks; max = 4*avg bounds memory per chunk and the
 * compression unit, and is reached rarely (only in low-entropy runs). */
#define CHUNKER_MIN (16u << 10)
#define CHUNKER_AVG (64u << 10)
#define CHUNKER_MAX (256u << 10)

struct chunker_params {
    uint32_t min, avg, max;     /* avg a power of two; min < avg < max */
};

struct chunker {
    struct chunker_params p;
    uint64_t mask_s, mask_l;    /* strict (before avg) and loose (after) */
    uint64_t fp;
    uint64_t pos;               /* bytes of the current chunk seen so far */
};

/* params NULL = defaults.  Returns -EINVAL on bad parameters. */
int chunker_init(struct chunker *c, const struct chunker_params *params);

/* Forget the current chunk: the next byte fed starts a new chunk. */
void chunker_reset(struct chunker *c);

/* Feed n bytes.  Returns how many were consumed: if *cut is set, the current
 * chunk ends after the returned count (the chunker is then reset, ready for
 * the next chunk); otherwise all n bytes were consumed and the chunk goes on.
 * End of stream is always a boundary: the caller closes the last chunk. */
size_t chunker_feed(struct chunker *c, const uint8_t *buf, size_t n, int *cut);

#endif
