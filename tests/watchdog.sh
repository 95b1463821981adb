#!/usr/bin/env bash
# watchdog.sh TEST [ARGS...]: runs one test of the suite (automake's
# LOG_COMPILER) and fails it if it has not finished within
# $CAIRN_TEST_TIMEOUT seconds (default 600; the slowest test takes under a
# minute on a 2-core machine).  A hung test must fail on its own, with what
# it was waiting for, and not hold up the whole suite until CI gives up.
#
# On a timeout it prints, as TAP diagnostics, every process the test
# started (found by the CAIRN_TEST_ID it exports, which daemons started
# with setsid inherit too) with the stack of each of its threads, then a
# "Bail out!" line, and ends them all: SIGTERM to the test's process group
# (its exit trap stops what it started), SIGKILL 30 s later to whatever
# is left.
set -u
limit=${CAIRN_TEST_TIMEOUT:-600}
export CAIRN_TEST_ID="$$.$RANDOM"

# The test's processes: those with our CAIRN_TEST_ID in their environment.
test_pids () {
  local env pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}
    pid=${pid%/environ}
    [ "$pid" = $$ ] && continue
    tr '\0' '\n' 2>/dev/null < "$env" |
      grep -qx "CAIRN_TEST_ID=$CAIRN_TEST_ID" && echo "$pid"
  done
}

set -m                          # the test gets its own process group
"$@" &
test_pid=$!
set +m

sleep "$limit" &
timer=$!
wait -n -p ended "$test_pid" "$timer"
status=$?
if [ "$ended" = "$test_pid" ]; then
  kill "$timer" 2>/dev/null
  exit "$status"
fi

echo "# $1 did not finish within $limit s (\$CAIRN_TEST_TIMEOUT); its processes:"
pids=$(test_pids)
for pid in $pids; do
  echo "# --- $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)"
  if command -v gdb >/dev/null; then
    gdb -p "$pid" -batch -ex 'thread apply all bt 12' 2>/dev/null |
      grep -E '^(Thread|#)' | sed 's/^/#   /'
  fi
done
echo "Bail out! $1 timed out after $limit s"

kill -TERM -- "-$test_pid" 2>/dev/null
for (( waited = 0; waited < 300; waited++ )); do
  kill -0 "$test_pid" 2>/dev/null || break
  sleep 0.1
done
pids=$(test_pids)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
kill -KILL -- "-$test_pid" 2>/dev/null
exit 1
