/*
 * test_proc.c - fs/proc.c: stat parsing on hostile comm strings, and the
 * real /proc of this process, a child blocked on a pipe, a zombie, a
 * vanished pid and a thread.  Assumes Linux /proc and /bin/cat.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "fs/proc.h"

static char *self_argv0;

/* A full 52-field stat line around COMM: ppid 42, pgrp 43, session 44,
 * tpgid -1, start 12345, rsslim 2^64-1, arg_start 140737488351000. */
static int stat_line(char *buf, size_t cap, const char *comm)
{
    return snprintf(buf, cap,
                    "4711 (%s) S 42 43 44 34817 -1 4194304 100 0 0 0 "
                    "1 2 0 0 20 0 1 0 12345 1000000 200 "
                    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 "
                    "0 0 0 0 0 0 140737488351000 0 0 0 0\n", comm);
}

static void check_parsed(const char *comm, const char *want_comm)
{
    char buf[1024];
    struct proc_stat st;
    int n = stat_line(buf, sizeof buf, comm);
    assert_int_equal(proc_parse_stat(buf, (size_t)n, &st), 0);
    assert_int_equal(st.tgid, 4711);
    assert_int_equal(st.ppid, 42);
    assert_int_equal(st.pgid, 43);
    assert_int_equal(st.sid, 44);
    assert_int_equal(st.start, 12345);
    assert_int_equal(st.arg_start, 140737488351000ULL);
    assert_string_equal(st.comm, want_comm);
}

static void test_parse_plain(void **state)
{
    check_parsed("python3", "python3");
    check_parsed("", "");
}

static void test_parse_tricky_comm(void **state)
{
    check_parsed("a b c", "a b c");
    check_parsed("x) S 1 2 3", "x) S 1 2 3");   /* a forged field list */
    check_parsed(")", ")");
    check_parsed("((", "((");
    check_parsed("a)(b) )", "a)(b) )");
    check_parsed("new\nline", "new\nline");
}

static void test_parse_long_comm(void **state)
{
    char comm[65];
    memset(comm, 'k', 64);
    comm[64] = 0;
    char want[32];
    memset(want, 'k', 31);
    want[31] = 0;
    check_parsed(comm, want);
}

