#!/usr/bin/env bash
# test-plugin-commit-during-fio: `cairn commit` of a branch while fio
# writes it through nbdkit.  The commit is what the branch held at that
# moment:
#   - region B is written by a client that knows its order exactly: one
#     numbered record at a time, and the commit asked for between two of
#     them.  Every record acknowledged before the request is in the
#     commit; none written after the reply is.
#   - region A is fio's, one pass of random 4K writes (each block written
#     once, verify=crc32c).  In the commit each block is either as it was
#     before fio or as fio finally wrote it: nothing torn, nothing else.
# Nobody is disconnected: the record writer and fio go on on the same
# connections, and fio verifies everything at the end.
. ./functions.sh
requires "$NBDKIT"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip_all "fio has no nbd engine"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 8

SOCK=$TMP/nbd.sock
MIB=1048576
make_mixed_file "$TMP/orig.img" 64
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" import main "$TMP/orig.img" >/dev/null 2>&1
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }
URI="nbd+unix:///main?socket=$SOCK"
export URI CAIRN ORIG="$TMP/orig.img" OUT="$TMP"

# One pass over region A, slow enough to be mid-way at the commit.
fio --name=regionA --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
  --iodepth=16 --offset=0 --size=32M --rate_iops=1500 --verify=crc32c \
  --verify_fatal=1 --verify_state_save=0 --randrepeat=1 >"$TMP/fio.out" 2>&1 &
fio_pid=$!
on_exit "kill $fio_pid 2>/dev/null"
export FIO_PID=$fio_pid

# Waits for fio to be a quarter through, writes records 0..299, commits, writes
# records 300..599 on the same connection; saves the commit id, and
# whether fio still ran when the commit returned.
nbdsh -u "$URI" -c '
import os, subprocess, time
B, REC, N, AT = 32 << 20, 4608, 600, 300
orig = open(os.environ["ORIG"], "rb").read()
def record(i):
    return (b"record %06d " % i) * (REC // 14) + b"." * (REC % 14)
def written():
    now = h.pread(1 << 20, 0)
    return sum(now[o:o + 4096] != orig[o:o + 4096] for o in range(0, 1 << 20, 4096))
while written() < 64:           # a quarter of the pass
    time.sleep(0.05)
for i in range(N):
    if i == AT:
        out = subprocess.run([os.environ["CAIRN"], "commit", "main"],
                             check=True, capture_output=True, text=True)
        open(os.environ["OUT"] + "/commit.id", "w").write(out.stdout.strip())
        try:                    # alive, and not a zombie the shell has not reaped
            stat = open("/proc/%s/stat" % os.environ["FIO_PID"]).read()
            if stat.rsplit(")", 1)[1].split()[0] != "Z":
                open(os.environ["OUT"] + "/fio-running", "w").close()
        except FileNotFoundError:
            pass
    h.pwrite(record(i), B + i * REC)
h.flush()
' >"$TMP/writer.out" 2>&1
writer=$?
ok "the record writer wrote every record across the commit" test $writer = 0
ok "fio was still writing when the commit returned" test -e "$TMP/fio-running"
wait "$fio_pid"
ok "fio finished its pass and verified it" test $? = 0
id=$(cat "$TMP/commit.id")

nbdcopy "nbd+unix:///$id?socket=$SOCK" "$TMP/commit.img"
nbdcopy "$URI" "$TMP/final.img"
check () {
  python3 - "$1" <<'EOF'
import os, sys
B, REC, N, AT = 32 << 20, 4608, 600, 300
d = os.environ["OUT"]
orig = open(os.environ["ORIG"], "rb").read()
commit = open(d + "/commit.img", "rb").read()
final = open(d + "/final.img", "rb").read()
def record(i):
    return (b"record %06d " % i) * (REC // 14) + b"." * (REC % 14)
def rec(img, i):
    return img[B + i * REC:B + (i + 1) * REC]
what = sys.argv[1]
if what == "before":
    bad = [i for i in range(AT) if rec(commit, i) != record(i)]
elif what == "after":
    bad = [i for i in range(AT, N) if rec(commit, i) != rec(orig, i)]
elif what == "final":
    bad = [i for i in range(N) if rec(final, i) != record(i)]
elif what == "fio":
    bad, new = [], 0
    for off in range(0, 32 << 20, 4096):
        c = commit[off:off + 4096]
        if c == final[off:off + 4096] and c != orig[off:off + 4096]:
            new += 1
        elif c != orig[off:off + 4096]:
            bad.append(off)
    print("# %d of 8192 fio blocks were in the commit" % new)
    if new == 0 or new == 8192:
        print("# the commit did not fall inside the fio pass")
        sys.exit(1)
elif what == "rest":
    bad = [0] if commit[B + N * REC:] != orig[B + N * REC:] else []
if bad:
    print("# %s: %d bad, first %s" % (what, len(bad), bad[0]))
    sys.exit(1)
EOF
}
ok "every record acknowledged before the request is in the commit" check before
ok "no record written after the reply is" check after
ok "each fio block in the commit is as before fio or as fio wrote it" check fio
ok "the branch holds every record" check final
ok "nothing else changed" check rest

done_testing
