#!/usr/bin/env bash
# test_bench_smoke.sh - scripts/bench-fs still runs end to end (--tiny, on
# the bare directory and on provfs) and prints a numeric row per workload;
# scripts/bench-latency prints a row per transport, unmounts everything and
# puts the fuse module's enable_uring back.
# Times are not asserted: the benches are measurements, not tests.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"

work=$(t_tmpdir)
out=$(t_tmpdir)

"$root/scripts/bench-fs" --tiny --only bare,provfs --provfs "$PROVFS" \
    --workdir "$work" --out "$out/bench.md" >"$out/stdout" 2>"$out/stderr"
rc=$?
check_eq "bench-fs --tiny exits 0" 0 "$rc"
[ "$rc" = 0 ] || sed 's/^/#   /' "$out/stderr" | tail -20

num='[0-9]+\.[0-9]+'
for w in untar find git rm seq-write seq-read-cold seq-read-cached \
         rand-read-cold ml; do
    # | ROW | bare s | provfs s | provfs xbare | what |
    check "table row '$w' has bare and provfs seconds and a ratio" \
        grep -Eq "^\| $w \| $num \| $num \| ${num}x \| " "$out/bench.md"
done
for w in seq-write seq-read-cold seq-read-cached; do
    check "throughput row '$w' has MB/s for both" \
        grep -Eq "^\| $w \| [0-9]+ \| [0-9]+ \|$" "$out/bench.md"
done
check_eq "the --out file is what was printed" "$(cat "$out/stdout")" "$(cat "$out/bench.md")"

nothing_mounted_under() { ! grep -q " ${1}/" /proc/self/mountinfo; }
check "bench-fs left nothing mounted" nothing_mounted_under "$work"
check_eq "bench-fs removed its run directory" "" "$(ls -A "$work")"

param_before=$(cat "$URING_PARAM" 2>/dev/null)
TMPDIR=$work "$root/scripts/bench-latency" --calls 200 --rounds 1 --provfs "$PROVFS" \
    >"$out/lat" 2>"$out/lat.err"
rc=$?
if [ -e "$URING_PARAM" ]; then
    check_eq "bench-latency exits 0" 0 "$rc"
    rows="bare provfs provfs-uring"
else
    check_eq "bench-latency exits 1 (no io_uring on this kernel)" 1 "$rc"
    rows="bare provfs"
fi
for t in $rows; do
    check "bench-latency row '$t' has both figures and ratios" \
        grep -Eq "^\| $t \| $num \| ${num}x \| $num \| ${num}x \|$" "$out/lat"
done
check_eq "bench-latency put enable_uring back" "$param_before" "$(cat "$URING_PARAM" 2>/dev/null)"
check "bench-latency left nothing mounted" nothing_mounted_under "$work"
check_eq "bench-latency removed its directory" "" "$(ls -A "$work")"

t_done
