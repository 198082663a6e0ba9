#!/usr/bin/env bash
# Snapshots through the real mount: which versions are made (atomic save,
# overwrite in place, truncate, O_APPEND, mmap, cp, delete), with exact
# numbers, origins, sizes and SHA-256s; cat and restore of every version
# reproduce the recorded hash; restore mounted and unmounted; external and
# pre-existing versions; gc retention with lineage; stats; bad input.
. "$(dirname "$0")/lib.sh"

h() { printf '%s' "$1" | sha256sum | cut -c1-64; }
hf() { sha256sum <"$1" | cut -c1-64; }
# The versions of a path, oldest first, one per line:
# "N origin size content_id|- source|-" (content_id "-" when not stored).
vlog() {
    (cd "$ws" && "$PROVFS" log --json "$1") | python3 -c '
import json, sys
for v in reversed(json.load(sys.stdin)):
    src = v["source"]
    print(v["version"], v["origin"], v["size"], v["content_id"] if v["stored"] else "-",
          "%s@%d" % (src["path"], src["version"]) if src else "-")'
}
lines() { printf '%s\n' "$@"; }
pv() { (cd "$ws" && "$PROVFS" "$@"); }

ws=$(t_tmpdir)
out=$(t_tmpdir)
printf 'pre\n' >"$ws/pre.txt"
printf 'ext\n' >"$ws/ext.txt"
printf 'gone\n' >"$ws/gone.txt"
ws_mount "$ws" || { not_ok "mount"; exit 1; }
ok "mount $ws"

cd "$ws"
# 1. pre-existing files get an origin version at first use, before any change
cat pre.txt ext.txt >/dev/null
printf 'GONE\n' >>gone.txt
# 2. overwrite in place, truncate (by path and by handle), O_APPEND, mmap
printf 'one\n' >f.txt
printf 'two\n' >f.txt
python3 -c 'f = open("f.txt", "r+b"); f.seek(0); f.write(b"TW"); f.close()'
python3 -c 'import os; os.truncate("f.txt", 2)'
python3 -c 'f = open("f.txt", "r+b"); f.truncate(1); f.close()'
echo x >>f.txt
python3 -c 'import os; fd = os.open("f.txt", os.O_WRONLY | os.O_APPEND); os.write(fd, b"yz"); os.close(fd)'
python3 -c '
import mmap
f = open("f.txt", "r+b"); m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED)
m[0:1] = b"M"; m.flush(); m.close(); f.close()'
# 3. the atomic-save pattern, twice
python3 -c '
import os
for s in ("saved 1\n", "saved 2\n"):
    with open("save.tmp", "w") as f: f.write(s)
    os.replace("save.tmp", "target.txt")'
# 4. cp, and a file deleted
head -c 300000 /dev/urandom >src.bin
cp src.bin dst.bin
printf 'doomed\n' >del.txt
rm del.txt
cd /

check_eq "pre-existing file read: one origin version" \
    "1 pre-existing 4 $(h $'pre\n') -" "$(vlog pre.txt)"
check_eq "pre-existing file appended to: origin version first, then the write" \
    "$(lines "1 pre-existing 5 $(h $'gone\n') -" "2 written 10 $(h $'gone\nGONE\n') -")" \
    "$(vlog gone.txt)"
check_eq "overwrite, in-place edit, truncate x2, >>, O_APPEND, mmap: one version each" \
    "$(lines "1 written 4 $(h $'one\n') -" "2 written 4 $(h $'two\n') -" \
             "3 written 4 $(h $'TWo\n') -" "4 written 2 $(h 'TW') -" \
             "5 written 1 $(h 'T') -" "6 written 3 $(h $'Tx\n') -" \
             "7 written 5 $(h $'Tx\nyz') -" "8 written 5 $(h $'Mx\nyz') -")" \
    "$(vlog f.txt)"
check_eq "mmap MAP_SHARED write reached the file" "$(h $'Mx\nyz')" "$(hf "$ws/f.txt")"
check_eq "atomic save: the target gets each saved content as a renamed version" \
    "$(lines "1 renamed 8 $(h $'saved 1\n') save.tmp@1" "2 renamed 8 $(h $'saved 2\n') save.tmp@3")" \
    "$(vlog target.txt)"
check_eq "atomic save: the temporary keeps its versions, each followed by a tombstone" \
    "$(lines "1 written 8 $(h $'saved 1\n') -" "2 deleted 0 - save.tmp@1" \
             "3 written 8 $(h $'saved 2\n') -" "4 deleted 0 - save.tmp@3")" \
    "$(vlog save.tmp)"
check_eq "cp: the copy is a written version with the source's content id" \
    "1 written 300000 $(hf "$ws/src.bin") -" "$(vlog dst.bin)"
