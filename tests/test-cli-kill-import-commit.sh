#!/usr/bin/env bash
# kill -9 of `cairn import` and `cairn commit` at random moments, until 20
# of them died mid-flight (at most 60 tries).  The moments are drawn
# within 1.5 times what one of each takes on this machine, timed first:
# most die mid-flight, some complete and are checked.  With fixed
# windows, a fast machine finished half the imports before their kill
# and the test fell short of 20 kills.
# After each kill the store opens and `log` works; every commit that
# completed (its id was printed) exports byte-identically, to the end; a
# killed import into a new branch leaves either no branch or a complete
# one.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((48 << 20)) /dev/urandom > "$TMP/base.img"
declare -A image_of
id=$("$CAIRN" import main "$TMP/base.img" 2>/dev/null)
image_of[$id]="$TMP/base.img"
# duration_ms COMMAND...: how long COMMAND took, in ms.
duration_ms () {
  local t0
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1
  echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
cp "$TMP/base.img" "$TMP/calibration.img"
dd if=/dev/urandom of="$TMP/calibration.img" bs=1M count=4 conv=notrunc \
   status=none
import_ms=$(duration_ms "$CAIRN" import calibration "$TMP/calibration.img")
commit_ms=$(duration_ms "$CAIRN" commit main -m calibration)
"$CAIRN" branch -d calibration 2>/dev/null
diag "an import takes $import_ms ms here, a commit $commit_ms ms"
kills=0 opened=0 bad=0 completed=0 tries=0
for i in $(seq 1 60); do
  [ "$kills" -ge 20 ] && break
  tries=$i
  cp "$TMP/base.img" "$TMP/img$i"
  dd if=/dev/urandom of="$TMP/img$i" bs=1M count=4 seek=$((i % 40)) \
     conv=notrunc status=none
  case $((i % 3)) in
    0) target=main ;;
    1) target="new$i" ;;
    2) target=commit ;;
  esac
  ms=$import_ms
  [ "$target" = commit ] && ms=$commit_ms
  ms=$(( RANDOM % (ms * 3 / 2 + 1) ))
  delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  if [ "$target" = commit ]; then
    "$CAIRN" commit main -m "commit $i" > "$TMP/out$i" 2>/dev/null &
  else
    "$CAIRN" import "$target" "$TMP/img$i" > "$TMP/out$i" 2>/dev/null &
  fi
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ $? -eq 137 ] && kills=$((kills + 1))
  id=$(cat "$TMP/out$i")
  if [ -n "$id" ] && [ "$target" != commit ]; then
    image_of[$id]="$TMP/img$i"
    completed=$((completed + 1))
  fi
  "$CAIRN" log --all --json > "$TMP/log" 2>"$TMP/logerr" && opened=$((opened + 1)) \
    || diag "iteration $i: log failed: $(cat "$TMP/logerr")"
  # A new branch exists only if its import completed.
  if [ "$target" != main ] && [ "$target" != commit ]; then
    if "$CAIRN" branch | grep -q "^$target "; then
      if [ -z "$id" ]; then
        # It committed but the kill came before the id was printed.
        "$CAIRN" export "$target" "$TMP/check" 2>/dev/null
        cmp -s "$TMP/check" "$TMP/img$i" || { bad=$((bad + 1)); diag "$target is half made"; }
      fi
    fi
  fi
done
diag "$kills kills, $completed imports completed before their kill"
ok "20 processes were killed mid-flight ($kills in $tries tries)" [ "$kills" -ge 20 ]
ok "the store opened and logged after every kill" [ "$opened" -eq "$tries" ]
ok "no branch was left half-made" [ "$bad" -eq 0 ]
for id in "${!image_of[@]}"; do
  "$CAIRN" export "$id" "$TMP/check" 2>/dev/null
  cmp -s "$TMP/check" "${image_of[$id]}" || { bad=$((bad + 1)); diag "commit $id differs"; }
done
ok "every completed import exports byte-identically" [ "$bad" -eq 0 ]
run_cairn commit main -m "after all that"
ok "a commit works afterwards" [ "$rc" -eq 0 ]
done_testing
