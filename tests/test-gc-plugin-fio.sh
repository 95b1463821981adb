#!/usr/bin/env bash
# test-gc-plugin-fio: cairn gc runs over and over while fio writes a branch
# through nbdkit and the branch is committed (and pruned) every second,
# six times; afterwards fsck --read-data finds the store intact and every
# commit that was kept exports exactly as it did right after it was made.
# fio writes until the commits are done, however long they take (a busy
# or sanitized build makes fewer in a given time), and is then stopped.
. ./functions.sh
[ -f "$PLUGIN" ] || skip_all "the nbd plugin is not built"
requires "$NBDKIT"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip_all "fio has no nbd engine"

py () { /usr/bin/python3 "$@"; }

SOCK=$TMP/nbd.sock
make_mixed_file "$TMP/orig.img" 64
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" import main "$TMP/orig.img" >/dev/null 2>&1
"$CAIRN" retention set main --keep-last 3 2>/dev/null
start_nbdkit "$SOCK" store="$STORE" || { echo "Bail out! nbdkit"; exit 1; }

fio --name=gc --ioengine=nbd --uri="nbd+unix:///main?socket=$SOCK" \
  --rw=randwrite --bs=4k --iodepth=8 --size=64M --time_based --runtime=600 \
  --rate_iops=2000 --randrepeat=0 >"$TMP/fio.out" 2>&1 &
fio_pid=$!
on_exit "kill $fio_pid 2>/dev/null"

# gc, again and again, until told to stop.
touch "$TMP/gc.run"
( runs=0 failed=0
  while [ -e "$TMP/gc.run" ]; do
    if "$CAIRN" gc >>"$TMP/gc.out" 2>&1; then runs=$((runs + 1))
    else failed=$((failed + 1)); fi
  done
  echo "$runs $failed" > "$TMP/gc.count" ) &
gc_loop=$!
on_exit "rm -f '$TMP/gc.run'; wait $gc_loop 2>/dev/null"

# Commit every second while fio writes; note what each commit exports as
# (in the background, so as not to slow the commits down); prune as we go.
commits=0 errors=0 exports=()
: > "$TMP/commit.err"
while [ "$commits" -lt 6 ] && [ "$errors" -lt 3 ] &&
      kill -0 "$fio_pid" 2>/dev/null; do
  sleep 1
  # (prune prints its summary on stderr: kept only if it fails)
  if id=$("$CAIRN" commit main 2>>"$TMP/commit.err") &&
     { "$CAIRN" prune main >/dev/null 2>"$TMP/prune.err" ||
       ! cat "$TMP/prune.err" >>"$TMP/commit.err"; }; then
    commits=$((commits + 1))
    ( "$CAIRN" export "$id" - 2>>"$TMP/commit.err" | sha256sum |
        cut -d' ' -f1 > "$TMP/sum.$id" ) &
    exports+=($!)
  else
    errors=$((errors + 1))
  fi
done
# fio was still writing (it ends on SIGINT with status 128, err= 0).
kill -0 "$fio_pid" 2>/dev/null && fio_alive=1 || fio_alive=0
kill -INT "$fio_pid" 2>/dev/null
wait "$fio_pid"
wait "${exports[@]}"
ok "fio wrote, without an error, until the commits were done" \
  test "$fio_alive" -eq 1 -a "$(grep -c 'err= 0' "$TMP/fio.out")" -eq 1 ||
  sed 's/^/# /' "$TMP/fio.out"
rm -f "$TMP/gc.run"
wait "$gc_loop"
read -r runs failed < "$TMP/gc.count"
diag "$commits commits, $runs gc runs"
sed 's/^/# /' "$TMP/commit.err"
ok "every commit and prune succeeded" test "$errors" -eq 0
ok "no commit, prune or export said a word on stderr" test ! -s "$TMP/commit.err"
ok "six commits while fio wrote" test "$commits" -eq 6
ok "gc ran $runs times meanwhile" test "$runs" -ge 3
ok "and never failed" test "$failed" -eq 0

run_cairn fsck --read-data
ok "fsck --read-data: intact" test "$rc" -eq 0
printf '%s\n' "$out" | sed 's/^/# /'
mapfile -t kept < <("$CAIRN" log main --json | py -c '
import json, sys
for c in json.load(sys.stdin):
  if not c["pruned"]: print(c["id"])')
checked=0 same=0
for id in "${kept[@]}"; do
  [ -f "$TMP/sum.$id" ] || continue   # the imported base
  checked=$((checked + 1))
  [ "$("$CAIRN" export "$id" - 2>/dev/null | sha256sum | cut -d' ' -f1)" \
    = "$(cat "$TMP/sum.$id")" ] && same=$((same + 1))
done
ok "the kept commits ($checked) export as they did when made" \
  test "$checked" -ge 3 -a "$same" -eq "$checked"

done_testing
