#!/usr/bin/env bash
# test_policy_cli.sh - `provfs policy check|show` against the good and bad
# policy corpora in tests/policies/, plus generated oversized inputs.
#
# Every bad policy must fail with exit status 1 and exactly one line on
# stderr, "FILE:LINE:COL: message", at the position its "# expect:" header
# (or NAME.expect) names; a sanitizer report or crash fails the case.
# No mount is needed.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:exitcode=86}"
tmp=$(t_tmpdir)

# expect_bad FILE "LINE:COL: substring"
expect_bad() {
    local f=$1 exp=$2 err rc pos sub
    pos=${exp%%: *}; sub=${exp#*: }
    err=$("$PROVFS" policy check "$f" 2>&1 >/dev/null); rc=$?
    if [ $rc -eq 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] &&
       [[ $err == "$f:$pos: "* ]] && [[ $err == *"$sub"* ]]; then
        ok "bad $(basename "$f"): $pos"
    else
        not_ok "bad $(basename "$f")"
        printf '#   want: exit 1, %s:%s: ...%s...\n#   got:  exit %s, %s\n' "$f" "$pos" "$sub" "$rc" "$err"
    fi
}

n=0
for f in "$root"/tests/policies/bad/*.yaml; do
    exp=$(sed -n '1s/^# expect: //p' "$f")
    [ -z "$exp" ] && exp=$(cat "${f%.yaml}.expect")
    expect_bad "$f" "$exp"
    n=$((n + 1))
done
check "at least 30 bad policies ($n)" test "$n" -ge 30

# Generated: too large, too many nodes, nesting a megabyte deep.
python3 -c 'import sys; sys.stdout.write("#" * (1 << 20) + "\nversion: 1\n")' > "$tmp/huge.yaml"
expect_bad "$tmp/huge.yaml" "1:1: larger than 1048576 bytes"
python3 -c 'import sys; sys.stdout.write("ignore: [" + "a," * 150000 + "a]\n")' > "$tmp/many.yaml"
expect_bad "$tmp/many.yaml" "1:200004: more than 100000 YAML nodes"
python3 -c 'import sys; sys.stdout.write("[" * 1000000)' > "$tmp/deep.yaml"
expect_bad "$tmp/deep.yaml" "1:9: nesting deeper than 8 levels"

# Good policies: ok, and show round-trips to the same content id.
for f in "$root"/tests/policies/good/*.yaml "$root"/policies/examples/*.yaml "$root"/policies/default.yaml; do
    b=$(basename "$f")
    out=$("$PROVFS" policy check "$f" 2>&1); rc=$?
    id=${out##*sha256 }; id=${id%)}
    check "good $b: ok" test $rc -eq 0 -a "$out" = "$f: ok (sha256 $id)" -a ${#id} -eq 64
    "$PROVFS" policy show "$f" > "$tmp/show.yaml"
    check_eq "good $b: show's sha256 is the content id" "$id" "$(sha256sum < "$tmp/show.yaml" | cut -d' ' -f1)"
    out2=$("$PROVFS" policy check "$tmp/show.yaml" 2>&1)
    check_eq "good $b: show reloads to the same id" "$tmp/show.yaml: ok (sha256 $id)" "$out2"
    "$PROVFS" policy show "$tmp/show.yaml" > "$tmp/show2.yaml"
    check "good $b: show is a fixed point" cmp -s "$tmp/show.yaml" "$tmp/show2.yaml"
done
check "show --default is the shipped default" \
    cmp -s <("$PROVFS" policy show --default) <("$PROVFS" policy show "$root/policies/default.yaml")

# The workspace's provfs.yaml, found from a subdirectory.
ws=$tmp/ws
mkdir -p "$ws/.provfs" "$ws/src/deep"
out=$(cd "$ws/src/deep" && "$PROVFS" policy check 2>&1); rc=$?
check "no provfs.yaml: exit 1" test $rc -eq 1
check "no provfs.yaml: says the default applies" grep -q "built-in default applies" <<<"$out"
check "no provfs.yaml: show prints the built-in default" \
    cmp -s <(cd "$ws/src/deep" && "$PROVFS" policy show 2>/dev/null) <("$PROVFS" policy show --default)
printf 'version: 1\nignore: ["scratch/"]\n' > "$ws/provfs.yaml"
out=$(cd "$ws/src/deep" && "$PROVFS" policy check 2>&1); rc=$?
check "workspace provfs.yaml found from a subdirectory" test $rc -eq 0 -a "${out%%: ok*}" = "$ws/provfs.yaml"
check "workspace show includes the user's rule" \
    grep -q '"scratch/"' <(cd "$ws/src/deep" && "$PROVFS" policy show)
printf 'version: 1\nignore: [*.tmp]\n' > "$ws/provfs.yaml"
err=$(cd "$ws" && "$PROVFS" policy check 2>&1 >/dev/null); rc=$?
check "workspace provfs.yaml error: exit 1 and position" \
    test $rc -eq 1 -a "${err%%: YAML*}" = "$ws/provfs.yaml:2:10"
out=$(cd / && "$PROVFS" policy check 2>&1); rc=$?
check "outside a workspace: exit 1" test $rc -eq 1

# Missing files and usage errors.
err=$("$PROVFS" policy check "$tmp/nope.yaml" 2>&1); rc=$?
check "missing file: exit 1" test $rc -eq 1
check_eq "missing file: message" "provfs: policy: $tmp/nope.yaml: No such file or directory" "$err"
for args in "" "frob" "check a b" "check --bogus" "show a b" "show --bogus"; do
    # shellcheck disable=SC2086
    "$PROVFS" policy $args >/dev/null 2>&1; rc=$?
    check_eq "usage error 'policy $args' exits 2" 2 "$rc"
done
"$PROVFS" policy --help >/dev/null; check_eq "policy --help exits 0" 0 $?

t_done
