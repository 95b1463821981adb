# vm-functions.sh: what the cairn vm tests (test-vm-*.sh) share.  Sourced
# after functions.sh, by a test that saved the caller's $CAIRN_PLUGIN in
# $outer_plugin first (functions.sh points it at this tree's plugin):
#
#   outer_plugin=${CAIRN_PLUGIN:-}
#   . ./functions.sh
#   . "$abs_top_srcdir/tests/vm-functions.sh"
#
# It skips the test unless QEMU, nbdkit and the cairn plugin are there
# and it runs as root (the guest image is built with mke2fs -d, which
# keeps file owners), builds the guest once ($CAIRN_GUEST_DIR, default
# /var/tmp/cairn-guest), gives the test its own tmpfs directory for RAM
# files, and stops every VM of the test's store at exit.

# The plugin: this tree's, or the one the caller named (a plugin built
# elsewhere, while this tree does not build one).
if [ ! -e "$CAIRN_PLUGIN" ]; then
  CAIRN_PLUGIN=${outer_plugin:-}
  # Not this tree's build, so not built with its sanitizers: there is no
  # runtime to preload into nbdkit.
  unset CAIRN_NBDKIT_PRELOAD
fi
[ -n "$CAIRN_PLUGIN" ] && [ -e "$CAIRN_PLUGIN" ] ||
  skip_all "the nbdkit cairn plugin is not built (nbd-plugin/.libs), and \$CAIRN_PLUGIN names none"
export CAIRN_PLUGIN
requires "$QEMU_SYSTEM"
requires "$NBDKIT"
[ "$(id -u)" -eq 0 ] || skip_all "building the guest image needs root"

CAIRN_QMP="$abs_top_builddir/qemu-glue/cairn-qmp"
VM_HELPER="$abs_top_builddir/tests/vm-helper"
export CAIRN_GUEST_DIR=${CAIRN_GUEST_DIR:-/var/tmp/cairn-guest}
GUEST=$CAIRN_GUEST_DIR
export CAIRN_GUEST_BUILDER="$abs_top_srcdir/qemu-glue/guest/build-guest.sh"
# RAM files of this test only, removed wholesale at exit.
export CAIRN_VM_RAM_DIR=/dev/shm/cairn-test.$$
mkdir -p "$CAIRN_VM_RAM_DIR"

# Every wait is bounded: a guest that hangs fails its test, not the suite.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}

stop_all_vms () {
  local name
  for name in $("$CAIRN" vm ls --json 2>/dev/null |
                  sed -n 's/^ *"name":"\(.*\)",$/\1/p'); do
    "$CAIRN" vm stop "$name" >/dev/null 2>&1
  done
  "$CAIRN" vm spare stop >/dev/null 2>&1
  rm -rf "$CAIRN_VM_RAM_DIR"
}
on_exit stop_all_vms

if ! "$CAIRN_GUEST_BUILDER" "$GUEST" >"$TMP/build-guest.log" 2>&1; then
  echo "1..1"
  echo "not ok 1 - the guest image builds"
  sed 's/^/# /' "$TMP/build-guest.log"
  exit 1
fi

# console NAME: the path of VM NAME's console log.
console () { echo "$STORE/run/vms/$1/console.log"; }

# wait_console NAME PATTERN SECONDS: waits until VM NAME's console holds a
# line matching the extended regular expression PATTERN.
wait_console () {
  retry $(( $3 * 10 )) 0.1 grep -aEq -- "$2" "$(console "$1")" 2>/dev/null
}

# send NAME TEXT: types TEXT and Enter on VM NAME's console.
send () { "$CAIRN" vm console "$1" --send "$2"; }

# counters FILE...: every complete counter value in FILEs, in order (the
# guest's tty ends lines with CR LF; a cut line is not a value yet).
counters () { cat "$@" | grep -aoE $'cairn-counter [0-9]+\r' | tr -dc '0-9\n'; }

# last_counter NAME: the last complete counter value VM NAME printed.
last_counter () { counters "$(console "$1")" | tail -1; }

# first_counter NAME SECONDS: waits up to SECONDS until VM NAME has printed
# a complete counter line, and prints the first value (empty if none).
first_counter () {
  wait_console "$1" $'cairn-counter [0-9]+\r' "$2" &&
    counters "$(console "$1")" | head -1
}

# boot NAME BRANCH [ARGS...]: vm run, then waits until the guest has
# booted and counts (counter 3).  Prints the console on failure.
boot () {
  local name=$1 branch=$2; shift 2
  "$CAIRN" vm run "$name" --branch "$branch" "$@" 2>>"$TMP/vm-run.log" &&
    wait_console "$name" '^cairn-guest: ready' "$BOOT_TIMEOUT" &&
    wait_console "$name" 'cairn-counter 3([^0-9]|$)' 60 && return 0
  diag "VM $name did not boot:"
  cat "$TMP/vm-run.log" "$(console "$name")" 2>/dev/null | tr -d '\r' |
    tail -20 | sed 's/^/#   /'
  echo                          # the console's last line may have no end
  return 1
}

# json_field JSON KEY: the value of "KEY" in cairn's JSON output (numbers
# and strings, first occurrence).
json_field () {
  printf '%s\n' "$1" | sed -n "s/^ *\"$2\":\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" | head -1
}

# consecutive FILE...: the counters in FILEs, as one stream, go up by one
# with no gap and no repeat.
consecutive () {
  counters "$@" | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'
}

# new_store: an empty store holding the guest's disk as branch main.
new_store () {
  "$CAIRN" init >/dev/null 2>&1 &&
    "$CAIRN" import main "$GUEST/root.img" -m "guest root" >/dev/null 2>&1
}

# ended PID: the process has ended (a zombie that init has not reaped
# yet counts as ended).  gone PID...: each has, or does within 5 s.
ended () {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)
  [ -z "$state" ] || [ "$state" = Z ]
}
gone () {
  local pid
  for pid in "$@"; do
    retry 50 0.1 ended "$pid" || return 1
  done
}
