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

int fs_mountinfo_find(const char *path, char *fstype, size_t len, dev_t *dev)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return pv_errno(-errno, "reading /proc/self/mountinfo");
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    /* The last matching entry wins: it is the topmost mount. */
    while (getline(&line, &cap, f) > 0) {
        char *save, *fields[12];
        int n = 0;
        for (char *t = strtok_r(line, " \n", &save); t && n < 12; t = strtok_r(NULL, " \n", &save))
            fields[n++] = t;
        if (n < 9)
            continue;
        mountinfo_unescape(fields[4]);
        if (strcmp(fields[4], path))
            continue;
        /* after the optional fields comes "-", then fstype */
        int i = 6;
        while (i < n && strcmp(fields[i], "-"))
            i++;
        unsigned maj, min;
        if (i + 1 >= n || sscanf(fields[2], "%u:%u", &maj, &min) != 2)
            continue;
        snprintf(fstype, len, "%s", fields[i + 1]);
        if (dev)
            *dev = makedev(maj, min);
        found = 1;
    }
    free(line);
    fclose(f);
    return found;
}
