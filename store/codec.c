/* codec.c - varint and byte-string record encoding; see codec.h. */
#include "store/codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cbuf_init(struct cbuf *b)
{
    memset(b, 0, sizeof *b);
}

void cbuf_free(struct cbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void cbuf_reset(struct cbuf *b)
{
    b->len = 0;
    b->err = 0;
}

static int cbuf_reserve(struct cbuf *b, size_t n)
{
    if (b->err)
        return b->err;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return b->err = -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

void cbuf_put_raw(struct cbuf *b, const void *p, size_t n)
{
    if (cbuf_reserve(b, n) || n == 0)
        return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void cbuf_put_u64(struct cbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        tmp[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    cbuf_put_raw(b, tmp, n);
}

void cbuf_put_bytes(struct cbuf *b, const void *p, size_t n)
{
    cbuf_put_u64(b, n);
    cbuf_put_raw(b, p, n);
}

void cbuf_put_str(struct cbuf *b, const char *s)
{
    cbuf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

void cread_init(struct cread *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->err = 0;
}

int cread_more(const struct cread *r)
{
    return !r->err && r->p < r->end;
}

uint64_t cread_u64(struct cread *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->err || r->p >= r->end)
            return 0;   /* missing trailing field reads as 0 */
        uint8_t byte = *r->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    r->err = -EBADMSG;
    return 0;
}

const uint8_t *cread_raw(struct cread *r, size_t n)
{
    if (r->err)
        return NULL;
    if ((size_t)(r->end - r->p) < n) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

const uint8_t *cread_bytes(struct cread *r, size_t *n)
{
    if (r->p >= r->end && !r->err) {
        *n = 0;
        return (const uint8_t *)"";
    }
    *n = cread_u64(r);
    const uint8_t *p = cread_raw(r, *n);
    if (!p)
        *n = 0;
    return p ? p : (const uint8_t *)"";
}
