#!/usr/bin/env bash
# bench-vm.sh: cairn vm against QEMU's own snapshots (issue 6), on the same
# guest (qemu-glue/guest/build-guest.sh: busybox, a counter ticking every
# second), in the same run, under TCG, with 256 MiB and 1 GiB of RAM:
#
#  1. the pause of `cairn vm commit` (QMP stop -> cont, as the command
#     reports it) against the pause of QMP snapshot-save into the disk's
#     qcow2 (QEMU's STOP -> RESUME events) (goal: >= 5x shorter);
#  2. what a commit made 1 s after the previous one adds to the store's
#     packs (disk, RAM, device state), against the RAM size (goal <= 10%);
#  3. `cairn vm restore` of a commit to a running guest: from the start of
#     the command until the guest runs (it reads and verifies the device
#     state out of the store, starts nbdkit and QEMU, loads, resumes; RAM
#     then comes in while the guest runs, and the command returns once all
#     of it is in), against QMP snapshot-load into a QEMU that is already
#     running (its pause) (goal: >= 2x faster).  The restore takes a spare
#     QEMU (`vm spare start`, started ahead, as the peer's QEMU is).  The
#     time is from just before the command is started (its process start
#     included) to the moment it reports the guest ran (running_at_ms).
#     What it does after that (RAM coming in, the next spare starting)
#     does not count; its wall time, with all of it, is a row of its own.
#     Also: a restore that starts its own
#     QEMU, the whole command (until all of RAM is in), and `vm restore
#     --eager` (all of RAM read and verified before QEMU starts), each
#     against the same peer;
#  4. `cairn vm branch`, the whole command (commit + restore into a second
#     VM), reported alone.
#
# The peer is the same guest in a second QEMU booted beside cairn's, with
# its disk in a qcow2 and ordinary RAM.  Both guests run throughout, and
# each measure runs ROUNDS times (BENCH_VM_ROUNDS, default 5) in turns
# with its peer, so that both see the same load on the machine (it may be
# shared: times move with its load); the table gives medians.
# The store lives on disk under BENCH_DIR (fsync means what it means).
#
# The cairn plugin is $abs_top_builddir/nbd-plugin/.libs/..., else
# $CAIRN_BENCH_PLUGIN or $CAIRN_PLUGIN; the guest is $CAIRN_GUEST_DIR
# (default /var/tmp/cairn-guest).  Needs root (the guest builder).

. "$abs_top_srcdir/bench/bench-functions.sh"

ROUNDS=${BENCH_VM_ROUNDS:-5}
SIZES=${BENCH_VM_SIZES:-"256M 1G"}
export CAIRN_GUEST_DIR=${CAIRN_GUEST_DIR:-/var/tmp/cairn-guest}
export CAIRN_GUEST_BUILDER="$abs_top_srcdir/qemu-glue/guest/build-guest.sh"
export CAIRN_QMP="$abs_top_builddir/qemu-glue/cairn-qmp"
export CAIRN_VM_RAM_DIR=/dev/shm/cairn-bench.$$
mkdir -p "$CAIRN_VM_RAM_DIR"
bench_on_exit "rm -rf '$CAIRN_VM_RAM_DIR'"

if [ -f "$PLUGIN" ]; then
  export CAIRN_PLUGIN=$PLUGIN
elif [ -n "${CAIRN_BENCH_PLUGIN:-}" ] && [ -f "$CAIRN_BENCH_PLUGIN" ]; then
  export CAIRN_PLUGIN=$CAIRN_BENCH_PLUGIN
elif [ -z "${CAIRN_PLUGIN:-}" ] || [ ! -f "$CAIRN_PLUGIN" ]; then
  echo "bench-vm: the nbdkit cairn plugin is not built; set CAIRN_BENCH_PLUGIN" >&2
  exit 1
fi
"$CAIRN_GUEST_BUILDER" "$CAIRN_GUEST_DIR" >/dev/null

