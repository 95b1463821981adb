#!/usr/bin/env bash
# A volume file that is open holds a lease on its commit (one per commit,
# whatever the number of open files), so gc keeps the commit's data; if
# retention prunes the commit meanwhile, the open file keeps returning its
# bytes, while the commit's directory shows only its commit file, new
# opens of its volume fail, and the kernel drops the cached name.  The
# lease ends with the last close.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
plan 10

head -c 2097152 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
c1=$("$CAIRN" import vm "$TMP/disk.img" -m one 2>/dev/null)
c2=$("$CAIRN" commit vm -m two 2>/dev/null)
mount_store
disk="$MNT/commits/$c1/disk.img"

ok "no lease before a file is open" test -z "$("$HELPER" leases "$STORE")"

# Two open files of the commit, held by a reader that waits for $TMP/go,
# then reads both and reports.
python3 - "$disk" "$TMP" <<'PY' &
import hashlib, os, sys, time
disk, tmp = sys.argv[1:]
fds = [os.open(disk, os.O_RDONLY), os.open(disk, os.O_RDONLY)]
open(f"{tmp}/opened", "w").close()
while not os.path.exists(f"{tmp}/go"):
    time.sleep(0.02)
with open(f"{tmp}/got", "w") as out:
    for fd in fds:
        print(hashlib.sha256(os.pread(fd, 4 << 20, 0)).hexdigest(), file=out)
        os.close(fd)
PY
reader=$!
on_exit "touch '$TMP/go'; wait $reader"
retry 200 0.05 test -e "$TMP/opened"
ok "two open files hold one lease, on their commit" \
   test "$("$HELPER" leases "$STORE")" = "$c1"

"$HELPER" prune "$STORE" "$c1"
ok "once pruned, its directory shows only its commit file" \
   test "$(ls "$MNT/commits/$c1")" = commit
ok "which still reads" cmp "$MNT/commits/$c1/commit" <("$CAIRN" cat "$c1")
fails "its volume cannot be opened any more" \
   sh -c "cat '$disk' > /dev/null 2>&1"
ok "the kernel is told its cached name is gone" \
   retry 100 0.1 not test -e "$disk"
ok "the other commit is untouched" \
   cmp "$MNT/commits/$c2/disk.img" "$TMP/disk.img"

touch "$TMP/go"
wait "$reader"
want=$(sha256sum < "$TMP/disk.img" | cut -d' ' -f1)
ok "both open files still read the pruned commit's bytes" \
   test "$(sort -u "$TMP/got")" = "$want"
ok "the lease ends with the last close" \
   test -z "$("$HELPER" leases "$STORE")"
ok "and leaves no lock file behind" \
   test -z "$(ls "$STORE/run" | grep '^lease-')"
done_testing
