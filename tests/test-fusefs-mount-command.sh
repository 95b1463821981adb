#!/usr/bin/env bash
# cairn mount MNT mounts the store and returns once it is mounted; -f
# stays in the foreground until unmounted; options reach cairnfs; errors
# are one clear line and a non-zero status.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
plan 14

run_cairn mount --help
ok "cairn mount --help exits 0 and prints its usage" \
   bash -c "[ $rc -eq 0 ] && grep -q 'usage: cairn mount' <<< \"$out\""
ok "cairn --help lists it" sh -c "'$CAIRN' --help | grep -q 'cairn mount'"
run_cairn mount "$MNT"
ok "without a store: status 1 ($rc)" test "$rc" = 1
says_not_a_store () { one_line "$err" && grep -q "is not a cairn store" <<< "$err"; }
ok "and one line saying so ($err)" says_not_a_store

head -c 1048576 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/disk.img" 2>/dev/null)

run_cairn mount "$MNT" --cache 32M -o allow_other,timeout=5
unmount_at_exit
ok "cairn mount succeeds" test "$rc" = 0
ok "and the files are there as soon as it returns" \
   cmp "$MNT/commits/$id/disk.img" "$TMP/disk.img"
ok "allow_other was asked for, so it is on" \
   grep -q "$MNT fuse.cairnfs ro,.*allow_other" /proc/mounts
ok "the mount shows the store as its source" \
   grep -q "^$STORE $MNT fuse.cairnfs " /proc/mounts
fusermount3 -u "$MNT"

"$CAIRN" mount -f "$MNT" &
foreground=$!
ok "-f mounts" wait_mounted
ok "and stays in the foreground" kill -0 "$foreground"
fusermount3 -u "$MNT"
wait "$foreground"
ok "until unmounted: status 0 ($?)" test $? = 0

run_cairn mount "$MNT" -o rw
ok "-o rw is refused ($err)" test "$rc" != 0 -a -n "$err"
run_cairn mount "$MNT" --cache lots
ok "a bad size is a usage error ($rc)" test "$rc" = 2
fails "and nothing is mounted" mountpoint -q "$MNT"
done_testing
