#!/usr/bin/env bash
# POSIX behaviour of the passthrough mount: every case runs through a real
# provfs mount (as root, with allow_other) and asserts the exact outcome;
# permission cases run the same commands as nobody against the mount and
# against an identical bare directory and require identical answers.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
bare=$(t_tmpdir)
chmod 755 "$ws" "$bare"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# Build the same permission fixture in a directory (run before mounting ws
# over itself, so both start identical).
fixture() {
    local d=$1
    mkdir -p "$d/perm/priv" "$d/perm/ro" "$d/perm/sticky" "$d/perm/open"
    echo secret > "$d/perm/secret"; chmod 600 "$d/perm/secret"
    echo public > "$d/perm/public"; chmod 644 "$d/perm/public"
    chmod 700 "$d/perm/priv"; chmod 755 "$d/perm/ro"; chmod 1777 "$d/perm/sticky"
    chmod 777 "$d/perm/open"
    echo root > "$d/perm/sticky/rootfile"; chmod 666 "$d/perm/sticky/rootfile"
    echo x > "$d/perm/noexec.sh"; chmod 644 "$d/perm/noexec.sh"
}
fixture "$ws"
fixture "$bare"
echo keep > "$ws/preexisting"
pre_ino=$(stat -c %i "$ws/preexisting")
ws_mount "$ws" -o allow_other || { not_ok "mount $ws"; exit 1; }
ok "mount $ws"
T_DIRS+=("$ws.helper")

# ---- plain files -----------------------------------------------------------
printf 'hello world\n' > "$ws/f1"
check_eq "create, write, read back" "hello world" "$(cat "$ws/f1")"
check_eq "pre-existing file readable" "keep" "$(cat "$ws/preexisting")"
head -c 3000000 /dev/urandom > "$ws.rand"; T_DIRS+=("$ws.rand")
cp "$ws.rand" "$ws/big"
check "3 MB file round-trips byte for byte" cmp -s "$ws.rand" "$ws/big"
check_eq "st_size of the big file" 3000000 "$(stat -c %s "$ws/big")"

printf 'a\n' >> "$ws/app"; printf 'b\n' >> "$ws/app"
check_eq "O_APPEND appends" "$(printf 'a\nb')" "$(cat "$ws/app")"
printf 'a much longer line\n' > "$ws/tr"; printf 'x\n' > "$ws/tr"
check_eq "O_TRUNC truncates" "x" "$(cat "$ws/tr")"
check_eq "truncated size" 2 "$(stat -c %s "$ws/tr")"
truncate -s 5 "$ws/tr"
check_eq "truncate(2) extends" 5 "$(stat -c %s "$ws/tr")"

# ---- rename ----------------------------------------------------------------
echo A > "$ws/ra"; echo B > "$ws/rb"
mv -f "$ws/ra" "$ws/rb"
check_eq "rename over an existing file: new content" "A" "$(cat "$ws/rb")"
check_fails "rename over an existing file: old name gone" test -e "$ws/ra"
mkdir -p "$ws/d1/d2"; echo deep > "$ws/d1/d2/f"
mv "$ws/d1" "$ws/d3"
check_eq "rename of a directory keeps its subtree" "deep" "$(cat "$ws/d3/d2/f")"

renameat2() {  # renameat2 FROM TO FLAGS -> prints 0 or the errno name
    python3 - "$@" <<'PY'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]),
                   int(sys.argv[3]))
print(0 if r == 0 else errno.errorcode[ctypes.get_errno()])
PY
}
echo one > "$ws/n1"; echo two > "$ws/n2"
check_eq "RENAME_NOREPLACE onto an existing name fails with EEXIST" EEXIST \
    "$(renameat2 "$ws/n1" "$ws/n2" 1)"
