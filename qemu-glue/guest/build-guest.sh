#!/bin/bash
# build-guest.sh OUTDIR: the small Linux guest that cairn's VM tests boot.
#
# Produces, from Debian packages only:
#   OUTDIR/vmlinuz      the Debian kernel (linux-image-amd64's current ABI)
#   OUTDIR/initrd.img   a busybox-static initramfs: loads the virtio and ext4
#                       modules in dependency order, mounts /dev/vda (ext4) as
#                       root and switch_roots to it
#   OUTDIR/root.img     a 256 MiB ext4 image made with mke2fs -d
#   OUTDIR/cmdline      the kernel command line to boot them with
#   OUTDIR/build.stamp  what was built, from what (the cache key)
#
# and prints where everything went and a QEMU command line that boots it.
#
# Choices:
#   - Packages come from the apt archive with "apt-get download" into a cache
#     directory (OUTDIR/cache, or $CAIRN_GUEST_CACHE), are unpacked with
#     dpkg-deb, and nothing is installed on the host.  Only the few files we
#     need are extracted from the 70 MB kernel package.
#   - Idempotent: build.stamp records the kernel and busybox package versions
#     and a hash of this script; when it matches and every output exists the
#     build is skipped.  Outputs are written to temporary names and renamed
#     into place, so an interrupted build never looks complete.
#   - The kernel package carries no modules.dep (depmod runs in its postinst),
#     so module dependencies are read from each module's own "depends=" field
#     and resolved here; the initramfs loads an explicit ordered list
#     (/etc/modules.order) with insmod, no modprobe.  ext4 and jbd2 also have
#     "softdep pre: crypto-crc32c" (metadata_csum), which depends= does not
#     show: crc32c_generic is loaded explicitly (crc32c-intel needs SSE4.2,
#     which TCG's default CPU lacks).
#   - Root is busybox-static with its applet links, and busybox init with an
#     inittab: rcS mounts proc/sys/dev/devpts, remounts / rw and prints the
#     boot marker "cairn-guest: ready"; /sbin/cairn-counter prints
#     "cairn-counter N" on the console once a second and writes N to
#     /var/counter; a root shell runs on ttyS0 (respawned if it exits), so a
#     host drives the guest by writing lines into the serial chardev and
#     reads the results from its log.  The counter restarts at 1 on every
#     boot: a restored VM that continues from N+1 resumed from its RAM, a
#     rebooted one would start again at 1 and print the boot marker again.
#   - Console output of commands interleaves with counter lines, and the tty
#     echoes what the host types: a host should make a command print a marker
#     that differs from the typed text, e.g. echo "got-$((6*7))".
#   - Concurrent runs on one OUTDIR serialise on OUTDIR/.lock (flock).
#   - The kernel command line (OUTDIR/cmdline) carries "tsc=unstable
#     tsc_early_khz=2000000".  Under TCG the guest's TSC is the host's and
#     microvm has no HPET or ACPI PM timer, so the kernel calibrates the
#     TSC against the PIT alone; when the host is busy that calibration
#     fails, and the kernel then waits for jiffies before the IO-APIC
#     routes the timer: the boot hangs for ever with nothing on the
#     console (seen in 5 boots of 8 with two other loads on 2 cores).
#     tsc_early_khz skips the calibration, tsc=unstable keeps the guest on
#     the tick-based refined-jiffies clocksource, which the kernel
#     switches to anyway once its watchdog sees the TCG TSC drift; time in
#     the guest then only moves while the VM runs, which also makes
#     restored VMs tick on smoothly.  (-icount also fixes the boot, at
#     twice the boot time.)
#   - If /dev/vda cannot be mounted (or "cairn.noroot" is on the kernel
#     command line) the initramfs says why and runs a shell on the console
#     instead of panicking, which is what you want when debugging a disk
#     served over NBD.
#   - The initramfs is gzip'd (every kernel config has RD_GZIP) and needs no
#     device nodes: it mounts devtmpfs first and takes its console from it.
#
# Needs root (mke2fs -d copies file owners, and the guest's files must be
# root's), apt-get/apt-cache with a reachable Debian archive, dpkg-deb,
# mke2fs (e2fsprogs), gzip, flock.  Environment:
#   CAIRN_GUEST_CACHE   where downloaded .deb files are kept (OUTDIR/cache)
#   CAIRN_GUEST_KERNEL  kernel package (default: what linux-image-amd64 needs)
#   CAIRN_GUEST_ROOT_SIZE  size of root.img for mke2fs (256M)

set -euo pipefail

