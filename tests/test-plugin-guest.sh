#!/usr/bin/env bash
# test-plugin-guest: a QEMU microvm guest (TCG) boots with its disk on a
# branch served by nbdkit, writes a file and syncs; the next commit,
# exported and loop-mounted read-only, holds the file.
#
# The guest is $CAIRN_GUEST_DIR (vmlinuz, initrd.img, root.img and
# cmdline from qemu-glue/guest/build-guest.sh: root.img becomes the disk,
# a root shell runs on the serial console) when it is set.  Otherwise the
# test builds a smaller one with the same recipe and caches it in
# ${XDG_CACHE_HOME:-/var/tmp}/cairn-guest-test: the Debian kernel
# (apt-get download, dpkg-deb), and a busybox-static initramfs that loads
# virtio_ring, virtio, virtio_mmio, virtio_blk and ext4 with what they
# depend on, then runs a root shell on the console; the disk is an empty
# ext4 file system.  Either way the test types a command into the serial
# console and waits for the marker it prints.
. ./functions.sh
requires "$NBDKIT"
requires "$QEMU_SYSTEM"
[ "$(id -u)" = 0 ] || skip_all "loop-mounting the exported disk needs root"
plan 6

GUEST=${CAIRN_GUEST_DIR:-}
# microvm under TCG has no HPET or PM timer to calibrate the TSC against,
# and the kernel then waits forever: tell it the frequency instead.
CLOCK=tsc_early_khz=2000000
TOKEN="cairn-guest-test-$$-$RANDOM"

# build_guest DIR: the minimal guest (vmlinuz, initrd.img) in DIR, unless
# DIR already has it for the kernel apt would download now.
build_guest () {
  local dir=$1 kpkg kver ver work mods m deps
  mkdir -p "$dir/cache"
  exec 9>"$dir/.lock"
  flock 9
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$kpkg" ] || { echo "no kernel package known to apt"; return 1; }
  kver=${kpkg#linux-image-}
  ver=$(apt-cache show --no-all-versions "$kpkg" | awk '/^Version:/ { print $2 }')
  if [ "$(cat "$dir/stamp" 2>/dev/null)" = "$kpkg $ver" ] &&
     [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then
    return 0
  fi
  (cd "$dir/cache" &&
   { ls ./"${kpkg}"_*.deb >/dev/null 2>&1 ||
     apt-get -q -o APT::Sandbox::User=root download "$kpkg" "busybox-static"; }) \
    >&2 || return 1
  [ -n "$(ls "$dir"/cache/busybox-static_*.deb 2>/dev/null)" ] ||
    (cd "$dir/cache" && apt-get -q -o APT::Sandbox::User=root download busybox-static) >&2 ||
    return 1
  work=$(mktemp -d "$dir/.build.XXXXXX")
  dpkg-deb --fsys-tarfile "$dir"/cache/"${kpkg}"_*.deb |
    tar -x -C "$work" "./boot/vmlinuz-$kver" \
      --wildcards "./lib/modules/$kver/kernel/*" || return 1
  dpkg-deb -x "$dir"/cache/busybox-static_*.deb "$work/bb" || return 1
  mkdir -p "$work/ird"/{bin,dev,proc,sys,mnt,lib}
  cp "$work/bb/bin/busybox" "$work/ird/bin/busybox"
  ln -s busybox "$work/ird/bin/sh"
  # Each wanted module after the modules it depends on (depends=).
  mods=()
  add_module () {
    local name=${1//-/_} ko
    for m in "${mods[@]}"; do [ "$(basename "$m" .ko)" = "$name" ] && return 0; done
    ko=$(find "$work/lib/modules/$kver/kernel" -name "$name.ko" -o \
           -name "${name//_/-}.ko" | head -1)
    [ -n "$ko" ] || { echo "no module $name"; return 1; }
    deps=$(modinfo -F depends "$ko")
    for m in ${deps//,/ }; do add_module "$m" || return 1; done
    mods+=("$ko")
  }
  for m in virtio_ring virtio virtio_mmio virtio_blk crc32c_generic ext4; do
    add_module "$m" || return 1
  done
  : > "$work/ird/lib/order"
  for m in "${mods[@]}"; do
    cp "$m" "$work/ird/lib/"
    basename "$m" >> "$work/ird/lib/order"
  done
  cat > "$work/ird/init" <<'EOF'
#!/bin/sh
export PATH=/bin
busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
busybox --install -s /bin
while read -r ko; do insmod "/lib/$ko"; done < /lib/order
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do usleep 100000; i=$((i+1)); done
echo "cairn-guest: ready"
while :; do setsid cttyhack sh; done
EOF
  chmod 755 "$work/ird/init"
  (cd "$work/ird" && find . | LC_ALL=C sort | cpio -o -H newc 2>/dev/null) |
    gzip -9 > "$work/initrd.img"
  mv "$work/boot/vmlinuz-$kver" "$dir/vmlinuz"
  mv "$work/initrd.img" "$dir/initrd.img"
  echo "$kpkg $ver" > "$dir/stamp"
  rm -rf "$work"
}

if [ -n "$GUEST" ]; then
  KERNEL=$GUEST/vmlinuz INITRD=$GUEST/initrd.img DISK=$GUEST/root.img
  APPEND="$(cat "$GUEST/cmdline") $CLOCK"
  # The disk is the root file system, mounted at /: freeze it after the
  # sync so that the commit finds it clean.
  COMMAND="echo $TOKEN > /cairn-hello.txt && sync && fsfreeze --freeze / && echo done-\$((6*7))"
else
  GUEST=${XDG_CACHE_HOME:-/var/tmp}/cairn-guest-test
  requires apt-get
  requires dpkg-deb
  requires modinfo
  if ! build_guest "$GUEST" >"$TMP/build.log" 2>&1; then
    sed 's/^/# /' "$TMP/build.log"
    fail "the guest is built"
    exit 1
  fi
  KERNEL=$GUEST/vmlinuz INITRD=$GUEST/initrd.img DISK=$TMP/disk.img
  APPEND="console=ttyS0 quiet panic=-1 $CLOCK"
  truncate -s 64M "$DISK"
  mkfs.ext4 -q -L cairn-test "$DISK"
  COMMAND="mount -t ext4 /dev/vda /mnt && echo $TOKEN > /mnt/cairn-hello.txt && sync && umount /mnt && echo done-\$((6*7))"
fi
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
