#!/usr/bin/env bash
# vm restore refuses, with one clear line and before starting anything, a
# commit it cannot restore faithfully: one made by another QEMU major.minor
# or for another machine, one with a malformed vm line or from a newer
# cairn, and a commit that is not a VM commit at all.  (The commits are
# made with the store API, as another host would have made them.)
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"

plan 8
new_store
host=$("$QEMU_SYSTEM" --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)
diag "this host's QEMU: $host"
line () {
  echo "format=${4:-1} qemu=$1 machine=$2 accel=tcg cpu=qemu64 cpus=1 memory=$3 append=console%3DttyS0"
}
fake () { "$VM_HELPER" fake-commit "$STORE" "$1" "$2" 2>&1; }

other=$(fake old "$(line 6.2.0 microvm 1048576)")
pc=$(fake pc "$(line "$host" pc 1048576)")
newer=$(fake newer "$(line "$host" microvm 1048576 2)")
bad=$(fake bad "format=1 qemu=$host machine=microvm")
ok "commits as another host would make them" \
  bash -c "[[ '$other$pc$newer$bad' =~ ^([0-9a-f]{64}){4}$ ]]"
before=$(store_refs_fingerprint)

# refused REF PATTERN: vm restore REF fails with one line matching PATTERN.
refused () {
  run_cairn vm restore "$1" vm1
  [ "$rc" -eq 1 ] && one_line "$err" && grep -Eq -- "$2" <<< "$err"
}
ok "another QEMU major.minor is refused" \
  refused old "made by QEMU 6\.2\.0 and this host has QEMU $host"
diag "$err"
ok "another machine type is refused" refused pc "machine is 'pc'"
diag "$err"
ok "a vm line from a newer cairn is refused" refused newer "newer cairn"
diag "$err"
ok "a malformed vm line is refused" refused bad "malformed"
diag "$err"
ok "a commit that is not a VM commit is refused" refused main "not a VM commit"
diag "$err"
ok "nothing was started or left: no VM, no run directory" \
  test -z "$("$CAIRN" vm ls | tail -n +2)$(ls "$STORE/run/vms" 2>/dev/null)"
ok "and the store did not change (no branch vm1)" \
  test "$(store_refs_fingerprint)" = "$before"
done_testing
