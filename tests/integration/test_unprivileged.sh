#!/usr/bin/env bash
# An unprivileged user mounts their own workspace: no CAP_DAC_READ_SEARCH
# (inodes are reopened by name), no kernel passthrough, fusermount3 to
# mount and unmount.  Everything runs as `nobody`; root only prepares the
# directory and cleans up.
. "$(dirname "$0")/lib.sh"

# Debian's udev rule makes /dev/fuse 0666; some VMs and containers leave
# it 0600.  Give users the access a stock system gives them, for the
# test's duration only.
FUSE_MODE=$(stat -c %a /dev/fuse)
trap 'chmod "$FUSE_MODE" /dev/fuse; t_cleanup' EXIT
chmod 0666 /dev/fuse

USER_ID=$(id -u nobody)
GROUP_ID=$(id -g nobody)
as_user() {
    setpriv --reuid="$USER_ID" --regid="$GROUP_ID" --clear-groups \
        env HOME=/nonexistent XDG_RUNTIME_DIR= PATH="$PATH" "$@"
}
out() { "$@" 2>&1; echo "exit=$?"; }

tmp=$(t_tmpdir)
chmod 755 "$tmp"
# The user must be able to run provfs wherever the clone lives (/root is
# 0700): run a copy from the test's own directory.
cp "$PROVFS" "$tmp/provfs" && chmod 755 "$tmp/provfs"
PROVFS=$tmp/provfs
ws="$tmp/my ws"
mkdir -p "$ws/data"
printf '1,2\n3,4\n' > "$ws/data/raw.csv"
chown -R "$USER_ID:$GROUP_ID" "$ws"

# Every mount below is the user's: root's cleanup must still find it.
T_MOUNTS+=("$ws")

# allow_other is root's unless /etc/fuse.conf lets users ask for it.
if grep -qx '[[:space:]]*user_allow_other[[:space:]]*' /etc/fuse.conf 2>/dev/null; then
    r=$(out as_user "$PROVFS" mount -o allow_other "$ws")
    check_eq "allow_other, permitted by /etc/fuse.conf, mounts" "exit=0" "$(tail -1 <<<"$r")"
    check_eq "... and unmounts" "" "$(as_user "$PROVFS" umount "$ws" 2>&1)"
else
    r=$(out as_user "$PROVFS" mount -o allow_other "$ws")
    check "allow_other without user_allow_other is refused, saying why" \
        grep -q "only root may use it unless /etc/fuse.conf has a line 'user_allow_other'" <<<"$r"
    check_eq "... with exit 1" "exit=1" "$(tail -1 <<<"$r")"
fi
check "nothing is mounted yet" bash -c '! findmnt -M "$1" >/dev/null' _ "$ws"

r=$(out as_user "$PROVFS" mount "$ws")
mount_msg=$r
check_eq "nobody mounts its own workspace" "exit=0" "$(tail -1 <<<"$r")"
check "the mount message names a log the user can write" \
    grep -q "log /tmp/provfs-$USER_ID/" <<<"$r"
check "the kernel lists it as nobody's FUSE mount" \
    grep -q "fuse.provfs .*user_id=$USER_ID" /proc/mounts
st=$(as_user "$PROVFS" status "$ws")
check "status says it is mounted, by which daemon" grep -q "^mounted: *yes (daemon pid [0-9]*, source $tmp/my ws)" <<<"$st"
if [ "${PROVFS_TEST_TRANSPORT:-}" = io_uring ]; then
    check "a user's mount serves over io_uring too" grep -q '^transport: io_uring' <<<"$st"
fi
pid=$(as_user "$PROVFS" status --json "$ws" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
check_eq "the daemon runs as nobody" "$USER_ID" "$(ps -o uid= -p "$pid" | tr -d ' ')"

# Real programs, as the user, through the mount.
as_user sh -c "cd '$ws' && cp data/raw.csv data/copy.csv && echo x >> data/copy.csv"
check_eq "cp and an append work" "$(printf '1,2\n3,4\nx')" "$(as_user cat "$ws/data/copy.csv")"
as_user /usr/bin/python3 - "$ws" <<'EOF'
import os, sys
import numpy as np
ws = sys.argv[1]
a = np.loadtxt(os.path.join(ws, "data/raw.csv"), delimiter=",")
os.makedirs(os.path.join(ws, "models"), exist_ok=True)
np.save(os.path.join(ws, "models/sum.npy"), a.sum(axis=0))
os.rename(os.path.join(ws, "models/sum.npy"), os.path.join(ws, "models/model.npy"))
EOF
check_eq "python3 wrote and renamed a model" "[4. 6.]" \
    "$(as_user /usr/bin/python3 -c 'import numpy,sys; print(numpy.load(sys.argv[1]))' "$ws/models/model.npy")"
check_eq "new files belong to the user" "$USER_ID" "$(as_user stat -c %u "$ws/models/model.npy")"
odd="odd/a b"$'\n'c$'\xff'
as_user bash -c 'cd "$1" && mkdir odd && echo n > "$2" && ln -s raw.csv data/link && rm data/copy.csv' _ "$ws" "$odd"
check "odd names, symlinks and unlink work" as_user test -L "$ws/data/link" -a ! -e "$ws/data/copy.csv" -a -f "$ws/$odd"
# More inodes than the daemon keeps descriptors for (4096): without
# CAP_DAC_READ_SEARCH, evicted ones are reopened by name, also after their
# directory was renamed.
as_user /usr/bin/python3 - "$ws" <<'EOF'
import os, sys
ws = sys.argv[1]
for i in range(5000):
    d = os.path.join(ws, "many", "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%04d" % i), "w") as f:
        f.write("%d\n" % i)
