/*
 * proc.h - who is calling: process identity read from /proc.
 *
 * FUSE tells us the *thread* id of the caller.  A process (a W3C PROV
 * activity) is identified by boot id + thread-group id + start time (field
 * 22 of /proc/PID/stat, in clock ticks since boot), so pid reuse never merges
 * two processes.  An exec keeps that key but changes the image (exe + argv).
 *
 * These functions only read /proc: no disk I/O, no locks held across calls.
 * Every one of them tolerates the process vanishing mid-read (-ESRCH).
 */
#ifndef FS_PROC_H
#define FS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_key {
    uint8_t boot_id[16];        /* /proc/sys/kernel/random/boot_id, binary */
    uint64_t start;             /* start time in clock ticks since boot    */
    pid_t tgid;
};

/* The fixed facts of a process, cheap to read (one /proc/PID/stat read). */
struct proc_stat {
    pid_t tgid, ppid, pgid, sid;
    uint64_t start;
    uint64_t arg_start;         /* field 48: address of argv; an exec moves
                                   it (new randomized stack), so together with
                                   comm it tells that the image changed */
    char comm[32];
};

/* The full description of a process, captured the first time it is seen. */
struct proc_info {
    struct proc_key key;
    struct proc_stat st;
    uid_t uid;
    gid_t gid;
    char *exe;                  /* readlink /proc/PID/exe, or "" */
    char *argv;                 /* NUL-separated, argv_len bytes (capped
                                   at 1 MiB), plus one uncounted NUL */
    size_t argv_len;
    char *cwd;                  /* readlink /proc/PID/cwd, or "" */
    char *env;                  /* NUL-separated NAME=VALUE, env_len bytes,
                                   same cap and NUL; empty if unreadable */
    size_t env_len;
    char *fd[3];                /* stdin/out/err: "pipe:[123]", "/dev/pts/1", path */
};

/* This boot's id, read once. */
int proc_boot_id(uint8_t out[16]);

/* Thread id -> thread-group id (from /proc/TID/status "Tgid:"). */
int proc_tgid(pid_t tid, pid_t *tgid);

/* Parse /proc/PID/stat.  Handles comm containing spaces and ')'. */
int proc_read_stat(pid_t pid, struct proc_stat *out);
/* The parser behind proc_read_stat(), exposed for unit tests. */
int proc_parse_stat(const char *buf, size_t len, struct proc_stat *out);

/* Read everything about tgid.  Free with proc_info_free(). */
int proc_read_info(pid_t tgid, struct proc_info *out);
void proc_info_free(struct proc_info *pi);

/* Read just exe and argv (to detect a new exec image).  Caller frees. */
int proc_read_image(pid_t tgid, char **exe, char **argv, size_t *argv_len);

#endif