check_eq "delete: a tombstone after the content" \
    "$(lines "1 written 7 $(h $'doomed\n') -" "2 deleted 0 - del.txt@1")" "$(vlog del.txt)"
check_eq "log text shows the rename source" "renamed from save.tmp@3" \
    "$(pv log target.txt | sed -n 2p | grep -o 'renamed from save.tmp@3')"

# 5. restore through the mount: a deleted file comes back as a new version
pv restore del.txt@1 2>/dev/null
check_eq "mounted restore of a deleted file: content back" "$(h $'doomed\n')" "$(hf "$ws/del.txt")"
check_eq "mounted restore recorded as 'restored' from del.txt@1" \
    "3 restored 7 $(h $'doomed\n') del.txt@1" "$(vlog del.txt | tail -1)"
pv restore f.txt@3 2>/dev/null
check_eq "mounted restore over a live file: new version, exact bytes" \
    "9 restored 4 $(h $'TWo\n') f.txt@3 $(h $'TWo\n')" "$(vlog f.txt | tail -1) $(hf "$ws/f.txt")"

# 6. every version of every file: cat and restore -o reproduce the recorded hash
every_version_ok() {
    local bad=0 n=0 p vno origin size cid src
    for p in pre.txt gone.txt f.txt target.txt save.tmp dst.bin src.bin del.txt ext.txt; do
        while read -r vno origin size cid src; do
            [ "$cid" = - ] && continue
            n=$((n + 1))
            got=$(pv cat "$p@$vno" | sha256sum | cut -c1-64)
            [ "$got" = "$cid" ] || { echo "# cat $p@$vno: $got != $cid"; bad=1; }
            rm -f "$out/r"
            e=$(pv restore "$p@$vno" -o "$out/r" 2>&1) || { echo "# restore $p@$vno failed: $e"; bad=1; }
            got=$(hf "$out/r")
            [ "$got" = "$cid" ] || { echo "# restore $p@$vno: $got != $cid"; bad=1; }
            [ "$(stat -c %s "$out/r")" = "$size" ] || { echo "# restore $p@$vno: size"; bad=1; }
        done < <(vlog "$p")
    done
    echo "# $n versions checked"
    [ $bad = 0 ] && [ "$n" -ge "$1" ]
}
check "mounted: cat and restore -o of every version reproduce its SHA-256" every_version_ok 21
check_fails "restore -o refuses to overwrite an existing file" pv restore f.txt@1 -o "$out/r"
check "restore -o --force overwrites" pv restore f.txt@1 -o "$out/r" --force

# 7. unmounted: changes become external versions at the next mount
ws_umount "$ws" || not_ok "umount"
printf 'ext changed\n' >"$ws/ext.txt"
printf 'f while unmounted\n' >"$ws/f.txt"
rm "$ws/pre.txt"
printf 'back\n' >"$ws/save.tmp"      # a path whose last version is a tombstone
# restore while unmounted: a changed file is kept (external) before being replaced
pv restore f.txt@1 2>/dev/null
check_eq "unmounted restore: the changed file kept as external, then restored" \
    "$(lines "10 external 18 $(h $'f while unmounted\n') -" "11 restored 4 $(h $'one\n') f.txt@1")" \
    "$(vlog f.txt | tail -2)"
check_eq "unmounted restore wrote the exact bytes" "$(h $'one\n')" "$(hf "$ws/f.txt")"
rm "$ws/gone.txt"
pv restore gone.txt 2>/dev/null
check_eq "unmounted restore of a deleted file: its newest content, recorded as restored" \
    "3 restored 10 $(h $'gone\nGONE\n') gone.txt@2 $(h $'gone\nGONE\n')" \
    "$(vlog gone.txt | tail -1) $(hf "$ws/gone.txt")"
check "every version still reproduces its hash unmounted" every_version_ok 24
ws_mount "$ws" || not_ok "remount"
pv status >/dev/null
check_eq "changed while unmounted: external version at mount" \
    "$(lines "1 pre-existing 4 $(h $'ext\n') -" "2 external 12 $(h $'ext changed\n') -")" \
    "$(vlog ext.txt)"
check_eq "deleted while unmounted: tombstone at mount" "2 deleted 0 - pre.txt@1" \
    "$(vlog pre.txt | tail -1)"
check_eq "re-created while unmounted after a deletion: external version at mount" \
    "5 external 5 $(h $'back\n') -" "$(vlog save.tmp | tail -1)"
check_eq "unchanged files get no new version at mount" "11" "$(vlog f.txt | tail -1 | cut -d' ' -f1)"
check_eq "a file restored while unmounted gets no new version at mount" "3" \
    "$(vlog gone.txt | tail -1 | cut -d' ' -f1)"
