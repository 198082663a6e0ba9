/* mountinfo.c - find a mount point in /proc/self/mountinfo; see mountinfo.h. */
#include "fs/mountinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "common/err.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void mountinfo_unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
            *o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 3;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

/* The super options (last field): the uid in user_id=N, or -1. */
static long mountinfo_user_id(char **fields, int n)
{
    const char *p = strstr(fields[n - 1], "user_id=");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

int fs_mountinfo_parse(char *line, const char *path, struct fs_mountinfo *out)
{
    char *save, *fields[16];
    int n = 0;
    for (char *t = strtok_r(line, " \n", &save); t && n < 16; t = strtok_r(NULL, " \n", &save))
        fields[n++] = t;
    if (n < 9)
        return 0;
    mountinfo_unescape(fields[4]);
    if (strcmp(fields[4], path))
        return 0;
    /* after the optional fields comes "-", then fstype, source and the
     * super options */
    int i = 6;
    while (i < n && strcmp(fields[i], "-"))
        i++;
    unsigned maj, min;
    if (i + 3 >= n || sscanf(fields[2], "%u:%u", &maj, &min) != 2)
        return 0;
    snprintf(out->fstype, sizeof out->fstype, "%s", fields[i + 1]);
    out->dev = makedev(maj, min);
    out->user_id = mountinfo_user_id(fields, n);
    return 1;
}

int fs_mountinfo_get(const char *path, struct fs_mountinfo *out)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return pv_errno(-errno, "reading /proc/self/mountinfo");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    /* The last matching entry wins: it is the topmost mount. */
    while (getline(&line, &cap, f) > 0)
        found |= fs_mountinfo_parse(line, path, out);
    free(line);
    fclose(f);
    return found;
}

int fs_mountinfo_find(const char *path, char *fstype, size_t len, dev_t *dev)
{
    struct fs_mountinfo mi;
    int rc = fs_mountinfo_get(path, &mi);
    if (rc == 1) {
        snprintf(fstype, len, "%s", mi.fstype);
        if (dev)
            *dev = mi.dev;
    }
    return rc;
}
