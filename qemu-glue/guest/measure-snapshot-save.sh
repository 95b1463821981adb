#!/bin/bash
# measure-snapshot-save.sh: the peer baseline for "cairn vm commit" —
# QEMU's own internal snapshots of the same guest.
#
# For each RAM size, boots the test guest (build-guest.sh) with its disk as
# a qcow2 file and ordinary RAM, lets it run, then times the QMP jobs
#   snapshot-save  job-id, tag, vmstate=disk0, devices=[disk0]
#   snapshot-load  (same), after the guest ran on for a while
# and then, unless --no-cairn, cairn's own flow of README-flow.md on the
# same guest (RAM in a share=on file, device state with x-ignore-shared,
# RAM file and disk copied aside while stopped, restore in a new QEMU).
# Prints one line of key=value pairs per flow and size:
#   flow=snapshot-save ram=256M save_ms= save_pause_ms= load_ms=
#     load_pause_ms= vmstate_bytes= counter_ok=yes|no
#   flow=cairn ram=256M pause_ms= vmstate_ms= copy_ms= restore_ms=
#     vmstate_bytes= ram_allocated_bytes= counter_ok=yes|no
# save_ms/load_ms run from sending the command to the job's "concluded";
# save_pause_ms/load_pause_ms are the time the guest was stopped, from
# QEMU's own STOP and RESUME event timestamps.  cairn's pause_ms runs from
# sending "stop" to the reply to "cont", and includes copying the RAM file
# (copy_ms; a store would capture it differently); restore_ms is loading
# the device state and "cont", after QEMU started.  vmstate_bytes is
# what QEMU wrote: the whole RAM image for snapshot-save (vm-state-size as
# qemu-img reports it), device state only for cairn.  counter_ok says the
# restored guest went on counting from where it was saved instead of
# booting again.  Times depend heavily on what else runs on the host.
#
# With --rounds N, QEMU's snapshots are measured N times on the same
# booted guest (save, let it run 3 s, load, delete), one line per round
# with round=I; bench/bench-vm.sh takes the medians.
#
# Usage: measure-snapshot-save.sh [--ram SIZE]... [--fill MIB] [--guest DIR]
#                                 [--rounds N] [--no-cairn]
#   --ram SIZE   RAM sizes to measure (default: 256M and 1G)
#   --rounds N   snapshot-save / snapshot-load rounds per size (default 1)
#   --fill MIB   before measuring, make the guest write MIB of random data
#                into a tmpfs, so that RAM is not mostly zero (default 0)
#   --guest DIR  where build-guest.sh keeps the guest (/var/tmp/cairn-guest)
#   --no-cairn   only QEMU's snapshots
# Environment: QEMU (qemu-system-x86_64), QEMU_IMG (qemu-img), CAIRN_QMP
# (default: cairn-qmp built next to this folder, else on PATH).
# Needs root the first time (build-guest.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_IMG=${QEMU_IMG:-qemu-img}
if [ -z "${CAIRN_QMP:-}" ]; then
  if [ -x "$here/../cairn-qmp" ]; then CAIRN_QMP=$here/../cairn-qmp
  else CAIRN_QMP=cairn-qmp; fi
fi
guest=/var/tmp/cairn-guest
fill=0
cairn=1
rounds=1
sizes=()
while [ $# -gt 0 ]; do
  case $1 in
    --ram) sizes+=("$2"); shift 2 ;;
    --fill) fill=$2; shift 2 ;;
    --guest) guest=$2; shift 2 ;;
    --no-cairn) cairn=0; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; $d'; exit 0 ;;
    *) echo "measure-snapshot-save.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(256M 1G)

. "$here/vm-lib.sh"

die () { echo "measure-snapshot-save.sh: $*" >&2; exit 1; }

