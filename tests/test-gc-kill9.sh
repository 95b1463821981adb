#!/usr/bin/env bash
# test-gc-kill9: kill -9 of cairn gc at random moments, at least 20 times;
# after each, cairn fsck finds the store intact, every kept commit exports
# byte for byte as before, and the next gc finishes the job.
#
# A store with plenty to reclaim and compact (4 KiB chunks, 4 MiB packs,
# ten versions of a 32 MiB image, each rewriting a random third of its
# blocks, pruned to the last three) is built once; each round
# copies it, starts gc, kills it after a random fraction of the time a
# whole gc takes, and checks.  Rounds where gc had already finished do not
# count, and make the next rounds kill sooner.  (test-gc-crash kills gc
# after each of its steps in turn; this one kills it anywhere, mid-copy
# and mid-sync included.)
. ./functions.sh

py () { /usr/bin/python3 "$@"; }
export CAIRN_PACK_LIMIT=4M

template="$TMP/template"
CAIRN_STORE=$template "$CAIRN" init --chunk-size 4K >/dev/null 2>&1 ||
  { echo "Bail out! init"; exit 1; }
head -c 32M /dev/urandom > "$TMP/img"
for i in $(seq 0 9); do
  [ "$i" -eq 0 ] || py -c '
import os, random, sys
random.seed(int(sys.argv[2]))
with open(sys.argv[1], "r+b") as f:
  for b in random.sample(range(8192), 2730):
    f.seek(b * 4096); f.write(os.urandom(4096))' "$TMP/img" "$i"
  CAIRN_STORE=$template "$CAIRN" import main "$TMP/img" \
    --time "2026-11-21T10:0$i:00Z" >/dev/null 2>&1
done
CAIRN_STORE=$template "$CAIRN" retention set main --keep-last 3 2>/dev/null
CAIRN_STORE=$template "$CAIRN" prune >/dev/null 2>&1
mapfile -t kept < <(CAIRN_STORE=$template "$CAIRN" log --json | py -c '
import json, sys
for c in json.load(sys.stdin):
  if not c["pruned"]: print(c["id"])')
ok "three commits kept" test "${#kept[@]}" -eq 3
for id in "${kept[@]}"; do
  CAIRN_STORE=$template "$CAIRN" export "$id" - 2>/dev/null | sha256sum |
    cut -d' ' -f1 > "$TMP/sum.$id"
done

# How long a whole gc takes here: the shorter of two runs.
full_ms=
for run in 1 2; do
  cp -a "$template" "$STORE"
  start=$(date +%s%N)
  "$CAIRN" gc >/dev/null 2>&1
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ -n "$full_ms" ] && [ "$full_ms" -le "$ms" ] || full_ms=$ms
  rm -rf "$STORE"
done
diag "a whole gc takes $full_ms ms"

exports_ok () {
  local id
  for id in "${kept[@]}"; do
    [ "$("$CAIRN" export "$id" - 2>/dev/null | sha256sum | cut -d' ' -f1)" \
      = "$(cat "$TMP/sum.$id")" ] || return 1
  done
}

kills=0 damaged=0 lost=0 unfinished=0
for round in $(seq 1 60); do
  [ "$kills" -ge 24 ] && break
  cp -a "$template" "$STORE"
  "$CAIRN" gc >/dev/null 2>&1 &
  pid=$!
  sleep "$(awk -v ms="$full_ms" -v r="$RANDOM" \
           'BEGIN { printf "%.3f", ms * (r / 32768) / 1000 }')"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null
    kills=$((kills + 1))
    "$CAIRN" fsck >"$TMP/fsck" 2>&1 ||
      { damaged=$((damaged + 1)); sed 's/^/# /' "$TMP/fsck"; }
    exports_ok || lost=$((lost + 1))
    { "$CAIRN" gc && "$CAIRN" fsck --read-data; } >"$TMP/fsck" 2>&1 &&
      grep -q 'unreachable: 0 chunks' "$TMP/fsck" ||
      { unfinished=$((unfinished + 1)); sed 's/^/# /' "$TMP/fsck"; }
  else
    # gc was done before the kill: it runs faster now than when timed
    # (the machine is shared), so aim earlier from now on.
    wait "$pid"
    full_ms=$(( full_ms * 4 / 5 ))
  fi
  rm -rf "$STORE"
done
ok "gc was killed $kills times" test "$kills" -ge 20
ok "fsck passed after every kill" test "$damaged" -eq 0
ok "every kept commit exported identically after every kill" test "$lost" -eq 0
ok "the next gc always finished the job" test "$unfinished" -eq 0

done_testing
