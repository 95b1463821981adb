#!/usr/bin/env bash
# test-plugin-serve: cairn serve runs nbdkit with the plugin on a socket
# in STORE/run, prints a URI for every branch that a client can use as
# is, and passes --socket, --export and the arguments after -- along.
. ./functions.sh
requires "$NBDKIT"
plan 9

"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 2M
"$CAIRN" create vm/one 1M
make_mixed_file "$TMP/img" 1
"$CAIRN" import imported "$TMP/img" >/dev/null 2>&1
"$CAIRN" tag release imported

# serve SOCKET ARGS...: cairn serve in the background, its stdout in
# $TMP/uris; waits for SOCKET.  nbdkit replaces cairn (exec): $serve_pid
# is nbdkit's, and it runs in nbdkit_env (functions.sh).
serve () {
  local sock=$1; shift
  rm -f "$sock" "$TMP/uris"
  env "${nbdkit_env[@]}" "$CAIRN" serve "$@" >"$TMP/uris" 2>"$TMP/serve.err" &
  serve_pid=$!
  on_exit "kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null"
  retry 100 0.1 up_or_gone "$sock" "$serve_pid"
  [ -S "$sock" ]
}
stop () { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null; }

SOCK=$(cd "$STORE" && pwd)/run/nbd.sock
ok "cairn serve listens on STORE/run/nbd.sock" serve "$SOCK"
ok "and prints a URI for every branch" test "$(cat "$TMP/uris")" = \
"nbd+unix:///imported?socket=$SOCK
nbd+unix:///main?socket=$SOCK
nbd+unix:///vm/one?socket=$SOCK"
ok "the URIs work as printed" \
  bash -c 'while read -r uri; do nbdinfo --size "$uri" >/dev/null || exit 1; done < "$1"' _ "$TMP/uris"
ok "vm/one is the branch of that name" \
  test "$(nbdinfo --size "$(sed -n 3p "$TMP/uris")")" = 1048576
ok "the serving process is nbdkit itself" \
  grep -q nbdkit "/proc/$serve_pid/cmdline"
stop

mkdir "$TMP/here"
cd "$TMP/here"
serve "$TMP/here/s.sock" --socket s.sock --export release -- -r
cd - >/dev/null
ok "--socket, --export and nbdkit's -r" \
  test "$(cat "$TMP/uris")" = "nbd+unix:///release?socket=$TMP/here/s.sock"
nbdcopy "nbd+unix://?socket=$TMP/here/s.sock" "$TMP/out"
ok "the default export is --export's" cmp "$TMP/out" "$TMP/img"
ok "and -r made every export read-only" \
  bash -c "nbdinfo 'nbd+unix:///main?socket=$TMP/here/s.sock' | grep -q 'is_read_only: true'"
stop

run_cairn -S "$TMP/nostore" serve
ok "without a store it fails with one clear line" \
  test "$rc" = 1 -a "$err" = "cairn: $TMP/nostore is not a cairn store (run 'cairn init' to make one)"

done_testing
