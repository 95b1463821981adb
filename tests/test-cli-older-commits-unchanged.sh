#!/usr/bin/env bash
# Branch, modify, commit, repeatedly: every older commit still exports
# exactly as it was, on both branches.  A re-import of an unchanged image
# writes no new chunk, and one with a few bytes changed writes one: the
# packs grow by at most one chunk, and the new commit exports as the
# changed image.
. ./functions.sh
requires mke2fs

"$CAIRN" init 2>/dev/null
make_ext4 "$TMP/v0.img" 32
ids=()
imgs=()
ids+=("$("$CAIRN" import main "$TMP/v0.img" 2>/dev/null)")
imgs+=("$TMP/v0.img")
cp "$TMP/v0.img" "$TMP/cur.img"
for i in 1 2 3 4 5; do
  dd if=/dev/urandom of="$TMP/cur.img" bs=4096 count=$((i * 3)) \
     seek=$((i * 997)) conv=notrunc status=none
  cp "$TMP/cur.img" "$TMP/v$i.img"
  ids+=("$("$CAIRN" import main "$TMP/v$i.img" -m "round $i" 2>/dev/null)")
  imgs+=("$TMP/v$i.img")
done
"$CAIRN" branch dev "${ids[2]}" 2>/dev/null
cp "$TMP/v2.img" "$TMP/dev.img"
dd if=/dev/zero of="$TMP/dev.img" bs=65536 count=10 seek=100 conv=notrunc status=none
dev_id=$("$CAIRN" import dev "$TMP/dev.img" 2>/dev/null)
dev_parent=$("$CAIRN" log dev --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["parents"][0])')
ok "dev's commit descends from the commit it branched at" [ "$dev_parent" = "${ids[2]}" ]
all=1
for k in "${!ids[@]}"; do
  "$CAIRN" export "${ids[$k]}" "$TMP/check.img" 2>/dev/null
  cmp -s "${imgs[$k]}" "$TMP/check.img" || { all=0; diag "commit $k differs"; }
done
ok "every older commit exports unchanged" [ "$all" -eq 1 ]
"$CAIRN" export dev "$TMP/check.img"
ok "the other branch's commit exports as it was made" cmp "$TMP/dev.img" "$TMP/check.img"
"$CAIRN" export main "$TMP/check.img"
ok "main's head is its last import" cmp "$TMP/v5.img" "$TMP/check.img"
n=$("$CAIRN" log main --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ok "main has six commits" [ "$n" -eq 6 ]

chunk=$(awk '/^chunk-size/ { print $2 }' "$STORE/config")
# reimport IMAGE: imports IMAGE into main; sets $new to the count of new
# chunks it reports and $grew to how much the packs grew, in bytes.
reimport () {
  local before
  before=$(du -sb "$STORE/packs" | cut -f1)
  run_cairn import main "$1"
  new=$(sed -n 's/.* \([0-9]*\) new, .*/\1/p' <<< "$err")
  grew=$(( $(du -sb "$STORE/packs" | cut -f1) - before ))
  diag "import: $err; the packs grew by $grew bytes"
}
reimport "$TMP/v5.img"
ok "a re-import of the same image writes no chunk ($new new)" \
  [ "$rc" -eq 0 -a "$new" = 0 ]
ok "and the packs grow by at most 4 KiB ($grew)" [ "$grew" -le 4096 ]
cp "$TMP/v5.img" "$TMP/v6.img"
# Into the random block round 1 wrote: a chunk that does not compress,
# so that rewriting more than it would show in the packs.
printf 'cairn' | dd of="$TMP/v6.img" bs=1 seek=$((997 * 4096 + 100)) \
  conv=notrunc status=none
reimport "$TMP/v6.img"
ok "a re-import with 5 bytes changed writes one chunk ($new new)" \
  [ "$rc" -eq 0 -a "$new" = 1 ]
ok "and the packs grow by at most one chunk and 4 KiB ($grew)" \
  [ "$grew" -le $((chunk + 4096)) ]
ok "the new commit exports as the changed image" exports_as "$out" "$TMP/v6.img"
ok "main's previous commit is unchanged" exports_as "${ids[5]}" "$TMP/v5.img"
done_testing
