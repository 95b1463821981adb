#!/usr/bin/env bash
# log, show, cat and tag: what they print, in text and JSON, and how refs,
# id prefixes and ~N resolve.
. ./functions.sh

"$CAIRN" init 2>/dev/null
"$CAIRN" create main 4M 2>/dev/null
c1=$("$CAIRN" commit main -m "first commit" --label owner=ci --label ticket=42 \
     --time 2025-11-21T10:00:00Z)
c2=$("$CAIRN" commit main -m "second" --time 2025-11-21T11:00:00.5Z)
c3=$("$CAIRN" commit main -m "third")
ok "commit prints full 64-hex ids" bash -c "[[ '$c1$c2$c3' =~ ^[0-9a-f]{192}$ ]]"
ok "an unchanged branch still gets a new commit each time" \
  bash -c "[ '$c1' != '$c2' ] && [ '$c2' != '$c3' ]"

"$CAIRN" log main --json > "$TMP/log.json"
check () { python3 - "$TMP/log.json" "$@"; }
ok "log --json is newest first with all fields" check "$c3" "$c2" "$c1" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
want = sys.argv[2:]
assert [c["id"] for c in log] == want, [c["id"] for c in log]
for c in log:
    for k in ("id", "time", "parents", "message", "labels", "pruned"):
        assert k in c, k
    assert c["pruned"] is False
assert log[2]["time"] == "2025-11-21T10:00:00.000000000Z", log[2]["time"]
assert log[1]["time"] == "2025-11-21T11:00:00.500000000Z"
assert log[2]["labels"] == {"owner": "ci", "ticket": "42"}, log[2]["labels"]
assert log[2]["message"] == "first commit"
assert log[1]["parents"] == [want[2]] and log[2]["parents"] == []
PY

"$CAIRN" branch dev "${c2:0:10}" 2>/dev/null
d1=$("$CAIRN" commit dev -m "on dev")
"$CAIRN" tag v1 "$c1"
"$CAIRN" log --graph > "$TMP/graph"
ok "log --graph draws both branches" grep -q '^\* | \|^| \* ' "$TMP/graph"
ok "log --graph decorates refs" grep -q "(tag: v1)" "$TMP/graph"
lines=$(grep -c '[0-9a-f]\{12\}' "$TMP/graph")
ok "log --all shows each commit once ($lines)" [ "$lines" -eq 4 ]

run_cairn show "main~2"
ok "main~2 is the first commit" grep -q "commit $c1" <<< "$out"
ok "show prints the volume" grep -q "Volume: disk" <<< "$out"
run_cairn show v1 --json
ok "show --json of a tag" grep -q "\"id\": \"$c1\"" <<< "$out"
run_cairn cat "${c1:0:6}"
ok "cat of a prefix prints the commit text" [ "$(head -1 <<< "$out")" = "cairn-commit 1" ]
ok "cat prints what the id hashes" \
  [ "$("$CAIRN" cat "$c1" | sha256sum | cut -d' ' -f1)" = "$c1" ]
run_cairn tag
ok "tag lists v1" grep -q "^v1 .*$c1" <<< "$out"
run_cairn branch --json
ok "branch --json lists main and dev" \
  bash -c "grep -q '\"name\": \"main\"' <<< '$out' && grep -q '\"name\": \"dev\"' <<< '$out'"
