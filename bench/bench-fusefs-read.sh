#!/usr/bin/env bash
# bench-fusefs-read.sh: reading a commit through cairnfs against reading
# it from nbdkit's cairn plugin (issue 4), in the same run, same store:
#
#  1. sequential 1 MiB reads (dd bs=1M) of the commit's disk.img, against
#     nbdcopy reading the commit from nbdkit cairn (goal >= 0.8); also
#     nbdcopy reading the cairnfs file: the same tool on both sides;
#  2. random 4 KiB reads (fio, O_DIRECT, 4 jobs with their own offsets),
#     against fio's nbd engine on nbdkit cairn, same jobs (goal >= 0.5);
#  3. both again against the store's own read path in one process, with no
#     protocol in between (bench-fusefs-tool read): what any adapter could
#     at best deliver here;
#  4. ls -l of commits/ holding 10 000 commits, cold and warm;
#  5. cairnfs's peak RSS over the reads (goal <= cache + 32 MiB).
#
# Each read starts cold in the reader (a fresh mount: empty chunk cache and
# page cache; a fresh nbdkit) and warm below it (the store's packs in the
# OS page cache), so decompression, hashing and the protocols are measured,
# not the disk.  The machine may be shared with other work: measurements
# run in rounds, cairnfs and its peers back to back, and the table gives
# the medians of the rounds and the median of the rounds' ratios.  It also
# gives the CPU time each side spent (reader plus server), which other
# work on the machine disturbs much less than the elapsed time.
#
# The image is the store benchmark's: three quarters a tar stream of real
# files, one quarter zeros.  BENCH_FUSEFS_MIB sets its size (default 1024).
#
# The peer is $abs_top_builddir/nbd-plugin/.libs/nbdkit-cairn-plugin.so.
# If it is not built the benchmark fails, unless CAIRN_BENCH_PLUGIN names
# another build of it, or CAIRN_BENCH_STANDIN=1 asks for a stand-in:
# nbdkit file serving the exported raw image (no decompression, no
# hashing: not the peer the goals are about, and labelled so).

. "$abs_top_srcdir/bench/bench-functions.sh"

TOOL="$abs_top_builddir/bench/bench-fusefs-tool"
CAIRNFS="$abs_top_builddir/fusefs/cairnfs"
MIB=${BENCH_FUSEFS_MIB:-1024}
CACHE_MIB=64
SEQ_ROUNDS=5
RAND_ROUNDS=3
RAND_SECONDS=5
TICK=$(getconf CLK_TCK)
MNT="$BENCH_DIR/mnt"
SOCK="$BENCH_DIR/nbd.sock"
mkdir -p "$MNT"

if [ -f "$PLUGIN" ]; then
  peer_plugin=$PLUGIN
  peer="nbdkit cairn"
elif [ -n "${CAIRN_BENCH_PLUGIN:-}" ] && [ -f "$CAIRN_BENCH_PLUGIN" ]; then
  peer_plugin=$CAIRN_BENCH_PLUGIN
  peer="nbdkit cairn, built elsewhere: $CAIRN_BENCH_PLUGIN"
elif [ "${CAIRN_BENCH_STANDIN:-}" = 1 ]; then
  peer_plugin=
  peer="STAND-IN: nbdkit file on the exported raw image (no cairn plugin)"
else
  echo "bench-fusefs-read: $PLUGIN is not built: build nbd-plugin/, or set" \
       "CAIRN_BENCH_PLUGIN to a build of it, or CAIRN_BENCH_STANDIN=1 to" \
       "measure against nbdkit file on the exported image instead" >&2
  exit 1
fi

