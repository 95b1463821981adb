#!/usr/bin/env bash
# Reads stay correct while commits are taken in parallel: a commit's file,
# open all along or opened again and again, keeps its bytes; a file opened
# through the moving branch link holds one whole commit, never a mix; and
# the new commits show up, without a remount.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
plan 7

img="$TMP/disk.img"
head -c 8388608 /dev/urandom > "$img"
"$CAIRN" init 2>/dev/null
first=$("$CAIRN" import vm "$img" -m first 2>/dev/null)
echo "$(sha256sum < "$img" | cut -d' ' -f1)" > "$TMP/versions"
mount_store

# The writer: 15 more commits, each changing 64K somewhere, recording the
# sha256 of every version.
writer () {
  local i
  for i in $(seq 1 15); do
    head -c 65536 /dev/urandom |
      dd of="$img" bs=64K seek=$((RANDOM % 128)) conv=notrunc status=none
    "$CAIRN" import vm "$img" -m "change $i" >> "$TMP/ids" 2>/dev/null ||
      echo "import $i failed" >> "$TMP/ids"
    sha256sum < "$img" | cut -d' ' -f1 >> "$TMP/versions"
  done
}
writer &
writer_pid=$!

# The readers, until the writer is done: one file open all along, the same
# file opened anew, and the branch's disk opened anew.
python3 - "$MNT" "$first" "$writer_pid" > "$TMP/reads" <<'PY'
import hashlib, os, sys
mnt, first, writer = sys.argv[1], sys.argv[2], int(sys.argv[3])
path = f"{mnt}/commits/{first}/disk.img"
size = os.path.getsize(path)
held = os.open(path, os.O_RDONLY)
def alive():
    try:
        os.kill(writer, 0)
        return True
    except ProcessLookupError:
        return False
def sha_of(fd):
    return hashlib.sha256(os.pread(fd, size, 0)).hexdigest()
rounds = 0
while True:
    last = not alive()
    print("held", sha_of(held))
    fd = os.open(path, os.O_RDONLY)
    print("reopened", sha_of(fd))
    os.close(fd)
    fd = os.open(f"{mnt}/branches/vm/disk.img", os.O_RDONLY)
    print("branch", sha_of(fd))
    os.close(fd)
    rounds += 1
    if last:
        break
print("rounds", rounds)
PY
wait "$writer_pid"

sha_first=$(head -n 1 "$TMP/versions")
diag "$(grep rounds "$TMP/reads"), $(grep '^branch' "$TMP/reads" | sort -u | wc -l) versions seen through the branch"
ok "the writer made 15 commits" \
   test "$(grep -c '^[0-9a-f]\{64\}$' "$TMP/ids")" = 15
ok "the open file kept the first commit's bytes" \
   test "$(grep '^held' "$TMP/reads" | sort -u)" = "held $sha_first"
ok "so did every new open of it" \
   test "$(grep '^reopened' "$TMP/reads" | sort -u)" = "reopened $sha_first"
bad=$(grep '^branch' "$TMP/reads" | cut -d' ' -f2 | grep -cvxF -f "$TMP/versions")
ok "every read through the branch was one whole version ($bad were not)" \
   test "$bad" = 0
last=$(tail -n 1 "$TMP/ids")
ok "the new commits show in commits/" \
   test "$(ls "$MNT/commits" | wc -l)" = 16
ok "the branch link points at the last one" \
   test "$(readlink "$MNT/branches/vm")" = "../commits/$last"
ok "whose disk is the last version" \
   test "$(sha256sum < "$MNT/commits/$last/disk.img" | cut -d' ' -f1)" = \
        "$(tail -n 1 "$TMP/versions")"
done_testing
