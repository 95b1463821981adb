#!/usr/bin/env bash
# A full disk (the store on a small tmpfs) fails with ENOSPC, one line,
# and leaves the store consistent: earlier commits export identically and
# later commits work once there is room.  On a disk full to the last byte,
# and with 8 KiB or 64 KiB left, commit, create, tag and branch either
# work or fail with exit 1 and one line; fsck then finds the store intact
# (on the still full disk) and every commit exports as it was made.
. ./functions.sh
small_store 24
"$CAIRN" init 2>/dev/null
head -c $((4 << 20)) /dev/urandom > "$TMP/small.img"
first=$("$CAIRN" import main "$TMP/small.img" 2>/dev/null)
ok "a first import fits" [ -n "$first" ]
before=$(store_refs_fingerprint)

head -c $((40 << 20)) /dev/urandom > "$TMP/big.img"
run_cairn import main "$TMP/big.img"
ok "an import larger than the disk: exit 1" [ "$rc" -eq 1 ]
ok "with one line saying the disk is full: $err" \
  bash -c "one_line () { [ -n \"\$1\" ] && [ \$(printf '%s\n' \"\$1\" | wc -l) -eq 1 ]; }; one_line \"$err\" && grep -qi 'no space\|disk is full' <<< \"$err\""
ok "the store's refs and commits are unchanged" [ "$(store_refs_fingerprint)" = "$before" ]
"$CAIRN" export main "$TMP/out.img"
ok "the earlier commit exports identically" cmp "$TMP/small.img" "$TMP/out.img"
run_cairn import other "$TMP/big.img"
ok "a new branch is not left behind" bash -c "! '$CAIRN' branch | grep -q '^other '"

# On the full disk, commit, create, tag and branch run over and over with
# new names until all four fail in a row (at most 300 rounds): each works
# or fails with exit 1 and one line naming the full disk.
# on_full_disk KIND ARGS...: runs cairn ARGS and counts the outcome by
# KIND; succeeds if it worked.
declare -A worked failed unclear unnamed
on_full_disk () {
  local kind=$1
  shift
  run_cairn "$@"
  if [ "$rc" -eq 0 ]; then
    worked[$kind]=$((worked[$kind] + 1))
    return 0
  fi
  failed[$kind]=$((failed[$kind] + 1))
  if [ "$rc" -ne 1 ] || ! one_line "$err"; then
    unclear[$kind]=$((unclear[$kind] + 1))
    diag "$kind: exit $rc: $err"
  elif ! grep -qi 'disk is full\|no space' <<< "$err"; then
    unnamed[$kind]=$((unnamed[$kind] + 1))
    [ "${unnamed[$kind]}" -eq 1 ] && diag "$kind: $err"
  fi
  return 1
}
kinds="commit create tag branch"
made=() not_made=()             # refs that must exist, and must not
last_commit=
for left in 0 8192 65536; do
  for kind in $kinds; do
    worked[$kind]=0 failed[$kind]=0 unclear[$kind]=0 unnamed[$kind]=0
  done
  dd if=/dev/zero of="$mnt/filler" bs=64k status=none 2>/dev/null
  truncate -s $(( $(stat -c %s "$mnt/filler") - left )) "$mnt/filler"
  for (( k = 0; k < 300; k++ )); do
    fails=0
    if on_full_disk commit commit main -m "on a full disk"; then
      last_commit=$out
    else
      fails=$((fails + 1))
    fi
    for ref in "e$left.$k create e$left.$k 1M" "t$left.$k tag t$left.$k main" \
               "f$left.$k branch f$left.$k $first"; do
      read -r name kind args <<< "$ref"
      # shellcheck disable=SC2086  # args is words
      if on_full_disk "$kind" "$kind" $args; then
        made+=("$name")
      else
        not_made+=("$name") fails=$((fails + 1))
      fi
    done
    [ "$fails" -eq 4 ] && break
  done
  for kind in $kinds; do
    ok "$kind, $left bytes left: ${worked[$kind]} worked, ${failed[$kind]} failed with exit 1 and one line" \
      [ "${unclear[$kind]}" -eq 0 ]
    ok "and each failure of $kind named the full disk (${unnamed[$kind]} did not)" \
      [ "${unnamed[$kind]}" -eq 0 ]
  done
  [ "$left" -eq 0 ] &&
    ok "with nothing left all four fail in the end (after $k rounds)" [ "$k" -lt 300 ]
  run_cairn fsck
  ok "fsck on the full disk finds the store intact: $err" \
    eval '[ "$rc" -eq 0 ] && grep -q "the store is intact" <<< "$out"'
  rm "$mnt/filler"
done
"$CAIRN" branch > "$TMP/refs"
"$CAIRN" tag >> "$TMP/refs"
missing=0 extra=0
for ref in "${made[@]}"; do
  grep -q "^$ref " "$TMP/refs" || { missing=$((missing + 1)); diag "no $ref"; }
done
for ref in "${not_made[@]}"; do
  grep -q "^$ref " "$TMP/refs" && { extra=$((extra + 1)); diag "$ref exists"; }
done
ok "every branch and tag that worked exists (${#made[@]}), none that failed does (${#not_made[@]})" \
  [ "$missing" -eq 0 -a "$extra" -eq 0 ]
same=0 checked=("$first" "$last_commit" "${made[-1]}" "${made[-2]}")
for ref in "${checked[@]}"; do
  exports_as "$ref" "$TMP/small.img" && same=$((same + 1)) ||
    diag "$ref does not export as the first image"
done
ok "the first commit, the last made on the full disk and the last tag or branch export as the first image" \
  [ "$same" -eq 4 ]

mount -o remount,size=128M "$mnt"
run_cairn import main "$TMP/big.img"
ok "with room again, the import succeeds" [ "$rc" -eq 0 ]
"$CAIRN" export main "$TMP/out.img"
ok "and exports identically" cmp "$TMP/big.img" "$TMP/out.img"
"$CAIRN" export "$first" "$TMP/out.img"
ok "the first commit is still intact" cmp "$TMP/small.img" "$TMP/out.img"
done_testing
