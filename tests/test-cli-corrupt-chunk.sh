#!/usr/bin/env bash
# A chunk whose bytes were changed on disk fails the read that needs it,
# with an error naming the chunk: never silently wrong data.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((2 << 20)) /dev/urandom > "$TMP/a.img"
"$CAIRN" import main "$TMP/a.img" >/dev/null 2>&1
pack=$(ls "$STORE"/packs/*.pack | head -1)
# Flip one byte inside the first record's payload (after the 16-byte pack
# header and the 48-byte record header).
python3 - "$pack" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(16 + 48 + 1000)
    b = f.read(1)
    f.seek(16 + 48 + 1000)
    f.write(bytes([b[0] ^ 0xFF]))
PY
run_cairn export main "$TMP/out.img"
ok "export fails: exit 1" [ "$rc" -eq 1 ]
ok "one line naming the corrupt chunk: $err" \
  bash -c "grep -Eq 'chunk [0-9a-f]{64} is corrupt' <<< \"$err\""
ok "no half-written export is left" \
  bash -c "[ -z \"\$(ls '$TMP' | grep out.img)\" ]"
echo "an older export" > "$TMP/old.img"
for format in raw qcow2; do
  run_cairn export main "$TMP/old.img" --format $format
  ok "an export ($format) that fails leaves the file it would replace as it was" \
    bash -c "[ $rc -eq 1 ] && [ \"\$(cat '$TMP/old.img')\" = 'an older export' ] \
             && [ \$(ls '$TMP' | grep -c old.img) -eq 1 ]"
done
done_testing
