#!/usr/bin/env bash
# Policies through the mount: each key's effect, reload on edit, rejection
# of a bad edit, and secrets that never reach the store.
. "$(dirname "$0")/lib.sh"

ws=$(t_tmpdir)
mkdir -p "$ws/models" "$ws/data" "$ws/big"
cat > "$ws/provfs.yaml" <<'YAML'
ignore: ["scratch/", "*.log"]
kinds:
  - dataset: ["big/**"]
snapshot:
  hash_only: ["big/**"]
  never: ["*.nosnap"]
env:
  allow: [MY_SETTING, MY_API_TOKEN]
processes:
  ignore_comm: [sleep]
YAML
ws_mount "$ws" || { not_ok "mount"; exit 1; }
cd "$ws"
P=$PROVFS
mkdir scratch
echo tmp > scratch/t.txt
echo log > run.log
echo m > models/m.pkl
head -c 100000 /dev/urandom > big/blob.bin
echo n > x.nosnap
MY_SETTING=visible MY_API_TOKEN=tok-very-secret-123 /usr/bin/python3 -c 'open("data/d.csv","w").write("a,b\n")' --password=hunter2 --api-key sk-abcdef123456
( exec sleep 0.2 ) < data/d.csv

check_fails "an ignored file has no versions" "$P" log scratch/t.txt
check "an ignored file has no events" bash -c "! '$P' events --json | grep -q 'scratch/t.txt'"
check "an ignored glob (*.log) has no events" bash -c "! '$P' events --json | grep -q 'run.log'"
check_eq "kind of models/m.pkl is model" "model" "$("$P" log --json models/m.pkl | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["kind"])')"
check_eq "kind by policy glob: big/** is dataset" "dataset" "$("$P" log --json big/blob.bin | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["kind"])')"
sum=$(sha256sum < big/blob.bin | cut -d' ' -f1)
check_eq "a hash-only file gets a version with its content id" "$sum True False" \
    "$("$P" log --json big/blob.bin | python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; print(v["content_id"], v["hash_only"], v["stored"])')"
r=$("$P" restore -o "$ws.out" big/blob.bin@1 2>&1); rc=$?
check "restore of a hash-only version fails" test $rc -ne 0
check "and says why" grep -q "recorded by hash only" <<<"$r"
r=$("$P" cat x.nosnap@1 2>&1); rc=$?
check "a never-snapshot file cannot be read back, and says why" bash -c "[ $rc -ne 0 ] && grep -q 'not snapshotted' <<<\"\$1\"" _ "$r"
check "an ignored process (sleep) has no events" bash -c "! '$P' events | grep -q ' sleep '"

pj=$("$P" ps --json)
check "argv secret redacted (--password=)" grep -q -- '--password=\[REDACTED\]' <<<"$pj"
check "argv secret redacted (--api-key VALUE)" bash -c "grep -q -- '\"--api-key\",\"\[REDACTED\]\"' <<<\"\$1\"" _ "$pj"
check "allowed env captured" grep -q 'MY_SETTING=visible' <<<"$pj"
check "secret-named env value redacted" grep -q 'MY_API_TOKEN=\[REDACTED\]' <<<"$pj"
check "env not on the allow list is not captured" bash -c "! grep -q 'LS_COLORS=\|SSH_AUTH_SOCK=\|TERM=' <<<\"\$1\"" _ "$pj"

# reload: a valid edit takes effect, an invalid one is rejected
sed -i 's|^ignore: \["scratch/", "\*.log"\]|ignore: ["scratch/", "*.log", "models/"]|' provfs.yaml
check "the edit is in place" grep -q '"models/"' provfs.yaml
echo m2 > models/n.pkl
check_fails "after a valid edit, newly ignored files are not recorded" "$P" log models/n.pkl
printf 'ignore: [\n' > provfs.yaml
st=$("$P" status --json)
check "an invalid edit is rejected with file:line:col" bash -c "python3 -c 'import json,sys; e=json.loads(sys.argv[1])[\"policy_error\"]; assert e.startswith(\"provfs.yaml:2:1: \"), e' \"\$1\"" _ "$st"
echo m3 > models/o.pkl
check_fails "and the old policy stays in force" "$P" log models/o.pkl
policy_id=$("$P" log --json data/d.csv | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["policy"])')
check "each version names the policy in force (sha256)" bash -c "[[ \$1 =~ ^[0-9a-f]{64}\$ ]]" _ "$policy_id"
rm provfs.yaml
echo m4 > models/p.pkl
check "deleting provfs.yaml falls back to the default policy" "$P" log models/p.pkl
cd /
ws_umount "$ws"
check "no secret anywhere in the store's files" bash -c "! grep -raE 'hunter2|tok-very-secret|sk-abcdef' '$ws/.provfs'"

# a bad policy at mount time refuses the mount, with the position
ws2=$(t_tmpdir)
printf 'snapshot:\n\tmax_size: 1\n' > "$ws2/provfs.yaml"
r=$("$PROVFS" mount "$ws2" 2>&1); rc=$?
check "mount with an invalid provfs.yaml fails" test $rc -eq 1
check "naming file:line:col" grep -q "provfs.yaml:2:1" <<<"$r"
check "and nothing is mounted" bash -c "! grep -q \" $ws2 fuse\" /proc/self/mounts"
t_done
