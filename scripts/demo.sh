#!/usr/bin/env bash
# demo.sh: installs and builds cairn, then shows what it is for on a local
# store in /var/tmp/cairn-demo: a small Linux VM boots from a branch and
# counts; it is committed whole (disk, RAM, device state) while it runs;
# an earlier commit is restored and the guest continues from where it
# was; that VM is forked into two that go their own ways; and an old
# commit's disk is read through cairnfs.  Takes a few minutes (the first
# run also builds the guest from Debian packages).  Needs root.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
build=${CAIRN_BUILD:-$top/build}
cairn="$build/cli/cairn"
export CAIRN_CAIRNFS="$build/fusefs/cairnfs"
plugin="$build/nbd-plugin/.libs/nbdkit-cairn-plugin.so"
[ -e "$plugin" ] || plugin=${CAIRN_PLUGIN:-}
if [ -z "$plugin" ] || [ ! -e "$plugin" ]; then
  echo "demo.sh: the nbdkit cairn plugin was not built in $build (set CAIRN_PLUGIN to one)" >&2
  exit 1
fi
export CAIRN_PLUGIN=$plugin
demo=/var/tmp/cairn-demo
export CAIRN_STORE="$demo/store"

bold=$(printf '\033[1m') plain=$(printf '\033[0m')
step () { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say () { printf '   %s\n' "$*"; }
run () { printf '$ %s\n' "${*/#$cairn/cairn}"; "$@"; }

cleanup () {
  local vm
  for vm in $("$cairn" vm ls --json 2>/dev/null | sed -n 's/^ *"name":"\(.*\)",$/\1/p'); do
    "$cairn" vm stop "$vm" 2>/dev/null || :
  done
  umount "$demo/disk" 2>/dev/null || :
  fusermount3 -u "$demo/mnt" 2>/dev/null || :
}
trap cleanup EXIT

# log NAME: VM NAME's serial console.
log () { echo "$CAIRN_STORE/run/vms/$1/console.log"; }
# wait_for NAME PATTERN: until VM NAME printed a line matching PATTERN.
wait_for () {
  local i
  for (( i = 0; i < 1800; i++ )); do
    grep -aEq -- "$2" "$(log "$1")" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo.sh: VM $1 did not print '$2' in 3 minutes" >&2
  exit 1
}
# counter NAME: the last number VM NAME's counter printed.
counter () {
  grep -aoE $'cairn-counter [0-9]+\r' "$(log "$1")" | tail -1 | tr -dc '0-9'
}
# first_counter NAME: the first number it printed.
first_counter () {
  grep -aoE $'cairn-counter [0-9]+\r' "$(log "$1")" | head -1 | tr -dc '0-9'
}
# watch NAME SECONDS: lets VM NAME run a while, then shows what its
# counter printed meanwhile.
watch () {
  sleep "$2"
  grep -aoE $'cairn-counter [0-9]+\r' "$(log "$1")" | tr -d '\r' |
    tail -n "$2" | sed 's/^/   | /'
}
# type NAME COMMAND: types COMMAND on VM NAME's console and waits for the
# marker it prints when done.
n_typed=0
settle='sync; fsfreeze --freeze / && fsfreeze --unfreeze /'
type_in () {
  n_typed=$((n_typed + 1))
  local marker="done-$n_typed"
  printf '   %s# %s\n' "$1" "$2"
  "$cairn" vm console "$1" --send "$2; echo \"$marker-\$((1+1))\""
  wait_for "$1" "^$marker-2"
}

cleanup
rm -rf "$demo"
mkdir -p "$demo/mnt" "$demo/disk"

step "A store: content-addressed, compressed, deduplicated chunks"
run "$cairn" init

step "The guest: a Debian kernel, a busybox initramfs and an ext4 root disk"
say "(built once from Debian packages by qemu-glue/guest/build-guest.sh)"
guest=$("$cairn" vm guest)
ls -lh "$guest"/vmlinuz "$guest"/initrd.img "$guest"/root.img | sed 's/^/   /'

step "Its root disk becomes branch main"
run "$cairn" import main "$guest/root.img" -m "guest root disk"

step "Boot a VM from branch main"
say "QEMU microvm (TCG), disk = branch main over NBD (nbdkit cairn), RAM in a file on tmpfs"
run "$cairn" vm run demo --branch main
wait_for demo '^cairn-guest: ready'
tr -d '\r' < "$(log demo)" | grep -a 'cairn-guest: ready' | sed 's/^/   | /'
say "Booted.  A shell loop in the guest counts, once a second:"
watch demo 4

step "Commit the running VM, three times: disk, RAM and device state in one commit"
say "First a file on its disk (fsfreeze writes the ext4 journal back, so that the"
say "committed disk reads clean without a journal replay):"
type_in demo "echo 'written before the first commit' > /data/note; $settle"
ids=() at=()
for i in 1 2 3; do
  sleep 2
  c=$(counter demo)
  run "$cairn" vm commit demo -m "commit $i"
  ids+=("$("$cairn" log main --oneline -n 1 | cut -d' ' -f1)")
  # The counter ticks once a second; the pause fell between these reads.
  c2=$(counter demo)
  [ "$c" = "$c2" ] && at+=("at $c") || at+=("between $c and $c2")
  say "-> commit ${ids[-1]} while the counter was ${at[-1]}"
done
say "Only the RAM chunks the guest changed since the previous commit are stored;"
say "the guest is paused only for its device state and a last comparison of RAM."
run "$cairn" log main --oneline

step "Stop the VM"
say "The counter had reached $(counter demo)."
run "$cairn" vm stop demo

step "Restore the second commit as a new VM, 'left'"
run "$cairn" vm restore "${ids[1]}" left --branch left
wait_for left 'cairn-counter [0-9]+'
watch left 3
say "Commit ${ids[1]} was made with the counter ${at[1]}; the restored guest went on"
say "at $(first_counter left): its shell, its memory and its timers came back, it did not reboot."

step "Fork 'left' into a second VM, 'right': both run on, independently"
run "$cairn" vm branch left right --branch right
wait_for right 'cairn-counter [0-9]+'
run "$cairn" vm ls
say "Make them diverge: each writes a file of its own, and is committed."
type_in left "echo 'I am left' > /data/whoami; $settle"
type_in right "echo 'I am right' > /data/whoami; $settle"
left_id=$("$cairn" vm commit left -m "left's file" 2>/dev/null)
right_id=$("$cairn" vm commit right -m "right's file" 2>/dev/null)
say "left committed as ${left_id:0:12}, right as ${right_id:0:12}"
for side in left right; do
  "$cairn" export "$side" "$demo/$side.img"
  say "$side's disk says: $(debugfs -R 'cat /data/whoami' "$demo/$side.img" 2>/dev/null)"
done
say "And their consoles count on separately: left at $(counter left), right at $(counter right)."
run "$cairn" log --all --graph --oneline

step "Read the first commit's disk through cairnfs"
run "$cairn" mount "$demo/mnt"
disk=$(ls -d "$demo"/mnt/commits/"${ids[0]}"*)/disk.img
run mount -o loop,ro,noload "$disk" "$demo/disk"
say "/data/note in commit ${ids[0]}: $(cat "$demo/disk/data/note")"
run umount "$demo/disk"
run fusermount3 -u "$demo/mnt"

step "Space: what each commit holds alone and what it shares"
run "$cairn" du main

step "Done.  The store is in $CAIRN_STORE; the VMs are stopped.  Try '$cairn vm --help'."
