#!/usr/bin/env bash
# test-plugin-commit-live: `cairn commit` and `cairn branch NEW BRANCH`
# on a branch nbdkit serves, from inside one client connection that stays
# open throughout: each commit holds every write acknowledged before it,
# the client goes on reading and writing, and new commits and branches
# are served at once.
. ./functions.sh
requires "$NBDKIT"
nbdsh -c 'import nbd' >/dev/null 2>&1 || skip_all "nbdsh is not installed"
plan 11

SOCK=$TMP/nbd.sock
"$CAIRN" init >/dev/null 2>&1
"$CAIRN" create main 4M
start_nbdkit "$SOCK" store="$STORE" || { fail "nbdkit starts"; exit 1; }
export CAIRN SOCK

# The client prints "PASS what" or "FAIL what" for each check.
nbdsh -u "nbd+unix:///main?socket=$SOCK" -c '
import os, subprocess, nbd
def cairn(*args):
    return subprocess.run([os.environ["CAIRN"]] + list(args), check=True,
                          capture_output=True, text=True).stdout
def export(name):
    other = nbd.NBD()
    other.connect_uri("nbd+unix:///%s?socket=%s" % (name, os.environ["SOCK"]))
    return other
def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)

one = b"first write " * 1000
h.pwrite(one, 70000)
live = "[live]" in cairn("branch")
check(live, "cairn branch shows main as live while a client is connected")
c1 = cairn("commit", "main", "-m", "while served", "--label", "k=v").strip()
c = export(c1)
check(c.pread(len(one), 70000) == one,
      "the commit holds the write acknowledged before it")
check(c.is_read_only(), "and is served read-only")
show = cairn("show", c1)
check("while served" in show and "k=v" in show,
      "with the message and label given to cairn commit")

two = b"second write " * 1000
h.pwrite(two, 1 << 20)
check(h.pread(len(one), 70000) == one and h.pread(len(two), 1 << 20) == two,
      "the client goes on reading and writing after the commit")
check(c.pread(len(two), 1 << 20) == bytes(len(two)),
      "and the commit does not see writes made after it")

cairn("branch", "fork", "main")
f = export("fork")
check(f.pread(len(two), 1 << 20) == two and f.pread(len(one), 70000) == one,
      "cairn branch NEW main commits the live branch first: NEW has every write")
f.pwrite(b"fork only", 0)
check(h.pread(9, 0) == bytes(9), "the two branches are independent")
check(not f.is_read_only(), "and the new branch is served read-write at once")

c2 = cairn("commit", "main").strip()
log = cairn("log", "main")
check(c2 != c1 and c2[:12] in log and c1[:12] in log,
      "a second commit follows the first in the log")
h.flush()
check(h.pread(len(two), 1 << 20) == two, "the connection is still the same one")
' > "$TMP/client.out" 2>&1
grep -v '^PASS\|^FAIL' "$TMP/client.out" | sed 's/^/# /'
while read -r verdict what; do
  case $verdict in PASS) pass "$what" ;; FAIL) fail "$what" ;; esac
done < <(grep '^PASS\|^FAIL' "$TMP/client.out")

done_testing
