#!/usr/bin/env bash
# SQLite through the mount: two processes write one database at the same
# time.  The mount leaves fcntl locks to the kernel (ops.c), so SQLite's
# locking must still serialize the writers: the database must pass
# PRAGMA integrity_check and hold exactly the rows both wrote.  Run once in
# rollback-journal mode and once in WAL mode (shared-memory index, mmap).
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
ws_mount "$ws" || { not_ok "mount $ws"; exit 1; }
ok "mount $ws"

writer() {  # writer DB MODE WHO ROWS
    python3 - "$@" <<'PY'
import sqlite3, sys
db, mode, who, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute("PRAGMA busy_timeout=60000")
c.execute(f"PRAGMA journal_mode={mode}")
c.execute("CREATE TABLE IF NOT EXISTS t (who TEXT, i INTEGER, pad TEXT)")
for i in range(rows):
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO t VALUES (?, ?, ?)", (who, i, "x" * (i % 700)))
    if i % 50 == 0:  # make pages move: updates and deletes
        c.execute("UPDATE t SET pad = pad || 'y' WHERE who = ? AND i % 7 = 0", (who,))
    c.execute("COMMIT")
c.close()
PY
}

query() { python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=60); print(c.execute(sys.argv[2]).fetchone()[0])' "$@"; }

for mode in delete wal; do
    db="$ws/$mode.db"
    # Create the table first so both writers start from the same schema.
    writer "$db" "$mode" init 0 || not_ok "$mode: init"
    writer "$db" "$mode" A 400 & a=$!
    writer "$db" "$mode" B 400 & b=$!
    wait $a; ra=$?
    wait $b; rb=$?
    check_eq "$mode: both writers finished" "0 0" "$ra $rb"
    check_eq "$mode: PRAGMA integrity_check" ok "$(query "$db" 'PRAGMA integrity_check')"
    check_eq "$mode: exact row count" 800 "$(query "$db" 'SELECT count(*) FROM t')"
    check_eq "$mode: rows of writer A" 400 "$(query "$db" "SELECT count(DISTINCT i) FROM t WHERE who='A'")"
    check_eq "$mode: rows of writer B" 400 "$(query "$db" "SELECT count(DISTINCT i) FROM t WHERE who='B'")"
done

# The sqlite3 shell as a second, different client of the same WAL database.
sqlite3 "$ws/wal.db" "INSERT INTO t VALUES ('shell', 0, '')" || not_ok "sqlite3 shell insert"
check_eq "sqlite3 shell and python agree" 801 "$(sqlite3 "$ws/wal.db" 'SELECT count(*) FROM t')"

ws_umount "$ws" || not_ok "umount"
check_eq "after unmount: integrity_check on the bare file" ok \
    "$(query "$ws/delete.db" 'PRAGMA integrity_check')"
check_eq "after unmount: WAL database checkpointed and complete" 801 \
    "$(query "$ws/wal.db" 'SELECT count(*) FROM t')"
t_done
