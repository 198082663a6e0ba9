/* json.c - JSON string escaping with surrogateescape; see json.h. */
#include "store/json.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

/* Length of a valid UTF-8 sequence at p (max n bytes), or 0 if invalid. */
static size_t json_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* reject overlong forms, surrogates and out-of-range code points */
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

void json_str(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = json_utf8_len(p + i, n - i);
        if (len == 0) {
            fprintf(f, "\\udc%02x", c);
            i++;
            continue;
        }
        if (len > 1) {
            fwrite(p + i, 1, len, f);
        } else if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc((int)c, f);
        }
        i += len;
    }
    fputc('"', f);
}

void json_strv(FILE *f, const char *p, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n;) {
        size_t len = strnlen(p + i, n - i);
        if (i)
            fputc(',', f);
        json_str(f, p + i, len);
        i += len + 1;
    }
    fputc(']', f);
}

void json_time(FILE *f, unsigned long long ns)
{
    time_t t = (time_t)(ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(f, "\"%s.%06lluZ\"", buf, (ns % 1000000000ull) / 1000);
}

void json_fmt_localtime(char *buf, size_t len, unsigned long long ns)
{
    time_t t = (time_t)(ns / 1000000000ull);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}
