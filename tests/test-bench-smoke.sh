#!/usr/bin/env bash
# The store's and gc's benchmarks run to the end, at a tiny scale, and
# print their tables.  Nothing here looks at a time: it keeps the
# benchmark programs, which use the store's API directly, from rotting
# unseen between runs of `make bench` (the gc benchmark did once, when
# the tree's fan-out changed).
. ./functions.sh

plan 4
# runs BENCH VAR=VALUE...: BENCH runs to the end with those settings.
runs () {
  local b=$1; shift
  if env "$@" BENCH_TMPDIR="$TMP" make -s -C "$abs_top_builddir/bench" bench \
       BENCHES="$b" > "$TMP/$b.out" 2> "$TMP/$b.err"; then
    pass "$b runs to the end"
  else
    fail "$b runs to the end: $(tail -3 "$TMP/$b.err" | tr "\n" " ")"
  fi
}
# bench-store: a 16 MiB image, 20 commits a mode.
runs bench-store.sh BENCH_IMAGE_MIB=16 BENCH_COMMITS=20
ok "and prints its tables" bash -c "grep -q 'branch creation' '$TMP/bench-store.sh.out' && grep -q 'peak RSS of cairn import' '$TMP/bench-store.sh.out'"
# bench-gc: 20 commits of a 256 MiB volume.
runs bench-gc.sh CAIRN_BENCH_VOLUME=256M CAIRN_BENCH_COMMITS=20
ok "and prints its table, with the fresh store" \
  grep -q 'store after gc vs fresh store' "$TMP/bench-gc.sh.out"
done_testing
