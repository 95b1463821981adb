#!/usr/bin/env bash
# test-plugin-kill9: kill -9 of nbdkit while clients write, 24 times.
#
# In each round fio writes one region (random 4K, flushing every 16
# writes) and a record writer the other: numbered records of 4.5 KiB
# (they straddle sectors and chunks), up to 8 in flight, and a flush
# whenever 16 more are acknowledged.  When a flush completes, the writer
# notes in a side file how many records were acknowledged before it sent
# that flush: exactly the writes the flush promises.  Then nbdkit dies
# with SIGKILL at a random moment, and a new one serves the branch.
# Every promised record of the round must read back intact.  At the end
# the whole branch reads without error, commits, and the commit exports
# equal to it.
. ./functions.sh
requires "$NBDKIT"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip_all "fio has no nbd engine"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
ROUNDS=24
plan $((ROUNDS + 3))

SOCK=$TMP/nbd.sock
URI="nbd+unix:///main?socket=$SOCK"
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 64M
export URI SIDE="$TMP/promised"

cat > "$TMP/writer.py" <<'EOF'
import os
B, REC = 32 << 20, 4608
NREC = (32 << 20) // REC
ROUND = int(os.environ["ROUND"])
def record(i):
    unit = b"round %03d record %06d " % (ROUND, i)
    return (unit * (REC // len(unit) + 1))[:REC]
def promise(n):
    tmp = os.environ["SIDE"] + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (ROUND, n))
    os.rename(tmp, os.environ["SIDE"])
# Record i goes to slot i % NREC: once all are written, the writer goes
# on rewriting the same bytes, so that it is busy whenever nbdkit dies.
writes, acked = {}, set()
issued = done = 0               # records sent; all below done are acked
flush, covers = None, 0
while True:
    while len(writes) < 8:
        buf = nbd.Buffer.from_bytearray(bytearray(record(issued % NREC)))
        writes[h.aio_pwrite(buf, B + issued % NREC * REC)] = issued
        issued += 1
    h.poll(-1)
    for c in [c for c in writes if h.aio_command_completed(c)]:
        acked.add(writes.pop(c))
    while done in acked:
        acked.remove(done)
        done += 1
    if flush is not None and h.aio_command_completed(flush):
        promise(min(covers, NREC))
        flush = None
    if flush is None and done - covers >= 16:
        flush, covers = h.aio_flush(), done
EOF

cat > "$TMP/check.py" <<'EOF'
import os, sys
B, REC = 32 << 20, 4608
rnd, n = map(int, open(os.environ["SIDE"]).read().split())
if rnd != int(os.environ["ROUND"]):
    print("# no flush completed in round %s" % os.environ["ROUND"])
    sys.exit(1)
data = h.pread(n * REC, B)
for i in range(n):
    unit = b"round %03d record %06d " % (rnd, i)
    if data[i * REC:(i + 1) * REC] != (unit * (REC // len(unit) + 1))[:REC]:
        print("# round %d: record %d of %d promised is lost" % (rnd, i, n))
        sys.exit(1)
print("# round %d: %d records promised, all there" % (rnd, n))
EOF

for (( round = 1; round <= ROUNDS; round++ )); do
  export ROUND=$round
  start_nbdkit "$SOCK" store="$STORE" 2>>"$TMP/nbdkit.err" \
    || { fail "round $round: nbdkit starts on the killed one's store"; continue; }
  fio --name=load --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
    --iodepth=16 --fsync=16 --offset=0 --size=32M --time_based \
    --runtime=60 >/dev/null 2>&1 &
  fio_pid=$!
  nbdsh -u "$URI" -c "exec(open('$TMP/writer.py').read())" >/dev/null 2>&1 &
  writer_pid=$!
  # Let a first flush complete, then kill at a random moment.
  retry 100 0.05 grep -qs "^$round " "$SIDE"
  sleep "0.$((RANDOM % 8))$((RANDOM % 10))"
  kill -9 "$nbdkit_pid"
  wait "$nbdkit_pid" "$fio_pid" "$writer_pid" 2>/dev/null

  start_nbdkit "$SOCK" store="$STORE" 2>>"$TMP/nbdkit.err" \
    || { fail "round $round: nbdkit restarts"; continue; }
  ok "round $round: every record promised by a completed flush is there" \
    nbdsh -u "$URI" -c "exec(open('$TMP/check.py').read())"
  kill "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null
done

start_nbdkit "$SOCK" store="$STORE" || fail "nbdkit starts at the end"
ok "the whole branch reads without an error" nbdcopy "$URI" "$TMP/branch.img"
id=$("$CAIRN" commit main 2>"$TMP/commit.err") || diag "$(cat "$TMP/commit.err")"
ok "it commits" test -n "$id"
"$CAIRN" export "$id" "$TMP/commit.img" 2>/dev/null
ok "and the commit is what the branch holds" cmp "$TMP/branch.img" "$TMP/commit.img"

done_testing
