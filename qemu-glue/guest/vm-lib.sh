# vm-lib.sh: boot and drive the cairn test guest from bash (sourced).
#
# Used by tests/test-vm-*.sh and guest/measure-snapshot-save.sh, so that
# every script boots the guest with the same QEMU command line; that line
# is the one README-flow.md documents.  The caller sets:
#   QEMU       qemu-system-x86_64
#   CAIRN_QMP  the cairn-qmp program (built in qemu-glue/)
# Each VM lives in its own directory D: D/qmp.sock, D/console.sock,
# D/console.log (everything the guest printed on ttyS0), D/qemu.err,
# D/pid.  Functions return non-zero on failure and print nothing else;
# they are safe under "set -e".

# vm_set_args D GUEST RAM_SIZE RAM_FILE BLOCKDEV: fills the array vm_args
# with the QEMU command line for the guest built in GUEST, with RAM_SIZE
# of RAM in RAM_FILE (memory-backend-file, share=on; empty RAM_FILE: plain
# anonymous RAM) and the -blockdev BLOCKDEV (node-name must be disk0) as
# its root disk.
#
# What must match between the QEMU that saves device state and the one
# that loads it: the machine and its options, -m and the memory backend's
# id and size (not its path), -cpu, -smp, and the devices in the same
# order (virtio-mmio slots are assigned in order).  -kernel, -initrd and
# -append may differ (the kernel is already in RAM), the disk's backend
# and every socket path may differ.
vm_set_args () {
  local dir=$1 guest=$2 ram_size=$3 ram_file=$4 blockdev=$5
  vm_args=(
    -M "microvm,accel=tcg${ram_file:+,memory-backend=mem}"
    -cpu qemu64 -smp 1 -m "$ram_size"
    -nodefaults -no-user-config -display none -no-reboot
  )
  [ -z "$ram_file" ] || vm_args+=(
    -object "memory-backend-file,id=mem,size=$ram_size,mem-path=$ram_file,share=on"
  )
  vm_args+=(
    -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img"
    -append "$(cat "$guest/cmdline")"
    -blockdev "$blockdev"
    -device virtio-blk-device,drive=disk0
    -chardev "socket,id=con,path=$dir/console.sock,server=on,wait=off,logfile=$dir/console.log"
    -serial chardev:con
    -qmp "unix:$dir/qmp.sock,server=on,wait=off"
  )
}

# vm_nbd_blockdev SOCKET: the -blockdev of a disk served over NBD on a
# unix socket.
vm_nbd_blockdev () {
  echo "driver=nbd,server.type=unix,server.path=$1,node-name=disk0"
}

# vm_launch D [EXTRA-ARGS...]: starts QEMU with vm_args in the background
# and waits until its QMP socket answers.  Sets vm_pid.
vm_launch () {
  local dir=$1; shift
  rm -f "$dir/qmp.sock" "$dir/console.sock"
  "$QEMU" "${vm_args[@]}" "$@" </dev/null >"$dir/qemu.err" 2>&1 &
  vm_pid=$!
  echo "$vm_pid" > "$dir/pid"
  local i
  for i in $(seq 1 200); do
    [ -S "$dir/qmp.sock" ] && return 0
    kill -0 "$vm_pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# vm_wait_log D PATTERN SECONDS: waits until the console log holds a line
# matching the extended regular expression PATTERN.
vm_wait_log () {
  local dir=$1 pattern=$2 seconds=$3 i pid
  pid=$(cat "$dir/pid")
  for (( i = 0; i < seconds * 10; i++ )); do
    grep -aEq -- "$pattern" "$dir/console.log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# vm_type D TEXT: types TEXT and Enter on the guest's serial console.
vm_type () {
  "$CAIRN_QMP" -t 10 type "$1/console.sock" "$2"
}

# vm_counters FILE...: the counter values printed in FILEs, taken as one
# stream, one per line.  A counter line may follow a shell prompt on the
# same line and may be cut by the end of a file.
vm_counters () {
  cat "$@" | grep -aoE 'cairn-counter [0-9]+' | cut -d' ' -f2
}

# vm_last_counter FILE: the last counter value in FILE whose line is
# complete (the guest's tty ends lines with CR LF); a VM stopped in the
# middle of printing leaves a cut line that its next run completes.
vm_last_counter () {
  grep -aoE $'cairn-counter [0-9]+\r' "$1" | tail -1 | tr -dc '0-9'
}

# vm_quit D: asks QEMU to quit, kills it if it does not within 5 s.
vm_quit () {
  local dir=$1 pid i
  pid=$(cat "$dir/pid" 2>/dev/null) || return 0
  # QEMU may exit before it answers: no reply is no error here.
  "$CAIRN_QMP" -t 5 exec "$dir/qmp.sock" quit >/dev/null 2>&1 || :
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || :
  wait "$pid" 2>/dev/null || :
  rm -f "$dir/pid"
  return 0
}
