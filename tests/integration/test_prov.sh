#!/usr/bin/env bash
# The .prov virtual directory: layout, visibility, read-only, sizes, stable
# inode numbers, times, agreement with the CLI, permissions for another user.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
chmod 755 "$ws"
mkdir -p "$ws/models" "$ws/data"
echo "a,b" > "$ws/data/raw.csv"
ws_mount "$ws" -o allow_other || { not_ok "mount"; exit 1; }
cd "$ws"
P=$PROVFS
echo v1 > models/model.pkl
/usr/bin/python3 -c 'open("models/model.pkl","w").write(open("data/raw.csv").read()*3)'
echo secret > models/private.pkl
chmod 600 models/private.pkl
echo again >> models/private.pkl

check ".prov is not listed by readdir of the root" bash -c "! ls -a '$ws' | grep -qx .prov"
check ".prov is reachable by name" test -d .prov
check_eq ".prov lists its layout" "README by-hash events processes stats tree" "$(ls .prov | tr '\n' ' ' | sed 's/ $//')"
check ".prov/README says what is here" grep -q "the provenance of this workspace" .prov/README

# read-only everywhere
for what in "touch .prov/x" "mkdir .prov/d" "rm .prov/README" "mv .prov/README .prov/R" \
            "chmod 777 .prov/README" "sh -c 'echo x >> .prov/stats'" "ln .prov/README .prov/L" \
            "touch .prov/tree/models/model.pkl/versions/1"; do
    r=$(eval "$what" 2>&1)
    check "EROFS: $what" grep -q "Read-only file system" <<<"$r"
done

v=.prov/tree/models/model.pkl/versions
check_eq "versions are listed with their metadata" "1 1.json 2 2.json" "$(ls $v | tr '\n' ' ' | sed 's/ $//')"
check_eq "version 1 content" "v1" "$(cat $v/1)"
id2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["content_id"])' $v/2.json)
check_eq "sha256sum of versions/2 equals the content id in 2.json" "$id2" "$(sha256sum < $v/2 | cut -d' ' -f1)"
check_eq "2.json equals provfs log --json's entry" \
    "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), sort_keys=True))' $v/2.json)" \
    "$("$P" log --json models/model.pkl | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0], sort_keys=True))')"
check_eq "log equals provfs log" "$("$P" log models/model.pkl)" "$(cat .prov/tree/models/model.pkl/log)"
for f in $v/1 $v/2 $v/2.json .prov/stats .prov/README .prov/tree/models/model.pkl/log .prov/events/1-10000.jsonl; do
    check_eq "stat size = bytes read: $f" "$(stat -c %s $f)" "$(wc -c < $f | tr -d ' ')"
done
vt=$(python3 -c 'import json,sys,datetime; t=json.load(open(sys.argv[1]))["time"]; print(int(datetime.datetime.strptime(t,"%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()))' $v/2.json)
check_eq "a version's mtime is the version's time" "$vt" "$(stat -c %Y $v/2)"
ino1=$(stat -c %i $v/2)
check "tar c .prov/tree/models | tar t" bash -c "tar c .prov/tree/models 2>/dev/null | tar t | grep -qx '.prov/tree/models/model.pkl/versions/2'"
check "tar of .prov/tree/models succeeds without warnings" bash -c "tar c .prov/tree/models 2>&1 >/dev/null | (! grep -q .)"
check "grep -r across .prov/processes finds the writer's command line" grep -rqa 'open("models/model.pkl","w")' .prov/processes
check "by-hash serves a content by its id" bash -c "[ \"\$(sha256sum < .prov/by-hash/$id2 | cut -d' ' -f1)\" = $id2 ]"
check "events are JSON lines" python3 -c 'import json,sys; [json.loads(l) for l in open(".prov/events/1-10000.jsonl")]'
check "processes/ID/info.json parses" bash -c 'for d in .prov/processes/*/; do python3 -c "import json,sys; json.load(open(sys.argv[1]))" $d/info.json || exit 1; done'

# lineage and impact: the same renderer as the CLI
check "diff <(provfs lineage --json P) .prov/tree/P/lineage.json prints nothing" \
    bash -c "diff <('$P' lineage --json models/model.pkl) .prov/tree/models/model.pkl/lineage.json"
check "lineage.txt equals provfs lineage" bash -c "diff <('$P' lineage models/model.pkl) .prov/tree/models/model.pkl/lineage.txt"
check "impact.json equals provfs lineage --down --json" \
    bash -c "diff <('$P' lineage --down --json data/raw.csv) .prov/tree/data/raw.csv/impact.json"
check "the model's lineage names the raw data it was made from" grep -q 'data/raw.csv@1' .prov/tree/models/model.pkl/lineage.txt
check "lineage.dot renders with dot -Tsvg" bash -c "dot -Tsvg .prov/tree/models/model.pkl/lineage.dot | grep -q '<svg'"
check "lineage.prov.json parses with python3-prov" python3 -c 'import prov.model as m; m.ProvDocument.deserialize(open(".prov/tree/models/model.pkl/lineage.prov.json"), format="json")'

# permissions: another user is denied a version of a 0600 file
pv=.prov/tree/models/private.pkl/versions
check_eq "the private file's version keeps its mode and owner" "400 0" "$(stat -c '%a %u' $pv/2)"
check "root can read it" grep -q secret $pv/2
r=$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$ws/$pv/2" 2>&1)
check "nobody is denied the private version" grep -q "Permission denied" <<<"$r"
r=$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$ws/$pv/2.json" 2>&1)
check "nobody is denied its metadata" grep -q "Permission denied" <<<"$r"
r=$(setpriv --reuid=65534 --regid=65534 --clear-groups ls "$ws/.prov/tree/models/private.pkl" 2>&1)
check "nobody cannot even list the private file's history" grep -q "Permission denied" <<<"$r"
check_eq "nobody may read a world-readable version" "v1" \
    "$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$ws/$v/1")"
cd /
ws_umount "$ws"

# stable inode numbers across mounts; a policy switch lists .prov
printf 'prov:\n  listed: true\n' > "$ws/provfs.yaml"
ws_mount "$ws"
check_eq "inode numbers are stable across mounts" "$ino1" "$(stat -c %i "$ws/$v/2")"
check "with prov.listed the root lists .prov" bash -c "ls -a '$ws' | grep -qx .prov"
check_eq ".prov is listed once" "1" "$(ls -a "$ws" | grep -cx .prov)"
t_done
