#!/usr/bin/env bash
# Directory listings from the kernel's cache ("Directory listings" in
# fs/ops.c): a directory listed once is listed again from the kernel's
# cache, with no READDIR reaching the daemon, until the kernel looks up its
# files by name (ls -l, du); from then on every listing is a fresh
# READDIRPLUS.  Changes through the mount show at once; changes made beside
# it (in the source of a --source mount) show once the attribute timeout
# (1 s) has passed.  cache=none never uses the listing cache.
. "$(dirname "$0")/lib.sh"

src=$(t_tmpdir)
mnt=$(t_tmpdir)
mkdir -p "$src/d/sub" "$src/d/odd dir"
for i in $(seq 1 40); do echo "$i" >"$src/d/f$i"; done
for i in 1 2 3; do echo "$i" >"$src/d/sub/g$i"; done
touch "$src/d/odd dir/with space" "$src/d/odd dir/$(printf 'new\nline')" \
      "$src/d/odd dir/$(printf 'bad\377byte')"
ws_mount "$mnt" --source "$src" >/dev/null || { not_ok "mount --source"; exit 1; }
ok "mount --source $src $mnt"

daemon() {  # daemon KEY -> the daemon's counter in `status --json`
    "$PROVFS" status --json "$mnt" | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["daemon"][sys.argv[1]])' "$1"
}
# Every name under DIR, one per line, with \n and bytes escaped (find -print0).
names() { (cd "$1" && find . -print0 | python3 -c '
import sys
for n in sorted(sys.stdin.buffer.read().split(b"\0")[:-1]):
    print(ascii(n))'); }

want=$(names "$src/d")
check_eq "first find lists every name, odd ones too" "$want" "$(names "$mnt/d")"
r0=$(daemon dir_reads); c0=$(daemon dir_opens_cached); o0=$(daemon dir_opens)
check_eq "second find lists the same names" "$want" "$(names "$mnt/d")"
check_eq "second find: no READDIR reached the daemon" "$r0" "$(daemon dir_reads)"
o=$(( $(daemon dir_opens) - o0 )); c=$(( $(daemon dir_opens_cached) - c0 ))
check "second find opened directories ($o)" test "$o" -ge 3
check_eq "second find: every directory open allowed the cache" "$o" "$c"

# ---- changes through the mount show at once --------------------------------
echo x >"$mnt/d/made"
check "a file created through the mount is listed at once" \
    sh -c 'ls "$1" | grep -qx made' sh "$mnt/d"
mv "$mnt/d/made" "$mnt/d/sub/moved"
check_eq "renamed away: gone from one listing, in the other" "no yes" \
    "$(ls "$mnt/d" | grep -qx made && echo yes || echo no) $(ls "$mnt/d/sub" | grep -qx moved && echo yes || echo no)"
rm "$mnt/d/sub/moved"
check_eq "removed through the mount: gone at once" "$want" "$(names "$mnt/d")"

# ---- changes beside the mount show after the attribute timeout -------------
names "$mnt/d" >/dev/null
sleep 0.1
echo y >"$src/d/beside"
sleep 1.2
check "a file created in the source shows after the timeout" \
    sh -c 'ls "$1" | grep -qx beside' sh "$mnt/d"
rm "$src/d/beside"
sleep 1.2
check_eq "... and its removal too" "$want" "$(names "$mnt/d")"

# ---- a directory whose files are looked up is listed afresh ---------------
sleep 1.2                                   # the kernel's entries go stale
ls -l "$mnt/d" >/dev/null                   # LOOKUP of each f*
r1=$(daemon dir_reads); c1=$(daemon dir_opens_cached)
ls -l "$mnt/d" >/dev/null
check_eq "after ls -l: d's next open does not allow the cache" "$c1" "$(daemon dir_opens_cached)"
check "after ls -l: d's listing came to the daemon again" test "$(daemon dir_reads)" -gt "$r1"
check_eq "and lists the same names" "$want" "$(names "$mnt/d")"
r2=$(daemon dir_reads); c2=$(daemon dir_opens_cached)
ls "$mnt/d/sub" >/dev/null
check_eq "sub (only its name was looked up) still lists from the cache" \
    "$r2 $((c2 + 1))" "$(daemon dir_reads) $(daemon dir_opens_cached)"

"$PROVFS" status "$mnt" | grep -q '^listings:  [0-9]* directory opens, [0-9]* of them allowed'
check "status text has the listings line" test $? = 0
ws_umount "$mnt" || not_ok "umount $mnt"

# ---- cache=none: never ------------------------------------------------------
ws_mount "$mnt" -o cache=none --source "$src" >/dev/null || { not_ok "mount cache=none"; exit 1; }
names "$mnt/d" >/dev/null
r0=$(daemon dir_reads)
check_eq "cache=none: same names" "$want" "$(names "$mnt/d")"
check_eq "cache=none: no open allowed the cache" 0 "$(daemon dir_opens_cached)"
check "cache=none: every listing reached the daemon" test "$(daemon dir_reads)" -gt "$r0"
ws_umount "$mnt" || not_ok "umount $mnt (cache=none)"

t_done
