#!/usr/bin/env bash
# A running guest is committed (stop, device state with x-ignore-shared,
# RAM file and disk copied aside, cont) and restored in a new QEMU from
# that commit: its counter goes on from the committed value without a
# reboot, a file written before the commit is there, a file written by the
# original guest after the commit is not, and the restored guest's disk,
# served by a new nbdkit, reads and writes.  The sequence is the one
# qemu-glue/README-flow.md documents.
. ./functions.sh

requires "$QEMU_SYSTEM"
requires "$NBDKIT"
requires debugfs
requires e2fsck
[ "$(id -u)" -eq 0 ] || skip_all "building the guest image needs root"

QEMU=$QEMU_SYSTEM
CAIRN_QMP="$abs_top_builddir/qemu-glue/cairn-qmp"
GUEST=${CAIRN_GUEST_DIR:-/var/tmp/cairn-guest}
. "$abs_top_srcdir/qemu-glue/guest/vm-lib.sh"

plan 19

# Every wait is bounded: a guest that hangs fails the test, not the suite.
BOOT_TIMEOUT=120

if "$abs_top_srcdir/qemu-glue/guest/build-guest.sh" "$GUEST" >"$TMP/build.log" 2>&1; then
  pass "guest image built (or found up to date) in $GUEST"
else
  fail "guest image build"; sed 's/^/# /' "$TMP/build.log"
  exit 1
fi

# start_nbdkit_file SOCKET FILE: plain nbdkit file plugin (the store's
# plugin comes later), stopped at exit.
start_nbdkit_file () {
  "$NBDKIT" --foreground --unix "$1" file "$2" >"$1.log" 2>&1 &
  local pid=$!
  on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
  retry 100 0.05 test -S "$1"
}

# qmp_exec SOCKET COMMAND [ARGS]: one QMP command, its reply discarded.
qmp_exec () { "$CAIRN_QMP" exec "$@" >/dev/null; }

# key_of OUTPUT KEY: the value of "KEY=value" in cairn-qmp's output.
key_of () { printf '%s\n' "$1" | sed -n "s/^$2=//p"; }

# --- the original VM
src=$TMP/src
mkdir "$src"
cp --sparse=always "$GUEST/root.img" "$src/disk.img"
start_nbdkit_file "$src/nbd.sock" "$src/disk.img"
vm_set_args "$src" "$GUEST" 256M "$src/ram" "$(vm_nbd_blockdev "$src/nbd.sock")"
vm_launch "$src"
on_exit "vm_quit '$src'"

if vm_wait_log "$src" '^cairn-guest: ready' "$BOOT_TIMEOUT" &&
   vm_wait_log "$src" 'cairn-counter 3([^0-9]|$)' 30; then
  pass "the guest boots from its NBD disk and counts"
else
  fail "the guest boots"
  sed 's/^/# /' "$src/console.log" "$src/qemu.err"
  exit 1
fi

vm_type "$src" 'echo before-commit > /data/x; sync; echo "wrote-$((40+2))"'
ok "a file written through the console before the commit" \
  vm_wait_log "$src" '^wrote-42' 30

# Stop first, so that the console log holds exactly what the guest printed
# before the commit; commit's own "stop" is then a no-op.
ok "stop" qmp_exec "$src/qmp.sock" stop
cp "$src/console.log" "$TMP/console-at-commit.log"
committed=$(vm_last_counter "$TMP/console-at-commit.log")
diag "counter at the commit: $committed"

if out=$("$CAIRN_QMP" commit "$src/qmp.sock" "$TMP/vmstate.bin" \
           "$src/ram" "$TMP/ram.commit" "$src/disk.img" "$TMP/disk.commit"); then
  pass "commit: device state saved, RAM and disk copied, cont"
else
  fail "commit"
fi
diag $out
bytes=$(key_of "$out" vmstate_bytes)
ok "the device state is small: x-ignore-shared left RAM out (${bytes:-?} bytes)" \
  test "${bytes:-0}" -gt 0 -a "${bytes:-0}" -lt 1048576
ok "the device state file holds the stream" \
  test "$(stat -c %s "$TMP/vmstate.bin")" = "${bytes:-x}"
ok "the RAM copy has the RAM's size" \
  test "$(stat -c %s "$TMP/ram.commit")" = "$(stat -c %s "$src/ram")"

ok "the original guest goes on counting after cont" \
  vm_wait_log "$src" "cairn-counter $((committed + 2))([^0-9]|$)" 30
vm_type "$src" 'echo after-commit > /data/x; sync; echo "wrote-$((50+5))"'
ok "and writes to its disk after the commit" vm_wait_log "$src" '^wrote-55' 30
vm_quit "$src"

# --- the restored VM: same machine, other paths, a working copy of the
# committed RAM (share=on writes to it) and disk, -incoming defer -S.
dst=$TMP/dst
mkdir "$dst"
cp --sparse=always "$TMP/ram.commit" "$dst/ram"
cp --sparse=always "$TMP/disk.commit" "$dst/disk.img"
start_nbdkit_file "$dst/nbd.sock" "$dst/disk.img"
vm_set_args "$dst" "$GUEST" 256M "$dst/ram" "$(vm_nbd_blockdev "$dst/nbd.sock")"
ok "a new QEMU waits for the incoming device state" \
  vm_launch "$dst" -incoming defer -S
on_exit "vm_quit '$dst'"

if out=$("$CAIRN_QMP" restore "$dst/qmp.sock" "$TMP/vmstate.bin"); then
  pass "restore: device state loaded, cont"
else
  fail "restore"; sed 's/^/# /' "$dst/qemu.err"
fi
diag $out

ok "the restored guest counts" \
  vm_wait_log "$dst" "cairn-counter $((committed + 3))([^0-9]|$)" 30
first=$(vm_counters "$dst/console.log" | head -1)
diag "first counter after the restore: $first"
fails "it did not boot again" grep -aq '^cairn-guest: ready' "$dst/console.log"
# Taken as one stream, the console before the commit and the console after
# the restore count without a gap or a repeat: the counter is the shell
# variable in the committed RAM.
consecutive () {
  vm_counters "$TMP/console-at-commit.log" "$dst/console.log" |
    awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'
}
ok "its counter resumes from the committed value ($committed, then ${first:-?})" \
  consecutive

# drop_caches makes the guest read /data/x from the disk again, through
# the new NBD connection.
vm_type "$dst" 'sync; echo 3 > /proc/sys/vm/drop_caches; echo "x=$(cat /data/x)="'
ok "the file written before the commit is there, read back from the disk" \
  vm_wait_log "$dst" '^x=before-commit=' 30
vm_type "$dst" 'echo restored > /data/y; sync; echo "wrote-$((60+6))"'
ok "the restored guest writes to its disk" vm_wait_log "$dst" '^wrote-66' 30
vm_quit "$dst"
# Neither QEMU is running any more: the journal of both disks can be
# replayed in place.
ext4_replay "$dst/disk.img" "$TMP/disk.commit"
y=$(ext4_cat "$dst/disk.img" /data/y)
x=$(ext4_cat "$TMP/disk.commit" /data/x)
ok "and the write reached the NBD server's file (/data/y: ${y:-none})" \
  test "$y" = restored
ok "the committed disk was not changed by the original guest's later write (/data/x: ${x:-none})" \
  test "$x" = before-commit

done_testing
