#!/usr/bin/env bash
# bench-plugin-fio: nbdkit's cairn plugin under fio's nbd engine, against
# its peers measured in the same run on the same data:
#
#   - 4K random read, 4K random write, 1M sequential read and write, all
#     at iodepth 16, against nbdkit file on a raw file (targets 0.7, 0.5,
#     0.8, 0.5 x) and qemu-nbd on a qcow2 of the same image (1.0 x);
#   - commits every 100 ms through the branch's control socket while fio
#     writes 4K at random, at a busy VM's 1000 IOPS and flat out: the
#     commit round trip (p50, p99) and fio's p99 completion latency with
#     and without commits (goal: within 2 x), ROUNDS times in turns;
#   - the plugin's peak RSS serving a 1 TiB sparse branch to fio random
#     reads and writes (target: 64 MiB plus the configured cache), without
#     and with a commit every 2 s.
#
# The disk is BENCH_PLUGIN_MIB (default 1024) MiB of mixed data (random,
# zeros, text), imported into a branch and copied raw and as qcow2.  The
# plugin's chunk cache is BENCH_PLUGIN_CACHE (default 1G): the disk's
# data fits in it, as the raw file and the qcow2 fit in the page cache
# that serves the peers; one more run shows sequential reads through a
# 64M cache, where every chunk is read, decompressed and verified.  Every
# server has its own copy and sees the same fio jobs in the same order
# (reads before writes).  The machine may be shared: each workload runs
# ROUNDS times, the three servers back to back in each round, and the
# table gives the median of the rounds and the median of the rounds'
# ratios.  Everything is in the page cache: the store's packs as much as
# the raw file, so what is measured is the servers, not the disk.
source "$(dirname "$0")/bench-functions.sh"

MIB=${BENCH_PLUGIN_MIB:-1024}
CACHE=${BENCH_PLUGIN_CACHE:-1G}
SECONDS_PER_RUN=${BENCH_PLUGIN_SECONDS:-5}
ROUNDS=${BENCH_PLUGIN_ROUNDS:-3}
NBDKIT=${CAIRN_NBDKIT:-nbdkit}

for tool in fio qemu-img qemu-nbd "$NBDKIT"; do
  command -v "$tool" >/dev/null || { echo "bench-plugin-fio: $tool is not installed" >&2; exit 1; }
done
[ -f "$PLUGIN" ] || { echo "bench-plugin-fio: build $PLUGIN first" >&2; exit 1; }
PY=/usr/bin/python3

# ---- the data -------------------------------------------------------

echo "preparing a $MIB MiB disk (random, zeros and text, like a VM's)..."
for (( i = 0; i < MIB; i++ )); do
  case $((i % 4)) in
    0) head -c 1048576 /dev/urandom ;;
    1) head -c 1048576 /dev/zero ;;
    2) yes "cairn bench line $i $RANDOM" | head -c 1048576 ;;
    3) head -c 524288 /dev/urandom; head -c 524288 /dev/zero ;;
  esac
done > "$BENCH_DIR/disk.raw"
qemu-img convert -f raw -O qcow2 "$BENCH_DIR/disk.raw" "$BENCH_DIR/disk.qcow2"
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" import bench "$BENCH_DIR/disk.raw" >/dev/null 2>&1
"$CAIRN" create sparse 1T
CHUNK=$(awk '/^chunk-size/ { print $2 }' "$CAIRN_STORE/config")

# ---- servers --------------------------------------------------------