# median: the median of the numbers on stdin.
median () {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# field JSON KEY: a number from cairn's --json output.
field () { printf '%s\n' "$1" | sed -n "s/^ *\"$2\":\([0-9.e+-]*\),\{0,1\}$/\1/p" | head -1; }
# to_running T0_NS JSON: ms from T0_NS (date +%s%N before the command
# started) to when the restore reports its guest ran.
to_running () {
  awk -v t0="$1" -v at="$(field "$2" running_at_ms)" \
    'BEGIN { printf "%d", at - t0 / 1e6 + 0.5 }'
}
now_ms () { echo $(( $(date +%s%N) / 1000000 )); }
packs_bytes () { du -sb "$CAIRN_STORE/packs" | cut -f1; }
console () { echo "$CAIRN_STORE/run/vms/$1/console.log"; }
wait_console () {
  local i
  for (( i = 0; i < $3 * 10; i++ )); do
    grep -aEq -- "$2" "$(console "$1")" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-vm: VM $1 did not print '$2'" >&2
  return 1
}
stop_all () {
  local vm
  for vm in $("$CAIRN" vm ls --json 2>/dev/null | sed -n 's/^ *"name":"\(.*\)",$/\1/p'); do
    "$CAIRN" vm stop "$vm" >/dev/null 2>&1 || :
  done
  "$CAIRN" vm spare stop 2>/dev/null || :
}
bench_on_exit stop_all

rows=()
# Numbers with a fraction get one decimal.
num () { [[ $1 == *.* ]] && printf '%.1f' "$1" || printf '%s' "$1"; }
row () {
  rows+=("$(printf '%-5s %-44s %12s %12s %8s %s' "$1" "$2" "$(num "$3")" \
    "$(num "$4")" "$5" "$6")")
}

QEMU=${QEMU:-qemu-system-x86_64}
. "$abs_top_srcdir/qemu-glue/guest/vm-lib.sh"
# value KEY OUTPUT: the value of KEY=value in cairn-qmp's output.
value () { printf '%s\n' "$2" | sed -n "s/^$1=//p"; }

for ram in $SIZES; do
  bytes=$(numfmt --from=iec "$ram")

  # The peer: the same guest with its disk in a qcow2 and ordinary RAM,
  # snapshotted by QEMU into that qcow2.
  q=$BENCH_DIR/qemu-$ram
  mkdir -p "$q"
  qemu-img convert -O qcow2 "$CAIRN_GUEST_DIR/root.img" "$q/disk.qcow2"
  vm_set_args "$q" "$CAIRN_GUEST_DIR" "$ram" "" \
    "driver=qcow2,node-name=disk0,file.driver=file,file.filename=$q/disk.qcow2"
  vm_launch "$q"
  bench_on_exit "vm_quit '$q'"

  # cairn: the same guest on a branch of a store.
  rm -rf "$CAIRN_STORE"
  "$CAIRN" init >/dev/null 2>&1
  "$CAIRN" import main "$CAIRN_GUEST_DIR/root.img" >/dev/null 2>&1
  "$CAIRN" vm run a --branch main --memory "$ram" 2>/dev/null
  vm_wait_log "$q" 'cairn-counter 3([^0-9]|$)' 300
  wait_console a 'cairn-counter 3([^0-9]|$)' 300
  "$CAIRN" vm commit a -m first >/dev/null 2>&1      # the first one stores all

  # Commits and snapshot-saves, taken in turns so that both see the same
  # load on the machine; both guests run throughout.
  pauses=() stored=() changed=() saves=() last=
  for (( i = 1; i <= ROUNDS; i++ )); do
    sleep 1
    before=$(packs_bytes)
    out=$("$CAIRN" vm commit a --json 2>/dev/null)
    sleep 0.2                   # let the plugin's sealer settle
    stored+=($(( $(packs_bytes) - before )))
    pauses+=("$(field "$out" pause_ms)")
    changed+=("$(field "$out" changed_chunks)")
    last=$(printf '%s\n' "$out" | sed -n 's/^ *"id":"\([0-9a-f]*\)",$/\1/p')
    sleep 1
    out=$("$CAIRN_QMP" -t 600 snapshot-save "$q/qmp.sock" "snap$i" disk0)
    saves+=("$(value qemu_pause_ms "$out")")
  done
  vmstate=$(qemu-img info --force-share --output=json "$q/disk.qcow2" |
    sed -n 's/.*"vm-state-size": *\([0-9]*\).*/\1/p' | head -1)
  pause=$(printf '%s\n' "${pauses[@]}" | median)
  save_pause=$(printf '%s\n' "${saves[@]}" | median)
  grown=$(printf '%s\n' "${stored[@]}" | median)
  chunks=$(printf '%s\n' "${changed[@]}" | median)
  cs=$(sed -n "s/^chunk-size //p" "$CAIRN_STORE/config")
  cs=${cs:-65536}

  # Restores and snapshot-loads, in turns; each round: vm restore of the
  # last commit into a spare QEMU (started ahead by vm spare start; the
  # restore starts the next), one that starts its QEMU itself, one with
  # --eager (each a new VM, stopped again), then snapshot-load of a
  # snapshot into the running peer.
  restores=() colds=() wholes=() eagers=() verifies=() qemus=() loads=() load_jobs=()
  "$CAIRN" vm spare start "$last" 2>/dev/null
  sleep 1
  for (( i = 1; i <= ROUNDS; i++ )); do
    t0=$(date +%s%N)
    out=$("$CAIRN" vm restore "$last" "r$i" --json 2>/dev/null)
    wholes+=($(( ($(date +%s%N) - t0) / 1000000 )))
    restores+=("$(to_running "$t0" "$out")")
    grep -q '"spare":true' <<< "$out" || echo "round $i: no spare was ready" >&2
    wait_console "r$i" 'cairn-counter [0-9]+' 30
    "$CAIRN" vm stop "r$i" >/dev/null 2>&1
    "$CAIRN" vm spare stop 2>/dev/null
    sleep 1
    t0=$(date +%s%N)
    out=$("$CAIRN" vm restore "$last" "c$i" --json 2>/dev/null)
    colds+=("$(to_running "$t0" "$out")")
    verifies+=("$(field "$out" verify_ms)")
    qemus+=("$(field "$out" qemu_ms)")
    wait_console "c$i" 'cairn-counter [0-9]+' 30
    "$CAIRN" vm stop "c$i" >/dev/null 2>&1
    sleep 1
    t0=$(now_ms)
    "$CAIRN" vm restore "$last" "e$i" --eager >/dev/null 2>&1
    eagers+=($(( $(now_ms) - t0 )))
    wait_console "e$i" 'cairn-counter [0-9]+' 30
    "$CAIRN" vm stop "e$i" >/dev/null 2>&1
    "$CAIRN" vm spare start "$last" 2>/dev/null
    sleep 1
    out=$("$CAIRN_QMP" -t 600 snapshot-load "$q/qmp.sock" "snap$i" disk0)
    loads+=("$(value qemu_pause_ms "$out")")
    load_jobs+=("$(value job_ms "$out")")
    sleep 1
  done
  "$CAIRN" vm spare stop 2>/dev/null
  restore_ms=$(printf '%s\n' "${restores[@]}" | median)
  cold_ms=$(printf '%s\n' "${colds[@]}" | median)
  whole_ms=$(printf '%s\n' "${wholes[@]}" | median)
  eager_ms=$(printf '%s\n' "${eagers[@]}" | median)
  verify_ms=$(printf '%s\n' "${verifies[@]}" | median)
  qemu_ms=$(printf '%s\n' "${qemus[@]}" | median)
  load_pause=$(printf '%s\n' "${loads[@]}" | median)
  load_job=$(printf '%s\n' "${load_jobs[@]}" | median)
  vm_quit "$q"

  # vm branch: a forks into b_i, which is stopped again.
  branches=()
  for (( i = 1; i <= ROUNDS; i++ )); do
    sleep 1
    t0=$(now_ms)
    "$CAIRN" vm branch a "b$i" >/dev/null 2>&1
    branches+=($(( $(now_ms) - t0 )))
    "$CAIRN" vm stop "b$i" >/dev/null 2>&1
  done
  branch_ms=$(printf '%s\n' "${branches[@]}" | median)
  "$CAIRN" vm stop a >/dev/null 2>&1

  row "$ram" "commit pause (stop..cont), ms" "$pause" "$save_pause" \
      "$(ratio "$save_pause" "$pause")x" "goal >= 5x shorter (QEMU: snapshot-save)"
  row "$ram" "commit 1 s after the last: bytes stored" "$grown" "$vmstate" \
      "$(awk -v a="$grown" -v b="$bytes" 'BEGIN { printf "%.1f%%", 100 * a / b }')" \
      "of RAM; goal <= 10% (QEMU: its vmstate)"
  row "$ram" "  RAM chunks it found changed" "$chunks" "-" \
      "$(awk -v a="$chunks" -v c="$cs" -v b="$bytes" 'BEGIN { printf "%.1f%%", 100 * a * c / b }')" \
      "of RAM"
  row "$ram" "restore to a running guest, ms" "$restore_ms" "$load_pause" \
      "$(ratio "$load_pause" "$restore_ms")x" "goal >= 2x faster (QEMU: snapshot-load pause)"
  row "$ram" "  without a spare QEMU (it starts one), ms" "$cold_ms" "$load_pause" \
      "$(ratio "$load_pause" "$cold_ms")x" ""
  row "$ram" "  of which: device state read + verified, ms" "$verify_ms" "-" "-" ""
  row "$ram" "  of which: QEMU start to QMP, ms" "$qemu_ms" "-" "-" ""
  row "$ram" "  the command, until all of RAM is in, ms" "$whole_ms" "$load_pause" \
      "$(ratio "$load_pause" "$whole_ms")x" ""
  row "$ram" "restore --eager (RAM read first), ms" "$eager_ms" "$load_pause" \
      "$(ratio "$load_pause" "$eager_ms")x" ""
  row "$ram" "  (QEMU snapshot-load job, ms)" "-" "$load_job" "-" ""
  row "$ram" "vm branch, end to end, ms" "$branch_ms" "-" "-" "commit + restore into a 2nd VM"
done

echo
echo "cairn vm vs QEMU snapshots, same guest, TCG, medians of $ROUNDS rounds"
printf '%-5s %-44s %12s %12s %8s %s\n' RAM measure cairn QEMU ratio ""
printf '%s\n' "${rows[@]}"
