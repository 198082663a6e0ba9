#!/usr/bin/env bash
# FUSE over io_uring (fs/ring.c): with the fuse module's enable_uring set,
# a default mount serves its requests through one io_uring queue per CPU.
# Data written in 1 MiB requests (the largest payload) and read back
# through the daemon (both the copied and the spliced reply path) must be
# byte-exact, from callers on every CPU; capture still names the caller;
# uring=off, a kernel that does not offer the transport, and a bad option
# value are each checked; unmounting stops the queues cleanly.
# On a kernel without the transport (no enable_uring parameter), the same
# data checks run over /dev/fuse and status must say why.
. "$(dirname "$0")/lib.sh"
unset PROVFS_TEST_TRANSPORT     # this test picks each mount's transport itself

ws=$(t_tmpdir)
src=$(t_tmpdir)
head -c 4194304 /dev/urandom > "$src/big.bin"
head -c 100 /dev/urandom > "$src/small.bin"
want_big=$(sha256sum < "$src/big.bin" | cut -d' ' -f1)
want_small=$(sha256sum < "$src/small.bin" | cut -d' ' -f1)

jget() {  # jget DIR EXPR: a value from `status --json` (EXPR indexes d)
    "$PROVFS" status --json "$1" | python3 -c \
        'import json,sys; d=json.load(sys.stdin); print(str(eval(sys.argv[1])).lower())' "$2"
}

# Reads through a read-write handle come to the daemon (no passthrough):
# all of it in one go (large replies: libfuse's splice pipe), then 100
# bytes (a copied reply).
rw_read_sha() {
    python3 - "$1" <<'PY'
import hashlib, sys
with open(sys.argv[1], "r+b", buffering=0) as f:
    h = hashlib.sha256()
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        h.update(b)
print(h.hexdigest())
PY
}

data_checks() {  # data_checks DIR LABEL
    local d=$1 l=$2 cpu
    dd if="$src/big.bin" of="$d/big.bin" bs=1M status=none
    check_eq "$l: 4 MiB written in 1 MiB requests reads back exactly" \
        "$want_big" "$(sha256sum < "$d/big.bin" | cut -d' ' -f1)"
    check_eq "$l: the same through a read-write handle (daemon reads)" \
        "$want_big" "$(rw_read_sha "$d/big.bin")"
    cp "$src/small.bin" "$d/small.bin"
    check_eq "$l: 100 bytes through a read-write handle" "$want_small" "$(rw_read_sha "$d/small.bin")"
    for cpu in $(seq 0 $(($(nproc) - 1))); do
        taskset -c "$cpu" sh -c 'mkdir -p "$1/cpu$2" && printf "cpu %s\n" "$2" > "$1/cpu$2/f" &&
            mv "$1/cpu$2/f" "$1/cpu$2/g" && ln -s g "$1/cpu$2/l"' sh "$d" "$cpu"
        check_eq "$l: create, rename and symlink from CPU $cpu" "cpu $cpu" "$(cat "$d/cpu$cpu/l")"
    done
    touch "$d/a name with spaces" "$d/$(printf 'new\nline')" "$d/$(printf 'byte\377')"
    check_eq "$l: odd names listed" 3 "$(ls -A "$d" | grep -c -e '^a name with spaces$' -e '^new' -e '^byte')"
}

if [ ! -e "$URING_PARAM" ]; then
    echo "# kernel $(uname -r) has no FUSE over io_uring: checking the fallback"
    ws_mount "$ws" || { not_ok "mount $ws"; exit 1; }
    check "status says /dev/fuse, not offered" \
        sh -c '"$1" status "$2" | grep -q "^transport: /dev/fuse (io_uring not offered"' sh "$PROVFS" "$ws"
    data_checks "$ws" "/dev/fuse"
    t_done; exit
fi

