#!/usr/bin/env bash
# kill -9 of `cairn import` and `cairn commit` at random moments, until
# each was killed 10 times while it ran (at most 90 tries).  A kill counts
# only if it hit cairn itself: the process was seen running the cairn
# binary (/proc/PID/exe, so its exec was done) before the delay began,
# and it died of the signal (status 137), not of its own end.  The delays
# are drawn within 1.5 times what one of each takes on this machine,
# timed first: most die mid-flight, some complete and are checked.  With
# fixed windows, a fast machine finished half the imports before their
# kill and the test fell short.
#
# Every id a command printed is a commit of the image it was given: the
# import's file, or for a commit of main the image main held then.  After
# every kill the store opens and `log` works, and every such commit still
# exports byte-identically; a killed import into a new branch leaves
# either no branch or a complete one; a killed import or commit on main
# leaves main's head where it was or at a new commit of that image.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((8 << 20)) /dev/urandom > "$TMP/base.img"
declare -A image_of             # commit id -> the file it exports as
id=$("$CAIRN" import main "$TMP/base.img" 2>/dev/null)
image_of[$id]=$TMP/base.img
main_img=$TMP/base.img          # what main holds
# A sleep without a fork: a commit takes a few ms, as much as forking
# and exec'ing sleep(1).
exec {never}<> <(:)
pause () { read -r -t "$1" -u "$never" || :; }
# start OUT COMMAND...: COMMAND in the background, stdout to OUT; waits
# until it runs cairn.  Sets $pid, and $seen to 1 if it was seen running.
start () {
  local out=$1
  shift
  "$@" > "$out" 2>/dev/null &
  pid=$!
  seen=0
  running "$pid" "$CAIRN" && seen=1
}
# run_ms OUT COMMAND...: how long COMMAND runs once exec'd, in ms; its
# stdout goes to OUT.
run_ms () {
  local t0
  start "$@"
  t0=${EPOCHREALTIME/./}
  wait "$pid"
  echo $(( (${EPOCHREALTIME/./} - t0) / 1000 ))
}
cp "$TMP/base.img" "$TMP/calibration.img"
dd if=/dev/urandom of="$TMP/calibration.img" bs=1M count=1 conv=notrunc \
   status=none
import_ms=$(run_ms /dev/null "$CAIRN" import calibration "$TMP/calibration.img")
commit_ms=$(run_ms "$TMP/id" "$CAIRN" commit main -m calibration)
image_of[$(cat "$TMP/id")]=$main_img
"$CAIRN" branch -d calibration 2>/dev/null
diag "an import takes $import_ms ms here, a commit $commit_ms ms"

# all_export: every commit in image_of exports as its image; counts
# those that do not in $differ.
differ=0
all_export () {
  local c
  for c in "${!image_of[@]}"; do
    exports_as "$c" "${image_of[$c]}" && continue
    differ=$((differ + 1))
    diag "iteration $i: commit $c does not export as ${image_of[$c]##*/}"
  done
}

