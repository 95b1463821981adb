# bench-functions.sh: shared setup of cairn's benchmark scripts.
#
# A benchmark sources this, measures cairn and its peer in the same run on
# the same data, and prints a table with the ratio.  BENCH_DIR is a
# scratch directory (default under /var/tmp, on disk rather than tmpfs, so
# that fsync means what it means in production), removed at exit.

set -eu
: "${abs_top_builddir:?run through make bench}"
CAIRN="$abs_top_builddir/cli/cairn"
PLUGIN="$abs_top_builddir/nbd-plugin/.libs/nbdkit-cairn-plugin.so"
BENCH_DIR=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/cairn-bench.XXXXXX")
bench_cleanups=()
bench_on_exit () { bench_cleanups+=("$*"); }
bench_run_cleanups () {
  local i
  for (( i=${#bench_cleanups[@]}-1; i>=0; i-- )); do
    eval "${bench_cleanups[$i]}" || :
  done
  rm -rf "$BENCH_DIR"
}
trap bench_run_cleanups EXIT
export CAIRN_STORE="$BENCH_DIR/store"

nbdsh () { PATH=/usr/bin:$PATH command nbdsh "$@"; }
nbdcopy () { PATH=/usr/bin:$PATH command nbdcopy "$@"; }

# ratio A B: A/B with two decimals.
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