check_eq "RENAME_NOREPLACE left the target alone" "two" "$(cat "$ws/n2")"
check_eq "RENAME_NOREPLACE to a free name" 0 "$(renameat2 "$ws/n1" "$ws/n3" 1)"
check_eq "RENAME_NOREPLACE moved the content" "one" "$(cat "$ws/n3")"
check_eq "RENAME_EXCHANGE succeeds" 0 "$(renameat2 "$ws/n2" "$ws/n3" 2)"
check_eq "RENAME_EXCHANGE swapped (first)" "one" "$(cat "$ws/n2")"
check_eq "RENAME_EXCHANGE swapped (second)" "two" "$(cat "$ws/n3")"
check_eq "RENAME_EXCHANGE with a missing name fails with ENOENT" ENOENT \
    "$(renameat2 "$ws/n2" "$ws/nothere" 2)"

# ---- links, symlinks, fifos ------------------------------------------------
echo linked > "$ws/h1"
ln "$ws/h1" "$ws/h2"
check_eq "hard link shares st_ino" "$(stat -c %i "$ws/h1")" "$(stat -c %i "$ws/h2")"
check_eq "hard link count is 2" 2 "$(stat -c %h "$ws/h1")"
check_eq "st_ino is the backing inode number" "$pre_ino" "$(stat -c %i "$ws/preexisting")"
echo more >> "$ws/h2"
check_eq "write through one link is seen through the other" \
    "$(printf 'linked\nmore')" "$(cat "$ws/h1")"
rm "$ws/h1"
check_eq "unlinking one link leaves count 1" 1 "$(stat -c %h "$ws/h2")"

ln -s h2 "$ws/sl"
check_eq "readlink" "h2" "$(readlink "$ws/sl")"
check_eq "symlink is a symlink" "symbolic link" "$(stat -c %F "$ws/sl")"
check_eq "reading through a symlink" "linked" "$(head -1 "$ws/sl")"
ln -s /nonexistent/target "$ws/dangling"
check_eq "dangling symlink keeps its target" "/nonexistent/target" "$(readlink "$ws/dangling")"
touch -h -d '2001-02-03 04:05:06 UTC' "$ws/sl"
check_eq "utimensat on the symlink itself" 981173106 "$(stat -c %Y "$ws/sl")"

mkfifo "$ws/fifo"
check_eq "mkfifo makes a fifo" "fifo" "$(stat -c %F "$ws/fifo")"
( echo "through the pipe" > "$ws/fifo" ) &
wpid=$!
check_eq "fifo carries data from writer to reader" "through the pipe" \
    "$(timeout 10 cat "$ws/fifo")"
wait "$wpid"
python3 -c 'import os,socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$ws/sock"
check_eq "mknod of a socket" "socket" "$(stat -c %F "$ws/sock")"

# ---- metadata --------------------------------------------------------------
echo m > "$ws/meta"
chmod 640 "$ws/meta"
check_eq "chmod" 640 "$(stat -c %a "$ws/meta")"
chmod 4755 "$ws/meta"
check_eq "chmod with setuid bit" 4755 "$(stat -c %a "$ws/meta")"
chown 65534:65534 "$ws/meta"
check_eq "chown" "65534:65534" "$(stat -c %u:%g "$ws/meta")"
touch -d '2020-01-02 03:04:05 UTC' "$ws/meta"
check_eq "utimensat sets mtime" 1577934245 "$(stat -c %Y "$ws/meta")"
check_eq "utimensat sets atime" 1577934245 "$(stat -c %X "$ws/meta")"
touch -m -d '2021-01-01 00:00:00 UTC' "$ws/meta"
check_eq "mtime-only change (UTIME_OMIT for atime): mtime" 1609459200 "$(stat -c %Y "$ws/meta")"
check_eq "mtime-only change (UTIME_OMIT for atime): atime kept" 1577934245 "$(stat -c %X "$ws/meta")"
before=$(date +%s); touch "$ws/meta"
check "touch with UTIME_NOW sets a current mtime" test "$(stat -c %Y "$ws/meta")" -ge "$before"

