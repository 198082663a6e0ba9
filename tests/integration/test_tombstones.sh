#!/usr/bin/env bash
# Tombstones in bulk: deleting many versioned files records one deleted
# version per file, in few snapshot transactions (they gather), in order
# with what comes next on the same path (a file recreated at once, while its
# tombstone may still be gathering), and the queries that follow see all of
# them.
. "$(dirname "$0")/lib.sh"

N=300
ws=$(t_tmpdir)
ws_mount "$ws" || { not_ok "mount"; exit 1; }
ok "mount $ws"

cd "$ws"
mkdir many
for i in $(seq 1 $N); do printf 'file %d\n' "$i" >"many/f$i"; done
# Every file has its written version before the delete.
check_eq "$N written versions before rm" "$N" \
    "$("$PROVFS" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["versions"]["total"])')"
snap_batches() {   # after a query (which flushes the snapshot queue)
    "$PROVFS" stats >/dev/null
    "$PROVFS" status --json | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["daemon"]["snapshots"]["batches"])'
}
b0=$(snap_batches)
# Paced deletes, 2 ms apart (~0.6 s), then rm -rf: the tombstones gather,
# one transaction per worker per 100 ms (up to ~15 here, 40 allows a slow
# machine).  Without gathering each commits alone: 300 batches when this
# was checked with the window set to 0.
python3 -c '
import os, sys, time
for i in range(1, int(sys.argv[1]) + 1):
    os.unlink("many/f%d" % i)
    time.sleep(0.002)' "$N"
rm -rf many
b1=$(snap_batches)
echo "# $N tombstones committed in $((b1 - b0)) snapshot batches"
check "the $N tombstones were committed in 1 to 40 batches" \
    test $((b1 - b0)) -ge 1 -a $((b1 - b0)) -le 40
mkdir many
printf 'again\n' >many/f7
cd /

vlog() {
    (cd "$ws" && "$PROVFS" log --json "$1") | python3 -c '
import json, sys
for v in reversed(json.load(sys.stdin)):
    src = v["source"]
    print(v["version"], v["origin"], v["size"],
          "%s@%d" % (src["path"], src["version"]) if src else "-")'
}
check_eq "recreated at once: written, deleted, written, in that order" \
    "$(printf '%s\n' "1 written 7 -" "2 deleted 0 many/f7@1" "3 written 6 -")" \
    "$(vlog many/f7)"
check_eq "a file not recreated: written, then its tombstone" \
    "$(printf '%s\n' "1 written 8 -" "2 deleted 0 many/f42@1")" "$(vlog many/f42)"
check "every one of the $N files has its tombstone, counted by stats" python3 -c '
import json, sys
v = json.loads(sys.argv[1])["versions"]
assert (v["total"], v["deleted"], v["missing"]) == ('$N' * 2 + 1, '$N', 0), v' \
    "$(cd "$ws" && "$PROVFS" stats --json)"
check_eq "the deletes are events too: $N unlinks recorded" "$N" \
    "$(cd "$ws" && "$PROVFS" events --json | python3 -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["op"] == "unlink"))')"
check "umount drains" ws_umount "$ws"
check_eq "fsck clean after umount" "fsck: clean" "$(cd "$ws" && "$PROVFS" fsck 2>&1)"
t_done
