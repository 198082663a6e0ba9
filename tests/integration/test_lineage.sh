#!/usr/bin/env bash
# Lineage end to end (issue 4): the demo ML pipeline in a mounted workspace,
# with unrelated processes reading files at the same time.  Checks the
# ancestors of the served model, the descendants of the raw data, diff of
# two model versions, and that PROV-JSON parses (python3-prov) and DOT
# renders (graphviz).
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")/../.." && pwd)

ws=$(t_tmpdir)
mkdir -p "$ws/raw" "$ws/other"
cp "$here"/scripts/demo-workspace/*.py "$here"/scripts/demo-workspace/params.yaml "$ws/"
printf 'unrelated notes\n' > "$ws/other/notes.txt"
printf 'distractor input\n' > "$ws/other/distractor.txt"
ws_mount "$ws" || { not_ok "mount"; exit 1; }
ok "mount $ws"

cd "$ws"
# Distractors: a background reader that runs through the whole pipeline,
# and a python that reads the raw data and a distractor file, writing
# something the model never uses.
( while [ ! -e "$ws/.stop" ]; do cat other/notes.txt >/dev/null; sleep 0.05; done ) &
bgpid=$!
python3 make_raw.py
python3 -c 'open("other/summary.txt","w").write(str(len(open("raw/data.csv").read())) + open("other/distractor.txt").read())' &
d1=$!
python3 prepare.py
python3 featurize.py >/dev/null
python3 train.py --lr 0.5
python3 evaluate.py >/dev/null
wait $d1
sed -i 's/C: 1.0/C: 0.1/' params.yaml
python3 train.py
mkdir -p serving && cp models/model.pkl serving/
touch "$ws/.stop"; wait $bgpid
cd /

q() { (cd "$ws" && "$PROVFS" "$@"); }
pyq() { python3 -c "$1" "${@:2}"; }

# --- ancestors of the served model ---------------------------------------
q lineage --json serving/model.pkl > "$ws.lin.json" 2> "$ws.err"
check "lineage --json succeeds" test -s "$ws.lin.json"
files=$(pyq 'import json,sys
g = json.load(open(sys.argv[1]))
print(" ".join(sorted({n["path"] for n in g["nodes"]})))' "$ws.lin.json")
echo "# lineage files: $files"
verdict=$(pyq '
import json, sys, fnmatch
g = json.load(open(sys.argv[1]))
paths = {n["path"] for n in g["nodes"]}
need = ["serving/model.pkl", "models/model.pkl", "train.py", "params.yaml", "featurize.py",
        "prepare.py", "make_raw.py", "raw/data.csv"] + \
       ["features/train-%d.csv" % i for i in range(4)] + \
       ["prepared/train-%d.csv" % i for i in range(4)]
allowed = need + ["models/.model.pkl.tmp", "features/*.csv.tmp", "prepared/.*.csv.tmp",
                  "prepared/test-*.csv", "sed*"]
missing = [p for p in need if p not in paths]
extra = [p for p in paths if not any(fnmatch.fnmatch(p, a) for a in allowed)]
print("missing=%s extra=%s" % (missing, extra))' "$ws.lin.json")
check_eq "lineage of serving/model.pkl: exactly the expected files" "missing=[] extra=[]" "$verdict"
check "no distractor in the lineage" pyq 'import json,sys
g = json.load(open(sys.argv[1]))
bad = [n["path"] for n in g["nodes"] if n["path"].startswith("other/") or n["path"] in ("metrics.json", "evaluate.py")]
sys.exit(1 if bad else 0)' "$ws.lin.json"
# The training run read the edited params.yaml (@2); @1 is there only as
# what sed read to make @2.
pv=$(pyq 'import json,sys
g = json.load(open(sys.argv[1]))
n = {x["id"]: x for x in g["nodes"]}
train = [e for e in g["edges"] if n[e["derived"]]["path"] == "models/.model.pkl.tmp"]
print(sorted(n[e["input"]]["version"] for e in train if n[e["input"]]["path"] == "params.yaml"),
      sorted("sed*" if n[e["derived"]]["path"].startswith("sed") else n[e["derived"]]["path"]
             for e in g["edges"]
             if n[e["input"]]["path"] == "params.yaml" and n[e["input"]]["version"] == 1))' "$ws.lin.json")
check_eq "training used params.yaml at its edited version" "[2] ['sed*']" "$pv"
check "edges name existing nodes" pyq 'import json,sys
g = json.load(open(sys.argv[1]))
ids = {n["id"] for n in g["nodes"]}
sys.exit(0 if g["edges"] and all(e["derived"] in ids and e["input"] in ids for e in g["edges"]) else 1)' "$ws.lin.json"

q lineage serving/model.pkl > "$ws.lin.txt"
check "text tree shows the writer of the model" grep -q "train.py" "$ws.lin.txt"
check "text tree prints shared subgraphs once" grep -q "(see above)" "$ws.lin.txt"
q lineage --depth 1 --json serving/model.pkl > "$ws.d1.json"
check_eq "--depth 1: the copy's one input" "models/model.pkl" \
    "$(pyq 'import json,sys; g=json.load(open(sys.argv[1])); print(" ".join(sorted(n["path"] for n in g["nodes"] if n["depth"]==1)), end="")' "$ws.d1.json")"

# --- descendants of the raw data -------------------------------------------
q lineage --down --json raw/data.csv > "$ws.down.json"
down=$(pyq 'import json,sys
g = json.load(open(sys.argv[1]))
p = {n["path"] for n in g["nodes"]}
print(" ".join(x for x in ("models/model.pkl", "metrics.json", "serving/model.pkl", "other/summary.txt") if x in p))' "$ws.down.json")
check_eq "--down raw/data.csv lists the model, metrics and the distractor's output" \
    "models/model.pkl metrics.json serving/model.pkl other/summary.txt" "$down"
q impact --json raw/data.csv > "$ws.impact.json"
check "impact = lineage --down" cmp -s "$ws.down.json" "$ws.impact.json"
q lineage --down --json other/notes.txt > "$ws.notes.json"
check_eq "a file only a distractor read feeds nothing" "1" \
    "$(pyq 'import json,sys; print(len(json.load(open(sys.argv[1]))["nodes"]))' "$ws.notes.json")"

# --- diff: why did the model change? ----------------------------------------
q diff models/model.pkl@1 models/model.pkl@2 > "$ws.diff.txt"
cat "$ws.diff.txt" | sed 's/^/#   /' | head -40
check "diff names params.yaml" grep -q "params.yaml@1 -> params.yaml@2" "$ws.diff.txt"
check "diff shows the changed line" grep -q '^+C: 0.1' "$ws.diff.txt"
check "diff shows the old line" grep -q '^-C: 1.0' "$ws.diff.txt"
check "diff shows the argv change" grep -q -- "--lr 0.5" "$ws.diff.txt"
q diff models/model.pkl > "$ws.diff2.txt"
check "diff PATH = previous vs current" cmp -s "$ws.diff.txt" "$ws.diff2.txt"
q diff --json models/model.pkl@1 models/model.pkl@2 > "$ws.diff.json"
check "diff --json: params.yaml changed, with a text diff" pyq 'import json,sys
d = json.load(open(sys.argv[1]))
p = [i for i in d["inputs"] if i["path"] == "params.yaml"]
sys.exit(0 if p and p[0]["status"] == "changed" and "+C: 0.1" in p[0]["diff"] else 1)' "$ws.diff.json"

# --- show --------------------------------------------------------------------
q show --json models/model.pkl > "$ws.show.json"
check "show: renamed from the temp file; derived serving copy" pyq 'import json,sys
d = json.load(open(sys.argv[1]))
ok = d["version"]["origin"] == "renamed" and d["inputs"][0]["path"] == "models/.model.pkl.tmp" \
     and any(x["path"] == "serving/model.pkl" for x in d["derived"])
sys.exit(0 if ok else 1)' "$ws.show.json"
tmpv=$(pyq 'import json,sys; print(json.load(open(sys.argv[1]))["inputs"][0]["version"])' "$ws.show.json")
q show --json "models/.model.pkl.tmp@$tmpv" > "$ws.show2.json"
check "show: writer argv, env, parents and inputs" pyq 'import json,sys
d = json.load(open(sys.argv[1]))
w = d["writer"]
ok = "train.py" in w["argv"] and isinstance(w["env"], list) and d["parents"] \
     and {"params.yaml", "train.py"} <= {i["path"] for i in d["inputs"]}
sys.exit(0 if ok else 1)' "$ws.show2.json"
q show serving/model.pkl > "$ws.show.txt"
check "show text: content id and origin" grep -q "^content id" "$ws.show.txt"

# --- formats -------------------------------------------------------------------
q lineage --format prov-json serving/model.pkl > "$ws.prov.json"
check "PROV-JSON parses with python3-prov" pyq 'import sys
from prov.model import ProvDocument
d = ProvDocument.deserialize(content=open(sys.argv[1]).read(), format="json")
recs = list(d.get_records())
sys.exit(0 if len(recs) > 10 else 1)' "$ws.prov.json"
q lineage --format dot serving/model.pkl > "$ws.dot"
check "DOT renders with dot -Tsvg" sh -c "dot -Tsvg '$ws.dot' > '$ws.svg' && grep -q '<svg' '$ws.svg'"
q export > "$ws.export.jsonl"
check "export: JSON lines with versions, processes and edges" pyq 'import json,sys
t = {json.loads(l)["type"] for l in open(sys.argv[1])}
sys.exit(0 if t == {"version", "process", "edge"} else 1)' "$ws.export.jsonl"
q export --format prov-json -o "$ws.export.prov.json"
check "export --format prov-json parses" pyq 'import sys
from prov.model import ProvDocument
ProvDocument.deserialize(content=open(sys.argv[1]).read(), format="json")' "$ws.export.prov.json"
q export --format dot | dot -Tsvg > "$ws.export.svg" 2>/dev/null
check "export --format dot renders" grep -q '<svg' "$ws.export.svg"

# --- odd names and errors -----------------------------------------------------------
name=$'odd name\nwith newline \xff.txt'
(cd "$ws" && cp params.yaml "$name")
q lineage --json "$name" > "$ws.odd.json"
check "a name with a newline and invalid UTF-8 round-trips through JSON" pyq 'import json,sys
g = json.load(open(sys.argv[1]))
names = {n["path"].encode("utf-8", "surrogateescape") for n in g["nodes"]}
sys.exit(0 if sys.argv[2].encode("utf-8", "surrogateescape") in names else 1)' "$ws.odd.json" "$name"
q lineage --format dot "$name" | dot -Tsvg > /dev/null 2>&1
check "DOT with an odd name renders" test $? = 0
q lineage nope.txt 2> "$ws.err"; rc=$?
check_eq "unknown path: exit 1" 1 "$rc"
check "unknown path: provfs: <what>: <why>" grep -q "^provfs: lineage: " "$ws.err"
q lineage --format nope x 2>/dev/null; rc=$?
check_eq "bad format: usage error, exit 2" 2 "$rc"
q diff 2>/dev/null; rc=$?
check_eq "diff without arguments: exit 2" 2 "$rc"

ws_umount "$ws" && ok "umount" || not_ok "umount"
q lineage --json serving/model.pkl > "$ws.lin2.json"
check "lineage works unmounted, same answer" cmp -s "$ws.lin.json" "$ws.lin2.json"
rm -f "$ws".*
t_done
