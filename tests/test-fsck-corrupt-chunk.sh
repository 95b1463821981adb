#!/usr/bin/env bash
# test-fsck-corrupt-chunk: a chunk corrupted on disk is found by
# cairn fsck --read-data, which names the commits that contain it (and
# only those), the branches and tags affected, and exits 1.
#
# Uncompressed store, so that the chunk's bytes can be found in its pack:
# c1 holds data A; c2 adds a 64 KiB block of a unique pattern P; c3
# changes something else, so c2 and c3 contain P and c1 does not.  One
# byte of P is flipped in the pack file.
. ./functions.sh

py () { /usr/bin/python3 "$@"; }

"$CAIRN" init --compress none >/dev/null 2>&1 || { echo "Bail out! init"; exit 1; }
head -c 4M /dev/urandom > "$TMP/img"
"$CAIRN" import main "$TMP/img" --time 2026-11-21T10:00:00Z >/dev/null 2>&1
py -c '
import sys
with open(sys.argv[1], "r+b") as f:
  f.seek(1 << 20); f.write(b"cairn fsck test pattern P. " * 2427 + b"P" * 7)' "$TMP/img"
"$CAIRN" import main "$TMP/img" --time 2026-11-21T10:01:00Z >/dev/null 2>&1
"$CAIRN" tag with-p main
head -c 65536 /dev/urandom | dd of="$TMP/img" bs=64K seek=40 conv=notrunc 2>/dev/null
"$CAIRN" import main "$TMP/img" --time 2026-11-21T10:02:00Z >/dev/null 2>&1
"$CAIRN" branch other main~2 >/dev/null 2>&1
mapfile -t ids < <("$CAIRN" log main --json | py -c '
import json, sys
for c in json.load(sys.stdin): print(c["id"])')
ok "three commits" test "${#ids[@]}" -eq 3
c3=${ids[0]} c2=${ids[1]} c1=${ids[2]}

run_cairn fsck --read-data
ok "fsck --read-data passes before" test "$rc" -eq 0

# Flip one byte of the pattern's chunk in its pack.
where=$(grep -HobUa 'cairn fsck test pattern P' "$STORE"/packs/*.pack | head -1)
file=${where%%:*}
offset=$(cut -d: -f2 <<< "$where")
ok "found the pattern in $(basename "$file")" test -n "$offset"
printf 'Q' | dd of="$file" bs=1 seek=$((offset + 100)) conv=notrunc 2>/dev/null

run_cairn fsck --read-data
ok "fsck --read-data exits 1 on damage" test "$rc" -eq 1
printf '%s\n' "$out" | sed 's/^/# /'
ok "it says the chunk is corrupt" grep -q 'damage: chunk [0-9a-f]* is corrupt' <<< "$out"
ok "it names c2" grep -q "^  $c2 " <<< "$out"
ok "it names c3" grep -q "^  $c3 " <<< "$out"
fails "it does not name c1" grep -q "$c1" <<< "$out"
ok "branch main is affected" grep -q '^affected branches: main$' <<< "$out"
ok "tag with-p is affected" grep -q '^affected tags: with-p$' <<< "$out"
ok "the store is reported damaged" grep -q 'DAMAGED' <<< "$out"

run_cairn fsck --read-data --json
ok "--json names the same commits" py -c '
import json, sys
j = json.loads(sys.argv[1])
assert not j["ok"]
assert j["affected_commits"] == [sys.argv[2], sys.argv[3]], j
assert j["affected_branches"] == ["main"] and j["affected_tags"] == ["with-p"], j' \
  "$out" "$c3" "$c2"

run_cairn export "$c3" "$TMP/out"
ok "an export of an affected commit fails" test "$rc" -eq 1
ok "naming the chunk" grep -q 'is corrupt' <<< "$err"
run_cairn export "$c1" "$TMP/out"
ok "an unaffected commit still exports" test "$rc" -eq 0

done_testing
