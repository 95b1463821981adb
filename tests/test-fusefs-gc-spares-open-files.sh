#!/usr/bin/env bash
# gc and open files: a volume file open in cairnfs leases its commit, so a
# gc run after the commit is pruned keeps its data and the open file reads
# it all; once the file is closed, the next gc reclaims it.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
"$CAIRN" gc --help > /dev/null 2>&1 || skip_all "cairn gc is not built here"
plan 4

head -c 4194304 /dev/urandom > "$TMP/one.img"
head -c 4194304 /dev/urandom > "$TMP/two.img"
"$CAIRN" init 2>/dev/null
c1=$("$CAIRN" import vm "$TMP/one.img" 2>/dev/null)
"$CAIRN" import vm "$TMP/two.img" > /dev/null 2>&1
mount_store

# Open c1's disk, prune c1, run gc, then read the open file.
python3 - "$MNT/commits/$c1/disk.img" "$TMP" "$CAIRN" "$HELPER" "$STORE" \
  "$c1" > "$TMP/got" <<'PY'
import hashlib, os, subprocess, sys
disk, tmp, cairn, helper, store, commit = sys.argv[1:]
fd = os.open(disk, os.O_RDONLY)
subprocess.run([helper, "prune", store, commit], check=True)
subprocess.run([cairn, "gc"], check=True, stdout=subprocess.DEVNULL,
               stderr=subprocess.DEVNULL)
print(hashlib.sha256(os.pread(fd, 4 << 20, 0)).hexdigest())
print(subprocess.run([helper, "leases", store], capture_output=True,
                     text=True).stdout.strip())
os.close(fd)
PY
ok "gc ran while the pruned commit's file was open, under its lease" \
   test "$(sed -n 2p "$TMP/got")" = "$c1"
ok "and the open file still reads all of the commit's bytes" \
   test "$(sed -n 1p "$TMP/got")" = "$(sha256sum < "$TMP/one.img" | cut -d' ' -f1)"
ok "closed, the lease is gone" test -z "$("$HELPER" leases "$STORE")"
before=$(du -sb "$STORE/packs" | cut -f1)
"$CAIRN" gc > /dev/null 2>&1
after=$(du -sb "$STORE/packs" | cut -f1)
ok "and the next gc reclaims the commit's data ($before -> $after bytes)" \
   test "$after" -lt $((before - 3 * 1048576))
done_testing
