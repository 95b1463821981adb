#!/usr/bin/env bash
# Bad input gets exit status 1 (2 for usage), one clear line on stderr, and
# no change to the store.
. ./functions.sh

"$CAIRN" init 2>/dev/null
make_ext4 "$TMP/disk.img" 16
"$CAIRN" import main "$TMP/disk.img" >/dev/null 2>&1
"$CAIRN" tag v1 main
before=$(store_fingerprint)

# refused CMD...: exit 1, one line naming the problem, store unchanged.
refused () {
  local what=$1 pattern=$2; shift 2
  run_cairn "$@"
  if [ "$rc" -eq 1 ] && one_line "$err" && grep -qi -- "$pattern" <<< "$err" \
     && [ "$(store_fingerprint)" = "$before" ]; then
    pass "$what: $err"
  else
    fail "$what (rc $rc): $err"
  fi
}
usage () {
  local what=$1; shift
  run_cairn "$@"
  if [ "$rc" -eq 2 ] && one_line "$err" \
     && [ "$(store_fingerprint)" = "$before" ]; then
    pass "$what (usage, exit 2): $err"
  else
    fail "$what (rc $rc): $err"
  fi
}

refused "unknown ref" "unknown ref 'nosuch'" export nosuch "$TMP/x"
refused "unknown commit prefix" "no commit starts with" export deadbeef00 "$TMP/x"
refused "unknown volume" "no volume 'memory'" export main:memory "$TMP/x"
refused "branching from nothing" "unknown ref" branch dev nosuch
usage "a size that is not a number" create big lots
refused "a size that is not a multiple of 512" "multiple of 512" create odd 1000
refused "a branch that exists" "already exists" create main 1M
refused "a volume that exists" "already has a volume 'disk'" \
  create main 1M --volume disk
refused "a tag that shadows a branch" "already exists" tag main main
refused "a missing file" "No such file" import new "$TMP/nope.img"
ok "no branch was left behind" bash -c "! '$CAIRN' branch | grep -q '^new '"
refused "a directory as the file" "is a directory" import new2 "$TMP"
: > "$TMP/empty"
refused "an empty file" "is empty" import new3 "$TMP/empty"
refused "a bad branch name" "not a valid" import "a..b" "$TMP/disk.img"
refused "a bad volume name" "not a valid volume" import x "$TMP/disk.img" --volume Disk
usage "a bad --time" commit main --time yesterday
usage "an unknown option" log --bogus
usage "a missing argument" export main
usage "an option without its value" commit main -m
usage "a long option without its value" commit main --time
usage "a value to an option that takes none" log --all=yes
usage "a chunk size that is not a size" init --chunk-size 3x
usage "no command"
usage "an unknown command" frobnicate
usage "an unknown vm subcommand" vm frobnicate
{ printf 'QFI\373'; head -c 1000 /dev/urandom; } > "$TMP/bad.qcow2"
refused "a damaged qcow2 (qemu-nbd's reason)" "qcow2 version" \
  import q "$TMP/bad.qcow2"
refused "a format qemu does not know (qemu-img's reason)" \
  "unknown file format 'bogus'" export main "$TMP/out.img" --format bogus
refused "importing into a tag" "'v1' is a tag" import v1 "$TMP/disk.img"
refused "deleting an unknown tag" "no tag" tag -d nosuch
refused "deleting an unknown branch" "no branch" branch -d nosuch

mkdir "$TMP/notastore"
CAIRN_STORE="$TMP/notastore" run_cairn log
ok "a path that is not a store: exit 1, one line" \
  bash -c "[ $rc -eq 1 ] && grep -q 'is not a cairn store' <<< \"$err\""
run_cairn init
ok "init over an existing store is refused" \
  bash -c "[ $rc -eq 1 ] && grep -q 'already a cairn store' <<< \"$err\""
ok "and changed nothing" [ "$(store_fingerprint)" = "$before" ]

# Stores of another format: refused before anything is read or written.
for fmt in 1 3; do
  mkdir "$TMP/format$fmt" "$TMP/format$fmt/index"
  printf 'cairn-store %s\nchunk-size 65536\ncompress zstd:1\n' $fmt \
    > "$TMP/format$fmt/config"
  CAIRN_STORE="$TMP/format$fmt" run_cairn log
  want=$([ $fmt = 1 ] && echo "made by an older cairn" || echo "made by a newer cairn")
  ok "a store of format $fmt: exit 1, one line: $err" \
    bash -c "[ $rc -eq 1 ] && one_line () { [ \$(printf '%s\n' \"\$1\" | wc -l) -eq 1 ]; } && one_line \"$err\" && grep -q '$want' <<< \"$err\""
  ok "and nothing was written to it" \
    [ -z "$(ls "$TMP/format$fmt/index")" ]
done

# An ambiguous prefix: commit until two ids share their first 4 digits
# (about 300 commits on average; the chance of needing 4000 is e^-122).
amb=
for i in $(seq 1 4000); do
  "$CAIRN" commit main -m "$i" >> "$TMP/ids"
  if [ $((i % 50)) -eq 0 ]; then
    amb=$(cut -c1-4 "$TMP/ids" | sort | uniq -d | head -1)
    [ -n "$amb" ] && break
  fi
done
before=$(store_fingerprint)
if [ -n "$amb" ]; then
  refused "an ambiguous prefix" "ambiguous" show "$amb"
else
  fail "4000 commits gave no shared 4-digit prefix"
fi
done_testing
