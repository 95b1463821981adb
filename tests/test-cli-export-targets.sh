#!/usr/bin/env bash
# export writes to a new file, over an old one, to stdout, to /dev/null
# and to a block device; on a device the volume's holes are written as
# zeros, and a device too small is refused before anything is written.
. ./functions.sh

"$CAIRN" init 2>/dev/null
# 4 MiB: 1 MiB of data, a 2 MiB hole, 1 MiB of data.
{ head -c 1M /dev/urandom; head -c 2M /dev/zero; head -c 1M /dev/urandom; } \
  > "$TMP/a.img"
"$CAIRN" import main "$TMP/a.img" >/dev/null 2>&1

echo "an older file" > "$TMP/out.img"
run_cairn export main "$TMP/out.img"
ok "over an existing file" bash -c "[ $rc -eq 0 ] && cmp '$TMP/a.img' '$TMP/out.img'"
ok "and no temporary file is left beside it" \
  [ "$(ls "$TMP" | grep -c 'out.img')" -eq 1 ]
ok "to stdout" bash -c "'$CAIRN' export main - | cmp - '$TMP/a.img'"
run_cairn export main /dev/null
ok "to /dev/null" [ "$rc" -eq 0 ]
run_cairn export main "$TMP"
ok "to a directory: exit 1, one line: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] && grep -q 'is a directory' <<< \"\$1\"" _ "$err"

head -c 4M /dev/urandom > "$TMP/dev.img"
if ! dev=$(losetup -f --show "$TMP/dev.img" 2>/dev/null); then
  for check in "to a block device" "to a device too small" "not written"; do
    skip "$check: no loop device here (needs root and losetup)"
  done
  done_testing
  exit
fi
on_exit "losetup -d $dev"
run_cairn export main "$dev"
ok "to a block device that held other bytes: the hole reads as zeros" \
  bash -c "[ $rc -eq 0 ] && cmp '$dev' '$TMP/a.img'"
truncate -s 2M "$TMP/small.img"
small=$(losetup -f --show "$TMP/small.img")
on_exit "losetup -d $small"
run_cairn export main "$small"
ok "to a device too small: exit 1, one line: $err" \
  bash -c "[ $rc -eq 1 ] && [ \$(grep -c '' <<< \"\$1\") -eq 1 ] && grep -q 'holds 2097152 bytes' <<< \"\$1\"" _ "$err"
ok "and it was not written" cmp "$small" <(head -c 2M /dev/zero)
done_testing
