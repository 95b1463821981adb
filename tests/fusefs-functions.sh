# fusefs-functions.sh: what cairnfs's tests share.  Source it after
# functions.sh.  It gives a mount point ($MNT) and two ways to mount the
# store there, both unmounted at exit even when a test fails half-way.

requires fusermount3
[ -c /dev/fuse ] || skip_all "no /dev/fuse"

HELPER="$abs_top_builddir/tests/fusefs-helper"
MNT="$TMP/mnt"
mkdir -p "$MNT"

unmount_at_exit () {
  on_exit "fusermount3 -u -q '$MNT' 2>/dev/null || umount -l '$MNT' 2>/dev/null"
}

# mount_store [OPTIONS...]: cairn mount $MNT, as a user would.
mount_store () {
  "$CAIRN" mount "$MNT" "$@" || return 1
  unmount_at_exit
}

# wait_mounted / wait_unmounted: until $MNT is (not) a mount point.
wait_mounted () { retry 300 0.1 mountpoint -q "$MNT"; }
wait_unmounted () { retry 300 0.1 not mountpoint -q "$MNT"; }

# start_cairnfs [OPTIONS...]: cairnfs -f in the background, so that a test
# can signal it ($cairnfs_pid) and read its messages ($CAIRNFS_LOG).
CAIRNFS_LOG="$TMP/cairnfs.log"
start_cairnfs () {
  "$CAIRNFS" -f "$@" "$STORE" "$MNT" 2>"$CAIRNFS_LOG" &
  cairnfs_pid=$!
  unmount_at_exit
  on_exit "kill $cairnfs_pid 2>/dev/null; wait $cairnfs_pid 2>/dev/null"
  wait_mounted
}