run_cairn branch
ok "branch lists them in text" [ "$(grep -c '' <<< "$out")" -eq 2 ]
head=$("$CAIRN" log main --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
ok "with whole ids" grep -q "^main  *$head " <<< "$out"
run_cairn du main
ok "du prints whole ids" grep -q "^$head " <<< "$out"
run_cairn show main
ok "show prints whole roots" grep -q "root [0-9a-f]\{64\}$" <<< "$out"
# -n takes a count: anything else is a usage error, not an empty log.
for bad in abc -3 5x ""; do
  run_cairn log main -n "$bad"
  ok "log -n '$bad': exit 2, one line naming -n: $err" \
    bash -c "[ $rc -eq 2 ] && [ -z '$out' ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] \
             && grep -q -- \"-n takes a count, not '$bad'\" <<< \"\$1\"" _ "$err"
done
run_cairn log main -n 0
ok "log -n 0 prints nothing" bash -c "[ $rc -eq 0 ] && [ -z '$out' ]"
run_cairn log main --max-count=2 --oneline
ok "log --max-count=2 prints two" [ "$(grep -c '' <<< "$out")" -eq 2 ]

# Order is by time, but never a commit before its children (git's
# --date-order): a commit back-dated below its parent still heads its
# branch's log.
"$CAIRN" create past 1M 2>/dev/null
p1=$("$CAIRN" commit past -m "now")
p2=$("$CAIRN" commit past -m "back-dated" --time 2020-01-01T00:00:00Z)
run_cairn log past -n1 --oneline
ok "log BRANCH -n1 shows the back-dated head" grep -q "^${p2:0:12} " <<< "$out"
run_cairn log past -n1
ok "and so does the full form" grep -q "^commit $p2" <<< "$out"
run_cairn log past --graph -n1
ok "and --graph, with the whole id" grep -q "^\* ${p2} " <<< "$out"
"$CAIRN" log past --json > "$TMP/log.json"
ok "log --json lists the head first, then its parent" check "$p2" "$p1" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
assert [c["id"] for c in log] == sys.argv[2:], [c["id"] for c in log]
PY

# Commits of the same time: each child before its parent.
"$CAIRN" create same 1M 2>/dev/null
same=()
for i in 1 2 3 4 5 6; do
  same=("$("$CAIRN" commit same -m "same $i" --time 2024-01-01T00:00:00Z)" "${same[@]}")
done
"$CAIRN" log same --json > "$TMP/log.json"
ok "commits of one time list child before parent" check "${same[@]}" <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
assert [c["id"] for c in log] == sys.argv[2:], [c["id"] for c in log]
PY

# --all: every commit before its parents, so each head before its history.
"$CAIRN" log --all --json > "$TMP/log.json"
ok "log --all --json lists every commit before its parents" check <<'PY'
import json, sys
log = json.load(open(sys.argv[1]))
at = {c["id"]: i for i, c in enumerate(log)}
for c in log:
    for p in c["parents"]:
        assert at[c["id"]] < at[p], (c["id"], p)
PY
"$CAIRN" log --all --oneline > "$TMP/all"
"$CAIRN" log --all --graph --oneline > "$TMP/graph"
ok "--graph lists the commits in the order of the plain log" \
  diff <(grep -o '[0-9a-f]\{12\} ' "$TMP/all") <(grep -o '[0-9a-f]\{12\} ' "$TMP/graph")

# Three branches off one commit: the lanes join it one by one, as git
# draws them.
(
  export CAIRN_STORE="$TMP/three"
  "$CAIRN" init 2>/dev/null
  "$CAIRN" create main 1M
  for m in m1 m2; do "$CAIRN" commit main -m $m --time 2026-01-01T00:00:00Z; done
  "$CAIRN" branch dev main 2>/dev/null
  "$CAIRN" branch x main 2>/dev/null
  "$CAIRN" commit dev -m d1 --time 2026-01-01T00:00:01Z
  "$CAIRN" commit main -m m3 --time 2026-01-01T00:00:02Z
  "$CAIRN" commit dev -m d2 --time 2026-01-01T00:00:03Z
  "$CAIRN" commit x -m x1 --time 2026-01-01T00:00:04Z
) >/dev/null
CAIRN_STORE="$TMP/three" "$CAIRN" log --all --graph --oneline \
  | sed 's/ [0-9a-f]\{12\} [^ ]*//' > "$TMP/three.graph"
ok "three branches joining one commit are drawn as git draws them" \
  diff - "$TMP/three.graph" <<'EOF'
* (x) x1
| * (dev) d2
| | * (main) m3
| * | d1
| |/
|/
* m2
* m1
EOF
done_testing
