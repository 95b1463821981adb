#!/usr/bin/env bash
# A store with 10 000 commits lists every one of them, once, in commits/
# (which cairnfs pages through the store rather than loading) and in
# by-time/<branch>/, with ls and ls -l.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
plan 7

"$CAIRN" init 2>/dev/null
"$CAIRN" create vm 1M 2>/dev/null
"$HELPER" commits "$STORE" vm 10000
"$CAIRN" log vm | sed -n 's/^commit \([0-9a-f]*\).*/\1/p' | sort > "$TMP/want"
mount_store

ok "cairn log has the 10000 commits" test "$(wc -l < "$TMP/want")" = 10000
ls "$MNT/commits" > "$TMP/ls"
ok "ls commits/ lists every commit once" cmp "$TMP/ls" "$TMP/want"
ls -l "$MNT/commits" | awk 'NR > 1 { print $NF }' > "$TMP/ls-l"
ok "so does ls -l" cmp "$TMP/ls-l" "$TMP/want"
ok "every entry of ls -l is a directory" \
   test "$(ls -l "$MNT/commits" | grep -c '^dr-xr-xr-x')" = 10000

ls -l "$MNT/by-time/vm" | awk 'NR > 1 { print $NF }' |
  sed 's|^\.\./\.\./commits/||' | sort > "$TMP/by-time"
ok "by-time/vm links to every commit once" cmp "$TMP/by-time" "$TMP/want"
newest=$(ls "$MNT/by-time/vm" | tail -n 1)
ok "its last entry is the branch's last commit" \
   test "$(readlink "$MNT/by-time/vm/$newest")" = \
        "../$(readlink "$MNT/branches/vm")"
some=$(sed -n 5000p "$TMP/want")
ok "any commit looks up" \
   cmp "$MNT/commits/$some/commit" <("$CAIRN" cat "$some")
done_testing