static void test_parse_malformed(void **state)
{
    struct proc_stat st;
    char buf[1024];
    static const char *const bad[] = {
        "",
        "4711 python3 S 1 2 3",
        "4711 (python3 S 1 2 3",
        "4711 (p) S 1 2 3 4 5",              /* fields stop before 22 */
        "x (p) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
        "4711 (p) S 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
        "4711 (p)",
        "-4711 (p) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
        /* 22 fields but not the 48 we read (arg_start) */
        "4711 (p) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
        /* a negative ppid */
        "4711 (p) S -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
        "21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 "
        "42 43 44 45 46 47 48 49",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(proc_parse_stat(bad[i], strlen(bad[i]), &st),
                         -EINVAL);
    /* The parser must honour len, not look for a NUL. */
    int n = stat_line(buf, sizeof buf, "p");
    assert_int_equal(proc_parse_stat(buf, 40, &st), -EINVAL);
    assert_int_equal(proc_parse_stat(buf, (size_t)n, &st), 0);
}

static void test_boot_id(void **state)
{
    uint8_t a[16], b[16], want[16];
    char txt[64];
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    assert_non_null(f);
    assert_non_null(fgets(txt, sizeof txt, f));
    fclose(f);
    unsigned v[16];
    assert_int_equal(sscanf(txt, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-"
                            "%2x%2x%2x%2x%2x%2x", &v[0], &v[1], &v[2], &v[3],
                            &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                            &v[11], &v[12], &v[13], &v[14], &v[15]), 16);
    for (int i = 0; i < 16; i++)
        want[i] = (uint8_t)v[i];
    assert_int_equal(proc_boot_id(a), 0);
    assert_int_equal(proc_boot_id(b), 0);
    assert_memory_equal(a, want, 16);
    assert_memory_equal(b, want, 16);
}

static void test_read_self(void **state)
{
    struct proc_info pi;
    char want[PATH_MAX];
    assert_int_equal(proc_read_info(getpid(), &pi), 0);
    assert_int_equal(pi.key.tgid, getpid());
    assert_int_equal(pi.st.tgid, getpid());
    assert_int_equal(pi.st.ppid, getppid());
    assert_int_equal(pi.st.pgid, getpgrp());
    assert_int_equal(pi.st.sid, getsid(0));
    assert_int_equal(pi.key.start, pi.st.start);
    assert_int_equal(pi.uid, getuid());
    assert_int_equal(pi.gid, getgid());
    ssize_t n = readlink("/proc/self/exe", want, sizeof want - 1);
    assert_true(n > 0);
    want[n] = 0;
    assert_string_equal(pi.exe, want);
    assert_non_null(getcwd(want, sizeof want));
    assert_string_equal(pi.cwd, want);
    assert_string_equal(pi.argv, self_argv0);   /* first NUL-separated arg */
    /* arg_start is where the kernel put argv[0]'s bytes. */
    assert_int_equal(pi.st.arg_start, (uintptr_t)self_argv0);
    assert_true(pi.argv_len > strlen(self_argv0));
    assert_int_equal(pi.argv[pi.argv_len - 1], 0);
    assert_non_null(pi.env);
    assert_non_null(pi.fd[0]);

    struct proc_stat st;
    assert_int_equal(proc_read_stat(getpid(), &st), 0);
    assert_int_equal(st.start, pi.st.start);
    assert_string_equal(st.comm, pi.st.comm);
    proc_info_free(&pi);
    assert_null(pi.exe);
}

/* A /bin/cat child reading a pipe: stdin is the pipe, stdout /dev/null,
 * stderr closed.  Returns once the exec has happened. */
struct child {
    pid_t pid;
    int wfd;                /* write end of the child's stdin */
    ino_t ino;              /* pipe inode */
};

static void spawn_cat(struct child *c, char *const argv[], char *const envp[])
{
    int in[2], sync[2];
    struct stat st;
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    assert_int_equal(fstat(in[0], &st), 0);
    c->ino = st.st_ino;
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (dup2(in[0], 0) < 0 || dup2(null, 1) < 0)
            _exit(127);
        close(2);
        execve("/bin/cat", argv, envp);
        _exit(127);
    }
    close(in[0]);
    close(sync[1]);
    char b;
    /* EOF when the child's exec closed its O_CLOEXEC copy of sync[1]. */
    assert_int_equal(read(sync[0], &b, 1), 0);
    close(sync[0]);
    c->wfd = in[1];
    /* After the exec, the dynamic loader briefly opens files at the lowest
     * free descriptor, 2 here: wait until cat blocks in read(0, ...), which
     * /proc/PID/syscall shows as "0 0x0 ..." on x86-64. */
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)c->pid);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "r");
        int in_read = f && fgets(line, sizeof line, f) && !strncmp(line, "0 0x0 ", 6);
        if (f)
            fclose(f);
        if (in_read)
            break;
        usleep(10000);
    }
}

static void reap(struct child *c)
{
    int status;
    close(c->wfd);          /* cat sees EOF */
    kill(c->pid, SIGKILL);  /* and in case it is reading its other args */
    assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
}

