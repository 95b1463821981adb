#!/usr/bin/env bash
# A committed ext4 disk loop-mounts straight from cairnfs (-o ro,noload,
# as an investigator would) and its files read back.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires mke2fs
requires losetup
plan 3

make_ext4 "$TMP/ext4.img" 24M
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/ext4.img" 2>/dev/null)
mount_store

mkdir "$TMP/ext4"
ok "commits/<id>/disk.img loop-mounts read-only" \
   mount -o loop,ro,noload "$MNT/commits/$id/disk.img" "$TMP/ext4"
on_exit "umount '$TMP/ext4' 2>/dev/null"
ok "hello.txt reads back" \
   test "$(cat "$TMP/ext4/hello.txt")" = "cairn was here"
ok "random.bin reads back" \
   cmp "$TMP/ext4/random.bin" "$TMP/ext4-files/random.bin"
done_testing