# ---- the ring --------------------------------------------------------------
uring_set Y
ws_mount "$ws" || { not_ok "mount $ws"; exit 1; }
stat "$ws" >/dev/null           # INIT is answered before stat returns
uring_set N                     # the mount keeps its queues
ok "mount $ws with enable_uring=Y"
possible=$(( $(cut -d- -f2 /sys/devices/system/cpu/possible) + 1 ))
check_eq "one queue per possible CPU" "$possible" "$(jget "$ws" 'd["daemon"]["io_uring"]["queues"]')"
check "status text names the transport" \
    sh -c '"$1" status "$2" | grep -q "^transport: io_uring, [0-9]* queues"' sh "$PROVFS" "$ws"
n0=$(jget "$ws" 'd["daemon"]["io_uring"]["requests"]')
r0=$(jget "$ws" 'd["daemon"]["reads"]')
data_checks "$ws" "io_uring"
n1=$(jget "$ws" 'd["daemon"]["io_uring"]["requests"]')
r1=$(jget "$ws" 'd["daemon"]["reads"]')
check "the requests went through the ring ($n0 -> $n1)" test "$((n1 - n0))" -ge 50
check "the daemon answered reads ($r0 -> $r1)" test "$((r1 - r0))" -ge 5

# Capture names the caller, as over /dev/fuse.
(cd "$ws" && python3 -c 'open("py.out", "w").write("x")')
(cd "$ws" && "$PROVFS" events --json --path py.out) > "$src/ev.json"
(cd "$ws" && "$PROVFS" ps --json) > "$src/ps.json"
check_eq "python3's create of py.out recorded with its exe" "python3" "$(python3 - "$src/ev.json" "$src/ps.json" <<'PY'
import json, os, sys
ev = json.load(open(sys.argv[1])); ps = {p["id"]: p for p in json.load(open(sys.argv[2]))}
exes = {os.path.basename(ps[e["proc"]]["exe"]) for e in ev if e["op"] == "create"}
print(",".join(sorted(x.split(".")[0] for x in exes)))     # python3.11 -> python3
PY
)"

log=$(jget "$ws" 'd["log"]')
pid=$(ws_daemon_pid "$ws")
ws_umount "$ws"
check "the daemon exited after umount" sh -c '! kill -0 "$1" 2>/dev/null' sh "$pid"
check "it stopped cleanly" grep -q "stopped cleanly" "$log"
check_eq "no ring warnings in its log" "" "$(grep 'FUSE ring' "$log")"

# ---- declined and not offered ------------------------------------------------
off=$(t_tmpdir)
uring_set Y
ws_mount "$off" -o uring=off || not_ok "mount -o uring=off"
stat "$off" >/dev/null
uring_set N
check_eq "uring=off: no queues" 0 "$(jget "$off" 'd["daemon"]["io_uring"]["queues"]')"
check_eq "uring=off: the kernel's offer is reported" true "$(jget "$off" 'd["daemon"]["io_uring"]["offered"]')"
data_checks "$off" "uring=off"
check_eq "uring=off: no request went through a ring" 0 "$(jget "$off" 'd["daemon"]["io_uring"]["requests"]')"
ws_umount "$off"

no=$(t_tmpdir)
ws_mount "$no" || not_ok "mount with enable_uring=N"
check "enable_uring=N: status says not offered" \
    sh -c '"$1" status "$2" | grep -q "^transport: /dev/fuse (io_uring not offered"' sh "$PROVFS" "$no"
check_eq "enable_uring=N: not offered in JSON" false "$(jget "$no" 'd["daemon"]["io_uring"]["offered"]')"
ws_umount "$no"

bad=$(t_tmpdir)
T_MOUNTS+=("$bad")      # unmounted at exit should the refusal ever fail
out=$("$PROVFS" mount -o uring=maybe "$bad" 2>&1); rc=$?
check_eq "uring=maybe is refused" 2 "$rc"
check "the error names the option" grep -q "unknown mount option 'uring=maybe'" <<<"$out"
check_fails "and nothing was mounted" mountpoint -q "$bad"
t_done
