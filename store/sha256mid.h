/*
 * sha256mid.h - a streaming SHA-256 whose intermediate state can be saved
 * and resumed.
 *
 * The whole-content id is SHA-256 of the content.  Storing the state after
 * the last full block with each content lets an append be hashed from where
 * the previous version stopped instead of from byte 0: that is what makes a
 * re-snapshot after a 1 MiB append to a 1 GiB file cost ~1 MiB of hashing.
 */
#ifndef STORE_SHA256MID_H
#define STORE_SHA256MID_H

#include <stddef.h>
#include <stdint.h>

/* Serialized size: 8 state words, the byte count, and the partial block. */
#define SHA256MID_MAX (8 * 4 + 8 + 1 + 64)

struct sha256mid {
    _Alignas(16) unsigned char opaque[128];
};

void sha256mid_init(struct sha256mid *h);
void sha256mid_update(struct sha256mid *h, const void *p, size_t n);
/* Finish into out; h itself is left untouched (it can still be saved). */
void sha256mid_final(const struct sha256mid *h, uint8_t out[32]);
/* Total bytes hashed so far. */
uint64_t sha256mid_count(const struct sha256mid *h);
/* Serialize into buf (SHA256MID_MAX bytes); returns the length used. */
size_t sha256mid_save(const struct sha256mid *h, uint8_t *buf);
/* Restore from sha256mid_save() output; -EBADMSG if it is malformed. */
int sha256mid_load(struct sha256mid *h, const uint8_t *buf, size_t n);

#endif
