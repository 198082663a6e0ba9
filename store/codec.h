/*
 * codec.h - compact binary records for LMDB values.
 *
 * A record is a sequence of fields written in a fixed order: unsigned
 * LEB128 varints and length-prefixed byte strings.  New fields are appended
 * at the end; readers stop early on old records (the reader reports 0 for
 * missing trailing fields), so the schema can grow without migrations.
 * Errors are sticky: check .err once after a run of puts or gets.
 */
#ifndef STORE_CODEC_H
#define STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

struct cbuf {
    uint8_t *p;
    size_t len, cap;
    int err;            /* 0 or -ENOMEM */
};

struct cread {
    const uint8_t *p, *end;
    int err;            /* 0 or -EBADMSG on a truncated field */
};

void cbuf_init(struct cbuf *b);
void cbuf_free(struct cbuf *b);
void cbuf_reset(struct cbuf *b);
void cbuf_put_u64(struct cbuf *b, uint64_t v);
void cbuf_put_bytes(struct cbuf *b, const void *p, size_t n);
void cbuf_put_str(struct cbuf *b, const char *s);  /* NULL stored as "" */
void cbuf_put_raw(struct cbuf *b, const void *p, size_t n); /* no length */

void cread_init(struct cread *r, const void *p, size_t n);
uint64_t cread_u64(struct cread *r);
/* Returns a pointer into the record (not NUL-terminated) and its length. */
const uint8_t *cread_bytes(struct cread *r, size_t *n);
const uint8_t *cread_raw(struct cread *r, size_t n);
int cread_more(const struct cread *r);

#endif
