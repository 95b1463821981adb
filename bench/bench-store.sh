#!/usr/bin/env bash
# bench-store.sh: the store's benchmarks (issue 2), each against a peer
# measured in the same run:
#
#  1. commit and branch latency, in-process (bench-commit);
#  2. import of a 2 GiB image of mixed real data (binaries, text, zeros)
#     against `zstd -1 -T0` compressing the same file, both from a warm
#     page cache;
#  3. dedup: the same image into a second branch, and with 1 MiB changed;
#  4. the peak RSS of that import.
#
# BENCH_IMAGE_MIB sets the image size (default 2048), BENCH_COMMITS the
# number of commits timed (default 1000).

. "$abs_top_srcdir/bench/bench-functions.sh"

mib=${BENCH_IMAGE_MIB:-2048}
commits=${BENCH_COMMITS:-1000}

echo "== commit and branch latency ($commits commits)"
mkdir -p "$BENCH_DIR/commit"
"$abs_top_builddir/bench/bench-commit" "$BENCH_DIR/commit" "$commits"
rm -rf "$BENCH_DIR/commit"

# The image: three quarters a tar stream of real files (executables and
# libraries, documentation text), one quarter zeros, like a disk that is
# not full.
img="$BENCH_DIR/mixed.img"
data_mib=$(( mib * 3 / 4 ))
tar cf - /usr/bin /usr/lib/x86_64-linux-gnu /usr/share/doc /usr/share/man \
    2>/dev/null | head -c $(( data_mib << 20 )) > "$img" || :
truncate -s $(( mib << 20 )) "$img"
# Both start from a warm cache, and with the image on disk: otherwise its
# writeback (1.5 GiB, due 30 s after tar wrote it) competes with the
# import's own writes and flushes, which zstd to /dev/null has none of.
sync
cat "$img" > /dev/null

t0=$(date +%s.%N)
zstd -q -1 -T0 -c "$img" > /dev/null
t1=$(date +%s.%N)
zstd_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')

"$CAIRN" init >/dev/null 2>&1
t0=$(date +%s.%N)
/usr/bin/time -f %M -o "$BENCH_DIR/rss" "$CAIRN" import a "$img" \
  >/dev/null 2>"$BENCH_DIR/import.log"
t1=$(date +%s.%N)
cairn_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
rss_kib=$(cat "$BENCH_DIR/rss")

# Bytes the store holds: packs, plus the index pages LMDB uses (its file
# also has preallocated headroom, which is not data).
store_bytes () {
  local packs pages
  packs=$(du -sb "$CAIRN_STORE/packs" | cut -f1)
  pages=$(mdb_stat -e "$CAIRN_STORE/index" | awk '/pages used/ { print $NF }')
  echo $(( packs + pages * 4096 ))
}
before=$(store_bytes)
"$CAIRN" import b "$img" >/dev/null 2>&1
after_same=$(store_bytes)
# 1 MiB of new random bytes at an odd place.
dd if=/dev/urandom of="$img" bs=1M count=1 seek=$(( data_mib / 3 )) \
   conv=notrunc status=none
"$CAIRN" import b "$img" >/dev/null 2>&1
after_changed=$(store_bytes)

size=$(( mib << 20 ))
echo
echo "== import of a ${mib} MiB image of mixed data"
printf '%-44s %10s %10s %8s\n' "" "seconds" "MB/s" "ratio"
printf '%-44s %10.2f %10.0f %8s\n' "zstd -1 -T0 (peer, to /dev/null)" \
  "$zstd_s" "$(awk -v s="$size" -v t="$zstd_s" 'BEGIN { print s / t / 1e6 }')" 1.00
printf '%-44s %10.2f %10.0f %8s   (goal >= 0.70)\n' \
  "cairn import (hash + zstd:1 + fdatasync)" "$cairn_s" \
  "$(awk -v s="$size" -v t="$cairn_s" 'BEGIN { print s / t / 1e6 }')" \
  "$(ratio "$zstd_s" "$cairn_s")"
sed 's/^/  /' "$BENCH_DIR/import.log"
echo
echo "== dedup and memory"
printf '%-52s %14s %10s\n' "" "store growth" "goal"
printf '%-52s %14s %10s\n' "same image into a second branch" \
  "$(( (after_same - before) >> 10 )) KiB ($(awk -v g=$(( after_same - before )) -v s="$size" 'BEGIN { printf "%.3f%%", 100 * g / s }'))" \
  "< 1%"
printf '%-52s %14s %10s\n' "the image with 1 MiB changed" \
  "$(( (after_changed - after_same) >> 10 )) KiB" "< 2048 KiB"
printf '%-52s %14s %10s\n' "peak RSS of cairn import" "$(( rss_kib >> 10 )) MiB" \
  "< 64 MiB"
