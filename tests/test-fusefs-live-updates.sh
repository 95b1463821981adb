#!/usr/bin/env bash
# What happens in the store while it is mounted shows without a remount:
# new commits, branches and tags appear at once, a branch's link follows
# its new commits at once, and deleted branches and tags disappear (from
# listings at once; from lookups within the -o timeout).
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
plan 10

head -c 1048576 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
c1=$("$CAIRN" import vm "$TMP/disk.img" 2>/dev/null)
"$CAIRN" tag old "$c1" 2>/dev/null
mount_store
# Let the kernel cache what it can before things change.
ls -lR "$MNT" > /dev/null

# absent PATH: waits (boundedly) until PATH does not exist, not even as
# a symbolic link (stat does not follow it).
absent () { retry 100 0.1 not stat "$1" >/dev/null 2>&1; }

ls "$MNT/by-time/vm" > /dev/null
c2=$("$CAIRN" commit vm -m new 2>/dev/null)
ok "a new commit is in commits/ at once" \
   sh -c "ls '$MNT/commits' | grep -qx '$c2'"
ok "and looks up" test -d "$MNT/commits/$c2"
ok "the branch's link follows it at once" \
   test "$(readlink "$MNT/branches/vm")" = "../commits/$c2"
ok "by-time/vm has it" test "$(ls "$MNT/by-time/vm" | wc -l)" = 2

# Looked up before they exist: the kernel must not remember that.
stat "$MNT/tags/new" "$MNT/branches/other" > /dev/null 2>&1
"$CAIRN" tag new "$c2" 2>/dev/null
"$CAIRN" branch other "$c1" 2>/dev/null
ok "a new tag appears at once, though just looked up" \
   test "$(readlink "$MNT/tags/new")" = "../commits/$c2"
ok "so does a new branch" \
   test "$(readlink "$MNT/branches/other")" = "../commits/$c1"

"$CAIRN" tag -d old 2>/dev/null
"$CAIRN" branch -d other 2>/dev/null
ok "a deleted tag leaves the listing at once" \
   test "$(ls "$MNT/tags" | tr '\n' ' ')" = "new "
ok "a deleted branch too" \
   test "$(ls "$MNT/branches" | tr '\n' ' ')" = "vm "
ok "and the deleted tag stops resolving" absent "$MNT/tags/old"
ok "the deleted branch too" absent "$MNT/branches/other"
done_testing