# CPU seconds of the children this shell has waited for, from bash's
# times written to FILE (in this shell: a subshell would count its own).
children_cpu () {
  awk 'NR == 2 { printf "%.3f\n", m($1) + m($2) }
       function m(t,  p) { split(t, p, "m"); return p[1] * 60 + p[2] }' "$1"
}
# CPU seconds process PID has used.
process_cpu () {
  awk -v t="$TICK" '{ printf "%.3f\n", ($14 + $15) / t }' "/proc/$1/stat"
}
now () { date +%s.%N; }
# timed CMD...: runs CMD; sets $wall (s) and $cpu (its CPU seconds).
timed () {
  local t0 t1
  times > "$BENCH_DIR/times0"
  t0=$(now)
  "$@"
  t1=$(now)
  times > "$BENCH_DIR/times1"
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  cpu=$(awk -v a="$(children_cpu "$BENCH_DIR/times0")" \
            -v b="$(children_cpu "$BENCH_DIR/times1")" \
            'BEGIN { printf "%.3f", b - a }')
}
# median COLUMN FILE
median () {
  awk -v c="$1" '{ print $c }' "$2" | sort -g |
    awk '{ v[NR] = $1 }
         END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
# median_ratio A B FILE: median over the rounds of column A / column B.
median_ratio () {
  awk -v a="$1" -v b="$2" '{ print ($b > 0 ? $a / $b : 0) }' "$3" \
    > "$3.ratio"
  median 1 "$3.ratio" | awk '{ printf "%.2f", $1 }'
}

mount_cairnfs () {
  "$CAIRNFS" -f -o "cache=${CACHE_MIB}M" "$CAIRN_STORE" "$MNT" \
    2>>"$BENCH_DIR/cairnfs.log" &
  cairnfs_pid=$!
  until mountpoint -q "$MNT"; do
    kill -0 "$cairnfs_pid" || { cat "$BENCH_DIR/cairnfs.log" >&2; exit 1; }
    sleep 0.05
  done
}
# Unmounts; $server_cpu gets cairnfs's CPU seconds, and its peak RSS (KiB)
# goes to $BENCH_DIR/rss.
unmount_cairnfs () {
  server_cpu=$(process_cpu "$cairnfs_pid")
  awk '/^VmHWM/ { print $2 }' "/proc/$cairnfs_pid/status" \
    >> "$BENCH_DIR/rss"
  fusermount3 -u "$MNT"
  wait "$cairnfs_pid"
}
bench_on_exit "fusermount3 -u -q '$MNT' 2>/dev/null || :"

start_peer () {
  rm -f "$SOCK"
  if [ -n "$peer_plugin" ]; then
    nbdkit --foreground --unix "$SOCK" "$peer_plugin" \
      store="$CAIRN_STORE" "cache=${CACHE_MIB}M" &
    uri="nbd+unix:///$id?socket=$SOCK"
  else
    nbdkit --foreground --unix "$SOCK" file "$BENCH_DIR/raw.img" &
    uri="nbd+unix:///?socket=$SOCK"
  fi
  peer_pid=$!
  until [ -S "$SOCK" ]; do
    kill -0 "$peer_pid" || exit 1
    sleep 0.05
  done
}
# Stops nbdkit; $server_cpu gets its CPU seconds.
stop_peer () {
  server_cpu=$(process_cpu "$peer_pid")
  kill "$peer_pid"
  wait "$peer_pid" || :
}
bench_on_exit "kill \$peer_pid 2>/dev/null || :"

# fio_rand ARGS...: random 4 KiB reads; $reads gets the number done.
fio_rand () {
  fio --name=rand --rw=randread --bs=4k --numjobs=4 --randrepeat=0 \
      --time_based --runtime="$RAND_SECONDS" --group_reporting \
      --output-format=json --output="$BENCH_DIR/fio.json" "$@" >/dev/null
  reads=$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["total_ios"])' \
            "$BENCH_DIR/fio.json")
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== preparing a ${MIB} MiB commit" >&2
img="$BENCH_DIR/mixed.img"
tar cf - /usr/bin /usr/lib/x86_64-linux-gnu /usr/share/doc /usr/share/man \
    2>/dev/null | head -c $(( MIB * 3 / 4 << 20 )) > "$img" || :
truncate -s $(( MIB << 20 )) "$img"
"$CAIRN" init >/dev/null 2>&1
id=$("$CAIRN" import vm "$img" 2>/dev/null)
if [ -z "$peer_plugin" ]; then
  mv "$img" "$BENCH_DIR/raw.img"
  cat "$BENCH_DIR/raw.img" > /dev/null
fi
rm -f "$img"
cat "$CAIRN_STORE"/packs/* > /dev/null
disk="$MNT/commits/$id/disk.img"

# Columns: per reader, elapsed and CPU seconds (reader + server).
echo "== sequential reads, $SEQ_ROUNDS rounds" >&2
for round in $(seq 1 "$SEQ_ROUNDS"); do
  mount_cairnfs
  timed dd if="$disk" of=/dev/null bs=1M status=none
  unmount_cairnfs
  dd_wall=$wall dd_cpu=$(awk -v a="$cpu" -v b="$server_cpu" 'BEGIN { print a + b }')

  mount_cairnfs
  timed nbdcopy "$disk" null:
  unmount_cairnfs
  fsnc_wall=$wall fsnc_cpu=$(awk -v a="$cpu" -v b="$server_cpu" 'BEGIN { print a + b }')

  start_peer
  timed nbdcopy "$uri" null:
  stop_peer
  peer_wall=$wall peer_cpu=$(awk -v a="$cpu" -v b="$server_cpu" 'BEGIN { print a + b }')

  timed "$TOOL" read "$CAIRN_STORE" "$id" seq 2 0 > /dev/null
  echo "$dd_wall $dd_cpu $fsnc_wall $fsnc_cpu $peer_wall $peer_cpu $wall $cpu" |
    awk -v m="$MIB" '{ for (i = 1; i <= NF; i += 2) printf "%.0f %.3f ", m / $i, $(i + 1) * 1024 / m; print "" }' \
    >> "$BENCH_DIR/seq"
  echo "   round $round (MiB/s, CPU s/GiB): $(tail -n 1 "$BENCH_DIR/seq")" >&2
done

echo "== random 4 KiB reads, $RAND_ROUNDS rounds of $RAND_SECONDS s" >&2
for round in $(seq 1 "$RAND_ROUNDS"); do
  mount_cairnfs
  timed fio_rand --filename="$disk" --ioengine=psync --direct=1
  unmount_cairnfs
  fs="$reads $wall $(awk -v a="$cpu" -v b="$server_cpu" 'BEGIN { print a + b }')"

  start_peer
  timed fio_rand --ioengine=nbd --uri="$uri"
  stop_peer
  pr="$reads $wall $(awk -v a="$cpu" -v b="$server_cpu" 'BEGIN { print a + b }')"

  "$TOOL" read "$CAIRN_STORE" "$id" rand 4 "$RAND_SECONDS" > "$BENCH_DIR/tool"
  # Columns: reads/s and CPU microseconds per read of cairnfs, the peer;
  # reads/s in-process.
  echo "$fs $pr $(cat "$BENCH_DIR/tool")" |
    awk -v s="$RAND_SECONDS" '{ printf "%.0f %.1f %.0f %.1f %.0f\n", $1 / s, $3 * 1e6 / $1, $4 / s, $6 * 1e6 / $4, $7 }' \
    >> "$BENCH_DIR/rand"
  echo "   round $round (reads/s, CPU us/read): $(tail -n 1 "$BENCH_DIR/rand")" >&2
done

echo "== 10 000 commits" >&2
"$TOOL" commits "$CAIRN_STORE" vm 9999
mount_cairnfs
timed ls -l "$MNT/commits" > "$BENCH_DIR/ls"
ls_cold=$wall
timed ls -l "$MNT/commits" > /dev/null
ls_warm=$wall
unmount_cairnfs
entries=$(grep -c '^d' "$BENCH_DIR/ls")

rss_mib=$(( $(sort -n "$BENCH_DIR/rss" | tail -n 1) / 1024 ))
rss_bound=$(( CACHE_MIB + 32 ))

S="$BENCH_DIR/seq" R="$BENCH_DIR/rand"
row () { printf '%-46s %10s %10s %7s  %s\n' "$@"; }
echo
echo "== cairnfs reading a ${MIB} MiB commit: $(nproc) cores, load average" \
     "$load at the start, cache ${CACHE_MIB} MiB"
echo "   peer: $peer"
echo "   medians of $SEQ_ROUNDS and $RAND_ROUNDS rounds; ratio: the median" \
     "of the rounds' ratios, cairnfs / peer"
row "" "cairnfs" "peer" "ratio" "goal"
row "sequential 1 MiB reads: dd, MiB/s" "$(median 1 "$S")" \
    "$(median 5 "$S")" "$(median_ratio 1 5 "$S")" ">= 0.8 (peer: nbdcopy)"
row "  CPU seconds per GiB, reader + server" "$(median 2 "$S")" \
    "$(median 6 "$S")" "$(median_ratio 6 2 "$S")" "(peer / cairnfs)"
row "  nbdcopy of the cairnfs file, MiB/s" "$(median 3 "$S")" \
    "$(median 5 "$S")" "$(median_ratio 3 5 "$S")" "(same tool)"
row "  store in-process (2 threads), MiB/s" "$(median 1 "$S")" \
    "$(median 7 "$S")" "$(median_ratio 1 7 "$S")" "(bound, no protocol)"
row "random 4 KiB reads: fio, 4 jobs, reads/s" "$(median 1 "$R")" \
    "$(median 3 "$R")" "$(median_ratio 1 3 "$R")" ">= 0.5 (peer: fio nbd)"
row "  CPU microseconds per read" "$(median 2 "$R")" \
    "$(median 4 "$R")" "$(median_ratio 4 2 "$R")" "(peer / cairnfs)"
row "  store in-process (4 threads), reads/s" "$(median 1 "$R")" \
    "$(median 5 "$R")" "$(median_ratio 1 5 "$R")" "(bound, no protocol)"
row "ls -l commits/ ($entries entries), cold, s" "$ls_cold" "" "" ""
row "ls -l commits/, warm, s" "$ls_warm" "" "" ""
row "peak RSS of cairnfs, MiB" "$rss_mib" "$rss_bound" \
    "$(ratio "$rss_mib" "$rss_bound")" "<= 1.0 (peer: cache + 32 MiB)"
