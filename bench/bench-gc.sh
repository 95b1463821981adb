#!/usr/bin/env bash
# bench-gc: prune and gc on a store of 1000 commits of an 8 GiB volume
# (see bench-gc-store.c for what it builds and measures).  Scale it down
# with CAIRN_BENCH_VOLUME, CAIRN_BENCH_COMMITS and CAIRN_BENCH_CHANGE.
. "$(dirname "$0")/bench-functions.sh"

"$abs_top_builddir/bench/bench-gc-store" "$BENCH_DIR/store" \
  "$BENCH_DIR/fresh" "$CAIRN"
