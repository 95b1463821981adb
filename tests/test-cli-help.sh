#!/usr/bin/env bash
# Every command answers --help with exit 0; usage errors exit 2.
. ./functions.sh

for c in init create import export branch commit tag log show cat diff du; do
  run_cairn "$c" --help
  ok "cairn $c --help exits 0 and prints its usage" \
    bash -c "[ $rc -eq 0 ] && grep -q 'usage: cairn $c' <<< \"$out\""
done
run_cairn --help
ok "cairn --help lists the commands" grep -q "cairn import" <<< "$out"
run_cairn frobnicate
ok "an unknown command exits 2" [ "$rc" -eq 2 ]
run_cairn
ok "no command exits 2" [ "$rc" -eq 2 ]
done_testing
