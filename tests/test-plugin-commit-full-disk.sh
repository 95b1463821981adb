#!/usr/bin/env bash
# A commit of a served branch on a full disk fails, changes nothing and
# loses nothing.  The branch has more chunks than the plugin keeps in
# memory ($CAIRN_TEST_ENTRY_CACHE), so the commit must first write the
# records of the evicted ones to a spill file; with the store's tmpfs full
# that write fails.  The commit must then stop with one clear line, not go
# on without those chunks (an earlier version did, and marked them
# committed all the same).  With room again, the next commit holds every
# write, and so does the branch after nbdkit is killed and restarted.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
small_store 48
plan 7

"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 256M

SOCK=$TMP/nbd.sock
nbdkit_env+=(CAIRN_TEST_ENTRY_CACHE=16)
start_nbdkit "$SOCK" store="$CAIRN_STORE" || { fail "nbdkit starts"; exit 1; }

# One client stays connected throughout, so the plugin holds the branch
# and the commits go through its control socket.  It writes 4 KiB of its
# own at the start of each of 2000 chunks (the same into a model file),
# flushes, and lets the sealer seal them and evict all but 16 (it seals
# after 200 ms of quiet; 4 s leave it time under a sanitizer).  Then the
# disk is filled, all but two pages, and a commit asked for.
chunk=$(awk '/^chunk-size/ { print $2 }' "$CAIRN_STORE/config")
truncate -s 256M "$TMP/model.img"
export -f store_refs_fingerprint
export CAIRN SOCK CHUNK=$chunk MODEL=$TMP/model.img FILLER=$mnt/filler \
  FINGERPRINTS=$TMP/fingerprint
nbdsh -u "nbd+unix:///main?socket=$SOCK" -c '
import os, subprocess, time
cs, model = int(os.environ["CHUNK"]), open(os.environ["MODEL"], "r+b")
def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
def cairn(*args):
    return subprocess.run([os.environ["CAIRN"]] + list(args),
                          capture_output=True, text=True)
for i in range(2000):
    data = ((b"chunk %06d " % i) * 316)[:4096]
    h.pwrite(data, i * cs)
    model.seek(i * cs)
    model.write(data)
model.close()
h.flush()
time.sleep(4)
def fingerprint(name):
    with open(os.environ["FINGERPRINTS"] + "." + name, "w") as f:
        subprocess.run(["bash", "-c", "store_refs_fingerprint"], stdout=f, check=True)
fingerprint("before")
subprocess.run(["dd", "if=/dev/zero", "of=" + os.environ["FILLER"],
                "bs=64k"], capture_output=True)
# Two pages free: room for small files (the gc pin of the commit), not
# for the list of the evicted chunks (48 bytes each).
os.truncate(os.environ["FILLER"], os.path.getsize(os.environ["FILLER"]) - 8192)
r = cairn("commit", "main", "-m", "on a full disk")
check(r.returncode == 1, "a commit on the full disk: exit 1 (%d)" % r.returncode)
err = r.stderr.strip()
check(err.count("\n") == 0 and "evicted chunks: No space left" in err,
      "with one line saying why: " + err)
fingerprint("after")
os.unlink(os.environ["FILLER"])
r = cairn("commit", "main", "-m", "with room again")
check(r.returncode == 0, "with room again, the commit succeeds " + r.stderr.strip())
print("ID " + r.stdout.strip(), flush=True)
' > "$TMP/client.out" 2>&1
while read -r verdict what; do
  case $verdict in
    PASS) pass "$what" ;;
    FAIL) fail "$what" ;;
  esac
done < "$TMP/client.out"
grep -v '^\(PASS\|FAIL\|ID\) ' "$TMP/client.out" | sed 's/^/# /'
ok "the failed commit changed no ref and made no commit" \
  cmp "$TMP/fingerprint.before" "$TMP/fingerprint.after"
id=$(sed -n 's/^ID //p' "$TMP/client.out")
"$CAIRN" export "$id" "$TMP/out.img" 2>/dev/null
ok "the commit made with room again holds every write" \
  cmp "$TMP/model.img" "$TMP/out.img"

kill -9 "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null
start_nbdkit "$SOCK" store="$CAIRN_STORE"
ok "nbdkit restarts after kill -9" test $? -eq 0
rm -f "$TMP/out.img"
nbdcopy "nbd+unix:///main?socket=$SOCK" "$TMP/out.img"
ok "and the branch still holds every write" cmp "$TMP/model.img" "$TMP/out.img"
done_testing