# start_server NAME COMMAND...: a server in the background on
# $BENCH_DIR/NAME.sock; sets ${NAME}_pid.
start_server () {
  local name=$1 sock=$BENCH_DIR/$1.sock i; shift
  rm -f "$sock"
  "$@" >"$BENCH_DIR/$name.log" 2>&1 &
  eval "${name}_pid=$!"
  bench_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"
  for i in $(seq 1 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
  echo "bench-plugin-fio: $name did not start:" >&2
  cat "$BENCH_DIR/$name.log" >&2
  exit 1
}
start_server cairn "$NBDKIT" --foreground --unix "$BENCH_DIR/cairn.sock" \
  "$PLUGIN" store="$CAIRN_STORE" cache="$CACHE"
start_server file "$NBDKIT" --foreground --unix "$BENCH_DIR/file.sock" \
  file "$BENCH_DIR/disk.raw"
start_server qemu qemu-nbd --format=qcow2 --persistent --shared=8 \
  --cache=writeback --socket="$BENCH_DIR/qemu.sock" "$BENCH_DIR/disk.qcow2"
uri_cairn="nbd+unix:///bench?socket=$BENCH_DIR/cairn.sock"
uri_file="nbd+unix:///?socket=$BENCH_DIR/file.sock"
uri_qemu="nbd+unix:///?socket=$BENCH_DIR/qemu.sock"

# ---- fio ------------------------------------------------------------

# run_fio URI RW BS [EXTRA...]: one fio job; prints "IOPS MiB/s P99_US"
# of its reads or writes (both for randrw).
run_fio () {
  local uri=$1 rw=$2 bs=$3; shift 3
  fio --name=bench --ioengine=nbd --uri="$uri" --rw="$rw" --bs="$bs" \
    --iodepth=16 --time_based --runtime="$SECONDS_PER_RUN" --ramp_time=1 \
    --norandommap --randrepeat=0 --output-format=json \
    --output="$BENCH_DIR/fio.json" "$@" >"$BENCH_DIR/fio.err" 2>&1 || {
      echo "bench-plugin-fio: fio $rw $bs on $uri failed:" >&2
      tail -n 5 "$BENCH_DIR/fio.err" "$BENCH_DIR/cairn.log" >&2
      exit 1; }
  $PY - "$BENCH_DIR/fio.json" "$rw" <<'EOF'
import json, sys
job, rw = json.load(open(sys.argv[1]))["jobs"][0], sys.argv[2]
sides = [job[s] for s in ("read", "write")
         if rw == "randrw" or (s == "write") == ("write" in rw)]
p99 = max(s["clat_ns"]["percentile"]["99.000000"] for s in sides) / 1000
print("%.0f %.1f %.0f" % (sum(s["iops"] for s in sides),
                          sum(s["bw"] for s in sides) / 1024, p99))
EOF
}

median () { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

workloads=("4K randread:randread:4k:0.7"
           "1M seq read:read:1M:0.8"
           "4K randwrite:randwrite:4k:0.5"
           "1M seq write:write:1M:0.5")
# Steady state: every server has read the whole disk once (the raw file
# and the qcow2 sit in the page cache after being written; this fills
# cairn's chunk cache).
for uri in "$uri_cairn" "$uri_file" "$uri_qemu"; do
  nbdcopy "$uri" null:
done
declare -A got ratio_f ratio_q
echo "fio, nbd engine, iodepth 16, $SECONDS_PER_RUN s per run (+1 s ramp), $ROUNDS rounds;"
echo "cairn: chunk $CHUNK bytes, cache=$CACHE; nbdkit file: raw file; qemu-nbd: qcow2, cache=writeback"
for w in "${workloads[@]}"; do
  IFS=: read -r label rw bs target <<<"$w"
  c_all= f_all= q_all= rf_all= rq_all=
  unit=IOPS; col=1
  [ "$bs" = 1M ] && { unit=MiB/s; col=2; }
  for (( round = 1; round <= ROUNDS; round++ )); do
    c=$(run_fio "$uri_cairn" "$rw" "$bs" | cut -d' ' -f$col)
    f=$(run_fio "$uri_file" "$rw" "$bs" | cut -d' ' -f$col)
    q=$(run_fio "$uri_qemu" "$rw" "$bs" | cut -d' ' -f$col)
    c_all+=" $c" f_all+=" $f" q_all+=" $q"
    rf_all+=" $(ratio "$c" "$f")" rq_all+=" $(ratio "$c" "$q")"
  done
  got[$label]="$(echo $c_all | median) $(echo $f_all | median) $(echo $q_all | median) $unit"
  ratio_f[$label]=$(echo $rf_all | median)
  ratio_q[$label]=$(echo $rq_all | median)
  echo "  $label rounds: cairn$c_all / file$f_all / qemu-nbd$q_all"
done

verdict () { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t ? "ok" : "MISSED") }'; }
echo
printf '%-14s %10s %10s %10s %-6s | %6s %6s %-6s | %6s %6s %-6s\n' \
  workload cairn "nbdkit-file" qemu-nbd unit "xfile" target "" "xqemu" target ""
for w in "${workloads[@]}"; do
  IFS=: read -r label rw bs target <<<"$w"
  read -r c f q unit <<<"${got[$label]}"
  printf '%-14s %10s %10s %10s %-6s | %6s %6s %-6s | %6s %6s %-6s\n' \
    "$label" "$c" "$f" "$q" "$unit" "${ratio_f[$label]}" "$target" \
    "$(verdict "${ratio_f[$label]}" "$target")" "${ratio_q[$label]}" 1.0 \
    "$(verdict "${ratio_q[$label]}" 1.0)"
done

# Sequential reads that miss the cache: every chunk is fetched from its
# pack, decompressed and hashed (a 64M cache holds none of the disk).
kill "$cairn_pid"; wait "$cairn_pid" 2>/dev/null || :
start_server cairn "$NBDKIT" --foreground --unix "$BENCH_DIR/cairn.sock" \
  "$PLUGIN" store="$CAIRN_STORE" cache=64M
cold=$(run_fio "$uri_cairn" read 1M | cut -d' ' -f2)
read -r _ f_seq _ <<<"${got[1M seq read]}"
printf '%-14s %10s %10s %10s %-6s | %6s  (cache=64M: every chunk decompressed and verified)\n' \
  "1M seq read" "$cold" "$f_seq" "" "MiB/s" "$(ratio "$cold" "$f_seq")"
kill "$cairn_pid"; wait "$cairn_pid" 2>/dev/null || :
start_server cairn "$NBDKIT" --foreground --unix "$BENCH_DIR/cairn.sock" \
  "$PLUGIN" store="$CAIRN_STORE" cache="$CACHE"

# ---- commits every 100 ms while fio writes ------------------------------

# commit_run LABEL [FIO-ARGS...]: fio 4K random writes with FIO-ARGS,
# alone and with a commit asked for every 100 ms through the control
# socket, in turns, ROUNDS times; each run starts from a committed branch.
# A commit seals what was written since the one before, so its round trip
# grows with the write rate; fio should not notice.  fio's p99 moves a
# lot from run to run on a shared machine: the table gives the medians of
# the rounds and the median of their ratios, and the commit round trips
# of all rounds together.
commit_run () {
  local label=$1 base with p99_base p99_with iops_base iops_with round
  local bases=() withs=() ratios=() iops_bases=() iops_withs=()
  shift
  : > "$BENCH_DIR/rtts.txt"
  for (( round = 0; round < ROUNDS; round++ )); do
    "$CAIRN" commit bench >/dev/null
    base=$(run_fio "$uri_cairn" randwrite 4k --runtime=$((SECONDS_PER_RUN * 2)) "$@")
    "$CAIRN" commit bench >/dev/null
    $PY - "$CAIRN_STORE/run/bench.sock" $((SECONDS_PER_RUN * 2 + 1)) \
      >>"$BENCH_DIR/rtts.txt" <<'EOF' &
import json, socket, sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
next_at = time.monotonic()
while time.monotonic() < end:
    time.sleep(max(0, next_at - time.monotonic()))
    next_at = max(next_at + 0.1, time.monotonic())
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError:
        continue                # fio has not connected yet: nobody serves
    reply = b""
    try:
        s.sendall(b'{"op": "commit", "message": "bench"}\n')
        while not reply.endswith(b"\n"):
            part = s.recv(4096)
            if not part:
                break
            reply += part
        ok = json.loads(reply).get("ok")
        print("%s %.3f" % ("ok" if ok else "failed", (time.monotonic() - t) * 1000))
    except (OSError, ValueError):
        print("failed %.3f" % ((time.monotonic() - t) * 1000))
    s.close()
EOF
    local committer=$!
    with=$(run_fio "$uri_cairn" randwrite 4k --runtime=$((SECONDS_PER_RUN * 2)) "$@")
    wait $committer
    read -r iops_base _ p99_base <<<"$base"
    read -r iops_with _ p99_with <<<"$with"
    bases+=("$p99_base") withs+=("$p99_with")
    iops_bases+=("$iops_base") iops_withs+=("$iops_with")
    ratios+=("$(ratio "$p99_with" "$p99_base")")
  done
  local n c50 c99 r failed
  failed=$(grep -c '^failed' "$BENCH_DIR/rtts.txt" || :)
  read -r n c50 c99 < <(sed -n 's/^ok //p' "$BENCH_DIR/rtts.txt" | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR == 0) { print 0, 0, 0; exit }
          i = int(NR * 0.99); if (i < 1) i = 1
          print NR, v[int((NR + 1) / 2)], v[i] }')
  r=$(printf '%s\n' "${ratios[@]}" | median)
  printf '  %-30s %3d commits, round trip p50 %6.0f ms, p99 %6.0f ms; %d failed\n' \
    "$label" "$n" "$c50" "$c99" "$failed"
  [ "$n" != 0 ] || printf '  %-30s (no commit finished while fio ran)\n' ""
  printf '  %-30s fio p99 per round, us: alone %s / with commits %s\n' "" \
    "${bases[*]}" "${withs[*]}"
  printf '  %-30s fio p99 %s us alone, %s us with commits: %s x (goal <= 2: %s)\n' \
    "" "$(printf '%s\n' "${bases[@]}" | median)" \
    "$(printf '%s\n' "${withs[@]}" | median)" "$r" \
    "$(awk -v r="$r" 'BEGIN { print (r <= 2 ? "ok" : "MISSED") }')"
  printf '  %-30s fio IOPS %s alone, %s with commits\n' "" \
    "$(printf '%s\n' "${iops_bases[@]}" | median)" \
    "$(printf '%s\n' "${iops_withs[@]}" | median)"
}
echo
echo "commits every 100 ms through run/bench.sock while fio writes 4K at random:"
commit_run "fio at 1000 IOPS (a busy VM):" --rate_iops=1000
commit_run "fio flat out:"

