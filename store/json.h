/*
 * json.h - writing JSON text.  Shared by every renderer (CLI and .prov).
 *
 * File names and argv are bytes, not text.  Bytes that are not valid UTF-8
 * are written as \udcXX (a lone low surrogate, the "surrogateescape"
 * convention), so `json.loads(s).encode('utf-8', 'surrogateescape')` in
 * Python gives back the exact bytes.
 */
#ifndef STORE_JSON_H
#define STORE_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Write p[0..n) as a quoted JSON string. */
void json_str(FILE *f, const char *p, size_t n);
/* Same, for a NUL-separated list (argv, env): a JSON array of strings. */
void json_strv(FILE *f, const char *p, size_t n);
/* Nanoseconds since the epoch as an RFC 3339 UTC string "...Z" (quoted). */
void json_time(FILE *f, unsigned long long ns);
/* Format ns as "YYYY-MM-DD HH:MM:SS" local time into buf (>= 32 bytes). */
void json_fmt_localtime(char *buf, size_t len, unsigned long long ns);

#endif
