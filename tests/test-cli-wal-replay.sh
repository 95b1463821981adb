#!/usr/bin/env bash
# The index's write-ahead log (store/wal.h).  A power cut after a
# transaction's log record was flushed but before LMDB's meta page reached
# the disk leaves the index one transaction behind; opening the store must
# replay the record.  CAIRN_TEST_WAL_LOSE_TXN=N makes the N-th logged
# transaction of a process do exactly that (flush its record, drop the
# LMDB transaction, die by SIGKILL); CAIRN_TEST_WAL_KILL_AFTER=N commits
# it and then dies.  For every transaction of an import into an existing
# branch, the first store, once opened, must equal the second.  A torn
# record must not be replayed, and the log must work across its wrap
# (a 256 KiB ring here).
. ./functions.sh

export CAIRN_TEST_WAL_RING=256K
"$CAIRN" init 2>/dev/null
head -c $((8 << 20)) /dev/urandom > "$TMP/a.img"
cp "$TMP/a.img" "$TMP/b.img"
dd if=/dev/urandom of="$TMP/b.img" bs=64K count=20 seek=37 conv=notrunc \
   status=none
"$CAIRN" import main "$TMP/a.img" --time 2026-01-01T00:00:00Z >/dev/null
# Enough small transactions to go round the ring (64 records of 4 KiB).
for i in $(seq 1 80); do
  "$CAIRN" commit main -m "filler $i" --time 2026-01-01T00:01:00Z >/dev/null
done
cp -a "$CAIRN_STORE" "$TMP/orig"

# fingerprint STORE: what a user sees of it (store_fingerprint), opened
# first by a reader: a reader must see the replayed transaction too.
fingerprint () { CAIRN_STORE=$1 store_fingerprint; }

# run STORE HOOK N: the import into main under the hook; its exit status.
run () {
  rm -rf "$1"
  cp -a "$TMP/orig" "$1"
  CAIRN_STORE=$1 env "$2=$3" "$CAIRN" import main "$TMP/b.img" -m second \
    --time 2026-01-02T00:00:00Z >/dev/null 2>&1
}

n=0 last=0
while [ $n -lt 30 ]; do
  n=$((n + 1))
  run "$TMP/kill" CAIRN_TEST_WAL_KILL_AFTER $n; kill_status=$?
  run "$TMP/lose" CAIRN_TEST_WAL_LOSE_TXN $n; lose_status=$?
  if [ $lose_status -eq 0 ]; then
    # The import logs fewer than N transactions: neither hook fired.
    ok "the import makes $((n - 1)) logged transactions, then neither hook fires" \
       [ $kill_status -eq 0 -a $((n - 1)) -ge 2 ]
    break
  fi
  last=$n
  ok "transaction $n: both runs died by SIGKILL" \
     [ $lose_status -eq 137 -a $kill_status -eq 137 ]
  ok "transaction $n: replayed, the store equals the one that committed it" \
     cmp -s <(fingerprint "$TMP/lose") <(fingerprint "$TMP/kill")
  ok "transaction $n: fsck passes on the replayed store" \
     env CAIRN_STORE="$TMP/lose" "$CAIRN" fsck
done

# After the last transaction's replay the import is whole.
CAIRN_STORE="$TMP/lose" "$CAIRN" export main "$TMP/out.img" 2>/dev/null
ok "after replaying the import's last transaction, main exports the new image" \
   cmp -s "$TMP/out.img" "$TMP/b.img"
ok "the second commit is in the log" \
   grep -q '"second"' <(CAIRN_STORE="$TMP/lose" "$CAIRN" log main --json)

# A torn record is not replayed: the store is the one before it.
run "$TMP/before" CAIRN_TEST_WAL_KILL_AFTER $((last - 1))
rm -rf "$TMP/torn"
cp -a "$TMP/orig" "$TMP/torn"
CAIRN_STORE="$TMP/torn" CAIRN_TEST_WAL_TEAR=1 CAIRN_TEST_WAL_LOSE_TXN=$last \
  "$CAIRN" import main "$TMP/b.img" -m second --time 2026-01-02T00:00:00Z \
  >/dev/null 2>&1
ok "a torn record is not replayed: the store is as before its transaction" \
   cmp -s <(fingerprint "$TMP/torn") <(fingerprint "$TMP/before")
ok "fsck passes on the store with the torn record" \
   env CAIRN_STORE="$TMP/torn" "$CAIRN" fsck
ok "a later import into it works" \
   env CAIRN_STORE="$TMP/torn" "$CAIRN" import main "$TMP/b.img" -m again
CAIRN_STORE="$TMP/torn" "$CAIRN" export main "$TMP/out2.img" 2>/dev/null
ok "and exports the image" cmp -s "$TMP/out2.img" "$TMP/b.img"

# The log went round its ring: the wrap is exercised, not just possible.
# meta_u64 STORE KEY: a number in the index's meta table (little-endian).
meta_u64 () {
  mdb_dump -s meta "$1/index" \
    | awk -v k="$(printf %s "$2" | od -An -tx1 | tr -d ' \n')" \
        'found { print $1; exit } $1 == k { found = 1 }' \
    | sed 's/../& /g' | awk '{ for (i = NF; i > 0; i--) printf "%s", $i }' \
    | { read -r hex; echo $((16#${hex:-0})); }
}
seq=$(meta_u64 "$TMP/lose" wal-seq)
ok "more records were written than fit the ring (wal-seq $seq > 64)" \
   [ "$seq" -gt 64 ]
ok "the log file stayed within its ring" \
   [ "$(stat -c %s "$CAIRN_STORE/index/wal")" -le $((256 << 10)) ]
done_testing
