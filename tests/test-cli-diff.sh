#!/usr/bin/env bash
# diff reports exactly the byte ranges that changed.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((8 << 20)) /dev/urandom > "$TMP/a.img"
a=$("$CAIRN" import main "$TMP/a.img" 2>/dev/null)
cp "$TMP/a.img" "$TMP/b.img"
printf 'XYZ' | dd of="$TMP/b.img" bs=1 seek=100000 conv=notrunc status=none
head -c 70000 /dev/zero | dd of="$TMP/b.img" bs=1 seek=3000000 conv=notrunc status=none
b=$("$CAIRN" import main "$TMP/b.img" 2>/dev/null)
"$CAIRN" diff "$a" "$b" > "$TMP/diff"
# cmp -l lists every differing byte (1-based offsets): coalesce into ranges.
cmp -l "$TMP/a.img" "$TMP/b.img" | awk '
  { o = $1 - 1; if (len && o == start + len) len++;
    else { if (len) print "disk", start, len; start = o; len = 1 } }
  END { if (len) print "disk", start, len }' > "$TMP/want"
ok "diff lists exactly the changed ranges" cmp "$TMP/want" "$TMP/diff"
run_cairn diff "$a" "$a"
ok "a commit does not differ from itself" [ -z "$out" ]
# The same ranges as JSON (not a fixed offset: a random byte of a.img may
# already equal the one written over it).
"$CAIRN" diff "$a" "$b" --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    print(r["volume"], r["offset"], r["length"])' > "$TMP/json"
ok "diff --json lists the same ranges" cmp "$TMP/want" "$TMP/json"
run_cairn diff "$a" "$b" --volume memory
ok "an absent volume is an error" [ "$rc" -eq 1 ]
done_testing
