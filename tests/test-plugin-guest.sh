#!/usr/bin/env bash
# test-plugin-guest: a QEMU microvm guest (TCG) boots with its disk on a
# branch served by nbdkit, writes a file and syncs; the next commit,
# exported and loop-mounted read-only, holds the file.
#
# The guest is the one qemu-glue/guest/build-guest.sh builds (once, in
# $CAIRN_GUEST_DIR, default /var/tmp/cairn-guest, shared with the cairn vm
# tests): the Debian kernel, a busybox initramfs, and root.img, which
# becomes the disk.  QEMU runs here by hand, without cairn vm, the way
# any VM host would attach a branch.  The test types a command into the
# serial console and waits for the marker it prints.
. ./functions.sh
requires "$NBDKIT"
requires "$QEMU_SYSTEM"
[ "$(id -u)" = 0 ] || skip_all "building the guest and loop-mounting its disk need root"
plan 6

GUEST=${CAIRN_GUEST_DIR:-/var/tmp/cairn-guest}
TOKEN="cairn-guest-test-$$-$RANDOM"
if ! "$abs_top_srcdir/qemu-glue/guest/build-guest.sh" "$GUEST" \
     >"$TMP/build.log" 2>&1; then
  sed 's/^/# /' "$TMP/build.log"
  fail "the guest is built"
  exit 1
fi
KERNEL=$GUEST/vmlinuz INITRD=$GUEST/initrd.img DISK=$GUEST/root.img
APPEND=$(cat "$GUEST/cmdline")
# The disk is the root file system, mounted at /: freeze it after the
# sync so that the commit finds it clean.
COMMAND="echo $TOKEN > /cairn-hello.txt && sync && fsfreeze --freeze / && echo done-\$((6*7))"
pass "the guest is at hand ($GUEST)"

"$CAIRN" init >/dev/null 2>&1
first=$("$CAIRN" import guest "$DISK" 2>/dev/null)
start_nbdkit "$TMP/nbd.sock" store="$STORE" || { fail "nbdkit starts"; exit 1; }

"$QEMU_SYSTEM" -M microvm,accel=tcg -m 256M -nodefaults -no-user-config \
  -display none -no-reboot \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
  -drive "file=nbd+unix:///guest?socket=$TMP/nbd.sock,format=raw,if=none,id=d" \
  -device virtio-blk-device,drive=d \
  -chardev "socket,id=ser,path=$TMP/serial.sock,server=on,wait=off,logfile=$TMP/serial.log" \
  -serial chardev:ser >"$TMP/qemu.out" 2>&1 &
qemu_pid=$!
on_exit "kill $qemu_pid 2>/dev/null; wait $qemu_pid 2>/dev/null"

# Types COMMAND into the console once the guest is ready; succeeds when
# the marker it prints comes back.  120 s is a hang guard, not a target.
/usr/bin/python3 - "$TMP/serial.sock" "$COMMAND" <<'EOF'
import socket, sys, time
path, command = sys.argv[1], sys.argv[2]
deadline = time.time() + 120
s = socket.socket(socket.AF_UNIX)
while True:
    try:
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("no serial socket")
        time.sleep(0.1)
s.settimeout(1)
seen, sent = b"", False
while time.time() < deadline:
    try:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("the console closed")
        seen += chunk
    except socket.timeout:
        pass
    if not sent and b"cairn-guest: ready" in seen:
        time.sleep(1)           # let the shell start
        s.sendall(b"\n" + command.encode() + b"\n")
        sent = True
    if b"done-42" in seen:
        sys.exit(0)
sys.exit("no marker from the guest")
EOF
marker=$?
ok "the guest booted from the branch and wrote its file" test $marker = 0
[ $marker = 0 ] || grep -av '^cairn-counter' "$TMP/serial.log" | tail -40 | sed 's/^/# /'

id=$("$CAIRN" commit guest -m "after the guest wrote" 2>"$TMP/commit.err")
ok "cairn commit reaches nbdkit while the guest runs" test -n "$id"
ok "and the guest is still running" kill -0 "$qemu_pid"
kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null

mkdir "$TMP/mnt"
"$CAIRN" export "$id" "$TMP/commit.img" 2>/dev/null
mount -o loop,ro "$TMP/commit.img" "$TMP/mnt"
ok "the commit, exported and loop-mounted read-only, holds the file" \
  test "$(cat "$TMP/mnt/cairn-hello.txt" 2>/dev/null)" = "$TOKEN"
umount "$TMP/mnt"

"$CAIRN" export "$first" "$TMP/first.img" 2>/dev/null
mount -o loop,ro "$TMP/first.img" "$TMP/mnt"
ok "the commit before the guest ran does not" test ! -e "$TMP/mnt/cairn-hello.txt"
umount "$TMP/mnt"

done_testing
