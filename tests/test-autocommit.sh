#!/usr/bin/env bash
# test-autocommit: cairn autocommit commits a branch on a schedule, prunes
# as it goes with --prune, and stops cleanly on SIGTERM, between commits,
# with a summary and exit status 0.
. ./functions.sh

py () { /usr/bin/python3 "$@"; }

"$CAIRN" init --chunk-size 4K >/dev/null 2>&1 || { echo "Bail out! init"; exit 1; }
"$CAIRN" create main 1M 2>/dev/null
"$CAIRN" retention set main --keep-last 2 2>/dev/null

# Waits (up to a minute: a bound, not a measurement) for FILE to have N
# lines.
has_lines () { [ "$(wc -l < "$1")" -ge "$2" ]; }
wait_lines () { retry 600 0.1 has_lines "$1" "$2"; }

"$CAIRN" autocommit main --every 1s --prune -m tick \
  >"$TMP/ids" 2>"$TMP/summary" &
pid=$!
ok "autocommit made four commits" wait_lines "$TMP/ids" 4
kill -TERM "$pid"
wait "$pid"
ok "SIGTERM stops it with status 0" test $? -eq 0
n=$(wc -l < "$TMP/ids")
diag "$(cat "$TMP/summary")"
ok "the summary counts the commits" grep -q "autocommit: $n commits of branch 'main', $((n - 2)) pruned" "$TMP/summary"
ok "it printed commit ids" test "$(grep -c '^[0-9a-f]\{64\}$' "$TMP/ids")" -eq "$n"

run_cairn log main --json
ok "each commit is on main, with its message" py -c '
import json, sys
log = json.loads(sys.argv[1]); ids = open(sys.argv[2]).read().split()
assert [c["id"] for c in log] == ids[::-1], (log, ids)
assert all(c["message"] == "tick\n" or c["message"] == "tick" for c in log)
assert [c["pruned"] for c in log] == [False, False] + [True] * (len(ids) - 2)' \
  "$out" "$TMP/ids"
ok "the store is intact" bash -c "\"$CAIRN\" fsck >/dev/null"

# --count stops on its own; without --prune nothing is pruned.
run_cairn autocommit main --every 1s --count 2
ok "--count 2 exits 0" test "$rc" -eq 0
ok "after two commits" test "$(printf '%s\n' "$out" | wc -l)" -eq 2
ok "and prunes nothing" bash -c "! grep -q pruned <<< '$err'"

run_cairn autocommit main
ok "--every is required: usage error" test "$rc" -eq 2
run_cairn autocommit main --every soon
ok "--every takes a duration: usage error" test "$rc" -eq 2
run_cairn autocommit nosuch --every 1s
ok "an unknown branch is an error" test "$rc" -eq 1

done_testing