pv restore pre.txt 2>/dev/null
check_eq "restore PATH (no @N) of a deleted file: its newest content" \
    "3 restored 4 $(h $'pre\n') pre.txt@1 $(h $'pre\n')" "$(vlog pre.txt | tail -1) $(hf "$ws/pre.txt")"

# 8. bad input: clear errors, exit 1 (2 for usage)
err=$(pv cat nosuch@1 2>&1); rc=$?
check_eq "cat nosuch@1: exit 1 and says so" "1 provfs: cat: nosuch: no versions recorded" "$rc $err"
err=$(pv restore f.txt@99 2>&1); rc=$?
check_eq "restore f.txt@99: exit 1, no such version" "1 provfs: restore: f.txt@99: no such version" "$rc $err"
err=$(pv cat f.txt@-99 2>&1); rc=$?
check_eq "cat f.txt@-99: exit 1" "1 provfs: cat: f.txt@-99: there are not that many versions" "$rc $err"
err=$(pv cat del.txt@2 2>&1); rc=$?
check_eq "cat of a tombstone: exit 1, names it" \
    "1 provfs: cat: del.txt@2 is a deletion record; choose an earlier version" "$rc $err"
pv cat 2>/dev/null; check_eq "cat without a spec: usage, exit 2" 2 $?
pv restore a b 2>/dev/null; check_eq "restore with two specs: usage, exit 2" 2 $?
pv cat f.txt --at 'not a time' 2>/dev/null; check_eq "cat --at garbage: usage, exit 2" 2 $?
pv gc --keep-last x 2>/dev/null; check_eq "gc --keep-last x: usage, exit 2" 2 $?
pv gc --keep-within 3y 2>/dev/null; check_eq "gc --keep-within 3y: usage, exit 2" 2 $?
pv fsck extra 2>/dev/null; check_eq "fsck with an argument: usage, exit 2" 2 $?
err=$(cd "$out" && "$PROVFS" log f.txt 2>&1); rc=$?
check "log outside any workspace: exit 1, says so" \
    test "$rc" = 1 -a -n "$(grep -o 'not inside a provfs workspace' <<<"$err")"
check_eq "log of an absolute path from outside the workspace" "$(pv log f.txt)" \
    "$(cd "$out" && "$PROVFS" log "$ws/f.txt")"
check_eq "cat PATH@1 from outside the workspace" "$(pv cat f.txt@1 | sha256sum)" \
    "$(cd "$out" && "$PROVFS" cat "$ws/f.txt@1" | sha256sum)"
err=$(cd "$out" && "$PROVFS" stats 2>&1); rc=$?
check_eq "stats outside any workspace: exit 1" 1 "$rc"
err=$(pv cat /etc/passwd@1 2>&1); rc=$?
check "cat of a path outside the workspace: exit 1" test "$rc" = 1 -a -n "$(grep -o 'outside the workspace' <<<"$err")"

# 9. stats and fsck on this store
st=$(pv stats --json)
check "stats --json: logical >= stored > 0, ratio consistent, counts" python3 -c '
import json, sys
s = json.loads(sys.argv[1])
assert s["logical_bytes"] >= s["stored_bytes"] > 0, s
assert abs(s["ratio"] - s["logical_bytes"] / s["stored_bytes"]) < 0.01, s
assert s["chunks"] > 0 and s["contents"] == 19 and s["dead_chunks"] == 0, s
v = s["versions"]
assert (v["total"], v["stored"], v["deleted"], v["missing"]) == (31, 27, 4, 0), v' "$st"
check "stats text names the ratio" bash -c "cd '$ws' && '$PROVFS' stats | grep -q '^ratio: .*x (deduplication'"
check_eq "fsck: clean" "fsck: clean" "$(pv fsck 2>&1)"

# 10. gc: retention keeps the lineage of kept versions
cd "$ws"
printf 'data 1\n' >data.csv
python3 -c 'open("model.bin", "w").write(open("data.csv").read().upper())'
for i in 2 3 4; do printf 'data %s\n' "$i" >data.csv; done
cd /
check_eq "gc setup: data.csv has 4 versions, model.bin 1" "4 1" \
    "$(vlog data.csv | wc -l) $(vlog model.bin | wc -l)"
g=$(pv gc --keep-last 1 --dry-run --json)
check "gc --dry-run: data.csv@2,@3 would go, @1 is kept for model.bin's lineage" python3 -c '
import json, sys
g = json.loads(sys.argv[1])
d = {(x["path"], x["version"]) for x in g["dropped"]}
assert ("data.csv", 2) in d and ("data.csv", 3) in d, d
assert ("data.csv", 1) not in d and ("data.csv", 4) not in d and ("model.bin", 1) not in d, d
assert g["dry_run"] and g["kept_for_lineage"] >= 1 and g["chunks_freed"] == 0, g' "$g"
check_eq "gc --dry-run changed nothing" "4" "$(vlog data.csv | wc -l)"
pv gc --keep-last 1 >"$out/gc.txt" 2>&1
check "gc --keep-last 1 reports what it dropped and freed" \
    grep -q '^gc: dropped [0-9]* versions .* kept for lineage; freed [0-9]* chunks' "$out/gc.txt"
