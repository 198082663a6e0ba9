/*
 * commands.h - one function per subcommand, each in cli/cmd_<name>.c.
 * The dispatch table is in main.c.
 */
#ifndef CLI_COMMANDS_H
#define CLI_COMMANDS_H

int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_policy(int argc, char **argv);

#endif
