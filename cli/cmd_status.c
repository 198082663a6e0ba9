/*
 * cmd_status.c - `provfs status [--json] [DIR]`: is the workspace mounted,
 * by which daemon, what has been recorded, and how deep the queues are.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "store/catalog.h"
#include "store/json.h"
#include "store/maint.h"
#include "store/store.h"

#define STATUS_USAGE "provfs status [--json] [DIR]"

struct status_live {
    int ok;
    char policy[700], policy_error[1100];
    unsigned long long queued, committed, procs, gaps, batches, inodes, open_fds;
    unsigned long long passthrough, pt_offered, killpriv, opens_pt, opens_cached, reads;
    unsigned long long dir_opens, dir_cached, dir_reads;
    unsigned long long ring_offered, ring_queues, ring_served;
    unsigned long long snap_queued, snap_done, snap_failed, snap_batches;
};

static void status_parse_live(const char *ans, struct status_live *l)
{
    struct { const char *k; unsigned long long *v; } keys[] = {
        { "queued", &l->queued }, { "committed", &l->committed },
        { "procs", &l->procs }, { "gaps", &l->gaps }, { "batches", &l->batches },
        { "inodes", &l->inodes }, { "open_fds", &l->open_fds },
        { "passthrough", &l->passthrough }, { "pt_offered", &l->pt_offered },
        { "killpriv", &l->killpriv },
        { "opens_pt", &l->opens_pt }, { "opens_cached", &l->opens_cached },
        { "reads", &l->reads }, { "dir_opens", &l->dir_opens },
        { "dir_cached", &l->dir_cached }, { "dir_reads", &l->dir_reads },
        { "snapshots_queued", &l->snap_queued }, { "snapshots_done", &l->snap_done },
        { "snapshots_failed", &l->snap_failed }, { "snapshot_batches", &l->snap_batches },
        { "ring_offered", &l->ring_offered }, { "ring_queues", &l->ring_queues },
        { "ring_served", &l->ring_served },
    };
    for (const char *p = ans; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            size_t kl = strlen(keys[i].k);
            if (!strncmp(p, keys[i].k, kl) && p[kl] == '=')
                *keys[i].v = strtoull(p + kl + 1, NULL, 10);
        }
        if (!strncmp(p, "end", 3))
            l->ok = 1;
        if (!strncmp(p, "policy=", 7))
            sscanf(p + 7, "%699[^\n]", l->policy);
        if (!strncmp(p, "policy_error=", 13))
            sscanf(p + 13, "%1099[^\n]", l->policy_error);
    }
}

static void status_print_json(const struct cli_ws *ws, const struct cat_counts *c,
                              const struct maint_vcounts *vc, const struct status_live *l)
{
    printf("{\"workspace\":");
    json_str(stdout, ws->root, strlen(ws->root));
    printf(",\"mounted\":%s", ws->mounted ? "true" : "false");
    if (ws->mounted) {
        printf(",\"pid\":%d,\"source\":", (int)ws->rt.pid);
        json_str(stdout, ws->rt.source, strlen(ws->rt.source));
        printf(",\"log\":");
        json_str(stdout, ws->rt.log, strlen(ws->rt.log));
    }
    printf(",\"events\":%llu,\"processes\":%llu,\"files\":%llu,\"images\":%llu,\"gaps\":%llu",
           (unsigned long long)c->events, (unsigned long long)c->procs,
           (unsigned long long)c->files, (unsigned long long)c->images,
           (unsigned long long)c->gaps);
    printf(",\"versions\":%llu,\"versions_not_captured\":%llu",
           (unsigned long long)vc->versions, (unsigned long long)vc->missing);
    if (l->ok)
        printf(",\"queue\":{\"events\":%llu},\"daemon\":{\"committed\":%llu,"
               "\"processes\":%llu,\"gaps\":%llu,\"batches\":%llu,\"inodes\":%llu,"
               "\"open_fds\":%llu,\"passthrough\":%s,\"passthrough_offered\":%s,"
               "\"killpriv_v2\":%s,"
               "\"opens_passthrough\":%llu,\"opens_cached\":%llu,\"reads\":%llu,"
               "\"dir_opens\":%llu,\"dir_opens_cached\":%llu,\"dir_reads\":%llu,"
               "\"snapshots\":{\"queued\":%llu,\"done\":%llu,\"failed\":%llu,\"batches\":%llu},"
               "\"io_uring\":{\"offered\":%s,\"queues\":%llu,\"requests\":%llu}}",
               l->queued, l->committed, l->procs, l->gaps, l->batches, l->inodes,
               l->open_fds, l->passthrough ? "true" : "false",
               l->pt_offered ? "true" : "false",
               l->killpriv ? "true" : "false", l->opens_pt, l->opens_cached, l->reads,
               l->dir_opens, l->dir_cached, l->dir_reads, l->snap_queued, l->snap_done,
               l->snap_failed, l->snap_batches, l->ring_offered ? "true" : "false",
               l->ring_queues, l->ring_served);
    if (l->policy[0]) {
        printf(",\"policy\":");
        json_str(stdout, l->policy, strlen(l->policy));
        printf(",\"policy_error\":");
        if (l->policy_error[0])
            json_str(stdout, l->policy_error, strlen(l->policy_error));
        else
            printf("null");
    }
    printf("}\n");
}

static void status_print_text(const struct cli_ws *ws, const struct cat_counts *c,
                              const struct maint_vcounts *vc, const struct status_live *l)
{
    printf("workspace: %s\n", ws->root);
    if (ws->mounted)
        printf("mounted:   yes (daemon pid %d, source %s)\nlog:       %s\n",
               (int)ws->rt.pid, ws->rt.source, ws->rt.log);
    else
        printf("mounted:   no\n");
    printf("recorded:  %llu events, %llu processes, %llu files\n",
           (unsigned long long)c->events, (unsigned long long)c->procs,
           (unsigned long long)c->files);
    if (c->gaps)
        printf("gaps:      %llu events could not be recorded (see the log)\n",
               (unsigned long long)c->gaps);
    printf("versions:  %llu", (unsigned long long)vc->versions);
    if (vc->missing)
        printf(", %llu not captured (no content: see provfs log and the daemon log)",
               (unsigned long long)vc->missing);
    putchar('\n');
    if (l->policy[0])
        printf("policy:    %s\n", l->policy);
    if (l->policy_error[0])
        printf("policy:    the last edit was rejected, the policy above stays in force: %s\n",
               l->policy_error);
    if (l->ok) {
        printf("queue:     %llu records waiting to be committed; %llu committed in "
               "%llu batches since mount\n", l->queued, l->committed, l->batches);
        printf("kernel:    passthrough %s, killpriv_v2 %s; %llu opens passthrough, "
               "%llu through the daemon, %llu reads served by the daemon\n",
               l->passthrough ? "on" : "off", l->killpriv ? "on" : "off",
               l->opens_pt, l->opens_cached, l->reads);
        printf("snapshots: %llu jobs waiting; %llu done and %llu failed in %llu "
               "transactions since mount\n",
               l->snap_queued, l->snap_done, l->snap_failed, l->snap_batches);
        printf("listings:  %llu directory opens, %llu of them allowed the kernel's "
               "listing cache; %llu READDIR requests\n",
               l->dir_opens, l->dir_cached, l->dir_reads);
        if (l->ring_queues)
            printf("transport: io_uring, %llu queues; %llu requests answered through them\n",
                   l->ring_queues, l->ring_served);
        else
            printf("transport: /dev/fuse (io_uring %s)\n", l->ring_offered
                   ? "offered by the kernel but not used: see the log"
                   : "not offered: the fuse module's enable_uring is N");
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 }
    };
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+jh", longopts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') { printf("usage: %s\n", STATUS_USAGE); return 0; }
        else return cli_usage(STATUS_USAGE, "bad arguments");
    }
    if (argc - optind > 1)
        return cli_usage(STATUS_USAGE, "expected at most one directory");
    struct cli_ws ws;
    if (cli_ws_find(optind < argc ? argv[optind] : NULL, &ws))
        return cli_fail("status");
    struct status_live live = { 0 };
    char ans[1024];
    if (ws.mounted && fs_runtime_request(&ws.rt, "status", ans, sizeof ans) == 0)
        status_parse_live(ans, &live);
    struct store *st;
    struct cat_reader *rd;
    struct cat_counts counts;
    struct maint_vcounts vc;
    if (store_open(&st, ws.store, STORE_RDONLY))
        return cli_fail("status");
    int rc = cat_read_begin(st, &rd);
    if (!rc) {
        rc = cat_counts(rd, &counts);
        if (!rc)
            rc = maint_version_counts(rd, &vc);
        cat_read_end(rd);
    }
    store_close(st);
    if (rc)
        return cli_fail("status");
    if (json)
        status_print_json(&ws, &counts, &vc, &live);
    else
        status_print_text(&ws, &counts, &vc, &live);
    return 0;
}
