#!/usr/bin/env bash
# vm spare: QEMUs started ahead for the machine of a VM commit.  A restore
# of a commit of that machine takes one and says so; its guest resumes
# from the committed counter, reads its committed disk and writes to its
# branch (the spare's placeholder disk was swapped for the branch's), and
# commits; the restore started another spare in its place.  A spare
# brings an nbdkit, which becomes the VM's.  vm spare stop ends them and
# leaves no process or file; a restore without a spare starts its own
# QEMU; a spare whose nbdkit died is listed dead, not taken, and removed.
# Bad input is refused, and starts nothing.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"
requires debugfs
requires e2fsck

plan 36
new_store
ok "the guest boots" boot vm1 main
send vm1 'echo before > /data/x; sync; echo "wrote-$((40+2))"'
ok "it writes a file" wait_console vm1 '^wrote-42' 30
before=$(last_counter vm1)
commit=$("$CAIRN" vm commit vm1 -m "to restore" 2>/dev/null)
after=$(last_counter vm1)
ok "a commit" test -n "$commit"
"$CAIRN" vm stop vm1 2>/dev/null

run_cairn vm spare start "$commit"
ok "vm spare start: exit 0: $err" [ "$rc" -eq 0 ]
ready () { "$CAIRN" vm spare ls | grep -c ' ready '; }
ok "vm spare ls lists one ready spare" test "$(ready)" -eq 1
spare_pid=$(json_field "$("$CAIRN" vm spare ls --json)" pid)
ok "its QEMU runs (pid $spare_pid)" kill -0 "$spare_pid"
spare_nbd=$(json_field "$("$CAIRN" vm spare ls --json)" nbdkit_pid)
ok "its nbdkit runs (pid $spare_nbd)" kill -0 "${spare_nbd:-0}"

t0=$(date +%s%N)
run_cairn vm restore "$commit" vm2 --json
t1=$(date +%s%N)
ok "vm restore: exit 0: $err" [ "$rc" -eq 0 ]
at=$(json_field "$out" running_at_ms)
ok "the guest ran ($at) after the command started and before it ended" \
  awk -v a="${at:-0}" -v t0="$t0" -v t1="$t1" 'BEGIN { exit !(a >= t0 / 1e6 && a <= t1 / 1e6) }'
ok "it took the spare" grep -q '"spare":true' <<< "$out"
ok "vm2 runs in the spare's QEMU" \
  test "$(json_field "$("$CAIRN" vm ls --json)" qemu_pid)" = "$spare_pid"
ok "and is served by the spare's nbdkit" \
  test "$(json_field "$("$CAIRN" vm ls --json)" nbdkit_pid)" = "$spare_nbd"
first=$(first_counter vm2 30)
ok "its counter resumes from the committed value ($before..$after -> $first)" \
  test "${first:-0}" -gt "${before:-0}" -a "${first:-0}" -le $((after + 1))
send vm2 'sync; echo 3 > /proc/sys/vm/drop_caches; echo "x=$(cat /data/x)="; echo after > /data/y; sync; echo "wrote-$((50+5))"'
ok "it reads the committed disk" wait_console vm2 '^x=before=' 30
ok "and writes to its branch" wait_console vm2 '^wrote-55' 30
run_cairn vm commit vm2 -m "in a spare"
ok "vm commit of it: exit 0" [ "$rc" -eq 0 ]
"$CAIRN" export "$out" "$TMP/disk.img" 2>/dev/null
ext4_replay "$TMP/disk.img"
ok "that commit's disk holds what it wrote" \
  test "$(ext4_cat "$TMP/disk.img" /data/y)" = after

ok "a new spare took its place" test "$(ready)" -eq 1
new_pid=$(json_field "$("$CAIRN" vm spare ls --json)" pid)
ok "another QEMU ($new_pid)" test -n "$new_pid" -a "$new_pid" != "$spare_pid"
new_nbd=$(json_field "$("$CAIRN" vm spare ls --json)" nbdkit_pid)
ok "and another nbdkit ($new_nbd)" \
  test -n "$new_nbd" -a "$new_nbd" != "$spare_nbd" -a "$new_nbd" != 0

run_cairn vm spare stop
ok "vm spare stop: exit 0: $err" [ "$rc" -eq 0 ]
ok "no spare is listed" test -z "$("$CAIRN" vm spare ls | tail -n +2)"
ok "its QEMU ended" gone "$new_pid"
ok "its nbdkit ended" gone "$new_nbd"
ok "no spare directory is left" \
  test -z "$(ls "$STORE/run/spares" 2>/dev/null; ls -a "$CAIRN_VM_RAM_DIR"/*/ 2>/dev/null | grep spare)"

run_cairn vm restore "$commit" vm3 --json
ok "without a spare, vm restore starts its QEMU: $err" \
  bash -c "[ $rc -eq 0 ] && grep -q '\"spare\":false' <<< '$out'"
"$CAIRN" vm stop vm3 2>/dev/null

# A spare whose nbdkit died is of no use: listed dead, passed over by a
# restore, and cleaned up.
"$CAIRN" vm spare start "$commit" 2>/dev/null
dead_pid=$(json_field "$("$CAIRN" vm spare ls --json)" pid)
kill -9 "$(json_field "$("$CAIRN" vm spare ls --json)" nbdkit_pid)"
listed_dead () { "$CAIRN" vm spare ls | grep -q ' dead '; }
ok "a spare whose nbdkit was killed is listed dead" retry 50 0.1 listed_dead
run_cairn vm restore "$commit" vm4 --json
ok "a restore does not take it, and starts its own QEMU: $err" \
  bash -c "[ $rc -eq 0 ] && grep -q '\"spare\":false' <<< '$out'"
ok "and that spare is gone" test -z "$(ls "$STORE/run/spares" 2>/dev/null)"
ok "its QEMU ended" gone "$dead_pid"
"$CAIRN" vm stop vm4 2>/dev/null

# Bad input: one line, exit 1 (2 for usage), and no spare.
run_cairn vm spare start no-such-ref
ok "vm spare start of an unknown ref: exit 1, one line: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(printf '%s\n' \"\$0\" | wc -l) -eq 1 ]" "$err"
run_cairn vm spare start main~1
ok "of a commit that is not a VM commit: exit 1: $err" \
  bash -c "[ $rc -eq 1 ] && grep -q 'not a VM commit' <<< \"\$0\"" "$err"
run_cairn vm spare start "$commit" --count 0
ok "--count 0: usage error" [ "$rc" -eq 2 ]
run_cairn vm spare frobnicate
ok "an unknown verb: usage error" [ "$rc" -eq 2 ]
run_cairn vm spare ls extra
ok "vm spare ls with an argument: usage error" [ "$rc" -eq 2 ]
ok "none of that started a spare" \
  test -z "$("$CAIRN" vm spare ls | tail -n +2)"
done_testing
