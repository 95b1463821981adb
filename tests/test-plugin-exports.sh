#!/usr/bin/env bash
# test-plugin-exports: what each export name serves.  A branch is
# read-write; a tag, a commit id, a prefix of one and REF~N are read-only
# and refuse writes; REF:VOLUME picks a volume; .list_exports lists
# branches and tags; export= sets the default; unknown names fail with a
# message; and branches, tags and commits made after nbdkit started are
# exportable at once.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 22

SOCK=$TMP/nbd.sock
uri () { echo "nbd+unix:///$1?socket=$SOCK"; }
# read_all EXPORT FILE: copies the whole export to FILE.
read_all () { rm -f "$2"; nbdcopy "$(uri "$1")" "$2"; }
# writable EXPORT: the server lets EXPORT be written.
writable () { nbdsh -u "$(uri "$1")" -c 'h.pwrite(b"w" * 512, 0)' 2>/dev/null; }

make_mixed_file "$TMP/v1.img" 2
make_mixed_file "$TMP/v2.img" 2
"$CAIRN" init >/dev/null 2>&1
c1=$("$CAIRN" import vm "$TMP/v1.img" 2>/dev/null)
c2=$("$CAIRN" import vm "$TMP/v2.img" 2>/dev/null)
"$CAIRN" tag release "$c1"
"$CAIRN" create main 1M
"$CAIRN" create main 256K --volume extra
start_nbdkit "$SOCK" store="$STORE" 2>"$TMP/nbdkit.err" \
  || { fail "nbdkit starts"; exit 1; }

nbdinfo --list --json "nbd+unix://?socket=$SOCK" > "$TMP/list.json"
names=$(python3 -c 'import json,sys; print(" ".join(sorted(e["export-name"] for e in json.load(open(sys.argv[1]))["exports"])))' "$TMP/list.json")
ok "the list is every branch, tag and extra volume ($names)" \
  test "$names" = "main main:extra release vm"

read_all vm "$TMP/out"
ok "a branch serves its data" cmp "$TMP/out" "$TMP/v2.img"
read_all release "$TMP/out"
ok "a tag serves its commit" cmp "$TMP/out" "$TMP/v1.img"
read_all "tags/release" "$TMP/out"
ok "tags/NAME too" cmp "$TMP/out" "$TMP/v1.img"
read_all "$c1" "$TMP/out"
ok "a commit id serves the commit" cmp "$TMP/out" "$TMP/v1.img"
read_all "${c1:0:8}" "$TMP/out"
ok "a prefix of the id too" cmp "$TMP/out" "$TMP/v1.img"
read_all "vm~1" "$TMP/out"
ok "and REF~1, the parent" cmp "$TMP/out" "$TMP/v1.img"

ok "a branch is writable" writable heads/main
fails "a tag is not" writable release
fails "a commit is not" writable "$c2"
fails "REF~1 of a branch is not" writable "vm~1"
# With libnbd's own check off, the write reaches nbdkit, which refuses it
# (EROFS, sent as EPERM: NBD has no EROFS).
refused=$(nbdsh -u "$(uri release)" -c 'h.set_strict_mode(0)' -c '
try:
    h.pwrite(b"x" * 512, 0)
except nbd.Error as e:
    print(e.errno)' 2>&1)
ok "the server itself refuses a write to a tag ($refused)" test "$refused" = EPERM

ok "REF:VOLUME serves that volume" \
  test "$(nbdinfo --size "$(uri main:extra)")" = 262144
fails "an unknown volume is refused" nbdinfo --size "$(uri main:nosuch)"
ok "with a message naming it" grep -q "has no volume 'nosuch'" "$TMP/nbdkit.err"
fails "an unknown ref is refused" nbdinfo --size "$(uri nosuch)"
ok "with a message naming it" grep -q "unknown ref 'nosuch'" "$TMP/nbdkit.err"
fails "the default export is refused without export=" \
  nbdinfo --size "nbd+unix://?socket=$SOCK"
ok "with a message saying what to do" grep -q "no export= default" "$TMP/nbdkit.err"

# Made after nbdkit started: no restart needed.
"$CAIRN" branch fresh "$c1" 2>/dev/null
"$CAIRN" tag later "$c2"
read_all fresh "$TMP/out" && cmp -s "$TMP/out" "$TMP/v1.img"; r1=$?
read_all later "$TMP/out" && cmp -s "$TMP/out" "$TMP/v2.img"; r2=$?
nbdinfo --list "nbd+unix://?socket=$SOCK" > "$TMP/list2"
ok "a new branch and a new tag are served and listed at once" \
  test $r1 = 0 -a $r2 = 0 && grep -q 'export="fresh"' "$TMP/list2" \
  && grep -q 'export="later"' "$TMP/list2"

kill "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null
start_nbdkit "$SOCK" store="$STORE" export=release || fail "nbdkit restarts"
read_all "" "$TMP/out"
ok "export= is what the default export serves" cmp "$TMP/out" "$TMP/v1.img"
ok "and it is described as read-only" \
  bash -c "nbdinfo 'nbd+unix://?socket=$SOCK' | grep -q 'is_read_only: true'"

done_testing
