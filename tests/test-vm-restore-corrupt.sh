#!/usr/bin/env bash
# Restoring a VM commit whose chunks are corrupt fails with one clear line
# naming the chunk: no QEMU, no nbdkit, no branch, no VM record and no
# files are left behind.  With --eager it fails before QEMU is started.
# Without (the lazy default) QEMU starts and the guest runs on the RAM
# pages verified so far; the damaged chunk is never sent to it, and the
# restore fails once the stream reaches it.  The first commit (untouched)
# restores either way.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"

plan 19
new_store
ok "the guest boots" boot vm1 main
good=$("$CAIRN" vm commit vm1 -m good 2>/dev/null)
sleep 1
bad=$("$CAIRN" vm commit vm1 -m "to be damaged" 2>/dev/null)
ok "two commits" test -n "$good" -a -n "$bad"
"$CAIRN" vm stop vm1 2>/dev/null

# A QEMU that notes every start, so the test sees whether one happened.
cat > "$TMP/qemu" <<SH
#!/bin/sh
[ "\$1" = --version ] || echo "\$*" >> "$TMP/qemu-started"
exec "$QEMU_SYSTEM" "\$@"
SH
chmod +x "$TMP/qemu"
export CAIRN_QEMU=$TMP/qemu

# A chunk of RAM the damaged commit has and the good one does not (the
# guest changed it in between).
chunk=$("$VM_HELPER" corrupt "$STORE" "$bad" memory "$good")
ok "a chunk of the second commit's memory is damaged ($chunk)" test -n "$chunk"
before=$(store_refs_fingerprint)

# no_process_of PATTERN: no nbdkit or QEMU whose command line matches.
no_process_of () { ! pgrep -f "^[^ ]*(nbdkit|qemu-system)[^ ]* .*$1" >/dev/null; }
one_line_naming_chunk () {
  [ -n "$1" ] && [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ] &&
    grep -q "chunk $chunk is corrupt" <<< "$1"
}

# restore_fails WHAT [OPTION]: the restore of the damaged commit fails
# and leaves nothing.
restore_fails () {
  run_cairn vm restore "$bad" vm2 ${2:-}
  ok "$1: exit 1" [ "$rc" -eq 1 ]
  ok "$1: one line naming the chunk: $err" one_line_naming_chunk "$err"
  ok "$1: no nbdkit or QEMU of vm2 runs" no_process_of "$STORE/run/vms/vm2"
  ok "$1: no VM record is left" test -z "$("$CAIRN" vm ls | tail -n +2)"
  ok "$1: no branch vm2, no other change to the store" \
    test "$(store_refs_fingerprint)" = "$before"
  ok "$1: no run directory or RAM file is left" \
    test -z "$(ls "$STORE/run/vms" "$CAIRN_VM_RAM_DIR"/*/ 2>/dev/null | grep -v ':$')"
}

restore_fails "vm restore --eager" --eager
ok "vm restore --eager: QEMU was never started" test ! -e "$TMP/qemu-started"
restore_fails "vm restore"
ok "vm restore: it had started QEMU" test -s "$TMP/qemu-started"
rm -f "$TMP/qemu-started"

if "$CAIRN" vm restore "$good" vm3 2>/dev/null && wait_console vm3 'cairn-counter [0-9]+' 30; then
  pass "the first commit still restores, and its guest counts"
else
  fail "the first commit still restores"
fi
ok "that restore did start a QEMU" test -s "$TMP/qemu-started"
done_testing
