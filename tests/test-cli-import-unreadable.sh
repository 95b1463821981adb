#!/usr/bin/env bash
# An import of a file the user cannot read (mode 000) exits 1 with one
# line on stderr and changes nothing: no new branch, no new commit on an
# existing one.  Root reads any file, so the commands run as an
# unprivileged user ('nobody', through setpriv) on a store that user owns;
# a test run by another user runs them as itself.
. ./functions.sh

home=$TMP/home
mkdir "$home"
if [ "$(id -u)" -eq 0 ]; then
  command -v setpriv >/dev/null 2>&1 || skip_all "setpriv is not installed"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
  chown nobody:nogroup "$home" 2>/dev/null || skip_all "cannot chown to nobody"
  chmod 711 "$TMP"              # nobody passes through to $home
fi
export CAIRN_STORE=$home/store
head -c $((1 << 20)) /dev/urandom > "$home/disk.img"
cp "$home/disk.img" "$home/secret.img"
chmod 000 "$home/secret.img"
[ "$(id -u)" -eq 0 ] && chown nobody:nogroup "$home/secret.img"
"${as_user[@]}" test -w "$home" ||
  skip_all "no unprivileged user can write a store here"
"${as_user[@]}" test -r "$home/secret.img" &&
  skip_all "a mode 000 file is readable to $("${as_user[@]}" id -un)"
diag "running cairn as $("${as_user[@]}" id -un)"

run_cairn init
ok "the user makes a store" [ "$rc" -eq 0 ]
run_cairn import main "$home/disk.img"
ok "and imports a file it can read" [ "$rc" -eq 0 ]
before=$(store_fingerprint)

# unreadable BRANCH: imports the mode 000 file into BRANCH.
unreadable () {
  run_cairn import "$1" "$home/secret.img"
  ok "import into $2 of a mode 000 file: exit 1 ($rc)" [ "$rc" -eq 1 ]
  ok "with one line saying why: $err" \
    eval 'one_line "$err" && grep -q "Permission denied" <<< "$err"'
  ok "and no change to the store" [ "$(store_fingerprint)" = "$before" ]
}
unreadable new "a new branch"
ok "no branch new was made" eval '! "${as_user[@]}" "$CAIRN" branch | grep -q "^new "'
unreadable main "an existing branch"
ok "main still exports as before" exports_as main "$home/disk.img"
run_cairn fsck
ok "fsck finds the store intact" [ "$rc" -eq 0 ]
done_testing
