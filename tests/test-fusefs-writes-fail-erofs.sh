#!/usr/bin/env bash
# cairnfs is read-only in every sense: the mount is ro, without
# allow_other, and every attempt to write, create, remove, rename, link,
# change attributes or extended attributes fails with EROFS, in every
# directory; nothing changes in the store.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
plan 5

head -c 1048576 /dev/urandom > "$TMP/disk.img"
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/disk.img" 2>/dev/null)
"$CAIRN" tag t1 vm 2>/dev/null
before=$("$CAIRN" log --all --json | sha256sum)
mount_store

options=$(awk -v m="$MNT" '$2 == m { print $4 }' /proc/mounts)
ok "the mount is ro ($options)" grep -q '^ro,' <<< "$options"
fails "and not allow_other" grep -q allow_other <<< "$options"

python3 - "$MNT" "$id" > "$TMP/results" <<'PY'
import errno, os, sys
mnt, cid = sys.argv[1:]
disk = f"{mnt}/commits/{cid}/disk.img"
attempts = {
    "open for writing": lambda: os.open(disk, os.O_WRONLY),
    "open for reading and writing": lambda: os.open(disk, os.O_RDWR),
    "truncate": lambda: os.truncate(disk, 0),
    "create in /": lambda: os.open(f"{mnt}/new", os.O_CREAT | os.O_WRONLY),
    "create in commits/<id>/":
        lambda: os.open(f"{mnt}/commits/{cid}/new", os.O_CREAT | os.O_WRONLY),
    "mkdir in commits/": lambda: os.mkdir(f"{mnt}/commits/x"),
    "mkdir in branches/": lambda: os.mkdir(f"{mnt}/branches/x"),
    "mknod": lambda: os.mknod(f"{mnt}/tags/fifo", 0o600 | 0o010000),
    "unlink a volume": lambda: os.unlink(disk),
    "unlink a tag": lambda: os.unlink(f"{mnt}/tags/t1"),
    "unlink a branch": lambda: os.unlink(f"{mnt}/branches/vm"),
    "rmdir a commit": lambda: os.rmdir(f"{mnt}/commits/{cid}"),
    "rename a tag": lambda: os.rename(f"{mnt}/tags/t1", f"{mnt}/tags/t2"),
    "rename a volume":
        lambda: os.rename(disk, f"{mnt}/commits/{cid}/other.img"),
    "symlink": lambda: os.symlink("x", f"{mnt}/tags/new"),
    "hard link": lambda: os.link(disk, f"{mnt}/commits/{cid}/again.img"),
    "chmod": lambda: os.chmod(disk, 0o666),
    "chown": lambda: os.chown(disk, 1, 1),
    "utime": lambda: os.utime(disk, (0, 0)),
    "setxattr": lambda: os.setxattr(disk, "user.x", b"1"),
    "removexattr": lambda: os.removexattr(disk, "user.x"),
}
for what, attempt in attempts.items():
    try:
        attempt()
        print(f"{what}: succeeded")
    except OSError as e:
        print(f"{what}: {errno.errorcode.get(e.errno, e.errno)}")
PY
grep -v ': EROFS$' "$TMP/results" | while read -r line; do diag "$line"; done
ok "all $(wc -l < "$TMP/results") attempts fail with EROFS" \
   test "$(grep -vc ': EROFS$' "$TMP/results")" = 0
ok "the shell's > too" \
   sh -c "! echo x 2>/dev/null > '$MNT/commits/$id/disk.img'"
ok "and the store did not change" \
   test "$("$CAIRN" log --all --json | sha256sum)" = "$before"
done_testing
