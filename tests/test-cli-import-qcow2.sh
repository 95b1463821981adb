#!/usr/bin/env bash
# qcow2 images import through qemu-nbd (holes included) and export back to
# qcow2 that qemu-img finds identical.
. ./functions.sh
requires qemu-img
requires qemu-nbd

"$CAIRN" init 2>/dev/null
make_ext4 "$TMP/disk.img" 32
qemu-img convert -f raw -O qcow2 "$TMP/disk.img" "$TMP/disk.qcow2"
run_cairn import q "$TMP/disk.qcow2"
ok "import of a qcow2 exits 0" [ "$rc" -eq 0 ]
ok "its holes were not stored" grep -q "holes" <<< "$err"
"$CAIRN" export q "$TMP/back.raw"
ok "the qcow2's content came in" cmp "$TMP/disk.img" "$TMP/back.raw"
run_cairn export q "$TMP/back.qcow2" --format qcow2
ok "export --format qcow2 exits 0" [ "$rc" -eq 0 ]
ok "the file is a qcow2" bash -c "qemu-img info '$TMP/back.qcow2' | grep -q 'file format: qcow2'"
ok "qemu-img compare finds it identical" qemu-img compare -q "$TMP/disk.img" "$TMP/back.qcow2"
run_cairn import q2 "$TMP/disk.qcow2" --format raw
"$CAIRN" export q2 "$TMP/raw-of-qcow2"
ok "--format raw takes the qcow2 file's bytes as they are" cmp "$TMP/disk.qcow2" "$TMP/raw-of-qcow2"
done_testing