setfattr -n user.color -v blue "$ws/meta"
check_eq "setxattr/getxattr" "blue" "$(getfattr --only-values -n user.color "$ws/meta" 2>/dev/null)"
check "listxattr lists it" sh -c "getfattr -d '$ws/meta' 2>/dev/null | grep -q '^user.color='"
setfattr -x user.color "$ws/meta"
check_fails "removexattr removes it" getfattr -n user.color "$ws/meta" 2>/dev/null
mkdir "$ws/xd"; setfattr -n user.k -v dirval "$ws/xd"
check_eq "xattr on a directory" "dirval" "$(getfattr --only-values -n user.k "$ws/xd" 2>/dev/null)"

# ---- sparse files, fallocate, copy_file_range, mmap ------------------------
python3 - "$ws/sparse" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 8 << 20)
os.pwrite(fd, b"x" * 4096, 4 << 20)
os.close(fd)
PY
seek() {
    python3 - "$@" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, int(sys.argv[3]), {"data": os.SEEK_DATA, "hole": os.SEEK_HOLE}[sys.argv[2]]))
PY
}
check_eq "SEEK_DATA finds the data" $((4 << 20)) "$(seek "$ws/sparse" data 0)"
check_eq "SEEK_HOLE finds the hole after it" $(((4 << 20) + 4096)) "$(seek "$ws/sparse" hole $((4 << 20)))"
check_eq "SEEK_HOLE at 0 is 0" 0 "$(seek "$ws/sparse" hole 0)"
check "sparse file uses few blocks" test "$(stat -c %b "$ws/sparse")" -le 64

fallocate -l 1048576 "$ws/falloc"
check_eq "fallocate sets the size" 1048576 "$(stat -c %s "$ws/falloc")"
check "fallocate allocates blocks" test "$(stat -c %b "$ws/falloc")" -ge 2048
fallocate -n -o 1048576 -l 1048576 "$ws/falloc"
check_eq "fallocate KEEP_SIZE keeps the size" 1048576 "$(stat -c %s "$ws/falloc")"
head -c 1048576 /dev/urandom > "$ws/punch"
fallocate -p -o 0 -l 65536 "$ws/punch"
check_eq "punch hole: data now starts at 64 KiB" 65536 "$(seek "$ws/punch" data 0)"
check_eq "punch hole keeps the size" 1048576 "$(stat -c %s "$ws/punch")"

python3 - "$ws/big" "$ws/cfr" <<'PY'
import os, sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
left = os.fstat(src).st_size
while left:
    n = os.copy_file_range(src, dst, left)
    if n == 0: break
    left -= n
PY
check "copy_file_range copies the whole file" cmp -s "$ws/big" "$ws/cfr"

head -c 65536 /dev/zero > "$ws/mm"
python3 - "$ws/mm" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(fd, 65536, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
m[100:105] = b"hello"
m[60000:60005] = b"world"
m.flush(); m.close(); os.close(fd)
PY
check_eq "mmap MAP_SHARED writes reach the file (1)" "hello" "$(dd if="$ws/mm" bs=1 skip=100 count=5 2>/dev/null)"
check_eq "mmap MAP_SHARED writes reach the file (2)" "world" "$(dd if="$ws/mm" bs=1 skip=60000 count=5 2>/dev/null)"

dd if="$ws.rand" of="$ws/direct" bs=65536 count=16 oflag=direct status=none
check_eq "O_DIRECT write" 1048576 "$(stat -c %s "$ws/direct")"
check "O_DIRECT read returns what was written" \
    cmp -s <(head -c 1048576 "$ws.rand") <(dd if="$ws/direct" bs=65536 iflag=direct status=none)

python3 - "$ws/gone" <<'PY' > "$ws.helper"
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"still here")
os.unlink(sys.argv[1])
os.lseek(fd, 0, 0)
print(os.read(fd, 100).decode(), os.fstat(fd).st_nlink)
PY
check_eq "unlinked open file stays readable and fstat works" "still here 0" "$(cat "$ws.helper")"

# ---- concurrency -----------------------------------------------------------
for w in 1 2 3 4; do
    python3 - "$ws/appendlog" "$w" <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
for i in range(500):
    os.write(fd, f"writer {sys.argv[2]} line {i:04d}\n".encode())
PY
done
for w in 1 2 3 4; do
    python3 - "$ws/regions" "$w" <<'PY' &
