/*
 * policy.h - the workspace policy (provfs.yaml): load, validate, query.
 *
 * A policy decides what provfs records: which paths are tracked or ignored,
 * what kind each path is, what is snapshotted, which environment variables
 * are captured and what is redacted from them and from argv, which processes
 * are ignored, the lineage scope, gc retention and whether .prov is listed.
 * The file format is documented in provfs-policy(5); this header is the API.
 *
 * Loading is side-effect free: every pol_load_* returns a new, immutable
 * struct pol or an error, and never touches another policy.  A daemon that
 * reloads provfs.yaml on change loads the new file and swaps pointers only
 * on success, so a bad edit leaves the old policy in force.  A loaded policy
 * is read-only, so any number of threads may query it at once.
 *
 * A user policy is layered on the built-in default (policies/default.yaml):
 * scalars the file sets replace the default's, lists the file sets are
 * appended to the default's (so later user rules win), unless the file says
 * `inherit: false`, which starts every list empty.
 *
 * Paths given to queries are workspace-relative, without a leading '/'
 * ("data/raw.csv").  To ask about a directory, end its path with '/'
 * ("data/"): patterns that end in '/' match only directories.  Ask about
 * each path itself: an answer for a directory does not carry over to what
 * is inside it ("!build/keep/" re-includes part of an ignored "build/",
 * and with `track: ["src/main.py"]` the directory "src/" is not tracked).
 *
 * Errors follow common/err.h: 0 or a negative errno; the message is left
 * with pv_err() as "FILE:LINE:COL: message" and, when `err` is not NULL,
 * also split into struct pol_error.  Depends on common/ only.
 */
#ifndef POL_POLICY_H
#define POL_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Hard limits on what a policy file may be; beyond them it is rejected. */
#define POL_MAX_BYTES   (1u << 20)  /* file size                            */
#define POL_MAX_DEPTH   8           /* YAML nesting (the schema needs 3)    */
#define POL_MAX_NODES   100000      /* YAML scalars + collections           */
#define POL_MAX_SCALAR  4096        /* bytes in one key or value            */
#define POL_MAX_REGEX   64          /* redact.patterns entries              */

struct pol;

struct pol_error {
    char file[512];     /* name given to the loader ("<default>" for built-in) */
    int line, col;      /* 1-based; 0 when the error has no position          */
    char msg[512];
};

enum pol_kind { POL_DATASET, POL_MODEL, POL_CODE, POL_CONFIG, POL_METRICS,
                POL_OTHER, POL_NKINDS };
enum pol_snap { POL_SNAP_FULL, POL_SNAP_HASH_ONLY, POL_SNAP_NONE };
enum pol_scope { POL_SCOPE_PROCESS, POL_SCOPE_JOB };

struct pol_retention {
    uint64_t keep_last;     /* newest N versions of each path; 0 = no rule  */
    uint64_t keep_within;   /* versions younger than this many seconds; 0 = no rule */
    unsigned lineage_of;    /* bit (1u << kind): keep the ancestors of kept
                               versions of files of these kinds             */
};

/* --- loading ----------------------------------------------------------- */

/* Parse and validate `len` bytes named `name` (used in messages). */
int pol_load_buf(struct pol **out, const char *name, const char *buf,
                 size_t len, struct pol_error *err);
/* Read and load a file; -ENOENT etc. with the message set. */
int pol_load_file(struct pol **out, const char *path, struct pol_error *err);
/* Like pol_load_file, relative to a directory descriptor (the daemon reads
 * provfs.yaml through its descriptor of the backing directory, never
 * through its own mount).  `name` is used both to open and in messages. */
int pol_load_at(struct pol **out, int dirfd, const char *name,
                struct pol_error *err);
/* The built-in default policy. */
int pol_load_default(struct pol **out);
/* The rule for where a workspace's policy comes from, in one place: the
 * file `override` if not NULL (mount --policy FILE), else provfs.yaml in
 * the directory `dirfd` if it exists, else the built-in default.  An
 * unreadable or invalid file is an error, never a silent fallback. */
#define POL_FILE "provfs.yaml"
int pol_load_workspace(struct pol **out, int dirfd, const char *override,
                       struct pol_error *err);

