#!/usr/bin/env bash
# cat takes a unique prefix of any object's id, as every command takes one
# of a commit's: commits, tree nodes and chunks, from 4 digits up.
. ./functions.sh

"$CAIRN" init --chunk-size 64K 2>/dev/null
# Fixed bytes and time, so every id (and so each prefix's uniqueness) is
# the same from run to run.
seq 1 100000 | head -c 256K > "$TMP/a.img"
c=$("$CAIRN" import main "$TMP/a.img" --time 2026-01-01T00:00:00Z 2>/dev/null)
root=$("$CAIRN" show main | grep -o 'root [0-9a-f]*' | cut -d' ' -f2)
ok "show names the volume's root" [ ${#root} -eq 64 ]

run_cairn cat "${c:0:4}"
ok "cat of 4 digits of a commit prints its text" \
  bash -c "[ $rc -eq 0 ] && [ \"\$(head -1 <<< \"\$1\")\" = 'cairn-commit 1' ]" _ "$out"
run_cairn cat "${root:0:6}"
ok "cat of 6 digits of a tree node lists its children" \
  bash -c "[ $rc -eq 0 ] && grep -q '^tree node, level 0' <<< \"\$1\"" _ "$out"
chunk=$(awk '$1 == 0 { print $2 }' <<< "$out")
ok "cat of 8 digits of a chunk prints its bytes" \
  cmp <("$CAIRN" cat "${chunk:0:8}") <(head -c 64K "$TMP/a.img")
ok "and of all 64" cmp <("$CAIRN" cat "$chunk") <(head -c 64K "$TMP/a.img")

run_cairn cat "${c:0:3}"
ok "3 digits are too few for cat: exit 1, one line: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] && grep -q '4 to 64 hex digits' <<< \"\$1\"" _ "$err"
run_cairn show "${c:0:3}"
ok "and for show, which says why: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] && grep -q 'at least 4 digits' <<< \"\$1\"" _ "$err"
run_cairn cat 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ok "an id of no object: exit 1, one line: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] && grep -q 'no object starts with' <<< \"\$1\"" _ "$err"
done_testing
