#!/usr/bin/env bash
# An ext4 image imported and committed reads back through cairnfs as
# exactly the bytes cairn export writes, with exact sizes; the commit file
# is the commit's text; their mtimes are the commit's time.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires mke2fs
plan 7

make_ext4 "$TMP/ext4.img" 24
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/ext4.img" -m "an ext4 disk" 2>/dev/null)
"$CAIRN" export "$id" "$TMP/export.img" 2>/dev/null
mount_store
disk="$MNT/commits/$id/disk.img"
text="$MNT/commits/$id/commit"

ok "disk.img has the sha256 of cairn export" \
   test "$(sha256sum < "$disk")" = "$(sha256sum < "$TMP/export.img")"
ok "and of the imported image" \
   test "$(sha256sum < "$disk")" = "$(sha256sum < "$TMP/ext4.img")"
ok "disk.img's size is the volume's" \
   test "$(stat -c %s "$disk")" = "$(stat -c %s "$TMP/ext4.img")"
"$CAIRN" cat "$id" > "$TMP/commit.txt"
ok "the commit file is the commit's text" cmp "$text" "$TMP/commit.txt"
ok "its size is exact" \
   test "$(stat -c %s "$text")" = "$(stat -c %s "$TMP/commit.txt")"

# "time 2026-11-21T10:00:00.123456789Z" -> seconds.nanoseconds
when=$(sed -n 's/^time //p' "$TMP/commit.txt")
want="$(date -u -d "${when%.*}Z" +%s).$(echo "$when" | sed 's/.*\.\([0-9]*\)Z/\1/')"
ok "disk.img's mtime is the commit's time ($want)" \
   test "$(stat -c %.9Y "$disk")" = "$want"
ok "so is the commit file's" test "$(stat -c %.9Y "$text")" = "$want"
done_testing
