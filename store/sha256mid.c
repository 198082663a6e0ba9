/*
 * sha256mid.c - resumable SHA-256 on OpenSSL's low-level SHA256_CTX.
 *
 * Why the deprecated API: OpenSSL 3's EVP digests cannot export or import
 * their intermediate state, and that state is exactly what an incremental
 * append needs.  SHA256_CTX is a plain struct whose fields (h, Nl, Nh, data,
 * num) are public in <openssl/sha.h>, and SHA256_Update still dispatches to
 * the same SHA-NI/AVX code as EVP.  The deprecation is confined to this file;
 * the rest of store/ uses EVP.  The state is serialized field by field, not
 * as raw struct bytes, so it does not depend on the struct's padding.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "store/sha256mid.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include <openssl/sha.h>

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static_assert(sizeof(SHA256_CTX) <= sizeof(((struct sha256mid *)0)->opaque),
              "SHA256_CTX does not fit struct sha256mid");

static SHA256_CTX *mid_ctx(struct sha256mid *h)
{
    return (SHA256_CTX *)(void *)h->opaque;
}

static const SHA256_CTX *mid_cctx(const struct sha256mid *h)
{
    return (const SHA256_CTX *)(const void *)h->opaque;
}

void sha256mid_init(struct sha256mid *h)
{
    memset(h, 0, sizeof *h);
    SHA256_Init(mid_ctx(h));
}

void sha256mid_update(struct sha256mid *h, const void *p, size_t n)
{
    SHA256_Update(mid_ctx(h), p, n);
}

void sha256mid_final(const struct sha256mid *h, uint8_t out[32])
{
    SHA256_CTX c = *mid_cctx(h);
    SHA256_Final(out, &c);
}

uint64_t sha256mid_count(const struct sha256mid *h)
{
    const SHA256_CTX *c = mid_cctx(h);
    return ((uint64_t)c->Nh << 32 | c->Nl) / 8;   /* Nl/Nh count bits */
}

static void mid_put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v;
}

static uint32_t mid_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The partial block sits in data[] as raw input bytes (OpenSSL copies input
 * into it with memcpy), `num` of them: saved as bytes after the counters. */
size_t sha256mid_save(const struct sha256mid *h, uint8_t *buf)
{
    const SHA256_CTX *c = mid_cctx(h);
    uint8_t *p = buf;
    for (int i = 0; i < 8; i++, p += 4)
        mid_put32(p, c->h[i]);
    mid_put32(p, c->Nh); p += 4;
    mid_put32(p, c->Nl); p += 4;
    *p++ = (uint8_t)c->num;
    memcpy(p, c->data, c->num);
    return (size_t)(p - buf) + c->num;
}

int sha256mid_load(struct sha256mid *h, const uint8_t *buf, size_t n)
{
    if (n < 41 || buf[40] >= 64 || n != 41u + buf[40])
        return -EBADMSG;
    sha256mid_init(h);
    SHA256_CTX *c = mid_ctx(h);
    for (int i = 0; i < 8; i++)
        c->h[i] = mid_get32(buf + 4 * i);
    c->Nh = mid_get32(buf + 32);
    c->Nl = mid_get32(buf + 36);
    c->num = buf[40];
    memcpy(c->data, buf + 41, c->num);
    return 0;
}