os.rename(os.path.join(ws, "many"), os.path.join(ws, "many2"))
EOF
bad=$(as_user /usr/bin/python3 - "$ws" <<'EOF'
import os, sys
ws = sys.argv[1]
bad = 0
for i in range(5000):
    p = os.path.join(ws, "many2", "d%02d" % (i % 50), "f%04d" % i)
    with open(p) as f:
        bad += f.read() != "%d\n" % i
    os.utime(p)
print(bad)
EOF
)
check_eq "5000 files read back, by name, after their directory moved" "0" "$bad"

# A file unlinked while open stays reachable through its handle, also for
# the calls the kernel sends without it (fstat, fchmod, fsetxattr,
# futimens).  Each step in its own process, as pjdfstest's unlink/14.t
# does, so that nothing caches the file's descriptor beforehand: without
# CAP_DAC_READ_SEARCH those calls got ESTALE.
as_user sh -c "cd '$ws' && /usr/bin/python3 -c 'import os; os.close(os.open(\"gone\", os.O_CREAT | os.O_EXCL, 0o644))'"
as_user sh -c "cd '$ws' && /usr/bin/python3 -c 'import os; os.close(os.open(\"gone\", os.O_WRONLY))'"
r=$(as_user /usr/bin/python3 - "$ws" <<'EOF' 2>&1
import os, sys
os.chdir(sys.argv[1])
fd = os.open("gone", os.O_RDWR)
os.unlink("gone")
os.pwrite(fd, b"kept", 0)
os.fchmod(fd, 0o600)
os.setxattr(fd, "user.k", b"v")
os.utime(fd, (1, 2))
st = os.fstat(fd)
print(st.st_nlink, oct(st.st_mode & 0o777), st.st_mtime, os.getxattr(fd, "user.k").decode(),
      os.pread(fd, 4, 0).decode())
EOF
)
check_eq "an unlinked open file: fstat, fchmod, xattrs, futimens and I/O work" "0 0o600 2.0 v kept" "$r"
r=$(out as_user chown root "$ws/data/raw.csv")
check "chown to another user is refused as on the bare directory" grep -q "Operation not permitted" <<<"$r"

# Provenance as the user.
lin=$(as_user "$PROVFS" lineage "$ws/models/model.npy")
check "lineage of the model names python3" grep -q "python3" <<<"$lin"
check "lineage of the model names its input" grep -q "data/raw.csv" <<<"$lin"
ev=$(as_user sh -c "cd '$ws' && '$PROVFS' events --path data/copy.csv" 2>&1)
check "the unlink was recorded" grep -q "unlink" <<<"$ev"
as_user sh -c "cd '$ws' && echo 9,9 > data/raw.csv"
r=$(out as_user "$PROVFS" restore "$ws/data/raw.csv@1")
check_eq "restore of the first version works" "exit=0" "$(tail -1 <<<"$r")"
check_eq "the file is back" "$(printf '1,2\n3,4')" "$(as_user cat "$ws/data/raw.csv")"
# The daemon reads a version with the user's rights: a file its owner made
# write-only is versioned without content, with the reason.
as_user sh -c "cd '$ws' && echo a > wo && chmod 200 wo && echo b > wo"
r=$(as_user sh -c "cd '$ws' && '$PROVFS' log wo")
check "a write-only file's new version is marked as not captured, saying why" \
    grep -q "^2 .*(missing).*not captured: reading the file: opening it for reading: Permission denied" <<<"$r"
check "its first version was captured" grep -q "^1 .* 2 B  [0-9a-f]\{12\} " <<<"$r"
check "the .prov tree can be browsed" as_user grep -q . "$ws/.prov/README"

# Busy unmount is refused, naming the holder; then a clean unmount.
# setpriv execs env, sh and sleep: $! is the holder itself.
setpriv --reuid="$USER_ID" --regid="$GROUP_ID" --clear-groups sh -c "cd '$ws' && exec sleep 30" &
holder=$!
sleep 0.5
r=$(out as_user "$PROVFS" umount "$ws")
check "a busy unmount fails" grep -q "exit=1" <<<"$r"
check "and says it is busy" grep -q "is busy" <<<"$r"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
r=$(out as_user "$PROVFS" umount "$ws")
check_eq "nobody unmounts it" "exit=0" "$(tail -1 <<<"$r")"
check "the mount is gone" bash -c '! findmnt -M "$1" >/dev/null' _ "$ws"
check "the daemon exited" bash -c "! kill -0 $pid 2>/dev/null"
log=$(sed -n 's/.*, log \(.*\))$/\1/p' <<<"$mount_msg")
check "its log says why reads go through it (no kernel passthrough)" \
    grep -q "kernel passthrough refused" "$log"
check_eq "the backing file kept the restored content" "$(printf '1,2\n3,4')" "$(cat "$ws/data/raw.csv")"

# A stale mount left by a dead daemon is cleaned up by the next mount.
as_user "$PROVFS" mount "$ws" >/dev/null
pid=$(as_user "$PROVFS" status --json "$ws" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
r=$(out as_user "$PROVFS" mount "$ws")
check "a stale mount is removed by the user's next mount" grep -q "removed a stale mount" <<<"$r"
check_eq "and the new mount serves" "$(printf '1,2\n3,4')" "$(as_user cat "$ws/data/raw.csv")"
r=$(out as_user "$PROVFS" umount "$ws")
check_eq "unmounted again" "exit=0" "$(tail -1 <<<"$r")"
t_done
