#!/usr/bin/env bash
# test-plugin-one-writer: one writer per branch across processes.  While
# one nbdkit serves a branch to a client, a second nbdkit cannot write it
# and says who does, nor can an offline cairn command; readers are
# unlimited (other exports, and nbdkit -r, which serves the branch's last
# commit).  When the client leaves, the branch is free again.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 12

"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 4M
"$CAIRN" create other 1M
start_nbdkit "$TMP/a.sock" store="$STORE" || { fail "nbdkit A starts"; exit 1; }
a_pid=$nbdkit_pid

# A client of A writes, then stays connected until told to leave.
nbdsh -u "nbd+unix:///main?socket=$TMP/a.sock" \
  -c 'import os, time' \
  -c 'h.pwrite(b"committed" * 100, 0); h.flush()' \
  -c "open('$TMP/ready', 'w').close()" \
  -c "while not os.path.exists('$TMP/leave'): time.sleep(0.05)" \
  -c 'h.pwrite(b"uncommitted" * 100, 0); h.flush()' \
  -c "open('$TMP/done', 'w').close()" \
  -c "while not os.path.exists('$TMP/quit'): time.sleep(0.05)" &
client=$!
on_exit "touch '$TMP/leave' '$TMP/quit'; wait $client 2>/dev/null"
retry 100 0.05 test -e "$TMP/ready"
id=$("$CAIRN" commit main 2>/dev/null)
touch "$TMP/leave"
retry 100 0.05 test -e "$TMP/done"

start_nbdkit "$TMP/b.sock" store="$STORE" 2>"$TMP/b.err" \
  || { fail "nbdkit B starts"; exit 1; }
b_pid=$nbdkit_pid
fails "a second nbdkit cannot serve the branch read-write" \
  nbdinfo --size "nbd+unix:///main?socket=$TMP/b.sock"
ok "it says the branch is held, and by which process" \
  grep -q "branch 'main' is held by another writer (pid $a_pid)" "$TMP/b.err"
ok "it serves another branch" \
  nbdinfo --size "nbd+unix:///other?socket=$TMP/b.sock"
ok "and the held branch's commits" \
  nbdinfo --size "nbd+unix:///$id?socket=$TMP/b.sock"

run_cairn create main 1M --volume extra
ok "an offline cairn command cannot write it" test "$rc" = 1
ok "and says why in one line" \
  bash -c "[[ \$(printf '%s\n' \"\$1\" | wc -l) = 1 && \"\$1\" == *held* ]]" _ "$err"
run_cairn branch -d main
ok "nor delete it" test "$rc" = 1

start_nbdkit "$TMP/r.sock" store="$STORE" -r || fail "nbdkit -r starts"
nbdsh -u "nbd+unix:///main?socket=$TMP/r.sock" \
  -c 'import sys' -c 'sys.exit(0 if h.pread(900, 0) == b"committed" * 100 else 1)'
ok "nbdkit -r serves the held branch as its last commit" test $? = 0
ok "read-only" bash -c "nbdinfo 'nbd+unix:///main?socket=$TMP/r.sock' | grep -q 'is_read_only: true'"
ok "and more readers may connect at the same time" \
  nbdinfo --size "nbd+unix:///main?socket=$TMP/r.sock"

touch "$TMP/quit"
wait "$client"
# A flushes and lets go of the branch once its last client has gone,
# which the client does not wait for: B may write it from then on.
b_writes () {
  retry 100 0.1 nbdsh -u "nbd+unix:///main?socket=$TMP/b.sock" \
    -c 'h.pwrite(b"b", 100000)' 2>/dev/null
}
ok "when the client leaves, the second nbdkit may write the branch" b_writes
ok "and it reads the first one's last write" \
  nbdsh -u "nbd+unix:///main?socket=$TMP/b.sock" -c 'import sys' \
  -c 'sys.exit(0 if h.pread(11, 0) == b"uncommitted" else 1)'

done_testing