static void test_child_on_pipe(void **state)
{
    static const char want_argv[] = "cat\0-\0an arg\0with )( chars";
    char *argv[] = { "cat", "-", "an arg", "with )( chars", NULL };
    char *envp[] = { "PROVFS_TEST=1", "EMPTY=", NULL };
    struct child c;
    spawn_cat(&c, argv, envp);

    struct proc_info pi;
    assert_int_equal(proc_read_info(c.pid, &pi), 0);
    assert_int_equal(pi.st.tgid, c.pid);
    assert_int_equal(pi.st.ppid, getpid());
    assert_int_equal(pi.st.pgid, getpgrp());
    assert_string_equal(pi.st.comm, "cat");
    char exe[PATH_MAX];
    assert_non_null(realpath("/bin/cat", exe));
    assert_string_equal(pi.exe, exe);
    assert_int_equal(pi.argv_len, sizeof want_argv);
    assert_memory_equal(pi.argv, want_argv, sizeof want_argv);
    assert_int_equal(pi.env_len, sizeof "PROVFS_TEST=1\0EMPTY=");
    assert_memory_equal(pi.env, "PROVFS_TEST=1\0EMPTY=", pi.env_len);
    char pipe_name[64];
    snprintf(pipe_name, sizeof pipe_name, "pipe:[%lu]", (unsigned long)c.ino);
    assert_string_equal(pi.fd[0], pipe_name);
    assert_string_equal(pi.fd[1], "/dev/null");
    assert_string_equal(pi.fd[2], "");

    char *exe2, *argv2;
    size_t len2;
    assert_int_equal(proc_read_image(c.pid, &exe2, &argv2, &len2), 0);
    assert_string_equal(exe2, exe);
    assert_int_equal(len2, pi.argv_len);
    assert_memory_equal(argv2, pi.argv, len2);
    free(exe2);
    free(argv2);
    proc_info_free(&pi);
    reap(&c);
}

/* argv beyond the 1 MiB cap is truncated, not grown without bound. */
static void test_child_huge_argv(void **state)
{
    enum { NARG = 12, ARGSZ = 100000 };
    char *argv[NARG + 3] = { "cat", "-" };
    for (int i = 0; i < NARG; i++) {
        argv[2 + i] = malloc(ARGSZ);
        assert_non_null(argv[2 + i]);
        memset(argv[2 + i], 'a' + i, ARGSZ - 1);
        argv[2 + i][ARGSZ - 1] = 0;
    }
    char *envp[] = { NULL };
    struct child c;
    spawn_cat(&c, argv, envp);
    char *exe, *args;
    size_t len;
    assert_int_equal(proc_read_image(c.pid, &exe, &args, &len), 0);
    assert_int_equal(len, 1u << 20);
    assert_string_equal(args, "cat");
    assert_int_equal(args[6 + 5 * ARGSZ], 'f');   /* past several grows */
    free(exe);
    free(args);
    reap(&c);
    for (int i = 0; i < NARG; i++)
        free(argv[2 + i]);
}

static void test_zombie(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    siginfo_t si;
    /* Wait for the exit but leave the zombie in place. */
    assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
    struct proc_info pi;
    assert_int_equal(proc_read_info(pid, &pi), 0);
    assert_int_equal(pi.st.tgid, pid);
    assert_string_equal(pi.exe, "");
    assert_int_equal(pi.argv_len, 0);
    proc_info_free(&pi);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_vanished(void **state)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    struct proc_info pi;
    struct proc_stat st;
    pid_t tgid;
    char *exe, *argv;
    size_t len;
    pv_errclear();
    assert_int_equal(proc_read_info(pid, &pi), -ESRCH);
    assert_non_null(strstr(pv_errmsg(), "does not exist"));
    assert_null(pi.exe);
    assert_int_equal(proc_read_stat(pid, &st), -ESRCH);
    assert_int_equal(proc_read_image(pid, &exe, &argv, &len), -ESRCH);
    assert_int_equal(proc_tgid(pid, &tgid), -ESRCH);
}

struct thr {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pid_t tid;
    int done;
};

