/*
 * render.h - one renderer per output format, shared by the CLI and the .prov
 * tree (design 2): the same bytes whichever face asks.
 */
#ifndef STORE_RENDER_H
#define STORE_RENDER_H

#include <stdio.h>

#include "store/catalog.h"

/* Bytes for people: printable text as is, newlines, tabs, backslashes and
 * control bytes escaped (\n, \t, \\, \xNN), so a record stays on one line
 * whatever a file is called. */
void render_text_bytes(FILE *f, const char *p, size_t n);
/* argv (NUL-separated) on one line, words separated by spaces. */
void render_text_argv(FILE *f, const char *p, size_t n);

/* Hex of a content id: all 64 digits, or the first 12 (short). */
void render_id_hex(const uint8_t id[32], char *out, int short_form);

/* The command line of a process's last image (or first argv), for humans. */
void render_proc_cmdline(FILE *f, struct cat_reader *rd, uint64_t proc_id);

/* A version as a JSON object (no trailing newline). */
void render_version_json(FILE *f, struct cat_reader *rd, struct cat_str path,
                         const struct cat_version *v);

/* A version as one line of `provfs log` text (header with render_log_header). */
void render_log_header(FILE *f);
void render_log_line(FILE *f, struct cat_reader *rd, const struct cat_version *v);

/* A process as a JSON object with its images (no trailing newline). */
void render_proc_json(FILE *f, struct cat_reader *rd, const struct cat_proc *p);

/* Human sizes: "812 B", "12.3 KiB", "1.5 GiB". */
void render_size(char *buf, size_t len, unsigned long long n);

#endif
