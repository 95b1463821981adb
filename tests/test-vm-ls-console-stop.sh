#!/usr/bin/env bash
# vm ls lists VMs with their state, branch and base commit; vm console
# prints (and follows, and types into) the serial console; a second VM on
# the same branch or of the same name is refused; vm stop ends QEMU and
# the nbdkit it started cleanly; a VM whose QEMU died shows as dead and
# vm stop cleans it up.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"

plan 21
new_store
main_commit=$("$CAIRN" log main --oneline -n 1 | cut -d' ' -f1)
ok "the guest boots" boot vm1 main

run_cairn vm ls
ok "vm ls: vm1 running on main from main's commit" \
  bash -c "grep -Eq '^vm1 +running +main +$main_commit +256.0 MiB +1 ' <<< \"$out\""
json=$("$CAIRN" vm ls --json)
qemu=$(json_field "$json" qemu_pid)
nbdkit=$(json_field "$json" nbdkit_pid)
ok "vm ls --json names QEMU ($qemu) and its nbdkit ($nbdkit), both alive" \
  kill -0 "${qemu:-0}" "${nbdkit:-0}"

run_cairn vm console vm1
ok "vm console prints the boot" bash -c "grep -aq '^cairn-guest: ready' <<< \"$out\""
ok "vm console --send types a command" send vm1 'echo "typed-$((3*3))"'
ok "whose output the console shows" wait_console vm1 '^typed-9' 30
timeout 3 "$CAIRN" vm console vm1 --follow > "$TMP/follow.out"
n=$(counters "$TMP/follow.out" | tail -1)
ok "vm console --follow keeps printing the guest's output (to counter $n)" \
  test "${n:-0}" -ge 3

"$CAIRN" branch other main 2>/dev/null
run_cairn vm run vm1 --branch other
ok "a second vm1 is refused: $err" \
  bash -c "[ $rc -eq 1 ] && grep -q 'a VM .vm1. already' <<< \"$err\""
run_cairn vm run vm2 --branch main
ok "a second VM on branch main is refused: $err" \
  bash -c "[ $rc -eq 1 ] && grep -q 'runs on branch' <<< \"$err\""
run_cairn vm run vm3 --branch nothere
ok "a VM on a branch that does not exist is refused: $err" [ "$rc" -eq 1 ]
run_cairn vm stop nothere
ok "stopping a VM that does not exist fails: $err" [ "$rc" -eq 1 ]

# A clean stop.
run_cairn vm stop vm1
ok "vm stop: $err" bash -c "[ $rc -eq 0 ] && grep -q 'stopped$' <<< \"$err\""
ok "QEMU and nbdkit ended" gone "$qemu" "$nbdkit"
ok "the VM is gone from vm ls" test -z "$("$CAIRN" vm ls | tail -n +2)"
ok "its run directory and RAM are gone" \
  test -z "$(ls "$STORE/run/vms" "$CAIRN_VM_RAM_DIR"/*/ 2>/dev/null | grep -v ':$')"

# A VM whose QEMU died.
ok "the guest boots again" boot vm1 main
qemu=$(json_field "$("$CAIRN" vm ls --json)" qemu_pid)
nbdkit=$(json_field "$("$CAIRN" vm ls --json)" nbdkit_pid)
kill -9 "$qemu"
sleep 0.5
run_cairn vm ls
ok "vm ls shows it dead" bash -c "grep -Eq '^vm1 +dead +main ' <<< \"$out\""
run_cairn vm commit vm1
ok "vm commit of a dead VM fails clearly: $err" \
  bash -c "[ $rc -eq 1 ] && grep -q 'not running' <<< \"$err\""
run_cairn vm stop vm1
ok "vm stop cleans it up: $err" \
  bash -c "[ $rc -eq 0 ] && grep -q 'was not running' <<< \"$err\""
ok "its nbdkit ended too" gone "$nbdkit"
ok "nothing is left" \
  test -z "$("$CAIRN" vm ls | tail -n +2)$(ls "$STORE/run/vms" 2>/dev/null)"
done_testing
