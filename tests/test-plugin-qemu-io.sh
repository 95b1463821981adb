#!/usr/bin/env bash
# test-plugin-qemu-io: QEMU's block layer on a branch export: qemu-io
# writes patterns (aligned, unaligned, across chunk boundaries, in
# parallel with aio), discards and zeroes, and reads them back with
# pattern verification, in the same connection, in a new one, and after
# nbdkit restarts.
. ./functions.sh
requires "$NBDKIT"
requires qemu-io
plan 8

SOCK=$TMP/nbd.sock
URI="nbd+unix:///main?socket=$SOCK"
qio () { qemu-io -f raw "$URI" "$@" >"$TMP/qio.out" 2>&1; }
# Each command of WRITES has its check in CHECKS.
writes=(-c 'write -P 0x11 0 64k'
        -c 'write -P 0x22 65024 1536'
        -c 'write -P 0x33 131073 200001'
        -c 'write -P 0x44 1048575 1'
        -c 'aio_write -P 0x55 2m 64k' -c 'aio_write -P 0x66 2162688 100000'
        -c 'aio_write -P 0x77 3m 4k' -c 'aio_flush'
        -c 'write -P 0x88 4m 1m' -c 'discard 4325376 131072'
        -c 'write -z 4653056 12345'
        -c 'flush')
checks=(-c 'read -P 0x11 0 65024' -c 'read -P 0x22 65024 1536'
        -c 'read -P 0x00 66560 64513'
        -c 'read -P 0x33 131073 200001' -c 'read -P 0x00 331074 1000'
        -c 'read -P 0x44 1048575 1'
        -c 'read -P 0x55 2m 64k' -c 'read -P 0x66 2162688 100000'
        -c 'read -P 0x77 3m 4k'
        -c 'read -P 0x88 4m 131072' -c 'read -P 0x00 4325376 131072'
        -c 'read -P 0x88 4456448 196608' -c 'read -P 0x00 4653056 12345'
        -c 'read -P 0x88 4665401 577479')

"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 8M
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }

ok "qemu-io writes patterns, discards and zeroes" qio "${writes[@]}"
ok "and reads every one back in the same connection" \
  qio "${writes[@]}" "${checks[@]}"
ok "and in a new connection" qio "${checks[@]}"
fails "a wrong pattern is caught" qio -c 'read -P 0x12 0 64k'
ok "qemu-io says why" grep -q 'Pattern verification failed' "$TMP/qio.out"

# Restart: the close flushed, the new nbdkit reopens the working state.
kill "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null
start_nbdkit "$SOCK" store="$STORE" || fail "nbdkit restarts"
ok "after nbdkit restarts, every pattern is still there" qio "${checks[@]}"

id=$("$CAIRN" commit main 2>/dev/null)
URI="nbd+unix:///$id?socket=$SOCK"
ok "the commit taken then holds every pattern" qio -r "${checks[@]}"
fails "and refuses writes" qio -c 'write -P 0x99 0 512'

done_testing
