#!/usr/bin/env bash
# test_bench_smoke.sh - scripts/bench-fs still runs end to end (--tiny, on
# the bare directory and on provfs) and prints a numeric row per workload.
# Times are not asserted: the bench is a measurement, not a test.
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

t_done
