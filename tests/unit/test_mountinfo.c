/* test_mountinfo.c - lines of /proc/self/mountinfo: escaped mount points,
 * optional fields, and the FUSE owner in the super options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "fs/mountinfo.h"

static int parse(const char *text, const char *path, struct fs_mountinfo *mi)
{
    char line[512];
    snprintf(line, sizeof line, "%s", text);
    memset(mi, 0, sizeof *mi);
    return fs_mountinfo_parse(line, path, mi);
}

static void test_user_fuse_mount(void **state)
{
    (void)state;
    struct fs_mountinfo mi;
    assert_int_equal(parse("812 29 0:39 / /tmp/my\\040ws rw,nosuid,nodev,relatime shared:447 "
                           "- fuse.provfs provfs rw,user_id=65534,group_id=65534,"
                           "default_permissions\n", "/tmp/my ws", &mi), 1);
    assert_string_equal(mi.fstype, "fuse.provfs");
    assert_true(mi.dev == makedev(0, 39));
    assert_int_equal(mi.user_id, 65534);
}

static void test_no_owner_and_no_optional_fields(void **state)
{
    (void)state;
    struct fs_mountinfo mi;
    assert_int_equal(parse("25 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n", "/", &mi), 1);
    assert_string_equal(mi.fstype, "ext4");
    assert_int_equal(mi.user_id, -1);
}

static void test_other_paths_and_short_lines(void **state)
{
    (void)state;
    struct fs_mountinfo mi;
    assert_int_equal(parse("812 29 0:39 / /tmp/a rw shared:1 - fuse.provfs provfs "
                           "rw,user_id=0\n", "/tmp/ab", &mi), 0);
    assert_int_equal(parse("812 29 0:39 / /tmp/a rw - fuse.provfs\n", "/tmp/a", &mi), 0);
    assert_int_equal(parse("garbage\n", "/tmp/a", &mi), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_fuse_mount),
        cmocka_unit_test(test_no_owner_and_no_optional_fields),
        cmocka_unit_test(test_other_paths_and_short_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
