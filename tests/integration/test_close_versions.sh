#!/usr/bin/env bash
# A version is exactly the content at close, even when the next open comes
# before the kernel's asynchronous RELEASE (regression: versions were lost
# when open(O_TRUNC) overtook the previous release).  And a shell
# redirection makes one version, not an empty one first.
. "$(dirname "$0")/lib.sh"
ws=$(t_tmpdir)
ws_mount "$ws" || { not_ok "mount"; exit 1; }
python3 - "$ws/f" <<'PY'
import sys
for i in range(300):
    with open(sys.argv[1], "w") as f:
        f.write(str(i))
PY
out=$(cd "$ws" && "$PROVFS" log --json f | python3 -c '
import json, sys, hashlib
vs = json.load(sys.stdin)
want = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(300)]
got = [v["content_id"] for v in reversed(vs)]
print(len(vs), got == want)')
check_eq "300 rewrites in a row make 300 versions, each the content at its close" "300 True" "$out"
(cd "$ws" && echo hello > new.txt)
check_eq "a shell redirection into a new file makes exactly one version" "1 hello" \
    "$(cd "$ws" && "$PROVFS" log --json new.txt | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v), end=" ")' && "$PROVFS" cat new.txt)"
(cd "$ws" && : > empty.txt)
check_eq "creating an empty file makes one (empty) version" "1 0" \
    "$(cd "$ws" && "$PROVFS" log --json empty.txt | python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v), v[0]["size"])')"
(cd "$ws" && { echo one; echo two; } > two.txt)
check_eq "one redirection, two writes: one version" "1" \
    "$(cd "$ws" && "$PROVFS" log --json two.txt | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
t_done