"$here/build-guest.sh" "$guest" >/dev/null || die "cannot build the guest"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-snapshot.XXXXXX")
cleanup () {
  local d
  for d in "$work"/*/; do vm_quit "$d" || :; done
  rm -rf "$work"
}
trap cleanup EXIT

# value KEY OUTPUT: the value of KEY=value in cairn-qmp's output.
value () { printf '%s\n' "$2" | sed -n "s/^$1=//p"; }

# boot D RAM RAM_FILE BLOCKDEV: boots the guest and lets it run a little
# (and fill its RAM if asked).
boot () {
  vm_set_args "$1" "$guest" "$2" "$3" "$4"
  vm_launch "$1" || die "QEMU did not start: $(cat "$1/qemu.err")"
  vm_wait_log "$1" '^cairn-guest: ready' 300 || die "the guest did not boot"
  vm_wait_log "$1" 'cairn-counter 3([^0-9]|$)' 60 || die "the guest does not count"
  if [ "$fill" -gt 0 ]; then
    vm_type "$1" "mount -t tmpfs -o size=${fill}m tmpfs /mnt && dd if=/dev/urandom of=/mnt/fill bs=1M count=$fill 2>/dev/null; echo \"filled-\$((1+$fill))\""
    vm_wait_log "$1" "^filled-$((1 + fill))" 900 || die "the guest did not fill its RAM"
  fi
}

# first_counter_after D LOG-BEFORE: the first counter the guest printed
# after its console log was LOG-BEFORE (waits up to 10 s for it).
first_counter_after () {
  local before i first
  before=$(vm_counters "$2" | wc -l)
  for (( i = 0; i < 100; i++ )); do
    first=$(vm_counters "$1/console.log" | tail -n +$((before + 1)) | head -1)
    [ -z "$first" ] || break
    sleep 0.1
  done
  echo "$first"
}

# counter_ok FIRST BEFORE AFTER: whether FIRST, the first counter a
# restored guest printed, continues the saved one, which lies between
# BEFORE and AFTER, the last counters printed before and after the save.
counter_ok () {
  [ "${1:-0}" -gt "$2" ] && [ "${1:-0}" -le $(($3 + 1)) ] && echo yes || echo no
}

# QEMU's internal snapshot: everything in the qcow2, RAM in the stream.
measure_snapshot () {
  local ram=$1 d=$work/snapshot save load before after vm_size first round tag
  mkdir "$d"
  "$QEMU_IMG" convert -O qcow2 "$guest/root.img" "$d/disk.qcow2"
  boot "$d" "$ram" "" \
    "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$d/disk.qcow2"
  for (( round = 1; round <= rounds; round++ )); do
    tag=cairn-snap-$round
    before=$(vm_last_counter "$d/console.log")
    save=$("$CAIRN_QMP" -t 600 snapshot-save "$d/qmp.sock" "$tag" disk0) ||
      die "snapshot-save failed"
    after=$(vm_last_counter "$d/console.log")
    # Let the guest move on, so that the load really goes back in time.
    vm_wait_log "$d" "cairn-counter $((after + 3))([^0-9]|$)" 60 ||
      die "the guest stopped counting after snapshot-save"
    cp "$d/console.log" "$d/console-before-load.log"
    load=$("$CAIRN_QMP" -t 600 snapshot-load "$d/qmp.sock" "$tag" disk0) ||
      die "snapshot-load failed"
    first=$(first_counter_after "$d" "$d/console-before-load.log")
    vm_size=$("$QEMU_IMG" info --force-share --output=json "$d/disk.qcow2" |
      sed -n 's/.*"vm-state-size": *\([0-9]*\).*/\1/p' | head -1)
    "$CAIRN_QMP" -t 600 snapshot-delete "$d/qmp.sock" "$tag" disk0 >/dev/null ||
      die "snapshot-delete failed"

    echo "flow=snapshot-save ram=$ram${rounds:+ round=$round}" \
         "save_ms=$(value job_ms "$save") save_pause_ms=$(value qemu_pause_ms "$save")" \
         "load_ms=$(value job_ms "$load") load_pause_ms=$(value qemu_pause_ms "$load")" \
         "vmstate_bytes=${vm_size:-?}" \
         "counter_ok=$(counter_ok "$first" "$before" "$after")"
  done
  vm_quit "$d"
  rm -rf "$d"
}

# cairn's flow (README-flow.md) with plain files for the store: RAM in a
# share=on file, device state with x-ignore-shared, RAM file and disk
# copied aside while stopped; restore into a new QEMU.
measure_cairn () {
  local ram=$1 d=$work/cairn r=$work/restored commit restore before after first
  mkdir "$d" "$r"
  "$QEMU_IMG" convert -O qcow2 "$guest/root.img" "$d/disk.qcow2"
  boot "$d" "$ram" "$d/ram" \
    "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$d/disk.qcow2"
  before=$(vm_last_counter "$d/console.log")
  commit=$("$CAIRN_QMP" -t 600 commit "$d/qmp.sock" "$work/vmstate.bin" \
             "$d/ram" "$work/ram.commit" "$d/disk.qcow2" "$work/disk.commit") ||
    die "commit failed"
  after=$(vm_last_counter "$d/console.log")
  vm_quit "$d"

  cp --sparse=always "$work/ram.commit" "$r/ram"
  cp --sparse=always "$work/disk.commit" "$r/disk.qcow2"
  : > "$r/console-before.log"
  vm_set_args "$r" "$guest" "$ram" "$r/ram" \
    "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$r/disk.qcow2"
  vm_launch "$r" -incoming defer -S || die "QEMU did not start: $(cat "$r/qemu.err")"
  restore=$("$CAIRN_QMP" -t 600 restore "$r/qmp.sock" "$work/vmstate.bin") ||
    die "restore failed: $(cat "$r/qemu.err")"
  first=$(first_counter_after "$r" "$r/console-before.log")
  vm_quit "$r"

  echo "flow=cairn ram=$ram" \
       "pause_ms=$(value pause_ms "$commit") vmstate_ms=$(value vmstate_ms "$commit")" \
       "copy_ms=$(value copy_ms "$commit") restore_ms=$(value restore_ms "$restore")" \
       "vmstate_bytes=$(value vmstate_bytes "$commit")" \
       "ram_allocated_bytes=$(( $(stat -c %b "$work/ram.commit") * 512 ))" \
       "counter_ok=$(counter_ok "$first" "$before" "$after")"
  rm -rf "$d" "$r" "$work"/*.commit "$work/vmstate.bin"
}

for ram in "${sizes[@]}"; do
  measure_snapshot "$ram"
  [ "$cairn" -eq 0 ] || measure_cairn "$ram"
done
