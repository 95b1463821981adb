#!/usr/bin/env bash
# A chunk whose stored bytes are damaged fails the reads of its own range
# with EIO and a log line naming the chunk and the commit; every other
# range of the file still reads, also next to it and through the page
# cache.
source ./functions.sh
source "$abs_top_srcdir/tests/fusefs-functions.sh"
plan 9

# 2 MiB of random bytes: 32 chunks of 64K, all different.
head -c 2097152 /dev/urandom > "$TMP/random.img"
"$CAIRN" init 2>/dev/null
id=$("$CAIRN" import vm "$TMP/random.img" 2>/dev/null)

# Flip one bit in the middle of chunk 13's stored bytes.
read -r chunk pack offset length < <("$HELPER" chunk "$STORE" "$id" disk 13)
at=$((offset + length / 2))
byte=$(od -An -tu1 -j "$at" -N1 "$pack" | tr -d ' ')
printf "\\$(printf %o $((byte ^ 1)))" |
  dd of="$pack" bs=1 seek="$at" conv=notrunc status=none
start_cairnfs
disk="$MNT/commits/$id/disk.img"
K=65536

ok "the chunks before it read, through the page cache" \
   cmp <(dd if="$disk" bs=$K count=13 status=none) \
       <(head -c $((13 * K)) "$TMP/random.img")
ok "so do the chunks after it" \
   cmp <(dd if="$disk" bs=$K skip=14 status=none) \
       <(tail -c +$((14 * K + 1)) "$TMP/random.img")

failed=
for i in $(seq 0 31); do
  if ! dd if="$disk" of="$TMP/piece" bs=$K skip="$i" count=1 iflag=direct \
       status=none 2>"$TMP/dd.err"; then
    failed="$failed $i"
    grep -q "Input/output error" "$TMP/dd.err" || failed="$failed(not EIO)"
  elif ! cmp -s "$TMP/piece" \
       <(dd if="$TMP/random.img" bs=$K skip="$i" count=1 status=none); then
    failed="$failed $i(wrong bytes)"
  fi
done
ok "read one by one, only chunk 13 fails, with EIO (failed:$failed)" \
   test "$failed" = " 13"
fails "a read of its first byte fails" \
   dd if="$disk" of=/dev/null bs=1 skip=$((13 * K)) count=1 \
      status=none
fails "a read of its last byte fails" \
   dd if="$disk" of=/dev/null bs=1 skip=$((14 * K - 1)) count=1 \
      status=none
read_all () { cat "$1" > /dev/null 2>&1; }
fails "reading the whole file fails" read_all "$disk"
ok "the log names the chunk" grep -q "chunk $chunk is corrupt" "$CAIRNFS_LOG"
ok "and the commit" grep -q "read error in commit $id volume disk" \
   "$CAIRNFS_LOG"
fusermount3 -u "$MNT"
wait "$cairnfs_pid"
ok "cairnfs still exits cleanly ($?)" test $? = 0
done_testing
