#!/usr/bin/env bash
# test-plugin-convert: qemu-img convert of a branch export and of a commit
# export, to raw and to qcow2, each equal to `cairn export` of the same
# ref, and nbdcopy of both; copies skip the holes the extents report.
. ./functions.sh
requires "$NBDKIT"
requires "$QEMU_IMG"
requires qemu-io
plan 7

SOCK=$TMP/nbd.sock
uri () { echo "nbd+unix:///$1?socket=$SOCK"; }

make_mixed_file "$TMP/base.img" 8
"$CAIRN" init >/dev/null 2>&1
first=$("$CAIRN" import main "$TMP/base.img" 2>/dev/null)
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }

# Change the branch while it is served, then commit it through nbdkit.
qemu-io -f raw "$(uri main)" -c 'write -P 0x5a 100000 300000' \
  -c 'write -z 2m 2m' -c 'discard 6m 512k' -c 'write -P 0xa5 8388000 608' \
  >/dev/null
id=$("$CAIRN" commit main -m 'after qemu-io' 2>/dev/null)

"$QEMU_IMG" convert -f raw -O raw "$(uri main)" "$TMP/branch.raw"
"$CAIRN" export main "$TMP/export-main.raw" 2>/dev/null
ok "qemu-img convert of the branch export equals cairn export of the branch" \
  cmp "$TMP/branch.raw" "$TMP/export-main.raw"

"$QEMU_IMG" convert -f raw -O raw "$(uri "$id")" "$TMP/commit.raw"
"$CAIRN" export "$id" "$TMP/export-commit.raw" 2>/dev/null
ok "qemu-img convert of the commit export equals cairn export of it" \
  cmp "$TMP/commit.raw" "$TMP/export-commit.raw"

"$QEMU_IMG" convert -f raw -O raw "$(uri "$first")" "$TMP/first.raw"
ok "and of the first commit, which is the imported image" \
  cmp "$TMP/first.raw" "$TMP/base.img"
fails "which differs from the later one" \
  cmp -s "$TMP/first.raw" "$TMP/commit.raw"

"$QEMU_IMG" convert -f raw -O qcow2 "$(uri "$id")" "$TMP/commit.qcow2"
ok "a qcow2 of the commit export has the same content" \
  "$QEMU_IMG" compare -f qcow2 -F raw "$TMP/commit.qcow2" "$TMP/export-commit.raw"

# The holes of the commit are not allocated in the qcow2: the extents
# told qemu-img where they are (2M zeroed + 512K discarded at least).
alloc=$("$QEMU_IMG" map -f qcow2 --output=json "$TMP/commit.qcow2" \
  | python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]))')
ok "qemu-img skipped the holes ($alloc of 8 MiB allocated)" \
  test "$alloc" -le $((8 * 1048576 - 2 * 1048576 - 524288))

nbdcopy "$(uri main)" "$TMP/nbdcopy.raw"
ok "nbdcopy of the branch export equals it too" \
  cmp "$TMP/nbdcopy.raw" "$TMP/export-main.raw"

done_testing
