#!/usr/bin/env bash
# Crash safety: SIGKILL the daemon in the middle of a storm of writes,
# closes, appends and atomic saves by several writers (and a gc run among
# them); remount (which
# removes the stale mount); then fsck is clean and every version that log
# lists for every path restores to its recorded SHA-256.  Versions whose
# snapshot was lost are allowed only if log and status say so.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
out=$(t_tmpdir)
mkdir -p "$ws/storm"
ws_mount "$ws" || { not_ok "mount"; exit 1; }
ok "mount $ws"
pid=$(ws_daemon_pid "$ws")

cat >"$out/writer.py" <<'PY'
import os, random, sys, time
i = int(sys.argv[1]); rnd = random.Random(i); n = 0
end = time.time() + 60
while time.time() < end:
    n += 1
    name = "storm/w%d_%d" % (i, n % 5)
    data = os.urandom(rnd.choice([100, 5000, 70000, 400000, 1500000]))
    try:
        op = n % 4
        if op == 0:
            with open(name, "wb") as f: f.write(data)
        elif op == 1:
            with open(name, "ab") as f: f.write(data[:3000])
        elif op == 2:
            with open(name + ".tmp", "wb") as f: f.write(data)
            os.replace(name + ".tmp", name)
        else:
            with open(name, "r+b" if os.path.exists(name) else "wb") as f:
                f.seek(10); f.write(data[:50])
    except OSError:
        break       # the mount is gone
PY
wpids=()
for i in 1 2 3 4; do
    (cd "$ws" && exec python3 "$out/writer.py" "$i") 2>/dev/null &
    wpids+=($!)
done
sleep 1
# gc in the storm: it drops versions and frees chunks while the daemon
# commits new ones (LMDB serializes the writers; packs are flock'ed).
gc_out=$(cd "$ws" && "$PROVFS" gc --keep-last 2 2>&1); rc=$?
check "gc --keep-last 2 during the storm succeeds" test "$rc" = 0 -a -n "$(grep -o '^gc: dropped' <<<"$gc_out")"
# Only the daemon this test started, by its pid.
kill -9 "$pid"
for p in "${wpids[@]}"; do
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null
done
wait 2>/dev/null
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check_fails "the daemon is gone" kill -0 "$pid" 2>/dev/null

msg=$("$PROVFS" mount "$ws" 2>&1) || { not_ok "remount after SIGKILL: $msg"; exit 1; }
T_MOUNTS+=("$ws")
check "remount removed the stale mount" grep -q 'stale' <<<"$msg"

pv() { (cd "$ws" && "$PROVFS" "$@"); }
fsck_out=$(pv fsck 2>&1); rc=$?
check_eq "fsck after SIGKILL + remount: clean" "0 fsck: clean" "$rc $fsck_out"

# Every path the writers touched, from the event log.
pv events --json | python3 -c '
import json, sys
print("\n".join(sorted({e["path"] for e in json.load(sys.stdin) if e["path"].startswith("storm/")})))' \
    >"$out/paths"
check "the storm touched files (at least 10 paths)" test "$(wc -l <"$out/paths")" -ge 10

restore_all() {
    local p vno stored missing cid size n=0 bad=0 nmiss=0
    while read -r p; do
        while read -r vno stored missing cid size; do
            if [ "$missing" = 1 ]; then nmiss=$((nmiss + 1)); continue; fi
            [ "$stored" = 1 ] || continue
            n=$((n + 1))
            got=$(pv cat "$p@$vno" | sha256sum | cut -c1-64)
            [ "$got" = "$cid" ] || { echo "# cat $p@$vno: $got != $cid"; bad=1; }
            rm -f "$out/r"
            pv restore "$p@$vno" -o "$out/r" 2>/dev/null || { echo "# restore $p@$vno failed"; bad=1; continue; }
            [ "$(sha256sum <"$out/r" | cut -c1-64) $(stat -c %s "$out/r")" = "$cid $size" ] ||
                { echo "# restore $p@$vno: wrong bytes"; bad=1; }
        done < <(pv log --json "$p" 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    print(v["version"], int(v["stored"]), int(v["missing"] is not None), v["content_id"], v["size"])')
    done <"$out/paths"
    echo "# $n versions restored, $nmiss recorded as not captured"
    echo "$nmiss" >"$out/nmiss"
    [ $bad = 0 ] && [ $n -ge 10 ]
}
check "every version log lists restores to its recorded SHA-256" restore_all
nst=$(pv status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["versions_not_captured"])')
check_eq "status counts exactly the versions log shows as not captured" "$(cat "$out/nmiss")" "$nst"

# Files as they are now: the current version of each matches the disk
# (after the scan at mount, a change lost in the crash is an external version).
cur_ok() {
    local p bad=0
    while read -r p; do
        [ -f "$ws/$p" ] || continue
        want=$(pv log --json "$p" | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]
print(v["content_id"] if v["stored"] else "none")')
        [ "$want" = "$(sha256sum <"$ws/$p" | cut -c1-64)" ] || { echo "# $p: current version $want differs from the file"; bad=1; }
    done <"$out/paths"
    [ $bad = 0 ]
}
check "the current version of every file matches its bytes on disk" cur_ok
ws_umount "$ws" || not_ok "umount"
check_eq "fsck after a clean umount: clean" "fsck: clean" "$(pv fsck 2>&1)"
t_done
