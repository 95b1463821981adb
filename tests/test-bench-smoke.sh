#!/usr/bin/env bash
# The store's and gc's benchmarks run to the end, at a tiny scale, and
# print their tables.  Nothing here looks at a time: it keeps the
# benchmark programs, which use the store's API directly, from rotting
# unseen between runs of `make bench` (the gc benchmark did once, when
# the tree's fan-out changed).
. ./functions.sh

plan 4
bench () {
  BENCH_TMPDIR="$TMP" make -s -C "$abs_top_builddir/bench" bench BENCHES="$1" \
    > "$TMP/$1.out" 2> "$TMP/$1.err"
}
# bench-store: a 16 MiB image, 20 commits a mode.
if BENCH_IMAGE_MIB=16 BENCH_COMMITS=20 bench bench-store.sh; then
  pass "bench-store.sh runs to the end"
else
  fail "bench-store.sh runs to the end: $(tail -3 "$TMP/bench-store.sh.err" | tr "\n" " ")"
fi
ok "and prints its tables" bash -c "grep -q 'branch creation' '$TMP/bench-store.sh.out' && grep -q 'peak RSS of cairn import' '$TMP/bench-store.sh.out'"
# bench-gc: 20 commits of a 256 MiB volume.
if CAIRN_BENCH_VOLUME=256M CAIRN_BENCH_COMMITS=20 bench bench-gc.sh; then
  pass "bench-gc.sh runs to the end"
else
  fail "bench-gc.sh runs to the end: $(tail -3 "$TMP/bench-gc.sh.err" | tr "\n" " ")"
fi
ok "and prints its table, with the fresh store" \
  grep -q 'store after gc vs fresh store' "$TMP/bench-gc.sh.out"
done_testing
