#!/usr/bin/env bash
# Capture: the recorded events name the right process (tgid, exe, argv,
# parent), pipe identities, multiprocessing workers and exec images.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
mkdir -p "$ws/data"
printf 'hello\n' > "$ws/data/a.txt"
for i in 0 1 2 3; do echo "shard $i" > "$ws/data/shard$i.txt"; done
ws_mount "$ws" || { not_ok "mount"; exit 1; }
ok "mount $ws"

cd "$ws"
# 1. python3 reads a and writes b.
python3 -c 'open("data/b.txt","w").write(open("data/a.txt").read().upper())'
# 2. cat a | python3 f.py > c
cat > f.py <<'PY'
import sys
sys.stdout.write(sys.stdin.read()[::-1])
PY
cat data/a.txt | python3 f.py > data/c.txt
# 3. a multiprocessing.Pool whose workers read files
cat > pool.py <<'PY'
import multiprocessing as mp, os
def work(i):
    with open(f"data/shard{i}.txt") as f:
        return (os.getpid(), f.read())
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as p:
        res = p.map(work, range(4), chunksize=1)
    with open("data/pool.out", "w") as f:
        f.write(repr(sorted(set(r[0] for r in res))))
PY
python3 pool.py
# 4. bash opens a file itself, then execs python3, which writes another.
bash -c 'read line < data/a.txt; exec python3 -c "open(\"data/exec.out\",\"w\").write(\"x\")"'
cd /

# The CLI finds the workspace from the cwd, so query from inside it.
(cd "$ws" && "$PROVFS" events --json) >"$ws.events.json"
(cd "$ws" && "$PROVFS" ps --json) >"$ws.ps.json"
T_DIRS+=("$ws.events.json" "$ws.ps.json" "$ws.err")

py() { python3 - "$ws.events.json" "$ws.ps.json" "$@"; }

py <<'PY' | while read -r line; do echo "$line"; done
import json, sys
ev = json.load(open(sys.argv[1])); ps = {p["id"]: p for p in json.load(open(sys.argv[2]))}
def argv(p): return p["images"][-1]["argv"] if p["images"] else p["argv"]
def check(desc, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + desc + ("" if cond else "  # " + str(detail)))
def evs(op, path): return [e for e in ev if e["op"] == op and e["path"] == path]

# 1. python3 reading a and writing b: one process did both
r = [e for e in evs("open-read", "data/a.txt")]
w = evs("create", "data/b.txt")
check("python3 write of data/b.txt recorded as create", len(w) == 1, w)
p = ps.get(w[0]["proc"]) if w else None
check("writer of b is python3 (exe)", p and "python3" in p["exe"], p and p["exe"])
check("writer's argv is python3 -c ...", p and argv(p)[:2] == ["python3", "-c"], p and argv(p))
check("the same process read data/a.txt", p and any(e["proc"] == p["id"] for e in r), r)
check("writer's parent process is recorded (the test shell)",
      p and p["parent"] in ps and p["ppid"] == ps[p["parent"]]["tgid"], p and p["parent"])
check("close-write of b recorded for the writer",
      any(e["proc"] == (p and p["id"]) for e in evs("close-write", "data/b.txt")))

# 2. cat a | python3 f.py > c : pipe identity links cat's stdout to python's stdin
cw = evs("create", "data/c.txt")
check("create of data/c.txt recorded", len(cw) == 1, cw)
pc = ps.get(cw[0]["proc"]) if cw else None
imgs = [i["argv"][:2] for i in pc["images"]] if pc else []
check("redirect opened by the shell child, which then exec'd python3 f.py",
      pc and imgs[-1] == ["python3", "f.py"] and len(imgs) >= 2, imgs)
cats = [ps[e["proc"]] for e in r if e["proc"] in ps and "cat" in ps[e["proc"]]["comm"]]
check("cat's read of data/a.txt recorded", len(cats) == 1, [e["proc"] for e in r])
check("cat stdout is a pipe", cats and cats[0]["stdout"].startswith("pipe:["), cats and cats[0]["stdout"])
check("python3 f.py image stdin is the same pipe as cat's stdout",
      cats and pc and pc["images"][-1]["stdin"] == cats[0]["images"][-1]["stdout"], (pc and pc["images"][-1]["stdin"], cats and cats[0]["stdout"]))
check("python3 f.py image stdout is data/c.txt", pc and pc["images"][-1]["stdout"].endswith("/data/c.txt"), pc and pc["images"][-1]["stdout"])
check("cat and python3 share the shell's process group",
      cats and pc and cats[0]["pgid"] == pc["pgid"], (cats and cats[0]["pgid"], pc and pc["pgid"]))

# 3. Pool workers read the shards; each worker's parent is the pool.py process
main = [p for p in ps.values() if argv(p)[:2] == ["python3", "pool.py"] and p["parent"] not in
        [q["id"] for q in ps.values() if argv(q)[:2] == ["python3", "pool.py"]]]
check("pool.py main process recorded once", len(main) == 1, [argv(p) for p in main])
readers = {}
for i in range(4):
    for e in evs("open-read", f"data/shard{i}.txt"):
        readers[i] = ps.get(e["proc"])
check("all four shard reads recorded", sorted(readers) == [0, 1, 2, 3], sorted(readers))
ok = main and all(q and q["parent"] == main[0]["id"] and q["id"] != main[0]["id"] for q in readers.values())
check("every shard was read by a worker whose parent is pool.py", ok,
      [(q and q["id"], q and q["parent"]) for q in readers.values()])
check("workers are distinct from each other (2 processes)",
      len({q["id"] for q in readers.values() if q}) == 2, {q["id"] for q in readers.values() if q})
pw = evs("create", "data/pool.out")
check("pool.out written by the main process", main and pw and pw[0]["proc"] == main[0]["id"], pw)

# 4. bash -c 'read < a; exec python3 ...': one activity, two images
ex = evs("create", "data/exec.out")
pe = ps.get(ex[0]["proc"]) if ex else None
check("exec.out written", pe is not None, ex)
exe_imgs = [i["argv"][0] for i in pe["images"]] if pe else []
check("exec'ing process has images bash then python3", exe_imgs[:1] == ["bash"] and exe_imgs[-1] == "python3", exe_imgs)
check("bash's own read of data/a.txt has the same process id as python3's write",
      pe and any(e["proc"] == pe["id"] for e in r), [e["proc"] for e in r])

# every event has a logical time, strictly increasing, and a wall time
seqs = [e["seq"] for e in ev]
check("sequence numbers strictly increase", seqs == sorted(set(seqs)) and len(seqs) > 10, len(seqs))
check("every event has a wall time", all(e["time"].endswith("Z") for e in ev))
check("every event names a process", all(e["proc"] for e in ev if e["op"] != "close-write"))
check("the store is invisible: no event mentions .provfs", not any(".provfs" in e["path"] for e in ev))
PY

# status reports the counts and the daemon
st=$(cd "$ws" && "$PROVFS" status --json)
check "status --json says mounted" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["mounted"] and d["pid"] > 0 and d["events"] > 10 and d["processes"] >= 6 and d["queue"]["events"] == 0' "$st"
check "status text names the log" bash -c "cd '$ws' && '$PROVFS' status | grep -q '^log: .*\.log$'"

# a clean unmount loses nothing: the counts are the same afterwards
before=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["events"])' "$st")
ws_umount "$ws"
after=$("$PROVFS" status --json "$ws" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["events"], d["mounted"])')
check_eq "after umount the events are all there and it is unmounted" "$before False" "$after"
t_done