/* A loaded policy starts with one reference.  pol_ref adds one and
 * pol_free drops one, freeing the policy at zero; both are atomic, so a
 * daemon can hand the policy in force to many threads and swap in a
 * reloaded one without waiting for them:
 *     lock; p = cur; pol_ref(p); unlock;  ...queries...;  pol_free(p);
 *     reload: lock; old = cur; cur = fresh; unlock; pol_free(old);    */
struct pol *pol_ref(struct pol *p);
void pol_free(struct pol *p);

/* The text of the built-in default (policies/default.yaml, embedded). */
const char *pol_default_text(size_t *len);

/* SHA-256 of the canonical form (what pol_dump prints) of the effective
 * policy: `provfs policy show | sha256sum` reproduces it, two files that mean
 * the same thing share it, and it changes when the built-in default does. */
const uint8_t *pol_content_id(const struct pol *p);
/* The same as 64 lowercase hex digits. */
const char *pol_content_hex(const struct pol *p);
/* The name the policy was loaded under. */
const char *pol_name(const struct pol *p);

/* The effective policy as YAML that pol_load_buf accepts and that means the
 * same (inherit: false, every key present).  *out is malloc'ed, NUL-ended. */
int pol_dump(const struct pol *p, char **out, size_t *len);

/* --- queries: all take workspace-relative paths ----------------------- */

/* Ignored paths are passed through untouched and never recorded. */
int pol_is_ignored(const struct pol *p, const char *relpath);
enum pol_kind pol_kind_of(const struct pol *p, const char *relpath);
const char *pol_kind_name(enum pol_kind k);
/* Parse a kind name; -EINVAL if unknown. */
int pol_kind_parse(const char *name, enum pol_kind *out);
/* How to record a new version of relpath whose content is `size` bytes. */
enum pol_snap pol_snapshot_mode(const struct pol *p, const char *relpath,
                                uint64_t size);
const char *pol_snap_name(enum pol_snap s);

/* Is this environment variable captured at all? */
int pol_env_allowed(const struct pol *p, const char *name);
/* Is the value of this variable a secret, to be replaced whole? */
int pol_env_secret(const struct pol *p, const char *name);

/* Redaction.  Each writes at most outlen bytes including a terminating NUL
 * (outlen may be 0) and returns the length of the full result, like
 * snprintf, so a caller can size a buffer and call again.  Redacted text is
 * replaced by POL_REDACTED. */
#define POL_REDACTED "[REDACTED]"
/* Apply redact.patterns to `len` bytes of text; NUL bytes inside separate
 * independent strings and are kept. */
size_t pol_redact(const struct pol *p, const char *in, size_t len,
                  char *out, size_t outlen);
/* A command line as in /proc/PID/cmdline: NUL-separated words.  Adds the
 * redact.flags rules ("--token=X", "--token X") to the patterns. */
size_t pol_redact_argv(const struct pol *p, const char *in, size_t len,
                       char *out, size_t outlen);
/* One variable's value: whole if pol_env_secret(name), else the patterns. */
size_t pol_redact_env(const struct pol *p, const char *name,
                      const char *value, char *out, size_t outlen);
/* A whole environment as in /proc/PID/environ ("NAME=VALUE" words, NUL
 * separated): keeps only the allowed variables, each NUL-terminated, with
 * values redacted.  What the daemon should store as a process's env. */
size_t pol_env_filter(const struct pol *p, const char *in, size_t len,
                      char *out, size_t outlen);

/* Should events of this process be dropped?  exe is the absolute path of
 * the executable, comm the kernel's 15-byte name; either may be NULL. */
int pol_proc_ignored(const struct pol *p, const char *exe, const char *comm);
enum pol_scope pol_scope(const struct pol *p);
const struct pol_retention *pol_retention(const struct pol *p);
/* Is .prov listed by readdir of the mount root? */
int pol_prov_listed(const struct pol *p);

/* --- the matcher, exposed for tests and for callers with ad hoc globs -- */

/* Does the single glob `pattern` (policy syntax, '!' not allowed) match
 * relpath?  -EINVAL with a message if the pattern is malformed. */
int pol_glob_match(const char *pattern, const char *relpath);

#endif