check_eq "gc kept data.csv@1 (lineage of model.bin@1) and @4 (current)" \
    "$(lines "1 written 7 $(h $'data 1\n') -" "4 written 7 $(h $'data 4\n') -")" "$(vlog data.csv)"
check_eq "gc kept the newest content of a deleted file (del.txt)" \
    "3 restored 7 $(h $'doomed\n') del.txt@1" "$(vlog del.txt | grep restored)"
check_eq "gc kept the current version of every path (f.txt@11)" "11" \
    "$(vlog f.txt | tail -1 | cut -d' ' -f1)"
check_eq "after gc, fsck is clean" "fsck: clean" "$(pv fsck 2>&1)"
check "after gc, every kept version still reproduces its hash" every_version_ok 10
pv gc --keep-last 1 --prune-lineage >/dev/null 2>&1
check_eq "gc --prune-lineage drops data.csv@1 too" "4 written 7 $(h $'data 4\n') -" "$(vlog data.csv)"
check_eq "after pruning, fsck is clean" "fsck: clean" "$(pv fsck 2>&1)"
st2=$(pv stats --json)
check "gc freed stored bytes" python3 -c '
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert b["versions"]["total"] < a["versions"]["total"] and b["dead_chunks"] == 0, (a, b)' "$st" "$st2"

ws_umount "$ws" || not_ok "final umount"
check_eq "gc works unmounted (policy default: keep_last 50 keeps everything)" \
    "gc: dropped 0 versions" "$(pv gc 2>&1 | grep -o '^gc: dropped 0 versions')"
check_eq "fsck clean unmounted" "fsck: clean" "$(pv fsck 2>&1)"
printf 'retention:\n  keep_last: 3\n  keep_within: 2h\n' >"$ws/provfs.yaml"
check_eq "gc without flags takes its rules from provfs.yaml" "policy 3 7200" \
    "$(pv gc --dry-run --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["rules"]; print(r["from"], r["keep_last"], r["keep_within"])')"
printf 'retention: {keep_last: [\n' >"$ws/provfs.yaml"
err=$(pv gc 2>&1); rc=$?
check "gc with an invalid provfs.yaml: exit 1, names the file and line" \
    test "$rc" = 1 -a -n "$(grep -o 'gc: loading the policy: provfs.yaml:[0-9]*:' <<<"$err")"
rm "$ws/provfs.yaml"

# 11. a corrupted pack byte: fsck names the chunk and exits 1; cat fails
# src.bin@1 (300 kB of random bytes) is stored raw, so its bytes are in a
# pack verbatim: flip one in the middle of them, in every copy found.
# (Flipping the middle byte of the largest pack missed once in a full
# run, fsck clean; a likely cause, not verified: src.bin and its copy
# dst.bin snapshotted at once by both workers, so the same chunks were
# appended twice and one copy is dead bytes.)
(cd "$ws" && "$PROVFS" cat src.bin@1) >"$out/src.v1"
flipped=$(python3 - "$out/src.v1" "$ws"/.provfs/packs/* <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
packs = {p: bytearray(open(p, "rb").read()) for p in sys.argv[2:]}
n = 0
# a 64-byte run near the middle that no chunk boundary splits
for off in (0, 4096, -4096, 8192, -8192):
    mid = len(data) // 2 + off
    needle = data[mid:mid + 64]
    for buf in packs.values():
        at = buf.find(needle)
        while at >= 0:
            buf[at + 32] ^= 0xff
            n += 1
            at = buf.find(needle, at + 1)
    if n:
        break
for p, buf in packs.items():
    open(p, "r+b").write(buf)
print(n)
PY
)
check "src.bin@1's bytes were found in a pack and flipped" test "${flipped:-0}" -ge 1
fs=$(pv fsck 2>"$out/fsck.err"); rc=$?
check_eq "fsck after corrupting a pack byte: exit 1" 1 "$rc"
check "fsck names the damaged chunk" grep -q '^problem: .*chunk [0-9a-f]\{64\}' <<<"$fs"
check "fsck counts problems on stderr" grep -q 'provfs: fsck: [0-9]* problems\? found' "$out/fsck.err"
check_fails "cat of the damaged version fails" bash -c "cd '$ws' && '$PROVFS' cat src.bin@1 >/dev/null 2>&1"
t_done
