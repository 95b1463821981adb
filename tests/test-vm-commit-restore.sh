#!/usr/bin/env bash
# A guest booted with cairn vm run is committed while it runs, stopped,
# and restored from that commit as a new VM: its counter continues from
# the committed value (it is a shell variable in the committed RAM: no
# reboot), a file written before the commit is on its disk, a file
# written after the commit is not, and the restored guest writes on.
# The restore is lazy (its RAM comes in while it runs) and the restored
# VM commits like any other; a restore with --eager resumes too.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"

plan 20
new_store
ok "the guest boots from branch main" boot vm1 main

send vm1 'echo before-commit > /data/x; sync; echo "wrote-$((40+2))"'
ok "a file written before the commit" wait_console vm1 '^wrote-42' 30

before=$(last_counter vm1)
run_cairn vm commit vm1 -m "counting"
ok "vm commit: exit 0" [ "$rc" -eq 0 ]
commit=$out
after=$(last_counter vm1)
ok "it prints the commit id ($commit)" bash -c "[[ '$commit' =~ ^[0-9a-f]{64}$ ]]"
ok "and the pause in ms: $err" bash -c "grep -Eq 'paused [0-9.]+ ms' <<< \"$err\""
ok "the commit holds disk, memory, vmstate, kernel, initrd and a vm line" \
  bash -c "\"$CAIRN\" cat $commit | grep -q '^vm format=1 qemu=' &&
           for v in disk memory vmstate kernel initrd; do
             \"$CAIRN\" cat $commit | grep -q \"^volume \$v \" || exit 1; done"
ok "the guest goes on counting after the commit" \
  wait_console vm1 "cairn-counter $((after + 2))([^0-9]|$)" 30
send vm1 'echo after-commit > /data/y; sync; echo "wrote-$((50+5))"'
ok "and writes after it" wait_console vm1 '^wrote-55' 30

run_cairn vm stop vm1
ok "vm stop" [ "$rc" -eq 0 ]

run_cairn vm restore "$commit" vm2 --json
ok "vm restore of the commit as vm2: $err" [ "$rc" -eq 0 ]
ok "its RAM came in while the guest ran" grep -q '"lazy":true' <<< "$out"
first=$(first_counter vm2 30)
diag "counter before the commit $before, after it $after; first after the restore $first"
ok "its counter resumes from the committed value" \
  test "${first:-0}" -gt "${before:-0}" -a "${first:-0}" -le $((after + 1))
wait_console vm2 "cairn-counter $((first + 3))([^0-9]|$)" 30
ok "and counts on without a gap or a repeat" consecutive "$(console vm2)"
fails "the restored guest did not boot again" \
  grep -aq '^cairn-guest: ready' "$(console vm2)"

# drop_caches makes the guest read its files from the disk again.
send vm2 'sync; echo 3 > /proc/sys/vm/drop_caches; echo "x=$(cat /data/x)= y=$(cat /data/y 2>/dev/null)="'
ok "the file written before the commit is there, the one after is not" \
  wait_console vm2 '^x=before-commit= y==' 30
run_cairn vm commit vm2 -m "after a lazy restore"
ok "the restored VM commits: $err" [ "$rc" -eq 0 ]
ok "that commit holds its kernel, as the first did" \
  test "$("$CAIRN" cat "$out" | grep '^volume kernel ')" = \
       "$("$CAIRN" cat "$commit" | grep '^volume kernel ')"

run_cairn vm restore "$commit" vm3 --eager --json
ok "vm restore --eager of the same commit as vm3: $err" [ "$rc" -eq 0 ]
ok "read all of RAM before QEMU started" grep -q '"lazy":false' <<< "$out"
first3=$(first_counter vm3 30)
ok "its counter resumes from the committed value too ($first3)" \
  test "${first3:-0}" -gt "${before:-0}" -a "${first3:-0}" -le $((after + 1))
done_testing