static void *thr_main(void *arg)
{
    struct thr *t = arg;
    pthread_mutex_lock(&t->mu);
    t->tid = gettid();
    pthread_cond_broadcast(&t->cv);
    while (!t->done)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void test_thread_tgid(void **state)
{
    struct thr t = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                     0, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thr_main, &t), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.tid)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);

    pid_t tgid = 0;
    assert_int_not_equal(t.tid, getpid());
    assert_int_equal(proc_tgid(t.tid, &tgid), 0);
    assert_int_equal(tgid, getpid());
    assert_int_equal(proc_tgid(getpid(), &tgid), 0);
    assert_int_equal(tgid, getpid());

    pthread_mutex_lock(&t.mu);
    t.done = 1;
    pthread_cond_broadcast(&t.cv);
    pthread_mutex_unlock(&t.mu);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* The daemon is long-lived and multi-threaded: no path may leak an fd.
 * proc_read_stat keeps the last callers' stat files open (bounded, see
 * test_stat_cache): warm the ones read here first. */
static void test_no_fd_leak(void **state)
{
    struct proc_stat warm;
    assert_int_equal(proc_read_stat(1, &warm), 0);
    int before = count_fds();
    for (int i = 0; i < 200; i++) {
        struct proc_info pi;
        struct proc_stat st;
        pid_t tgid;
        assert_int_equal(proc_read_info(getpid(), &pi), 0);
        proc_info_free(&pi);
        assert_int_equal(proc_read_stat(1, &st), 0);
        assert_int_equal(proc_tgid(getpid(), &tgid), 0);
        assert_int_equal(proc_read_info(INT_MAX, &pi), -ESRCH);
    }
    assert_int_equal(count_fds(), before);
}

/* proc_read_stat's open descriptors: the same answers as a fresh read, at
 * most one per slot, and a task's descriptor fails once it is gone (so a
 * recycled number can never borrow the dead task's identity), which also
 * releases the descriptor. */
static void test_stat_cache(void **state)
{
    enum { N = 40 };
    pid_t kids[N];
    int gate[2];
    int before = count_fds();
    assert_int_equal(pipe(gate), 0);
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            char c;
            close(gate[1]);
            (void)!read(gate[0], &c, 1);    /* until the parent closes it */
            _exit(0);
        }
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            struct proc_stat st, fresh;
            char path[48], buf[2048];
            assert_int_equal(proc_read_stat(kids[i], &st), 0);
            snprintf(path, sizeof path, "/proc/%d/stat", (int)kids[i]);
            int fd = open(path, O_RDONLY);
            assert_true(fd >= 0);
            ssize_t n = read(fd, buf, sizeof buf);
            close(fd);
            assert_true(n > 0);
            assert_int_equal(proc_parse_stat(buf, (size_t)n, &fresh), 0);
            assert_int_equal(st.tgid, kids[i]);
            assert_int_equal(st.start, fresh.start);
            assert_int_equal(st.ppid, getpid());
        }
    }
    int held = count_fds() - before - 2;     /* the gate pipe is open */
    assert_true(held >= 1 && held <= N);
    close(gate[0]);
    close(gate[1]);
    for (int i = 0; i < N; i++)
        assert_int_equal(waitpid(kids[i], NULL, 0), kids[i]);
    for (int i = 0; i < N; i++) {
        struct proc_stat st;
        assert_int_equal(proc_read_stat(kids[i], &st), -ESRCH);
    }
    /* Every descriptor opened for the children is closed again.  (A child
     * may have taken the slot of a descriptor cached before, so the count
     * can also end below where it began.) */
    assert_true(count_fds() <= before);
}

int main(int argc, char **argv)
{
    self_argv0 = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_plain),
        cmocka_unit_test(test_parse_tricky_comm),
        cmocka_unit_test(test_parse_long_comm),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_boot_id),
        cmocka_unit_test(test_read_self),
        cmocka_unit_test(test_child_on_pipe),
        cmocka_unit_test(test_child_huge_argv),
        cmocka_unit_test(test_zombie),
        cmocka_unit_test(test_vanished),
        cmocka_unit_test(test_thread_tgid),
        cmocka_unit_test(test_no_fd_leak),
        cmocka_unit_test(test_stat_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
