#!/usr/bin/env bash
# The mount lifecycle: refusals with clear errors, stale mounts, busy
# unmounts, --source, and what the mount hides.
. "$(dirname "$0")/lib.sh"

tmp=$(t_tmpdir)
out() { "$@" 2>&1; echo "exit=$?"; }

# refusals
r=$(out "$PROVFS" mount "$tmp/missing")
check "mount of a missing directory fails, naming it" grep -q "provfs: mount: $tmp/missing: No such file or directory" <<<"$r"
check_eq "missing directory: exit 1" "exit=1" "$(tail -1 <<<"$r")"
touch "$tmp/file"
r=$(out "$PROVFS" mount "$tmp/file")
check "mount of a file fails: not a directory" grep -q "provfs: mount: $tmp/file: not a directory" <<<"$r"
r=$(out "$PROVFS" mount)
check "mount without a directory is a usage error (exit 2)" grep -q "exit=2" <<<"$r"
r=$(out "$PROVFS" mount -o bogus "$tmp")
check "unknown mount option is a usage error" grep -q "unknown mount option 'bogus'" <<<"$r"
r=$(out "$PROVFS" frobnicate)
check "unknown command: exit 2 and a message" grep -q "'frobnicate' is not a provfs command" <<<"$r"
r=$(out unshare -m sh -c "mount -t tmpfs none /dev && '$PROVFS' mount '$tmp'")
check "no /dev/fuse: clear error" grep -q "/dev/fuse is unusable" <<<"$r"
check_eq "no /dev/fuse: exit 1" "exit=1" "$(tail -1 <<<"$r")"

# a workspace with an odd name: spaces, a newline, and a non-UTF-8 byte
ws="$tmp/my ws"$'\n'$'\xff'
mkdir "$ws"
echo data > "$ws/f"
check "mount of a directory with spaces, newline and non-UTF-8 name" ws_mount "$ws"
check_eq "files read through it" "data" "$(cat "$ws/f")"
check ".provfs is not listed" bash -c "! ls -a \"\$1\" | grep -q provfs" _ "$ws"
check ".provfs cannot be reached" bash -c "! stat \"\$1/.provfs\" 2>/dev/null" _ "$ws"
check "status finds the workspace from inside" bash -c "cd \"\$1\" && '$PROVFS' status --json | grep -q '\"mounted\":true'" _ "$ws"
r=$(out "$PROVFS" mount "$ws")
check "mounting it again is refused, naming the daemon" grep -q "already a provfs mount (daemon pid" <<<"$r"

# busy unmount names the holder; then a clean unmount
( cd "$ws" && exec sleep 30 ) &
holder=$!
sleep 0.3
r=$(out "$PROVFS" umount "$ws")
check "umount of a busy mount fails" grep -q "exit=1" <<<"$r"
check "the busy message names the holding process" grep -q "held by: $holder (sleep)$" <<<"$r"
kill "$holder"; wait "$holder" 2>/dev/null
r=$(out ws_umount "$ws")
check "umount after the holder is gone" grep -q "exit=0" <<<"$r" || echo "# $r"
check "no mount left" bash -c "! grep -q ' fuse.provfs ' /proc/self/mounts || ! grep -qF \"\$1\" /proc/self/mounts" _ "$tmp"

# a daemon that died leaves a stale mount: mount cleans it up
ws2="$tmp/ws2"; mkdir "$ws2"
ws_mount "$ws2"
pid=$(ws_daemon_pid "$ws2")
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
check "after SIGKILL the mount is dead (ENOTCONN)" bash -c "! ls \"\$1\" 2>/dev/null" _ "$ws2"
r=$(out "$PROVFS" mount "$ws2")
check "mount over a stale mount cleans it up" grep -q "removed a stale mount" <<<"$r"
check "and mounts again" grep -q "exit=0" <<<"$r"
pid2=$(ws_daemon_pid "$ws2")
check "a new daemon serves it" test -n "$pid2" -a "$pid2" != "$pid"
kill -9 "$pid2"
for _ in $(seq 50); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.1; done
r=$(out "$PROVFS" umount "$ws2")
check "umount of a stale mount cleans it up" grep -q "the daemon was dead; removed the stale mount" <<<"$r"
r=$(out "$PROVFS" umount "$ws2")
check "umount of something not mounted fails clearly" grep -q "is not a provfs mount" <<<"$r"

# --source: serve one directory on another mount point
src="$tmp/src"; mnt="$tmp/mnt"; mkdir "$src" "$mnt"
echo s > "$src/x"
check "mount --source SRC MNT" ws_mount "$mnt" --source "$src"
check_eq "MNT shows SRC's files" "s" "$(cat "$mnt/x")"
echo y > "$mnt/y"
check_eq "writes land in SRC" "y" "$(cat "$src/y")"
check "the store is in SRC" test -d "$src/.provfs/lmdb"
check "events recorded for the mount point's workspace" bash -c "cd '$mnt' && '$PROVFS' events --json | grep -q '\"path\":\"y\"'"
ws_umount "$mnt"

# the foreground daemon serves until unmounted
fg="$tmp/fg"; mkdir "$fg"
"$PROVFS" mount -f "$fg" 2>"$tmp/fg.log" &
fgpid=$!
for _ in $(seq 50); do grep -q " $fg fuse.provfs " /proc/self/mounts && break; sleep 0.1; done
check "mount -f stays in the foreground and mounts" grep -q " $fg fuse.provfs " /proc/self/mounts
T_MOUNTS+=("$fg")
"$PROVFS" umount "$fg"
wait "$fgpid"; rc=$?
check_eq "foreground daemon exits 0 after umount" "0" "$rc"
t_done
