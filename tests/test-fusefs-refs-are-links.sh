#!/usr/bin/env bash
# Branches, tags and by-time entries are links to commits/<id>: a branch
# to its last commit, a tag to its commit, by-time/<branch>/<time> to each
# commit of the branch's history, named for its time; a ref name with '/'
# shows it as %2F; a branch with no commit has no link.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
plan 11

head -c 1048576 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
c1=$("$CAIRN" import vm "$TMP/disk.img" -m one 2>/dev/null)
c2=$("$CAIRN" commit vm -m two 2>/dev/null)
c3=$("$CAIRN" commit vm -m three 2>/dev/null)
"$CAIRN" tag t1 "$c1" 2>/dev/null
"$CAIRN" tag release/1.0 "$c2" 2>/dev/null
"$CAIRN" branch feature/x "$c2" 2>/dev/null
"$CAIRN" create empty 1M 2>/dev/null
mount_store

ok "branches/vm -> its last commit" \
   test "$(readlink "$MNT/branches/vm")" = "../commits/$c3"
ok "branches/feature%2Fx -> its commit" \
   test "$(readlink "$MNT/branches/feature%2Fx")" = "../commits/$c2"
ok "ls branches/ lists the branches with commits" \
   test "$(ls "$MNT/branches" | tr '\n' ' ')" = "feature%2Fx vm "
ok "tags/t1 -> its commit" \
   test "$(readlink "$MNT/tags/t1")" = "../commits/$c1"
ok "tags/release%2F1.0 -> its commit" \
   test "$(readlink "$MNT/tags/release%2F1.0")" = "../commits/$c2"
ok "the links lead to the commits' files" \
   cmp "$MNT/tags/t1/commit" <("$CAIRN" cat "$c1")

# by-time/vm: one link per commit, named for its time, oldest first.
"$CAIRN" log vm --json | python3 -c '
import json, sys
for c in reversed(json.load(sys.stdin)):
    print(c["time"], "->", "../../commits/" + c["id"])' > "$TMP/want"
for name in $(ls "$MNT/by-time/vm"); do
  echo "$name -> $(readlink "$MNT/by-time/vm/$name")"
done > "$TMP/got"
ok "by-time/vm has a link per commit, named for its time" \
   cmp "$TMP/got" "$TMP/want"
ok "by-time/ has a directory per branch with commits" \
   test "$(ls "$MNT/by-time" | tr '\n' ' ')" = "feature%2Fx vm "
ok "by-time/feature%2Fx holds the history up to its commit" \
   test "$(ls "$MNT/by-time/feature%2Fx" | wc -l)" = 2
ok "a branch's link has its commit's time" \
   test "$(stat -c %Y "$MNT/branches/vm")" = \
        "$(stat -c %Y "$MNT/commits/$c3")"
fails "an id that is not a commit has no directory" \
   test -e "$MNT/commits/$(printf '%064d' 0)"
done_testing
