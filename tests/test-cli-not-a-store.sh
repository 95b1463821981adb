#!/usr/bin/env bash
# -S naming something that is not a store: an empty directory, a path
# that does not exist, a regular file.  Every command that opens the store
# exits 1 with one line on stderr naming the path, and creates or changes
# nothing: not at the path, not beside it, not in the working directory
# (export writes no output file).  A real store with a branch main is
# $CAIRN_STORE meanwhile, so a command that ignored -S would succeed.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((1 << 20)) /dev/urandom > "$TMP/disk.img"
id=$("$CAIRN" import main "$TMP/disk.img" 2>/dev/null)
"$CAIRN" tag t main 2>/dev/null

mkdir "$TMP/places" "$TMP/places/empty" "$TMP/cwd"
echo "not a store" > "$TMP/places/file"
cd "$TMP/cwd" || exit 1
# snapshot: everything about the places and the working directory.
snapshot () {
  find "$TMP/places" "$TMP/cwd" -printf '%p %y %s %m %T@\n' | sort
  cat "$TMP/places/file"
}
commands=(
  "log"
  "log --all --json"
  "show main"
  "cat $id"
  "branch"
  "branch new main"
  "branch -d main"
  "commit main -m x"
  "import main $TMP/disk.img"
  "import new $TMP/disk.img"
  "export main $TMP/out.img"
  "create new 1M"
  "tag"
  "tag new main"
  "tag -d t"
  "diff main t"
  "du"
  "du main"
  "fsck"
  "fsck --read-data"
  "gc"
  "gc --dry-run"
  "prune --dry-run"
  "retention show"
)
for place in empty nonexistent file; do
  path=$TMP/places/$place
  before=$(snapshot)
  for cmd in "${commands[@]}"; do
    # shellcheck disable=SC2086  # cmd is words
    run_cairn -S "$path" $cmd
    if [ "$rc" -eq 1 ] && one_line "$err" && grep -qF "$path" <<< "$err" &&
       [ "$(snapshot)" = "$before" ] && [ ! -e "$TMP/out.img" ]; then
      pass "$place: $cmd: exit 1, one line, nothing made"
    else
      fail "$place: $cmd (rc $rc): $err"
      diff <(echo "$before") <(snapshot) | sed 's/^/# /'
      rm -f "$TMP/out.img"
      before=$(snapshot)         # one failure per change made
    fi
  done
done
done_testing
