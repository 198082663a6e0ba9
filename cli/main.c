/*
 * main.c - `provfs <command> [options] [args]`: find the command in the
 * table and run it.  Each command lives in cli/cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"

#define PROVFS_VERSION "0.1.0"

static int cmd_help(int argc, char **argv);

static const struct cli_cmd commands[] = {
    { "mount",   cmd_mount,   "overlay a workspace and start capturing" },
    { "umount",  cmd_umount,  "drain pending work and unmount" },
    { "status",  cmd_status,  "is it mounted; what has been recorded" },
    { "ps",      cmd_ps,      "list recorded processes" },
    { "events",  cmd_events,  "list recorded events" },
    { "log",     cmd_log,     "the versions of a file, newest first" },
    { "cat",     cmd_cat,     "write a version's content to stdout" },
    { "restore", cmd_restore, "bring a version back (recorded as derived from it)" },
    { "show",    cmd_show,    "one version in full: content, writer, inputs, outputs" },
    { "lineage", cmd_lineage, "where a version came from (--down: what it fed)" },
    { "impact",  cmd_impact,  "what was derived from a version (lineage --down)" },
    { "diff",    cmd_diff,    "why two versions differ: inputs, writers, text diffs" },
    { "export",  cmd_export,  "the whole graph as JSON lines, PROV-JSON or DOT" },
    { "stats",   cmd_stats,   "logical vs stored bytes, dedup+compression ratio, counts" },
    { "fsck",    cmd_fsck,    "check every chunk, content, version and index" },
    { "gc",      cmd_gc,      "drop old versions (retention) and free unused chunks" },
    { "policy", cmd_policy, "check or show the YAML policy" },
    { "help",    cmd_help,    "this list" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int cmd_help(int argc, char **argv)
{
    (void)argc; (void)argv;
    printf("usage: provfs <command> [options] [args]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\nSee provfs(1).  Each command takes --help.\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(0, NULL) ? 2 : 2;
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("provfs %s\n", PROVFS_VERSION);
        return 0;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(0, NULL);
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "provfs: '%s' is not a provfs command; see 'provfs help'\n", argv[1]);
    return 2;
}