die () { echo "build-guest.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || { echo "usage: build-guest.sh OUTDIR" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "must run as root (mke2fs -d keeps file owners)"
for tool in apt-get apt-cache dpkg-deb mke2fs gzip sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

outdir=$1
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cache=${CAIRN_GUEST_CACHE:-$outdir/cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
root_size=${CAIRN_GUEST_ROOT_SIZE:-256M}

# Tests running in parallel may all ask for the same OUTDIR: one builds,
# the others wait and then find it up to date.
exec 9>"$outdir/.lock"
flock 9

# The modules the guest needs, each after everything it depends on once
# depends= is resolved (see module_closure).
wanted_modules="virtio_ring virtio virtio_mmio virtio_blk crc32c_generic ext4"

# candidate_version PACKAGE: the version apt would download.
candidate_version () {
  apt-cache show --no-all-versions "$1" 2>/dev/null |
    awk '/^Version:/ { print $2; exit }'
}

kernel_pkg=${CAIRN_GUEST_KERNEL:-$(apt-cache depends linux-image-amd64 2>/dev/null |
  awk '/Depends: linux-image-[0-9]/ { print $2; exit }')}
[ -n "$kernel_pkg" ] ||
  die "cannot find the kernel package linux-image-amd64 depends on (apt-get update?)"
kernel_ver=$(candidate_version "$kernel_pkg")
busybox_ver=$(candidate_version busybox-static)
[ -n "$kernel_ver" ] || die "apt knows no version of $kernel_pkg"
[ -n "$busybox_ver" ] || die "apt knows no version of busybox-static"
kver=${kernel_pkg#linux-image-}          # the uname -r, e.g. 6.1.0-56-amd64

script_hash=$(sha256sum "$0" | cut -c1-16)
stamp="kernel=$kernel_pkg $kernel_ver busybox=$busybox_ver root=$root_size builder=$script_hash"

if [ -f "$outdir/build.stamp" ] && [ "$(cat "$outdir/build.stamp")" = "$stamp" ] &&
   [ -s "$outdir/vmlinuz" ] && [ -s "$outdir/initrd.img" ] &&
   [ -s "$outdir/root.img" ] && [ -s "$outdir/cmdline" ]; then
  echo "build-guest.sh: $outdir is up to date ($kernel_pkg $kernel_ver)"
  up_to_date=1
else
  up_to_date=0
fi

# fetch PACKAGE VERSION: the path of PACKAGE's .deb in the cache,
# downloading it first if needed.
fetch () {
  local pkg=$1 ver=$2 deb
  deb="$cache/${pkg}_${ver//:/%3a}_amd64.deb"
  if [ ! -s "$deb" ]; then
    # apt's sandbox user cannot write into a root-owned cache: stay root.
    (cd "$cache" && apt-get -q -o APT::Sandbox::User=root download "$pkg=$ver") >&2 ||
      die "apt-get download $pkg=$ver failed"
  fi
  [ -s "$deb" ] || die "apt-get download did not produce $deb"
  echo "$deb"
}

# module_closure DIR NAME...: NAME and all it depends on, dependencies
# first, each once, as paths relative to DIR (lib/modules/KVER/kernel).
declare -A module_path=()
declare -A module_done=()
module_order=()
module_visit () {
  local name=$1 path deps dep
  [ -z "${module_done[$name]:-}" ] || return 0
  path=${module_path[$name]:-}
  [ -n "$path" ] || die "module $name is not in $kernel_pkg"
  module_done[$name]=1
  deps=$(tr '\0' '\n' < "$modroot/$path" | sed -n 's/^depends=//p' | head -1)
  for dep in ${deps//,/ }; do
    module_visit "${dep//-/_}"
  done
  module_order+=("$path")
}

build () {
  local work kdeb bdeb
  kdeb=$(fetch "$kernel_pkg" "$kernel_ver")
  bdeb=$(fetch busybox-static "$busybox_ver")

  work=$(mktemp -d "$outdir/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT

  # Only the kernel image and the module tree: the rest of the package
  # (firmware lists, docs) is not needed.
  mkdir "$work/kernel"
  dpkg-deb --fsys-tarfile "$kdeb" |
    tar -x -C "$work/kernel" --wildcards "./boot/vmlinuz-$kver" "./lib/modules/$kver/kernel/*"
  mkdir "$work/busybox"
  dpkg-deb -x "$bdeb" "$work/busybox"
  local busybox=$work/busybox/bin/busybox
  [ -x "$busybox" ] || busybox=$work/busybox/usr/bin/busybox
  [ -x "$busybox" ] || die "no busybox binary in $bdeb"

  modroot=$work/kernel/lib/modules/$kver/kernel
  local ko name
  while IFS= read -r ko; do
    name=${ko##*/}; name=${name%.ko}; name=${name//-/_}
    module_path[$name]=${ko#$modroot/}
  done < <(find "$modroot" -name '*.ko')
  for name in $wanted_modules; do
    module_visit "$name"
  done

  # --- initramfs
  local ird=$work/initrd
  mkdir -p "$ird"/{bin,dev,proc,sys,newroot,etc,lib/modules}
  cp "$busybox" "$ird/bin/busybox"
  ln -s busybox "$ird/bin/sh"
  : > "$ird/etc/modules.order"
  for ko in "${module_order[@]}"; do
    cp "$modroot/$ko" "$ird/lib/modules/"
    echo "${ko##*/}" >> "$ird/etc/modules.order"
  done
  cat > "$ird/init" <<'INIT'
#!/bin/sh
# cairn guest initramfs: load modules, mount /dev/vda, switch_root.
export PATH=/bin
busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys

rescue () {
  echo "cairn-initrd: $*; starting a shell (exit to retry switch_root)"
  busybox setsid busybox cttyhack busybox sh
}

while read -r ko; do
  busybox insmod "/lib/modules/$ko" || echo "cairn-initrd: insmod $ko failed"
done < /etc/modules.order

root=/dev/vda
noroot=
for arg in $(busybox cat /proc/cmdline); do
  case $arg in
    root=/dev/*) root=${arg#root=} ;;
    cairn.noroot) noroot=1 ;;
  esac
done

[ -z "$noroot" ] || rescue "cairn.noroot given"
# virtio-mmio devices probe asynchronously: wait up to 10 s for the disk.
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do busybox usleep 100000; i=$((i+1)); done
until busybox mount -t ext4 -o rw "$root" /newroot; do
  rescue "cannot mount $root"
done
busybox umount /proc /sys
busybox mount --move /dev /newroot/dev
exec busybox switch_root /newroot /sbin/init
INIT
  chmod 755 "$ird/init"
  (cd "$ird" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc 2>/dev/null) |
    gzip -9 > "$work/initrd.img"

  # --- root file system
  local rfs=$work/root
  mkdir -p "$rfs"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,proc,sys,dev,tmp,root,var,data,mnt}
  chmod 1777 "$rfs/tmp"
  cp "$busybox" "$rfs/bin/busybox"
  local applet
  for applet in $("$busybox" --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$rfs/$applet"
  done
  cat > "$rfs/etc/inittab" <<'TAB'
::sysinit:/etc/init.d/rcS
::respawn:/sbin/cairn-counter
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
TAB
  cat > "$rfs/etc/init.d/rcS" <<'RCS'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q "^devtmpfs /dev " /proc/mounts || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -o remount,rw /
hostname cairn-guest
echo "cairn-guest: ready, kernel $(uname -r), root $(awk '$2 == "/" { print $1 }' /proc/mounts | tail -1)"
RCS
  cat > "$rfs/sbin/cairn-counter" <<'CNT'
#!/bin/sh
# Ticks once a second: to the console and to a file on the disk.
n=0
while :; do
  n=$((n + 1))
  echo "cairn-counter $n"
  echo "$n" > /var/counter
  sleep 1
done
CNT
  cat > "$rfs/etc/profile" <<'PRO'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PS1='cairn# '
PRO
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rfs/etc/passwd"
  printf 'root:x:0:\n' > "$rfs/etc/group"
  echo cairn-guest > "$rfs/etc/hostname"
  chmod 755 "$rfs/etc/init.d/rcS" "$rfs/sbin/cairn-counter"
  chown -R 0:0 "$rfs"
  mke2fs -q -t ext4 -L cairn-root -d "$rfs" "$work/root.img" "$root_size" >/dev/null ||
    die "mke2fs failed"

  cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
  echo "console=ttyS0 root=/dev/vda rw quiet panic=-1 tsc=unstable tsc_early_khz=2000000" > "$work/cmdline"

  rm -f "$outdir/build.stamp"
  local f
  for f in vmlinuz initrd.img root.img cmdline; do
    mv -f "$work/$f" "$outdir/$f"
  done
  echo "$stamp" > "$outdir/build.stamp.tmp"
  mv -f "$outdir/build.stamp.tmp" "$outdir/build.stamp"
  rm -rf "$work"
  trap - EXIT
  echo "build-guest.sh: built $kernel_pkg $kernel_ver, busybox-static $busybox_ver"
  echo "build-guest.sh: modules, in load order: ${module_order[*]##*/}"
}

[ "$up_to_date" -eq 1 ] || build

cat <<MSG
kernel      $outdir/vmlinuz
initramfs   $outdir/initrd.img
root disk   $outdir/root.img ($root_size ext4, /dev/vda in the guest)
cmdline     $outdir/cmdline: $(cat "$outdir/cmdline")
deb cache   $cache
boot it with:
  qemu-system-x86_64 -M microvm,accel=tcg -m 256M -nodefaults -no-user-config \\
    -display none -no-reboot -kernel $outdir/vmlinuz -initrd $outdir/initrd.img \\
    -append "\$(cat $outdir/cmdline)" \\
    -drive id=root,file=$outdir/root.img,format=raw,if=none \\
    -device virtio-blk-device,drive=root -serial stdio
MSG
