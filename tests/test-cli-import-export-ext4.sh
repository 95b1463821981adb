#!/usr/bin/env bash
# An ext4 image made with mke2fs -d survives import and export
# byte for byte, sparsely, and its files are readable from the export.
. ./functions.sh
requires mke2fs

"$CAIRN" init 2>/dev/null
make_ext4 "$TMP/disk.img" 64
run_cairn import main "$TMP/disk.img" -m "first"
ok "import exits 0" [ "$rc" -eq 0 ]
ok "import prints one 64-hex id" bash -c "[[ '$out' =~ ^[0-9a-f]{64}$ ]]"
id=$out
run_cairn export main "$TMP/out.img"
ok "export exits 0" [ "$rc" -eq 0 ]
ok "the export equals the image" cmp "$TMP/disk.img" "$TMP/out.img"
ok "the export is sparse" \
  [ "$(du -k "$TMP/out.img" | cut -f1)" -lt $(( 64 * 1024 / 2 )) ]
run_cairn export "${id:0:8}:disk" "$TMP/out2.img"
ok "export by id prefix and volume" cmp "$TMP/disk.img" "$TMP/out2.img"
ok "e2fsck finds the export clean" e2fsck -fn "$TMP/out.img"
ext4_cat "$TMP/out.img" /etc/motd > "$TMP/motd"
ok "a file inside reads back" grep -q "cairn was here" "$TMP/motd"
"$CAIRN" export main - > "$TMP/stream.img"
ok "export to stdout streams the same bytes" cmp "$TMP/disk.img" "$TMP/stream.img"
done_testing
