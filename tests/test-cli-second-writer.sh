#!/usr/bin/env bash
# A branch held by one writer is refused to every other writer, with a
# line naming the holder; readers are unaffected; the lock dies with its
# process.
. ./functions.sh

"$CAIRN" init 2>/dev/null
make_ext4 "$TMP/disk.img" 16
"$CAIRN" import main "$TMP/disk.img" >/dev/null 2>&1
"$HOLD_BRANCH" "$STORE" main > "$TMP/held" &
holder=$!
on_exit "kill $holder 2>/dev/null"
ok "the helper holds main" retry 50 0.1 grep -q held "$TMP/held"
before=$(store_fingerprint)

head -c 1M /dev/urandom > "$TMP/new.img"
run_cairn import main "$TMP/new.img"
ok "import into a held branch: exit 1" [ "$rc" -eq 1 ]
ok "one line naming the holder" bash -c "grep -q 'held by another writer (pid $holder)' <<< \"$err\""
run_cairn commit main
ok "commit of a held branch without a control socket: exit 1" \
  bash -c "[ $rc -eq 1 ] && grep -q 'held' <<< \"$err\""
run_cairn branch -d main
ok "deleting a held branch: exit 1" [ "$rc" -eq 1 ]
run_cairn branch fork main
ok "branching from a held branch nobody serves: exit 1, naming the holder" \
  bash -c "[ $rc -eq 1 ] && grep -q 'held by another writer (pid $holder)' <<< \"$err\""
ok "nothing changed" [ "$(store_fingerprint)" = "$before" ]
run_cairn export main "$TMP/out.img"
ok "readers still read it" cmp "$TMP/disk.img" "$TMP/out.img"

kill -9 "$holder"
wait "$holder" 2>/dev/null
run_cairn commit main -m "after the holder died"
ok "the lock died with the holder (kill -9)" [ "$rc" -eq 0 ]
done_testing
