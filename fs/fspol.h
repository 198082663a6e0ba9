/*
 * fspol.h - the policy in force in the daemon, and its reload.
 *
 * The policy comes from `provfs mount --policy FILE`, else provfs.yaml at
 * the workspace root, else the built-in default (pol_load_workspace).  When
 * provfs.yaml is written, renamed into place or deleted through the mount,
 * capture calls fspol_reload(): the new file is loaded beside the old one
 * and swapped in only if it is valid; otherwise the old policy stays in
 * force and the error (file:line:col: message) is logged and shown by
 * `provfs status`.  A --policy override is never reloaded.
 *
 * Readers take a reference (fspol_get) and drop it (pol_free), so a reload
 * never waits for them and never frees a policy in use.
 */
#ifndef FS_FSPOL_H
#define FS_FSPOL_H

#include <stddef.h>

#include "policies/policy.h"

int fspol_init(int rootfd, const char *override);
void fspol_fini(void);

/* The policy in force, referenced: release with pol_free().  NULL only
 * before fspol_init. */
struct pol *fspol_get(void);

/* Reload provfs.yaml; 0 if the new policy is in force, else the error. */
int fspol_reload(void);

/* "name sha256" of the policy in force and the last reload error, if any. */
void fspol_describe(char *buf, size_t len, char *err, size_t errlen);

#endif
