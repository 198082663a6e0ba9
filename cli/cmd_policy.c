/*
 * cmd_policy.c - `provfs policy check [FILE]` and `provfs policy show [FILE]`.
 *
 * check validates a policy without mounting and prints its content id, or
 * the first error as "FILE:LINE:COL: message" (the compiler format editors
 * jump to).  show prints the effective policy - the file layered on the
 * built-in default - as canonical YAML; its SHA-256 is the content id that
 * provfs records with each version.  Without FILE both use provfs.yaml at
 * the root of the enclosing workspace; show --default prints the built-in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "policies/policy.h"

#define POLICY_USAGE "provfs policy check [FILE] | provfs policy show [--default | FILE]"

/* The workspace's provfs.yaml: 0 and its path; 1 (message set) if the
 * workspace has none; negative if there is no workspace. */
static int workspace_policy(char *path, size_t len)
{
    struct cli_ws ws;
    int rc = cli_ws_find(NULL, &ws);
    if (rc)
        return rc;
    snprintf(path, len, "%s/%s", strcmp(ws.root, "/") ? ws.root : "", POL_FILE);
    if (access(path, F_OK)) {
        pv_err(-ENOENT, "no %s in workspace %s (the built-in default applies; "
               "see 'provfs policy show')", POL_FILE, ws.root);
        return 1;
    }
    return 0;
}

/* Load FILE, or the workspace's (with `fallback`, the built-in default if
 * the workspace has none); on a syntax or schema error print it
 * compiler-style and return 1. */
static int load(const char *arg, int fallback, struct pol **p, char *name, size_t len)
{
    struct pol_error e;
    if (arg) {
        snprintf(name, len, "%s", arg);
    } else {
        int rc = workspace_policy(name, len);
        if (rc == 1 && fallback) {
            fprintf(stderr, "provfs: no %s in this workspace; showing the built-in default\n",
                    POL_FILE);
            return pol_load_default(p) ? cli_fail("built-in policy") : 0;
        }
        if (rc)
            return cli_fail("policy");
    }
    if (!pol_load_file(p, name, &e))
        return 0;
    if (e.line)
        fprintf(stderr, "%s:%d:%d: %s\n", e.file, e.line, e.col, e.msg);
    else
        cli_fail("policy");
    return 1;
}

static int policy_check(int argc, char **argv)
{
    char name[PATH_MAX + 16];
    struct pol *p;
    if (argc > 2)
        return cli_usage(POLICY_USAGE, "policy check takes at most one FILE");
    if (argc == 2 && argv[1][0] == '-' && argv[1][1])
        return cli_usage(POLICY_USAGE, "unknown option '%s'", argv[1]);
    int rc = load(argc == 2 ? argv[1] : NULL, 0, &p, name, sizeof name);
    if (rc)
        return rc;
    printf("%s: ok (sha256 %s)\n", name, pol_content_hex(p));
    pol_free(p);
    return 0;
}

static int policy_show(int argc, char **argv)
{
    char name[PATH_MAX + 16];
    struct pol *p;
    int rc;
    if (argc > 2)
        return cli_usage(POLICY_USAGE, "policy show takes at most one FILE");
    if (argc == 2 && !strcmp(argv[1], "--default"))
        rc = pol_load_default(&p) ? cli_fail("built-in policy") : 0;
    else if (argc == 2 && argv[1][0] == '-' && argv[1][1])
        return cli_usage(POLICY_USAGE, "unknown option '%s'", argv[1]);
    else
        rc = load(argc == 2 ? argv[1] : NULL, 1, &p, name, sizeof name);
    if (rc)
        return rc;
    char *text;
    size_t len;
    if (pol_dump(p, &text, &len)) {
        pol_free(p);
        return cli_failf("policy: out of memory");
    }
    fwrite(text, 1, len, stdout);
    free(text);
    pol_free(p);
    return 0;
}

int cmd_policy(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(POLICY_USAGE, "policy needs a subcommand");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: %s\nSee provfs-policy(5).\n", POLICY_USAGE);
        return 0;
    }
    if (!strcmp(argv[1], "check"))
        return policy_check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "show"))
        return policy_show(argc - 1, argv + 1);
    return cli_usage(POLICY_USAGE, "unknown policy subcommand '%s'", argv[1]);
}
