#!/usr/bin/env bash
# test-plugin-data: the whole data path of a branch export through nbdsh:
# reads, writes (also FUA), trim, zero (with and without NO_HOLE and
# FAST_ZERO), flush, cache and extents, at unaligned offsets and across
# chunk boundaries, checked against a model after every step, on a volume
# whose base commit holds data and whose size is not a multiple of the
# chunk size.  Then: a second connection sees the same bytes (multi-conn),
# extents report the holes, and a commit holds exactly the model.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 9

SOCK=$TMP/nbd.sock
# 2 MiB and 12 KiB: the last 64 KiB chunk is partial.
make_mixed_file "$TMP/base" 2
head -c 12288 /dev/urandom >> "$TMP/base"
cp "$TMP/base" "$TMP/model"
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" import main "$TMP/base" >/dev/null 2>&1
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }
URI="nbd+unix:///main?socket=$SOCK"
export URI MODEL="$TMP/model" CAIRN STORE

# The model lives in $MODEL between steps; each step checks and saves it.
cat > "$TMP/lib.py" <<'EOF'
import os, random, sys
import nbd
CS = 65536
model = bytearray(open(os.environ['MODEL'], 'rb').read())
size = len(model)

def die(msg):
    print('# ' + msg)
    sys.exit(1)

def save():
    open(os.environ['MODEL'], 'wb').write(model)

def check_read(h, off, n, what):
    got = h.pread(n, off)
    if got != model[off:off + n]:
        first = next(i for i in range(n) if got[i] != model[off + i])
        die('%s: read %d bytes at %d differs at byte %d' % (what, n, off,
                                                           off + first))

def extents(h, n, off, flags=0):
    got = []
    def cb(meta, offset, entries, err):
        if meta == nbd.CONTEXT_BASE_ALLOCATION:
            for i in range(0, len(entries), 2):
                got.append((entries[i], entries[i + 1]))
        return 0
    h.block_status(n, off, cb, flags)
    return got
EOF

step () { nbdsh --base-allocation -u "$URI" -c "exec(open('$TMP/lib.py').read())" -c "$1"; }

ok "size and block size are the volume's and the chunk's" step '
if h.get_size() != size: die("size %d, want %d" % (h.get_size(), size))
if h.get_block_size(nbd.SIZE_PREFERRED) != CS: die("preferred block size")
if h.get_block_size(nbd.SIZE_MINIMUM) != 1: die("minimum block size")
if not (h.can_multi_conn() and h.can_fua() and h.can_trim()
        and h.can_zero() and h.can_fast_zero() and h.can_cache()
        and h.can_flush()): die("a feature is not advertised")
check_read(h, 0, size, "base")
'

ok "random writes, trims, zeros, flushes and reads agree with the model" step '
rnd = random.Random(42)
for i in range(600):
    # Offsets near chunk boundaries, unaligned, and lengths up to 3 chunks.
    off = rnd.randrange(0, size // CS + 1) * CS + rnd.randrange(-1500, 1500)
    off = max(0, min(off, size - 1))
    n = min(rnd.choice([1, 511, 512, 513, 4096, 5000, CS - 3, CS, CS + 700,
                        3 * CS]), size - off)
    op = rnd.choice(["write", "write", "write", "fua", "trim", "zero",
                     "zero-nohole", "zero-fast", "flush", "cache", "read"])
    if op in ("write", "fua"):
        data = bytes(rnd.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
        data = data[:n]
        h.pwrite(data, off, nbd.CMD_FLAG_FUA if op == "fua" else 0)
        model[off:off + n] = data
    elif op == "trim":
        h.trim(n, off)
        model[off:off + n] = bytes(n)
    elif op.startswith("zero"):
        flags = {"zero": 0, "zero-nohole": nbd.CMD_FLAG_NO_HOLE,
                 "zero-fast": nbd.CMD_FLAG_FAST_ZERO}[op]
        h.zero(n, off, flags)
        model[off:off + n] = bytes(n)
    elif op == "flush":
        h.flush()
    elif op == "cache":
        h.cache(n, off)
    check_read(h, max(0, off - 700), min(n + 1400, size - max(0, off - 700)),
               "step %d (%s at %d, %d bytes)" % (i, op, off, n))
check_read(h, 0, size, "whole volume")
h.flush()
save()
'

ok "a second connection reads every byte the first wrote" step '
check_read(h, 0, size, "second connection")
'

ok "two connections at once: a write on one is read on the other" step '
h2 = nbd.NBD()
h2.connect_uri(os.environ["URI"])
h.pwrite(b"multi-conn" * 100, 77777)
model[77777:77777 + 1000] = b"multi-conn" * 100
check_read(h2, 77000, 3000, "other connection")
h2.flush()
h2.shutdown()
save()
'

ok "extents: holes read as zeros, cover the range, and REQ_ONE gives one" step '
for off, n in [(0, size), (1, size - 1), (CS - 1, 5 * CS + 3), (size - 5000, 5000)]:
    got = extents(h, n, off)
    pos = off
    for length, flags in got:
        if flags & nbd.STATE_HOLE and any(model[pos:pos + length]):
            die("hole at %d+%d holds data" % (pos, length))
        pos += length
    if not got or pos < off + 1: die("no extent at %d" % off)
one = extents(h, size, 0, nbd.CMD_FLAG_REQ_ONE)
if len(one) != 1: die("REQ_ONE gave %d extents" % len(one))
'

ok "trimmed and zeroed whole chunks are holes at once" step '
h.trim(3 * CS, 4 * CS)
h.zero(2 * CS + 100, 10 * CS - 50)
model[4 * CS:7 * CS] = bytes(3 * CS)
model[10 * CS - 50:12 * CS + 50] = bytes(2 * CS + 100)
for start, end in [(4 * CS, 7 * CS), (10 * CS, 12 * CS)]:
    got = extents(h, end - start, start)
    if got[0][0] < end - start or not got[0][1] & nbd.STATE_HOLE:
        die("[%d, %d) is not one hole: %r" % (start, end, got[:3]))
check_read(h, 0, size, "after trim and zero")
save()
'

# A chunk written with zeros holds no data once sealed: a commit seals.
ok "a chunk written full of zeros is reported as a hole once sealed" step '
h.pwrite(bytes(CS), 20 * CS)
model[20 * CS:21 * CS] = bytes(CS)
import subprocess
subprocess.run([os.environ["CAIRN"], "commit", "main"], check=True,
               stdout=subprocess.DEVNULL)
got = extents(h, CS, 20 * CS)
if got[0][0] < CS or not got[0][1] & nbd.STATE_HOLE:
    die("the zero chunk is %r" % got[:2])
save()
'

nbdinfo --map "$URI" > "$TMP/map"
ok "nbdinfo --map shows holes and data" \
  grep -q 'hole,zero' "$TMP/map" && grep -qw 'data' "$TMP/map"

# The commit made above holds the model, read back through its own export.
id=$("$CAIRN" log main --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
nbdcopy "nbd+unix:///$id?socket=$SOCK" "$TMP/commit.img"
ok "the commit export holds exactly what the branch held" \
  cmp "$TMP/commit.img" "$TMP/model"

done_testing
