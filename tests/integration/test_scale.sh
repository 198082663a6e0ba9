#!/usr/bin/env bash
# Scale: a tree with more files than the open-file limit (20,000 here) must
# be fully usable through the mount, and the daemon must keep its
# descriptor count bounded (inode table: file handles plus a bounded cache,
# never one descriptor per inode; libfuse's passthrough_ll dies with EMFILE
# on this test).
. "$(dirname "$0")/lib.sh"

N=22000
ws=$(t_tmpdir)
# Build the tree on the bare directory (fast), 220 directories x 100 files.
python3 - "$ws" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 100))
    if i % 100 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("%d\n" % i)
PY
ws_mount "$ws" || { not_ok "mount $ws"; exit 1; }
ok "mount $ws"
pid=$(ws_daemon_pid "$ws")
nfds() { ls "/proc/$pid/fd" | wc -l; }

check_eq "find lists all $N files" "$N" "$(find "$ws" -type f | wc -l)"
check_eq "stat of every file (readdirplus + lookups)" "$N" "$(find "$ws" -type f -size -10c | wc -l)"
check "daemon descriptors stay bounded after $N lookups ($(nfds))" test "$(nfds)" -lt 5000
# Read every file: each needs an open of a node whose O_PATH descriptor was
# most likely evicted, so this goes through open_by_handle_at.
sum=$(find "$ws" -type f -print0 | xargs -0 cat | python3 -c 'import sys; print(sum(int(l) for l in sys.stdin))')
check_eq "every file readable with the right content" "$((N * (N - 1) / 2))" "$sum"
check "daemon descriptors stay bounded after reading all ($(nfds))" test "$(nfds)" -lt 5000

# Writing $N new files through the mount (a tar extraction).
T_DIRS+=("$ws.tar")
tar cf "$ws.tar" -C "$ws" $(cd "$ws" && ls -d d* | head -210)
mkdir "$ws/x"
check "tar extraction of 21000 files into the mount" tar xf "$ws.tar" -C "$ws/x"
check_eq "all extracted files present" 21000 "$(find "$ws/x" -type f | wc -l)"
check "daemon descriptors stay bounded after extraction ($(nfds))" test "$(nfds)" -lt 5000
rm -rf "$ws/x"
check_fails "rm -rf of 21000 files" test -e "$ws/x"
check_eq "status still answers: daemon alive" "$pid" "$(ws_daemon_pid "$ws")"
ws_umount "$ws" || not_ok "umount"
t_done
