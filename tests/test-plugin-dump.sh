#!/usr/bin/env bash
# test-plugin-dump: the plugin describes itself without a store
# (nbdkit --dump-plugin, nbdkit cairn --help), refuses a wrong store=
# before serving anything, and its man page documents what it takes.
. ./functions.sh
requires "$NBDKIT"
plan 10

export CAIRN_STORE="$TMP/nostore"
dump=$(run_nbdkit --dump-plugin "$PLUGIN" 2>&1)
ok "nbdkit --dump-plugin works without a store" \
  grep -qx 'name=cairn' <<<"$dump"
ok "it declares the parallel thread model" \
  grep -qx 'thread_model=parallel' <<<"$dump"
ok "and every callback of the data path" \
  bash -c 'for cb in pread pwrite flush trim zero extents cache block_size \
             list_exports default_export after_fork can_multi_conn; do
             grep -qx "has_$cb=1" <<<"$1" || { echo "# no $cb"; exit 1; }
           done' _ "$dump"

help=$(run_nbdkit "$PLUGIN" --help 2>&1)
ok "nbdkit cairn --help names every parameter" \
  bash -c '[[ $1 == *store=* && $1 == *export=* && $1 == *cache=* ]]' _ "$help"

rm -f "$TMP/sock"
run_nbdkit --foreground --unix "$TMP/sock" "$PLUGIN" "$TMP/nostore" \
  >"$TMP/out" 2>&1
rc=$?
ok "nbdkit refuses a path that is no store" test $rc != 0
ok "saying so before it serves" \
  grep -q "$TMP/nostore is not a cairn store" "$TMP/out"
ok "no socket was left behind" test ! -e "$TMP/sock"

run_nbdkit --dump-plugin "$PLUGIN" cache=banana >"$TMP/out" 2>&1; rc=$?
ok "a bad cache= is refused" test $rc != 0 && grep -q banana "$TMP/out"

POD=$abs_top_srcdir/nbd-plugin/nbdkit-cairn-plugin.pod
# Built in the build tree, or shipped in the source tree of a tarball.
MAN=$abs_top_builddir/nbd-plugin/nbdkit-cairn-plugin.1
[ -s "$MAN" ] || MAN=$abs_top_srcdir/nbd-plugin/nbdkit-cairn-plugin.1
ok "the man page is built" test -s "$MAN"
ok "and documents every parameter and feature" \
  bash -c 'for w in store= export= cache= EROFS multi-conn -r "cairn serve" \
             "cairn commit" "FAST ZERO" Extents Cache "Block size"; do
             grep -qi -- "$w" "$1" || { echo "# no $w"; exit 1; }
           done' _ "$POD"

done_testing
