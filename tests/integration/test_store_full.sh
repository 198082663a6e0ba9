#!/usr/bin/env bash
# The store's disk is full, the user's is not: the pack directory is a
# 2 MiB tmpfs.  The user's writes still succeed with their exact bytes, the
# snapshot that does not fit is recorded as a version without content
# (not captured), and log and status say so; smaller snapshots keep working,
# and fsck stays clean.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
packs=$ws/.provfs/packs
full_cleanup() {
    # provfs first (it shadows .provfs), then the tmpfs under it.
    local dir
    for dir in "${T_MOUNTS[@]+"${T_MOUNTS[@]}"}"; do
        "$PROVFS" umount "$dir" >/dev/null 2>&1 || fusermount3 -u -z "$dir" 2>/dev/null
    done
    mountpoint -q "$packs" 2>/dev/null && { umount "$packs" 2>/dev/null || umount -l "$packs"; }
    t_cleanup
}
trap full_cleanup EXIT

h() { printf '%s' "$1" | sha256sum | cut -c1-64; }
pv() { (cd "$ws" && "$PROVFS" "$@"); }

# A first mount creates .provfs/ and a pack holding one small version.
printf 'before\n' >"$ws/small.txt"
ws_mount "$ws" || { not_ok "mount"; exit 1; }
cat "$ws/small.txt" >/dev/null
ws_umount "$ws" || { not_ok "umount"; exit 1; }
mkdir "$ws/packs.orig" && cp -a "$packs/." "$ws/packs.orig/"
mount -t tmpfs -o size=2m tmpfs "$packs" || { not_ok "mount a 2 MiB tmpfs on the packs"; exit 1; }
cp -a "$ws/packs.orig/." "$packs/"
ok "the store's packs are on a 2 MiB tmpfs"
ws_mount "$ws" || { not_ok "mount over the small store"; exit 1; }

# 3 MiB of random bytes cannot be stored (zstd cannot shrink them).
head -c 3145728 /dev/urandom >"$ws.big"
T_DIRS+=("$ws.big")
cp "$ws.big" "$ws/big.bin"; rc=$?
check_eq "the user's write succeeds although the store is full" 0 "$rc"
check_eq "the file holds exactly what was written" "$(sha256sum <"$ws.big")" "$(sha256sum <"$ws/big.bin")"
printf 'after\n' >"$ws/after.txt"
check_eq "a small write after it succeeds too" "$(h $'after\n')" "$(sha256sum <"$ws/after.txt" | cut -c1-64)"

j=$(pv log --json big.bin)
check "log --json: big.bin@1 is recorded, not stored, with the reason" python3 -c '
import json, sys
v = json.loads(sys.argv[1])
assert len(v) == 1 and v[0]["version"] == 1 and v[0]["origin"] == "written", v
assert v[0]["stored"] is False and v[0]["missing"], v
assert "disk is full" in v[0]["missing"], v[0]["missing"]' "$j"
check "log shows the version as not captured" bash -c "cd '$ws' && '$PROVFS' log big.bin | grep -q 'not captured'"
err=$(pv cat big.bin@1 2>&1); rc=$?
check "cat of the missing version: exit 1, says it was not captured" \
    test "$rc" = 1 -a -n "$(grep -o 'big.bin@1 was not captured' <<<"$err")"
check_eq "status --json counts one version not captured" 1 \
    "$(pv status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["versions_not_captured"])')"
check "status text reports it" bash -c "cd '$ws' && '$PROVFS' status | grep -q '1 not captured'"
check_eq "the small file written after it was captured" \
    "1 True $(h $'after\n')" \
    "$(pv log --json after.txt | python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; print(v["version"], v["stored"], v["content_id"])')"
check_eq "the version from before the store filled up still reads back" "before" "$(pv cat small.txt@1)"
check_eq "events are still recorded (the catalog is on the user's disk)" 1 \
    "$(pv events --json --path big.bin | python3 -c 'import json,sys; print(sum(e["op"] == "create" for e in json.load(sys.stdin)))')"
check_eq "fsck: clean (a failed batch leaves no reference to missing bytes)" "fsck: clean" "$(pv fsck 2>&1)"
ws_umount "$ws" || not_ok "umount"
check_eq "fsck after umount: clean" "fsck: clean" "$(pv fsck 2>&1)"
t_done