import_kills=0 commit_kills=0 opened=0 half=0 main_bad=0 odd=0 printed=0
tries=0
for i in $(seq 1 90); do
  [ "$import_kills" -ge 10 ] && [ "$commit_kills" -ge 10 ] && break
  tries=$i
  cp "$TMP/base.img" "$TMP/img$i"
  dd if=/dev/urandom of="$TMP/img$i" bs=1M count=1 seek=$((i % 8)) \
     conv=notrunc status=none
  # Round robin, then only the kind still short of 10 kills.
  kind=$((i % 3))
  [ "$import_kills" -ge 10 ] && kind=2
  [ "$commit_kills" -ge 10 ] && [ "$kind" -eq 2 ] && kind=$((i % 2))
  case $kind in
    0) target=main ;;
    1) target="new$i" ;;
    2) target=commit ;;
  esac
  # want: what the commit this makes must hold.
  ms=$import_ms want=$TMP/img$i
  [ "$target" = commit ] && ms=$commit_ms want=$main_img
  ms=$(( RANDOM % (ms * 3 / 2 + 1) ))
  before=$(head_id main)
  if [ "$target" = commit ]; then
    start "$TMP/out$i" "$CAIRN" commit main -m "commit $i"
  else
    start "$TMP/out$i" "$CAIRN" import "$target" "$TMP/img$i"
  fi
  if [ "$seen" -eq 1 ]; then
    pause "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -9 "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  status=$?
  id=$(grep -xE '[0-9a-f]{64}' "$TMP/out$i")
  if [ "$status" -eq 137 ] && [ "$seen" -eq 1 ]; then
    if [ "$target" = commit ]; then
      commit_kills=$((commit_kills + 1))
    else
      import_kills=$((import_kills + 1))
    fi
  elif [ "$status" -ne 0 ] || [ -z "$id" ]; then
    # Not killed, so it must have completed and printed its id.
    odd=$((odd + 1))
    diag "iteration $i: $target exited $status (seen $seen), printed '$id'"
  fi
  if [ -n "$id" ]; then
    image_of[$id]=$want
    printed=$((printed + 1))
  fi
  "$CAIRN" log --all --json > "$TMP/log" 2>"$TMP/logerr" && opened=$((opened + 1)) \
    || diag "iteration $i: log failed: $(cat "$TMP/logerr")"
  case $target in
    main|commit)
      # main's head: where it was, or a new commit of exactly $want.
      head=$(head_id main)
      if [ -n "$id" ] && [ "$head" != "$id" ]; then
        main_bad=$((main_bad + 1))
        diag "iteration $i: main is at $head, not at the printed $id"
      elif [ "$head" != "$before" ]; then
        if exports_as "$head" "$want"; then
          image_of[$head]=$want main_img=$want
        else
          main_bad=$((main_bad + 1))
          diag "iteration $i: main moved to $head, which is not ${want##*/}"
        fi
      fi
      ;;
    *)
      # A new branch exists only if its import completed.
      if [ -z "$id" ] && "$CAIRN" branch | grep -q "^$target "; then
        # It committed but the kill came before the id was printed.
        head=$(head_id "$target")
        if exports_as "$head" "$want"; then
          image_of[$head]=$want
        else
          half=$((half + 1))
          diag "$target is half made"
        fi
      fi
      ;;
  esac
  all_export
done
diag "$import_kills imports and $commit_kills commits killed in $tries tries;" \
     "$printed printed their id; ${#image_of[@]} commits checked after each"
ok "10 imports were killed while they ran ($import_kills)" [ "$import_kills" -ge 10 ]
ok "10 commits were killed while they ran ($commit_kills)" [ "$commit_kills" -ge 10 ]
ok "each command not killed completed and printed its id" [ "$odd" -eq 0 ]
ok "the store opened and logged after every kill" [ "$opened" -eq "$tries" ]
ok "no new branch was left half-made" [ "$half" -eq 0 ]
ok "main's head stayed or moved to a complete commit of the new image" \
  [ "$main_bad" -eq 0 ]
ok "every completed commit exported byte-identically after every kill" \
  [ "$differ" -eq 0 ]
run_cairn commit main -m "after all that"
ok "a commit works afterwards" [ "$rc" -eq 0 ]
ok "and holds main's last image" exports_as "$out" "$main_img"

# The moment the random kills seldom hit: a commit killed after its redo
# record was written, before LMDB committed it (CAIRN_TEST_KILL_AT_RECORD
# K: after the K-th record).  `log` does not show the commit; the next
# writable open (here `cairn branch`) must not make it appear: the new
# branch starts where log showed main.
late=0 kills=0
for k in 1 2 3 4 5 6; do
  before=$(head_id main)
  CAIRN_TEST_KILL_AT_RECORD=$k "$CAIRN" commit main -m "killed at $k" \
    > /dev/null 2>&1
  [ $? -eq 137 ] || break
  kills=$((kills + 1))
  "$CAIRN" branch "late$k" main > /dev/null 2>&1
  if [ "$(head_id main)" != "$before" ] \
     || [ "$(head_id "late$k")" != "$before" ]; then
    late=$((late + 1))
    diag "killed after record $k: main moved later, to $(head_id main)"
  fi
done
ok "commits were killed after a redo record ($kills)" [ "$kills" -ge 1 ]
ok "main, and each branch made from it after a kill, stayed at its head" \
  [ "$late" -eq 0 ]
done_testing