import os, sys
w = int(sys.argv[2])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(64):
    os.pwrite(fd, bytes([64 + w]) * 4096, ((i * 4) + w - 1) * 4096)
PY
done
wait
check_eq "4 concurrent O_APPEND writers: all lines" 2000 "$(wc -l < "$ws/appendlog")"
check_eq "4 concurrent O_APPEND writers: no torn line" 2000 \
    "$(grep -cE '^writer [1-4] line [0-9]{4}$' "$ws/appendlog")"
check_eq "4 concurrent pwrite writers: size" $((256 * 4096)) "$(stat -c %s "$ws/regions")"
check_eq "4 concurrent pwrite writers: each region intact" \
    "$(python3 -c 'print("".join(chr(65 + (i % 4)) for i in range(256)))')" \
    "$(python3 -c '
import sys; d = open(sys.argv[1], "rb").read()
print("".join(chr(d[i * 4096]) if len(set(d[i*4096:(i+1)*4096])) == 1 else "?" for i in range(256)))' "$ws/regions")"

# ---- directories -----------------------------------------------------------
mkdir "$ws/many"
python3 -c '
import os, sys
for i in range(3000): open(os.path.join(sys.argv[1], "file%05d" % i), "w").close()' "$ws/many"
check_eq "readdir of 3000 entries (several buffers)" 3000 "$(ls "$ws/many" | wc -l)"
check_eq "readdirplus attributes of 3000 entries" 3000 "$(ls -l "$ws/many" | grep -c '^-rw')"
check_eq "find sees every entry once" 3001 "$(find "$ws/many" | sort -u | wc -l)"
rm -rf "$ws/many"
check_fails "rm -rf removes the directory" test -e "$ws/many"
mkdir "$ws/nonempty"; touch "$ws/nonempty/x"
check_eq "rmdir of a non-empty directory fails" 1 "$(rmdir "$ws/nonempty" 2>/dev/null; echo $?)"

# ---- the store is invisible ------------------------------------------------
check_fails "readdir of the root does not list .provfs" sh -c "ls -a '$ws' | grep -qx .provfs"
check_fails "lookup of .provfs fails" stat "$ws/.provfs" 2>/dev/null
check_eq "lookup of .provfs is ENOENT" "No such file or directory" \
    "$(python3 -c 'import os,sys
try: os.stat(sys.argv[1])
except OSError as e: print(e.strerror)' "$ws/.provfs")"
check_fails "nothing below .provfs is reachable" cat "$ws/.provfs/lock.mdb" 2>/dev/null
mkop() {  # mkop NAME CMD...: the errno string of a creating op on the root
    python3 - "$@" <<'PY'
import os, sys, socket
p = sys.argv[2]
try:
    {"mkdir": lambda: os.mkdir(p), "create": lambda: open(p, "x").close(),
     "symlink": lambda: os.symlink("f1", p), "link": lambda: os.link(sys.argv[3], p),
     "rename": lambda: os.rename(sys.argv[3], p), "mkfifo": lambda: os.mkfifo(p),
     "unlink": lambda: os.unlink(p), "rmdir": lambda: os.rmdir(p),
     "rename_from": lambda: os.rename(p, sys.argv[3])}[sys.argv[1]]()
    print("ok")
except OSError as e:
    print(e.strerror)
PY
}
echo tmp > "$ws/victim"
for op in mkdir create symlink mkfifo; do
    check_eq "$op .provfs at the root is EPERM" "Operation not permitted" "$(mkop $op "$ws/.provfs")"
done
check_eq "link to .provfs at the root is EPERM" "Operation not permitted" "$(mkop link "$ws/.provfs" "$ws/victim")"
check_eq "rename to .provfs at the root is EPERM" "Operation not permitted" "$(mkop rename "$ws/.provfs" "$ws/victim")"
check_eq "rename from .provfs is ENOENT" "No such file or directory" "$(mkop rename_from "$ws/.provfs" "$ws/x")"
check_eq "unlink .provfs is ENOENT" "No such file or directory" "$(mkop unlink "$ws/.provfs")"
check_eq "rmdir .provfs is ENOENT" "No such file or directory" "$(mkop rmdir "$ws/.provfs")"
check_eq ".prov (the virtual tree) cannot be made at the root" "File exists" "$(mkop mkdir "$ws/.prov")"
check_eq ".provfs below the root is an ordinary name" "ok" "$(mkop mkdir "$ws/xd/.provfs")"

