#!/usr/bin/env bash
# Inode numbers say what a file is: the same in a listing (readdir) as in
# stat, the same after a remount, and different for different files;
# ".." is the directory above.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
plan 5

head -c 1048576 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
c1=$("$CAIRN" import vm "$TMP/disk.img" 2>/dev/null)
c2=$("$CAIRN" commit vm 2>/dev/null)
"$CAIRN" tag t1 "$c1" 2>/dev/null

paths="commits commits/$c1 commits/$c1/commit commits/$c1/disk.img
       commits/$c2 commits/$c2/disk.img branches/vm tags/t1 by-time/vm"
numbers () {
  local p
  for p in $paths; do stat -c "%i $p" "$MNT/$p"; done
}

mount_store
numbers > "$TMP/first"
ls -i "$MNT/commits/$c1" | awk '{ print $1, $2 }' | sort > "$TMP/listed"
(cd "$MNT/commits/$c1" && stat -c "%i %n" commit disk.img) | sort \
  > "$TMP/stated"
ok "a listing gives the numbers stat gives" cmp "$TMP/listed" "$TMP/stated"
ok "\"..\" of a commit is commits/" \
   test "$(stat -c %i "$MNT/commits/$c1/..")" = \
        "$(stat -c %i "$MNT/commits")"
ok "and in a listing too" \
   test "$(ls -ia "$MNT/commits/$c1" | awk '$2 == ".." { print $1 }')" = \
        "$(stat -c %i "$MNT/commits")"
ok "every file has its own number" \
   test "$(cut -d' ' -f1 "$TMP/first" | sort -u | wc -l)" = 9

fusermount3 -u "$MNT"
mount_store
numbers > "$TMP/second"
ok "a remount gives the same numbers" cmp "$TMP/first" "$TMP/second"
done_testing
