#!/usr/bin/env bash
# test-retention-cli: cairn retention set / show / clear and cairn prune as
# a user runs them: policies stored per branch, prune's reasons in text and
# JSON, tombstones marked in cairn log, usage errors with exit status 2.
. ./functions.sh

py () { /usr/bin/python3 "$@"; }
# matches STRING PATTERN: a glob match.
matches () { [[ $1 == $2 ]]; }

"$CAIRN" init --chunk-size 4K >/dev/null 2>&1 || { echo "Bail out! init"; exit 1; }
"$CAIRN" create main 1M 2>/dev/null
head -c 1M /dev/urandom > "$TMP/img"
ids=()
# Three hours of commits, two per hour, plus one old tagged one.
for t in 2026-11-18T09:00 2026-11-21T09:10 2026-11-21T09:40 \
         2026-11-21T10:10 2026-11-21T10:40 2026-11-21T11:10 2026-11-21T11:40; do
  printf '%s' "$t" | dd of="$TMP/img" bs=1 seek=$((RANDOM * 16)) conv=notrunc 2>/dev/null
  ids+=("$("$CAIRN" import main "$TMP/img" --time "${t}:00Z" 2>/dev/null | tail -1)")
done
run_cairn log -n 100
ids=($(printf '%s\n' "$out" | awk '/^commit / { print $2 }' | tac))
ok "seven commits" test "${#ids[@]}" -eq 7
"$CAIRN" tag old "${ids[0]}"

# set / show / clear
run_cairn retention set main --keep-hourly 2 --keep-within 30m
ok "retention set" test "$rc" -eq 0
run_cairn retention show main
ok "retention show names the rules" test "$out" = "main: keep-hourly 2, keep-within 30m"
run_cairn retention show --json
ok "retention show --json" py -c '
import json, sys
a = json.loads(sys.argv[1])
assert a == [{"branch": "main", "exists": True,
              "policy": {"keep-hourly": 2, "keep-within": "30m"}}], a' "$out"
run_cairn retention set main
ok "a policy needs a rule (usage error)" test "$rc" -eq 2
run_cairn retention set main --keep-hourly soon
ok "a count must be a count" test "$rc" -eq 2
run_cairn retention set main --keep-within 7
ok "a duration needs a unit" test "$rc" -eq 2
run_cairn retention set nosuch --keep-last 1
ok "no policy for a branch that does not exist" test "$rc" -eq 1
run_cairn retention show main
ok "a refused set changes nothing" test "$out" = "main: keep-hourly 2, keep-within 30m"

# prune --dry-run, text: hand-computed.  keep-hourly 2 keeps 11:40 and
# 10:40; keep-within 30m of 11:40 keeps 11:40 and 11:10 (strictly less
# than 30 minutes: 11:10 is 30 minutes before, so it is not); the base is
# 11:40, the tag keeps 2026-11-18.
run_cairn prune --dry-run
ok "prune --dry-run" test "$rc" -eq 0
printf '%s\n' "$out" | sed 's/^/# /'
line () { printf '%s\n' "$out" | grep " $1 "; }
ok "the newest: hourly, within, base" matches "$(line "${ids[6]}")" \
   'keep*main: hourly 2026-11-21T11, main: within 30m, main: base of branch main'
ok "11:10 is pruned" matches "$(line "${ids[5]}")" 'prune*'
ok "10:40 is hourly" matches "$(line "${ids[4]}")" 'keep*main: hourly 2026-11-21T10'
for i in 3 2 1; do
  ok "commit $i is pruned" matches "$(line "${ids[$i]}")" 'prune*'
done
ok "the tagged old commit is kept" matches "$(line "${ids[0]}")" 'keep*main: tag old'
ok "the dry run said it changes nothing" matches "$err" '*4 would be pruned (dry run*'
run_cairn log --json
ok "nothing is pruned yet" py -c '
import json, sys
assert not any(c["pruned"] for c in json.loads(sys.argv[1]))' "$out"

# prune --json, for real
run_cairn prune main --json
ok "prune main --json" test "$rc" -eq 0
ok "its JSON has keep (id, reasons) and prune" py -c '
import json, sys
j = json.loads(sys.argv[1]); ids = sys.argv[2:]
assert sorted(k["id"] for k in j["keep"]) == sorted([ids[6], ids[4], ids[0]]), j
assert sorted(j["prune"]) == sorted([ids[5], ids[3], ids[2], ids[1]]), j
assert "main: tag old" in [k for k in j["keep"] if k["id"] == ids[0]][0]["reasons"]
assert j["dry_run"] is False' "$out" "${ids[@]}"
run_cairn log
ok "cairn log marks tombstones" test "$(printf '%s\n' "$out" | grep -c '\[pruned\]')" -eq 4
run_cairn log --json
ok "cairn log --json says pruned" py -c '
import json, sys
p = {c["id"]: c["pruned"] for c in json.loads(sys.argv[1])}; ids = sys.argv[2:]
assert [p[i] for i in ids] == [False, True, True, True, False, True, False], p' "$out" "${ids[@]}"
run_cairn export "${ids[5]}" "$TMP/out"
ok "a pruned commit cannot be exported" test "$rc" -eq 1
run_cairn prune
ok "pruning twice prunes nothing more" matches "$err" '*, 0 pruned*'

# A deleted branch's history is pruned by a prune of every branch.
"$CAIRN" branch dev main >/dev/null 2>&1
dev=$("$CAIRN" import dev "$TMP/img" --time 2026-11-21T12:00:00Z 2>/dev/null | tail -1)
"$CAIRN" branch -d dev 2>/dev/null
run_cairn prune main
fails "a branch prune leaves a deleted branch's commits alone" matches "$out" "*$dev*"
run_cairn prune --json
ok "prune of every branch prunes it as unreachable" py -c '
import json, sys
j = json.loads(sys.argv[1])
assert j["unreachable"] == [sys.argv[2]] and sys.argv[2] in j["prune"], j' "$out" "$dev"

run_cairn retention clear main
ok "retention clear" test "$rc" -eq 0
run_cairn retention show main
ok "a cleared branch keeps everything" test "$out" = "main: none (keeps every commit)"
run_cairn retention clear main
ok "clearing twice is an error" test "$rc" -eq 1
run_cairn retention frob
ok "unknown retention command: usage error" test "$rc" -eq 2
run_cairn prune a b
ok "prune takes one branch: usage error" test "$rc" -eq 2

done_testing
