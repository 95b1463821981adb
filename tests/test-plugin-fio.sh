#!/usr/bin/env bash
# test-plugin-fio: fio's nbd engine with verify=crc32c on a branch export:
# random 4K writes at iodepth 16, sequential 1M writes, random sizes at
# 512-byte alignment, and two jobs (two connections) at once; every job
# verifies what it wrote, then again, verify_only, after nbdkit restarts.
. ./functions.sh
requires "$NBDKIT"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip_all "fio has no nbd engine"
plan 7

SOCK=$TMP/nbd.sock
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 128M
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }

# One region of 32M per job, so each can be verified again on its own.
cat > "$TMP/jobs.fio" <<EOF
[global]
ioengine=nbd
uri=nbd+unix:///main?socket=$SOCK
iodepth=16
size=32M
verify=crc32c
verify_fatal=1
verify_state_save=0
randrepeat=1

[rand4k]
rw=randwrite
bs=4k
offset=0

[seq1m]
rw=write
bs=1M
offset=32M

[randsizes]
rw=randwrite
bsrange=512-192k
blockalign=512
offset=64M

[twoconns]
rw=randwrite
bs=16k
numjobs=2
size=16M
offset=96M
offset_increment=16M
EOF

run_job () {
  fio --section="$1" ${2:+"$2"} "$TMP/jobs.fio" >"$TMP/fio-$1.out" 2>&1
}
for job in rand4k seq1m randsizes twoconns; do
  ok "fio $job writes and verifies" run_job "$job"
done

kill "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null
start_nbdkit "$SOCK" store="$STORE" || fail "nbdkit restarts"
ok "after a restart every job's data verifies again" \
  bash -c "for j in rand4k seq1m randsizes twoconns; do
             fio --section=\$j --verify_only '$TMP/jobs.fio' >'$TMP/fio-v.out' 2>&1 || exit 1
           done"

# The check can fail: overwrite a block of the first region and verify.
nbdsh -u "nbd+unix:///main?socket=$SOCK" -c 'h.pwrite(b"\xff" * 4096, 8192)'
fails "fio's verify notices one overwritten block" \
  run_job rand4k --verify_only
ok "and names the bad block" grep -q 'verify: bad' "$TMP/fio-rand4k.out"

done_testing
