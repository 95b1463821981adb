#!/usr/bin/env bash
# A committed ext4 disk loop-mounts straight from cairnfs (-o ro,noload,
# as an investigator would) and its files read back.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires mke2fs
requires losetup
plan 3

make_ext4 "$TMP/ext4.img" 24
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/ext4.img" 2>/dev/null)
mount_store

mkdir "$TMP/ext4"
ok "commits/<id>/disk.img loop-mounts read-only" \
   mount -o loop,ro,noload "$MNT/commits/$id/disk.img" "$TMP/ext4"
on_exit "umount '$TMP/ext4' 2>/dev/null"
ok "etc/motd reads back" \
   test "$(cat "$TMP/ext4/etc/motd")" = "cairn was here"
ok "data/random.bin reads back" \
   cmp "$TMP/ext4/data/random.bin" "$TMP/ext4-root.$$/data/random.bin"
done_testing
