#!/usr/bin/env bash
# cairnfs unmounts cleanly: with fusermount3 -u; on SIGTERM while a reader
# is blocked in read (the reader gets an error, not a hang); and lazily
# with fusermount3 -u -z, after which the blocked reader still gets its
# bytes and cairnfs exits when the file is closed.  Exit status 0 each
# time, and no mount left behind.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
plan 12

head -c 4194304 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/disk.img" 2>/dev/null)
disk="$MNT/commits/$id/disk.img"

# A reader that opens the disk, then, once $TMP/go exists, reads it all
# and says what it got: "ok", "wrong bytes" or the error.
start_reader () {
  rm -f "$TMP/opened" "$TMP/go" "$TMP/got"
  python3 - "$disk" "$TMP" "$TMP/disk.img" <<'PY' &
import os, sys, time
disk, tmp, want = sys.argv[1:]
fd = os.open(disk, os.O_RDONLY)
open(f"{tmp}/opened", "w").close()
while not os.path.exists(f"{tmp}/go"):
    time.sleep(0.02)
try:
    got = b"".join(os.pread(fd, 1 << 20, off) for off in range(0, 4 << 20, 1 << 20))
    result = "ok" if got == open(want, "rb").read() else "wrong bytes"
except OSError as e:
    result = e.strerror
open(f"{tmp}/got", "w").write(result)
try:
    os.close(fd)
except OSError:
    pass
PY
  reader_pid=$!
  on_exit "kill $reader_pid 2>/dev/null"
  retry 200 0.05 test -e "$TMP/opened"
}

# Blocks the reader in read: cairnfs stopped, the reader let go, until
# the kernel has it wait for cairnfs's answer (request_wait_answer) or for
# the pages cairnfs is to fill (folio_wait_bit_common).
block_reader () {
  kill -STOP "$cairnfs_pid"
  touch "$TMP/go"
  retry 300 0.1 grep -Eq 'request_wait_answer|folio_wait|page_locked' \
    "/proc/$reader_pid/wchan" 2>/dev/null
}

# gone PID: waits (boundedly) for process PID to end.
gone () { retry 300 0.1 not kill -0 "$1" 2>/dev/null; }

start_cairnfs
ok "fusermount3 -u unmounts" fusermount3 -u "$MNT"
wait "$cairnfs_pid"
ok "and cairnfs exits with status 0 ($?)" test $? = 0

start_cairnfs
start_reader
ok "the reader is blocked in read" block_reader
kill -TERM "$cairnfs_pid"
kill -CONT "$cairnfs_pid"
ok "SIGTERM ends cairnfs" gone "$cairnfs_pid"
wait "$cairnfs_pid"
ok "with status 0 ($?)" test $? = 0
ok "the mount is gone" wait_unmounted
ok "the reader is not left hanging" gone "$reader_pid"
diag "it got: $(cat "$TMP/got" 2>/dev/null)"

start_cairnfs
start_reader
fails "fusermount3 -u refuses while a file is open" fusermount3 -u -q "$MNT"
ok "the reader is blocked in read" block_reader
ok "fusermount3 -u -z detaches the mount at once" \
   sh -c "fusermount3 -u -z '$MNT' && ! mountpoint -q '$MNT'"
kill -CONT "$cairnfs_pid"
gone "$reader_pid"
ok "the reader still gets all its bytes" test "$(cat "$TMP/got")" = ok
gone "$cairnfs_pid"
wait "$cairnfs_pid"
status=$?
# Once (under ASan, with the suite running beside it) the status was 1:
# what cairnfs said then is the clue.
ok "cairnfs exits with status 0 once it is closed ($status)" test $status = 0
[ $status = 0 ] || diag "cairnfs said: $(cat "$CAIRNFS_LOG")"
done_testing