# ---- statfs ----------------------------------------------------------------
check_eq "statfs matches the backing file system" \
    "$(stat -f -c '%b %S %c' "$bare")" "$(stat -f -c '%b %S %c' "$ws")"
check "df works on the mount" df "$ws" >/dev/null

# ---- other users -----------------------------------------------------------
mkdir "$ws/shared"; chmod 777 "$ws/shared"
"${NOBODY[@]}" sh -c "cd / && echo mine > '$ws/shared/nf' && mkdir '$ws/shared/nd' && ln -s nf '$ws/shared/nl' && mkfifo '$ws/shared/np'"
check_eq "file created by nobody is owned by nobody" "65534:65534" "$(stat -c %u:%g "$ws/shared/nf")"
check_eq "directory created by nobody is owned by nobody" "65534:65534" "$(stat -c %u:%g "$ws/shared/nd")"
check_eq "symlink created by nobody is owned by nobody" "65534:65534" "$(stat -c %u:%g "$ws/shared/nl")"
check_eq "fifo created by nobody is owned by nobody" "65534:65534" "$(stat -c %u:%g "$ws/shared/np")"
check_eq "umask applied once (mode of nobody's file)" 644 "$(stat -c %a "$ws/shared/nf")"
"${NOBODY[@]}" sh -c "umask 002; cd / && echo g > '$ws/shared/gw'"
check_eq "caller's umask 002 respected" 664 "$(stat -c %a "$ws/shared/gw")"
mkdir "$ws/sgid"; chgrp 100 "$ws/sgid"; chmod 2777 "$ws/sgid"
"${NOBODY[@]}" sh -c "cd / && echo s > '$ws/sgid/f' && mkdir '$ws/sgid/d'"
check_eq "setgid directory: file gets the directory's group" "65534:100" "$(stat -c %u:%g "$ws/sgid/f")"
check_eq "setgid directory: subdirectory gets the group" "65534:100" "$(stat -c %u:%g "$ws/sgid/d")"
check_eq "setgid directory: subdirectory inherits setgid" 2755 "$(stat -c %a "$ws/sgid/d")"

# Same commands as nobody, on the mount and on the bare directory.
perm_probe() {  # perm_probe DIR -> one line per case: rc and message
    local d=$1
    "${NOBODY[@]}" bash -c '
d=$1; cd /
run() { local out; out=$("$@" 2>&1); echo "$? ${out//$d/D}"; }
run cat "$d/perm/secret"
run cat "$d/perm/public"
run sh -c "echo x >> \"$d/perm/public\""
run ls "$d/perm/priv"
run touch "$d/perm/ro/new"
run touch "$d/perm/open/new"
run rm -f "$d/perm/sticky/rootfile"
run sh -c "echo y >> \"$d/perm/sticky/rootfile\""
run "$d/perm/noexec.sh"
run chmod 777 "$d/perm/public"
run chown 65534 "$d/perm/public"
run mkdir "$d/perm/ro/sub"
run mv "$d/perm/public" "$d/perm/open/"
run rm -f "$d/perm/open/new"
run test -w "$d/perm/secret"
run test -r "$d/perm/public"
run test -x "$d/perm/priv"
' _ "$d"
}
probe_ws=$(perm_probe "$ws")
check_eq "nobody gets the same answers as on the bare directory" \
    "$(perm_probe "$bare")" "$probe_ws"
check_eq "nobody is denied the secret" "1 cat: D/perm/secret: Permission denied" \
    "$(head -1 <<<"$probe_ws")"

ws_umount "$ws" || not_ok "umount"
check_eq "files written through the mount are in the directory" "hello world" "$(cat "$ws/f1")"
check "the store is still there after unmount" test -d "$ws/.provfs"
t_done
