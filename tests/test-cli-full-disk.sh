#!/usr/bin/env bash
# A full disk (the store on a small tmpfs) fails with ENOSPC, one line,
# and leaves the store consistent: earlier commits export identically and
# later commits work once there is room.
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
mount -o remount,size=128M "$mnt"
run_cairn import main "$TMP/big.img"
ok "with room again, the import succeeds" [ "$rc" -eq 0 ]
"$CAIRN" export main "$TMP/out.img"
ok "and exports identically" cmp "$TMP/big.img" "$TMP/out.img"
"$CAIRN" export "$first" "$TMP/out.img"
ok "the first commit is still intact" cmp "$TMP/small.img" "$TMP/out.img"
done_testing
