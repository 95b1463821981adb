#!/usr/bin/env bash
# demo.sh: installs and builds cairn, then walks through what it does on a
# local store in /var/tmp/cairn-demo: a disk image is imported, branched,
# changed, committed, compared and exported, and an old commit's files are
# read back.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
build=${CAIRN_BUILD:-$top/build}
cairn="$build/cli/cairn"
demo=/var/tmp/cairn-demo
export CAIRN_STORE="$demo/store"

step () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run () { printf '$ %s\n' "$*"; "$@"; }

rm -rf "$demo"
mkdir -p "$demo/root/etc" "$demo/mnt"
step "A store: content-addressed, compressed, deduplicated"
run "$cairn" init

step "A disk image: ext4 with a few files, 256 MiB, mostly empty"
echo "hello from the first commit" > "$demo/root/etc/motd"
cp -r /usr/share/doc/bash "$demo/root/doc"
truncate -s 256M "$demo/disk.img"
mke2fs -q -t ext4 -d "$demo/root" "$demo/disk.img"
run "$cairn" import main "$demo/disk.img" -m "base image"

step "Branch it, change it, commit the change"
run "$cairn" branch experiment main
echo "hello from the experiment" > "$demo/root/etc/motd"
echo "a new file" > "$demo/root/etc/new"
mke2fs -q -t ext4 -F -d "$demo/root" "$demo/disk.img"
run "$cairn" import experiment "$demo/disk.img" -m "try a new motd"
run "$cairn" tag v1 main

step "History of every branch"
run "$cairn" log --graph

step "What changed between them, as byte ranges"
"$cairn" diff main experiment | head -5
echo "... $("$cairn" diff main experiment | wc -l) ranges in all"

step "Space: what each commit holds alone, and shares"
run "$cairn" du

step "Export the old commit and read a file from it"
run "$cairn" export v1 "$demo/v1.img"
debugfs -R "cat /etc/motd" "$demo/v1.img" 2>/dev/null
run "$cairn" export experiment "$demo/exp.img"
debugfs -R "cat /etc/motd" "$demo/exp.img" 2>/dev/null

step "Done.  The store is in $CAIRN_STORE; try '$cairn --help'."
