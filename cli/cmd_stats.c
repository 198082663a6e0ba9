/*
 * cmd_stats.c - `provfs stats [--json]`: how much the versions hold
 * (logical bytes), how much the store keeps for them (stored bytes, after
 * deduplication and compression), the combined ratio, and the counts of
 * chunks, contents and versions.  Read-only; works mounted or not.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/content.h"
#include "store/maint.h"
#include "store/render.h"
#include "store/store.h"

#define STATS_USAGE "provfs stats [--json]"

static double stats_ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void stats_json(const struct content_stats *s, const struct maint_vcounts *v)
{
    printf("{\"logical_bytes\":%llu,\"content_bytes\":%llu,\"chunk_bytes\":%llu,"
           "\"stored_bytes\":%llu,\"pack_bytes\":%llu,\"ratio\":%.3f,\"dedup_ratio\":%.3f,"
           "\"compression_ratio\":%.3f,\"chunks\":%llu,\"dead_chunks\":%llu,\"contents\":%llu,",
           (unsigned long long)s->logical_bytes, (unsigned long long)s->content_bytes,
           (unsigned long long)s->chunk_bytes, (unsigned long long)s->stored_bytes,
           (unsigned long long)s->pack_bytes, stats_ratio(s->logical_bytes, s->stored_bytes),
           stats_ratio(s->logical_bytes, s->chunk_bytes),
           stats_ratio(s->chunk_bytes, s->stored_bytes), (unsigned long long)s->chunks,
           (unsigned long long)s->dead_chunks, (unsigned long long)s->contents);
    printf("\"versions\":{\"total\":%llu,\"stored\":%llu,\"missing\":%llu,\"hash_only\":%llu,"
           "\"unstored\":%llu,\"deleted\":%llu}}\n",
           (unsigned long long)v->versions, (unsigned long long)v->stored,
           (unsigned long long)v->missing, (unsigned long long)v->hash_only,
           (unsigned long long)v->unstored, (unsigned long long)v->deleted);
}

static void stats_text(const struct content_stats *s, const struct maint_vcounts *v)
{
    char a[32], b[32], c[32];
    render_size(a, sizeof a, s->logical_bytes);
    printf("logical:   %s (what the %llu versions with content hold)\n", a,
           (unsigned long long)v->stored);
    render_size(a, sizeof a, s->stored_bytes);
    render_size(b, sizeof b, s->pack_bytes);
    printf("stored:    %s (pack files on disk: %s)\n", a, b);
    printf("ratio:     %.2fx (deduplication %.2fx, compression %.2fx)\n",
           stats_ratio(s->logical_bytes, s->stored_bytes),
           stats_ratio(s->logical_bytes, s->chunk_bytes),
           stats_ratio(s->chunk_bytes, s->stored_bytes));
    render_size(c, sizeof c, s->content_bytes);
    printf("contents:  %llu distinct (%s)\n", (unsigned long long)s->contents, c);
    printf("chunks:    %llu", (unsigned long long)s->chunks);
    if (s->dead_chunks)
        printf(" (and %llu unreferenced, freed by provfs gc)", (unsigned long long)s->dead_chunks);
    printf("\nversions:  %llu: %llu with content, %llu not captured, %llu hash only, "
           "%llu not stored, %llu deletions\n",
           (unsigned long long)v->versions, (unsigned long long)v->stored,
           (unsigned long long)v->missing, (unsigned long long)v->hash_only,
           (unsigned long long)v->unstored, (unsigned long long)v->deleted);
}

int cmd_stats(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "+jh", longopts, NULL)) != -1) {
        if (opt == 'j') json = 1;
        else if (opt == 'h') { printf("usage: %s\n", STATS_USAGE); return 0; }
        else return cli_usage(STATS_USAGE, "bad arguments");
    }
    if (optind != argc)
        return cli_usage(STATS_USAGE, "no arguments expected");
    struct cli_ws ws;
    struct store *st;
    struct cat_reader *rd;
    struct content_stats s;
    struct maint_vcounts v;
    if (cli_ws_find(NULL, &ws) || cli_ws_open_store(&ws, STORE_RDONLY, &st))
        return cli_fail("stats");
    int rc = content_stats(st, &s);
    if (!rc && !(rc = cat_read_begin(st, &rd))) {
        rc = maint_version_counts(rd, &v);
        cat_read_end(rd);
    }
    store_close(st);
    if (rc)
        return cli_fail("stats");
    if (json)
        stats_json(&s, &v);
    else
        stats_text(&s, &v);
    return 0;
}
