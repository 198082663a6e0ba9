/*
 * commands.h - one function per subcommand, each in cli/cmd_<name>.c.
 * The dispatch table is in main.c.
 */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

#include <stddef.h>

int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_lineage(int argc, char **argv);
int cmd_impact(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_gc(int argc, char **argv);

/* Shared by cat and restore (cmd_cat.c). */
struct cat_version;
int cli_write_all(void *ctx, const void *buf, size_t n);
int cli_version_unreadable(const struct cat_version *v, const char *name);
int cmd_policy(int argc, char **argv);

#endif
