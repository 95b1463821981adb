#!/usr/bin/env bash
# A commit id prefix must have at least 4 hex digits (DESIGN.md): 4
# digits of the only commit's id resolve in show, cat, export and branch;
# 3 digits of the same id, unique as they are, are refused with exit 1
# and one line on stderr, and change nothing (no branch, no output file).
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((1 << 20)) /dev/urandom > "$TMP/disk.img"
id=$("$CAIRN" import main "$TMP/disk.img" 2>/dev/null)
four=${id:0:4} three=${id:0:3}
diag "commit $id"

run_cairn show "$four"
ok "show of 4 digits shows the commit" \
  [ "$rc" -eq 0 -a "$(head -1 <<< "$out" | awk '{ print $2 }')" = "$id" ]
run_cairn cat "$four"
ok "cat of 4 digits prints the commit text" \
  [ "$rc" -eq 0 -a "$(head -1 <<< "$out")" = "cairn-commit 1" ]
ok "export of 4 digits exports the commit" exports_as "$four" "$TMP/disk.img"
run_cairn branch four "$four"
ok "branch NEW of 4 digits branches at the commit" \
  [ "$rc" -eq 0 -a "$(head_id four)" = "$id" ]

before=$(store_fingerprint)
# short CMD...: refused with exit 1, one line, nothing changed.
short () {
  run_cairn "$@"
  if [ "$rc" -eq 1 ] && one_line "$err" && [ -z "$out" ] &&
     [ "$(store_fingerprint)" = "$before" ]; then
    pass "$1 of 3 digits is refused: $err"
  else
    fail "$1 of 3 digits (rc $rc, out '$out'): $err"
  fi
}
short show "$three"
short cat "$three"
short export "$three" "$TMP/out.img"
ok "and export wrote no file" [ ! -e "$TMP/out.img" ]
short branch three "$three"
short diff "$three" main
done_testing