# ---- RSS on a 1 TiB sparse branch -------------------------------------

# rss_run LABEL COMMIT_EVERY: fio 4K randrw over all of branch sparse
# (a fresh one) with the plugin at cache=$RSS_CACHE, committing every
# COMMIT_EVERY seconds (0: never); prints the peak RSS and its parts.
RSS_CACHE=64M
rss_run () {
  local label=$1 every=$2 committer= sampler rw
  kill "$cairn_pid"; wait "$cairn_pid" 2>/dev/null || :
  "$CAIRN" branch -d sparse 2>/dev/null || :
  "$CAIRN" create sparse 1T
  start_server cairn "$NBDKIT" --foreground --unix "$BENCH_DIR/cairn.sock" \
    "$PLUGIN" store="$CAIRN_STORE" cache="$RSS_CACHE"
  ( while kill -0 "$cairn_pid" 2>/dev/null; do
      awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s ", $2 } END { print "" }' \
        "/proc/$cairn_pid/status" 2>/dev/null
      sleep 0.2
    done ) > "$BENCH_DIR/rss.txt" &
  sampler=$!
  if [ "$every" != 0 ]; then
    ( sleep 1; while :; do "$CAIRN" commit sparse >/dev/null 2>&1 || :; sleep "$every"; done ) &
    committer=$!
  fi
  rw=$(run_fio "nbd+unix:///sparse?socket=$BENCH_DIR/cairn.sock" randrw 4k \
    --runtime=$((SECONDS_PER_RUN * 3)))
  [ -z "$committer" ] || { kill $committer || :; wait $committer 2>/dev/null || :; }
  # Never committed: one commit now takes all that was written, most of
  # it evicted from memory long ago; it must not read it all back in.
  local late=
  if [ "$every" = 0 ]; then
    local t0=$(date +%s%N)
    "$CAIRN" commit sparse >/dev/null
    late=" (then one commit of it all: $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    sleep 0.5
  fi
  kill $sampler || :; wait $sampler 2>/dev/null || :
  read -r rss anon file < <(sort -n "$BENCH_DIR/rss.txt" | tail -1)
  printf '  %-22s peak RSS %4d MiB (anonymous %d, LMDB map and binaries %d); %s IOPS%s: %s\n' \
    "$label" $((rss / 1024)) $((anon / 1024)) $((file / 1024)) \
    "$(cut -d' ' -f1 <<<"$rw")" "$late" \
    "$([ "$rss" -le $(( (64 + 64) * 1024 )) ] && echo ok || echo MISSED)"
}
echo
echo "RSS serving a 1 TiB sparse branch, cache=$RSS_CACHE (bound 64 MiB + cache = 128 MiB),"
echo "fio 4K randrw 50/50 over all of it for $((SECONDS_PER_RUN * 3)) s:"
rss_run "no commits:" 0
rss_run "a commit every 2 s:" 2
