#!/usr/bin/env bash
# A commit a VM runs from is kept by retention and gc while the VM exists,
# whatever the branch's policy says: prune names the VM as the reason, gc
# leaves its data, and it still restores.  Once the VM is stopped, the
# same policy prunes it and gc reclaims its memory.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"

plan 8
new_store
ok "the guest boots" boot vm1 main
base=$("$CAIRN" vm commit vm1 -m "the VM's base" 2>/dev/null)
# The branch moves on without the VM committing: its base stays $base.
"$CAIRN" commit main -m later >/dev/null 2>&1
"$CAIRN" commit main -m "later still" >/dev/null 2>&1
"$CAIRN" retention set main --keep-last 1 >/dev/null 2>&1

run_cairn prune main
ok "prune keeps the VM's base, naming the VM: $(grep "${base:0:12}" <<< "$out")" \
  bash -c "grep '${base:0:12}' <<< \"$out\" | grep -q 'vm vm1'"
ok "and it is not a tombstone" \
  bash -c "! '$CAIRN' log main --oneline | grep '${base:0:12}' | grep -q pruned"
run_cairn gc
ok "gc runs: $err" [ "$rc" -eq 0 ]
ok "the VM's memory is all there" \
  bash -c "'$CAIRN' export $base:memory '$TMP/mem.img' 2>/dev/null"

run_cairn vm stop vm1
run_cairn prune main
ok "once the VM is stopped, the policy prunes that commit" \
  bash -c "'$CAIRN' log main --oneline | grep '${base:0:12}' | grep -q pruned"
run_cairn gc
ok "gc reclaims it: $err" [ "$rc" -eq 0 ]
run_cairn vm restore "$base" vm2
ok "and it no longer restores: $err" [ "$rc" -eq 1 ]
done_testing
