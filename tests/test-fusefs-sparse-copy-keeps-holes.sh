#!/usr/bin/env bash
# The holes of a volume show through cairnfs: st_blocks counts only the
# chunks that hold data, SEEK_DATA and SEEK_HOLE find them, and so
# cp --sparse=always, qemu-img and nbdcopy keep them.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
requires python3
requires "$QEMU_IMG"
PATH=/usr/bin:$PATH command -v nbdcopy >/dev/null || skip_all "no nbdcopy"
plan 8

# 64 MiB: data in [0, 1M) and [40M, 40M + 100K), holes elsewhere.
img="$TMP/sparse.img"
truncate -s 64M "$img"
head -c 1048576 /dev/urandom | dd of="$img" conv=notrunc status=none
head -c 102400 /dev/urandom | dd of="$img" bs=1M seek=40 conv=notrunc \
  status=none
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$img" 2>/dev/null)
mount_store
disk="$MNT/commits/$id/disk.img"

# Chunks hold data: 16 + 2 (100K spans two 64K chunks) = 18 of 64K.
ok "du counts only the chunks with data" \
   test "$(du -k "$disk" | cut -f1)" = $((18 * 64))

seeks=$(python3 - "$disk" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
M = 1 << 20
out = [os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE),
       os.lseek(fd, M, os.SEEK_DATA), os.lseek(fd, 40 * M + 5, os.SEEK_DATA),
       os.lseek(fd, 40 * M, os.SEEK_HOLE)]
try:
    os.lseek(fd, 41 * M, os.SEEK_DATA)
    out.append("data")
except OSError as e:
    out.append(e.strerror)
print(*out)
PY
)
M=1048576
ok "SEEK_DATA and SEEK_HOLE find the data and the holes ($seeks)" \
   test "$seeks" = "0 $M $((40 * M)) $((40 * M + 5)) $((40 * M + 131072)) No such device or address"

cp --sparse=always "$disk" "$TMP/copy.img"
ok "cp --sparse=always copies the bytes" cmp "$TMP/copy.img" "$img"
ok "and keeps the holes (du of the copy $(du -k "$TMP/copy.img" | cut -f1)K)" \
   test "$(du -k "$TMP/copy.img" | cut -f1)" -le $((18 * 64))

# qemu-img asks the file for its holes with SEEK_DATA and SEEK_HOLE.
"$QEMU_IMG" map --output=json "$disk" > "$TMP/map.json"
ok "qemu-img map sees the hole after the first MiB" \
   grep -q '"start": 1048576, "length": 40894464, .*"data": false' \
   "$TMP/map.json"
ok "and the data at 40 MiB" \
   grep -q '"start": 41943040, "length": 131072, .*"data": true' \
   "$TMP/map.json"

nbdcopy "$disk" "$TMP/nbdcopy.img"
ok "nbdcopy copies the bytes" cmp "$TMP/nbdcopy.img" "$img"
ok "and keeps the holes (du $(du -k "$TMP/nbdcopy.img" | cut -f1)K)" \
   test "$(du -k "$TMP/nbdcopy.img" | cut -f1)" -le $((18 * 64))
done_testing
