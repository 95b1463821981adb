#!/usr/bin/env bash
# QEMU killed in the middle of vm commit -- while the guest is paused,
# before and after its device state is saved -- makes the commit fail with
# a clear error and no commit: the branch keeps its last commit, every
# commit still exports, the branch takes a plain commit, vm stop cleans up,
# and the VM booted again on the branch commits and restores.
outer_plugin=${CAIRN_PLUGIN:-}
. ./functions.sh
. "$abs_top_srcdir/tests/vm-functions.sh"
requires debugfs

plan 18
new_store
head_of () { "$CAIRN" log "$1" --oneline -n 1 | cut -d' ' -f1; }

# kill_during POINT: boots vm1, commits it once, then commits it again
# with QEMU killed -9 at POINT of the commit (the commit stalls there for
# the test: CAIRN_VM_TEST_STALL).
kill_during () {
  local point=$1 good qemu err_file=$TMP/commit-$1.err
  ok "[$point] the guest boots" boot vm1 main
  good=$("$CAIRN" vm commit vm1 -m "before the kill" 2>/dev/null)
  qemu=$("$CAIRN" vm ls --json | sed -n 's/^ *"qemu_pid":\([0-9]*\),$/\1/p')
  CAIRN_VM_TEST_STALL=$point:5000 "$CAIRN" vm commit vm1 -m killed \
    >"$TMP/commit.out" 2>"$err_file" &
  local commit_pid=$!
  retry 300 0.1 test -e "$STORE/run/vms/vm1/test-stall-$point"
  kill -9 "$qemu"
  wait "$commit_pid"
  ok "[$point] vm commit fails (exit $?) with one line: $(cat "$err_file")" \
    bash -c "[ \$(wc -l < '$err_file') -eq 1 ] && grep -q 'exited' '$err_file'"
  ok "[$point] no commit was made: main is still at the last one" \
    test "$(head_of main)" = "${good:0:12}"
  run_cairn vm ls
  ok "[$point] vm ls shows the VM dead" \
    bash -c "grep -Eq '^vm1 +dead +main' <<< \"$out\""
  ok "[$point] the last commit exports, and its disk reads" \
    bash -c "'$CAIRN' export $good:disk '$TMP/disk.img' 2>/dev/null &&
             [ \"\$(debugfs -R 'cat /etc/hostname' '$TMP/disk.img' 2>/dev/null)\" = cairn-guest ]"
  run_cairn vm stop vm1
  ok "[$point] vm stop cleans up: $err" \
    bash -c "[ $rc -eq 0 ] && ! [ -e '$STORE/run/vms/vm1' ]"
  ok "[$point] the branch takes a plain commit" \
    bash -c "'$CAIRN' commit main -m 'after the kill' >/dev/null 2>&1"
}

kill_during paused
kill_during saved

ok "the VM boots again on the branch" boot vm1 main
send vm1 'echo again > /data/again; sync; echo "wrote-$((70+7))"'
wait_console vm1 '^wrote-77' 30
run_cairn vm commit vm1 -m "after all that"
ok "and vm commit works: $err" [ "$rc" -eq 0 ]
last=$out
"$CAIRN" vm stop vm1 2>/dev/null
ok "its commit restores" \
  bash -c "'$CAIRN' vm restore $last vm2 2>/dev/null"
send vm2 'sync; echo 3 > /proc/sys/vm/drop_caches; echo "again=$(cat /data/again)="'
ok "with the file written before it" wait_console vm2 '^again=again=' 30
done_testing
