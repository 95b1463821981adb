#!/usr/bin/env bash
# test-prune-gc-reclaims: cairn prune then cairn gc gives space back, and
# every commit that was kept still exports byte for byte as before.
#
# Ten versions of an 8 MiB image of random data, each rewriting one half
# of it, committed an hour apart; keep-last 3 plus a tag on the second.
# Kept: the last three and the second, which reach 24 of the 44 MiB
# stored.  The store's size on disk (without run/, its lock files) is
# measured before and after.
. ./functions.sh

py () { /usr/bin/python3 "$@"; }

"$CAIRN" init >/dev/null 2>&1 || { echo "Bail out! init"; exit 1; }
head -c 8M /dev/urandom > "$TMP/img"
for i in $(seq 0 9); do
  [ "$i" -eq 0 ] || head -c 4M /dev/urandom |
    dd of="$TMP/img" bs=4M seek=$((i % 2)) conv=notrunc 2>/dev/null
  "$CAIRN" import main "$TMP/img" --time "2026-11-21T$((10 + i)):00:00Z" \
    >/dev/null 2>&1
done
run_cairn log --json
mapfile -t ids < <(py -c '
import json, sys
for c in json.loads(sys.argv[1]): print(c["id"])' "$out")
ok "ten commits" test "${#ids[@]}" -eq 10
"$CAIRN" tag second "${ids[8]}"

# What every commit exports now.
for id in "${ids[@]}"; do
  "$CAIRN" export "$id" "$TMP/e" 2>/dev/null
  sha256sum < "$TMP/e" | cut -d' ' -f1 > "$TMP/sum.$id"
done

store_size () { du -sb --exclude=run "$STORE" | cut -f1; }
size_before=$(store_size)
"$CAIRN" retention set main --keep-last 3 2>/dev/null
run_cairn prune
ok "prune" test "$rc" -eq 0
ok "it pruned six commits" grep -q ', 6 pruned' <<< "$err"
run_cairn gc --dry-run --json
ok "gc --dry-run" test "$rc" -eq 0
would=$(py -c 'import json,sys; print(json.loads(sys.argv[1])["reclaimed_bytes"])' "$out")
ok "gc --dry-run changed nothing" test "$(store_size)" -eq "$size_before"
run_cairn gc
ok "gc" test "$rc" -eq 0
printf '%s\n' "$out" | sed 's/^/# /'
size_after=$(store_size)
diag "store: $size_before bytes before, $size_after after; the dry run said $would"
ok "the store shrank by more than 12 MiB" test $((size_before - size_after)) -gt $((12 << 20))
ok "gc reports what it reclaimed" grep -q 'MiB reclaimed' <<< "$out"
ok "as much as its dry run said" grep -q "$(py -c '
import sys
n = int(sys.argv[1]); print("%.1f MiB" % (n / 1048576))' "$would") reclaimed" <<< "$out"

run_cairn log --json
mapfile -t kept < <(py -c '
import json, sys
for c in json.loads(sys.argv[1]):
  if not c["pruned"]: print(c["id"])' "$out")
ok "four commits kept" test "${#kept[@]}" -eq 4
same=0
for id in "${kept[@]}"; do
  "$CAIRN" export "$id" "$TMP/e" 2>/dev/null &&
    [ "$(sha256sum < "$TMP/e" | cut -d' ' -f1)" = "$(cat "$TMP/sum.$id")" ] &&
    same=$((same + 1))
done
ok "every kept commit exports byte for byte as before" test "$same" -eq 4
run_cairn fsck --read-data
ok "fsck --read-data: intact" test "$rc" -eq 0
ok "no garbage is left" grep -q 'unreachable: 0 chunks' <<< "$out"

done_testing
