#!/usr/bin/env bash
# test-plugin-random-writes-model: a property test of the whole write
# path.  nbdsh drives nbdkit with the cairn plugin: thousands of random
# writes, unaligned (offsets and lengths to the byte, a third of them
# under 512 bytes, most across a 4 KiB chunk boundary; some all zeros,
# some NBD zero requests) to branches that stay connected, interleaved
# with `cairn commit BRANCH` (through the plugin's control socket) and
# `cairn branch NEW FROM` (FROM a commit, or a live branch) whose new
# branch is written too.  A model of each branch is kept in memory and
# saved to a file at each commit.  Random reads check the model as it
# goes; pauses let the plugin seal chunks between writes.  At the end
# every branch reads back as its model, and every commit made exports as
# its saved model.  The seed is fixed and printed;
# CAIRN_TEST_SEED replays another.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 4

SEED=${CAIRN_TEST_SEED:-20261124}
diag "seed $SEED (CAIRN_TEST_SEED=$SEED replays this run)"
SOCK=$TMP/nbd.sock
"$CAIRN" init --chunk-size 4K >/dev/null 2>&1
# 1 MiB and 3.5 KiB: the last chunk is partial.
SIZE=$(( (1 << 20) + 3584 ))
"$CAIRN" create main "$SIZE"
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }
mkdir "$TMP/models"
export SEED SIZE SOCK CAIRN MODELS=$TMP/models OPS=${CAIRN_TEST_OPS:-20000}

cat > "$TMP/model.py" <<'EOF'
import os, random, subprocess, time, nbd
rng = random.Random(int(os.environ["SEED"]))
SIZE, CS, OPS = int(os.environ["SIZE"]), 4096, int(os.environ["OPS"])
MODELS = os.environ["MODELS"]

def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)

def diag(what):
    print("# " + what, flush=True)

failures = []
def cairn(*args):
    r = subprocess.run([os.environ["CAIRN"]] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append("cairn %s: exit %d: %s"
                        % (" ".join(args), r.returncode, r.stderr.strip()))
    return r.stdout.strip()

def connect(name):
    h = nbd.NBD()
    h.connect_uri("nbd+unix:///%s?socket=%s" % (name, os.environ["SOCK"]))
    return h

branches = {"main": (connect("main"), bytearray(SIZE))}
commits = []                    # commit ids, each saved in MODELS/<id>
def saved(cid, model):
    with open(os.path.join(MODELS, cid), "wb") as f:
        f.write(model)
    commits.append(cid)

def extent():
    """An offset and a length: a third under 512 bytes, most across a
    chunk boundary, all to the byte."""
    r = rng.random()
    n = (rng.randint(1, 511) if r < 0.35 else rng.randint(1, 3 * CS)
         if r < 0.85 else rng.randint(1, 16 * CS))
    if rng.random() < 0.7:        # around a chunk boundary
        b = rng.randrange(1, SIZE // CS + 1) * CS
        off = b - rng.randint(1, n) if n > 1 else b - rng.randint(0, 1)
    else:
        off = rng.randrange(0, SIZE)
    off = max(0, min(off, SIZE - n))
    return off, n

def write(name):
    h, model = branches[name]
    off, n = extent()
    r = rng.random()
    if r < 0.05:
        h.zero(n, off)
        data = bytes(n)
    else:
        data = bytes(n) if r < 0.12 else rng.randbytes(n)
        h.pwrite(data, off)
    model[off:off + n] = data

reads = bad_reads = 0
def read(name):
    global reads, bad_reads
    h, model = branches[name]
    off, n = extent()
    reads += 1
    if h.pread(n, off) != model[off:off + n]:
        bad_reads += 1
        if bad_reads <= 5:
            diag("%s: %d bytes at %d differ from the model" % (name, n, off))

def commit(name):
    cid = cairn("commit", name, "-m", "op %d" % op)
    if cid:
        saved(cid, branches[name][1])

def branch(new):
    if commits and rng.random() < 0.7:
        src = rng.choice(commits)
        with open(os.path.join(MODELS, src), "rb") as f:
            model = bytearray(f.read())
    else:                       # a live branch: committed first
        src = rng.choice(sorted(branches))
        model = bytearray(branches[src][1])
    cairn("branch", new, src)
    # Its base: a commit of what it was made from.
    base = cairn("show", new).split("\n")[0].split(" ")[1]
    saved(base, model)
    branches[new] = (connect(new), model)

for op in range(OPS):
    name = rng.choice(sorted(branches))
    r = rng.random()
    if r < 0.004:
        commit(name)
    elif r < 0.0045 and len(branches) < 8:
        branch("b%d" % op)
    elif r < 0.006:
        branches[name][0].flush()
    elif r < 0.0075:
        time.sleep(0.25)        # the plugin seals chunks after 200 ms quiet
    elif r < 0.1:
        read(name)
    else:
        write(name)
for name in sorted(branches):
    commit(name)
whole = [n for n in sorted(branches)
         if branches[n][0].pread(SIZE, 0) != branches[n][1]]
for f in failures[:5]:
    diag(f)
diag("%d operations, %d branches, %d commits" % (OPS, len(branches),
                                                 len(commits)))
check(not failures, "every cairn commit and branch worked while served "
      "(%d failed)" % len(failures))
check(bad_reads == 0, "every read matched the model (%d of %d did not)"
      % (bad_reads, reads))
check(not whole, "every branch reads back whole as its model %s" % whole)
for cid in commits:
    print("COMMIT " + cid, flush=True)
EOF
nbdsh -c "exec(open('$TMP/model.py').read())" > "$TMP/client.out" 2>&1
grep -v '^PASS\|^FAIL\|^COMMIT' "$TMP/client.out" | sed 's/^\([^#]\)/# \1/'
while read -r verdict what; do
  case $verdict in PASS) pass "$what" ;; FAIL) fail "$what" ;; esac
done < <(grep '^PASS\|^FAIL' "$TMP/client.out")

total=0 same=0
while read -r _ id; do
  total=$((total + 1))
  exports_as "$id" "$TMP/models/$id" && same=$((same + 1)) ||
    diag "commit $id does not export as the model saved when it was made"
done < <(grep '^COMMIT' "$TMP/client.out")
ok "every commit exports as its model ($same of $total)" \
  [ "$total" -gt 0 -a "$same" -eq "$total" ]
done_testing
