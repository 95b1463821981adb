#!/usr/bin/env bash
# vm branch forks a running VM: it is committed and the commit restored as
# a second VM on a new branch.  Both run on independently: each writes a
# file of its own and is committed, and the disk of each commit holds its
# own file and not the other's.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"
requires debugfs
requires e2fsck

plan 13
new_store
ok "the guest boots" boot vm1 main
send vm1 'echo shared > /data/shared; sync; echo "wrote-$((30+3))"'
ok "a file written before the fork" wait_console vm1 '^wrote-33' 30

at_fork=$(last_counter vm1)
run_cairn vm branch vm1 vm2
ok "vm branch vm1 vm2: $err" [ "$rc" -eq 0 ]
fork=$out
after_fork=$(last_counter vm1)
ok "it prints the commit it forked at" bash -c "[[ '$fork' =~ ^[0-9a-f]{64}$ ]]"
run_cairn vm ls
ok "both VMs run, vm2 on its own branch from the fork" \
  bash -c "grep -Eq '^vm1 +running +main +${fork:0:12}' <<< \"$out\" &&
           grep -Eq '^vm2 +running +vm2 +${fork:0:12}' <<< \"$out\""
ok "the new branch vm2 starts at the fork" \
  test "$("$CAIRN" log vm2 --oneline -n 1 | cut -c1-12)" = "${fork:0:12}"

first=$(first_counter vm2 30)
diag "vm1's counter before the fork ${at_fork}, after it ${after_fork}; vm2's first ${first}"
ok "vm2 continues vm1's count from the fork" \
  test "${first:-0}" -gt "${at_fork:-0}" -a "${first:-0}" -le $((after_fork + 1))

# Diverge.
send vm1 'echo one > /data/only-vm1; sync; echo "vm1-$((10+1))"'
send vm2 'echo two > /data/only-vm2; sync; echo "vm2-$((20+2))"'
ok "vm1 writes its file" wait_console vm1 '^vm1-11' 30
ok "vm2 writes its file" wait_console vm2 '^vm2-22' 30
c1=$("$CAIRN" vm commit vm1 -m "vm1's file" 2>/dev/null)
c2=$("$CAIRN" vm commit vm2 -m "vm2's file" 2>/dev/null)
ok "both are committed" test -n "$c1" -a -n "$c2"

"$CAIRN" export "$c1" "$TMP/1.img" && "$CAIRN" export "$c2" "$TMP/2.img"
ext4_replay "$TMP/1.img" "$TMP/2.img"
ok "vm1's commit holds its file, and the one from before the fork" \
  test "$(ext4_cat "$TMP/1.img" /data/only-vm1)/$(ext4_cat "$TMP/1.img" /data/shared)" = one/shared
ok "vm2's commit holds its file, and the one from before the fork" \
  test "$(ext4_cat "$TMP/2.img" /data/only-vm2)/$(ext4_cat "$TMP/2.img" /data/shared)" = two/shared
ok "and neither holds the other's" \
  test -z "$(ext4_cat "$TMP/1.img" /data/only-vm2)$(ext4_cat "$TMP/2.img" /data/only-vm1)"
done_testing
