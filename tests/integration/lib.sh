# tests/integration/lib.sh - helpers for integration tests (source it).
#
# Each test script mounts its own temporary workspace with ws_mount, and a
# trap unmounts it and kills the daemon it started, by PID, even when the
# test fails.  Results are TAP-like lines: "ok - what" / "not ok - what";
# tests/run counts them.
set -u
: "${PROVFS:?PROVFS must name the provfs binary}"
export LC_ALL=C.UTF-8
T_FAILS=0
T_DIRS=()
T_MOUNTS=()

ok()      { echo "ok - $*"; }
not_ok()  { echo "not ok - $*"; T_FAILS=$((T_FAILS + 1)); }
# check DESC CMD...: ok when CMD succeeds
check()   { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# check_eq DESC EXPECTED ACTUAL
check_eq() {
    if [ "$2" == "$3" ]; then ok "$1"; else
        not_ok "$1"; printf '#   expected: %q\n#   actual:   %q\n' "$2" "$3"; fi
}
# check_fails DESC CMD...: ok when CMD fails (exit != 0)
check_fails() { local d=$1; shift; if "$@"; then not_ok "$d"; else ok "$d"; fi; }

# A fresh temporary directory, removed at exit.
t_tmpdir() {
    local d; d=$(mktemp -d /tmp/provfs-test.XXXXXX)
    T_DIRS+=("$d"); echo "$d"
}

# ws_mount DIR [provfs mount options...]: mount DIR over itself.  In the
# suite's io_uring pass (tests/run sets PROVFS_TEST_TRANSPORT), a mount that
# does not serve over io_uring is a failure, unless it asked for uring=off.
ws_mount() {
    local dir=$1; shift
    "$PROVFS" mount "$@" "$dir" || { echo "# mount of $dir failed"; return 1; }
    T_MOUNTS+=("$dir")
    if [ "${PROVFS_TEST_TRANSPORT:-}" = io_uring ] && [[ " $* " != *uring=off* ]]; then
        stat "$dir" >/dev/null
        "$PROVFS" status "$dir" | grep -q '^transport: io_uring' ||
            not_ok "mount of $dir serves over io_uring"
    fi
    return 0
}

# The fuse module's switch for FUSE over io_uring (Linux 6.14+).  It counts
# when a mount is made (INIT); uring_set puts back the first value at exit.
URING_PARAM=/sys/module/fuse/parameters/enable_uring
T_URING_OLD=
uring_set() {
    [ -n "$T_URING_OLD" ] || T_URING_OLD=$(cat "$URING_PARAM")
    echo "$1" > "$URING_PARAM"
}

# The daemon pid of a mounted workspace (from the runtime file).
ws_daemon_pid() {
    "$PROVFS" status --json "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}

ws_umount() {
    local dir=$1 pid
    pid=$(ws_daemon_pid "$dir" 2>/dev/null)
    "$PROVFS" umount "$dir" || return 1
    # The daemon drains and exits after the unmount; wait for it.
    for _ in $(seq 100); do
        [ -z "$pid" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    local i; for i in "${!T_MOUNTS[@]}"; do [ "${T_MOUNTS[$i]}" = "$dir" ] && unset 'T_MOUNTS[i]'; done
    return 0
}

t_cleanup() {
    local dir pid
    for dir in "${T_MOUNTS[@]+"${T_MOUNTS[@]}"}"; do
        pid=$(ws_daemon_pid "$dir" 2>/dev/null)
        "$PROVFS" umount "$dir" >/dev/null 2>&1 || fusermount3 -u -z "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null
        if [ -n "$pid" ]; then
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null
        fi
    done
    for dir in "${T_DIRS[@]+"${T_DIRS[@]}"}"; do rm -rf "$dir"; done
    [ -z "$T_URING_OLD" ] || echo "$T_URING_OLD" > "$URING_PARAM"
}
trap t_cleanup EXIT

# Finish: exit status reflects the failures.
t_done() { [ "$T_FAILS" = 0 ]; }
