/* test-commit: commit objects (store/commit.c): text form, strict
 * parsing, ids. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"

static const char *good =
  "cairn-commit 1\n"
  "parent 1111111111111111111111111111111111111111111111111111111111111111\n"
  "time 2026-11-21T10:00:00.123456789Z\n"
  "volume disk size=8589934592 chunk=65536 root=2222222222222222222222222222222222222222222222222222222222222222\n"
  "volume memory size=268435456 chunk=65536 root=0000000000000000000000000000000000000000000000000000000000000000\n"
  "vm qemu=7.2.22 machine=microvm memory=256M\n"
  "label owner=ci\n"
  "label ticket=42\n"
  "\n"
  "fix the flaky test\nsecond line\n";

static int
reparse (const char *text)
{
  struct cairn_commit *c;
  int r = cairn_commit_parse (text, strlen (text), &c);
  if (r == 0)
    cairn_commit_free (c);
  return r;
}

int
main (void)
{
  struct cairn_commit *c;
  char *text;
  size_t len;

  ok (cairn_commit_parse (good, strlen (good), &c) == 0, "parse");
  is_int (c->nparents, 1, "one parent");
  is_int (c->nvolumes, 2, "two volumes");
  is_str (c->volumes[0].name, "disk", "volume name");
  ok (c->volumes[0].size == 8589934592ULL, "volume size");
  is_str (c->vm, "qemu=7.2.22 machine=microvm memory=256M", "vm line");
  is_int (c->nlabels, 2, "labels");
  is_str (cairn_commit_label (c, "ticket"), "42", "label lookup");
  ok (cairn_commit_label (c, "tick") == NULL, "label prefix is not a label");
  is_str (c->message, "fix the flaky test\nsecond line", "message");
  ok (cairn_commit_format (c, &text, &len) == 0 && len == strlen (good)
      && memcmp (text, good, len) == 0, "format gives the same bytes back");
  struct cairn_id id;
  cairn_sha256 (good, strlen (good), &id);
  ok (cairn_id_equal (&id, &c->id), "id is the SHA-256 of the text");
  free (text);

  /* Volumes are written sorted, so the same state has one id. */
  struct cairn_volume tmp = c->volumes[0];
  c->volumes[0] = c->volumes[1];
  c->volumes[1] = tmp;
  ok (cairn_commit_format (c, &text, &len) == 0
      && memcmp (text, good, len) == 0, "volume order does not matter");
  free (text);
  free (c->message);
  c->message = strdup ("");
  ok (cairn_commit_format (c, &text, &len) == 0
      && reparse (text) == 0, "an empty message round-trips");
  free (text);
  cairn_commit_free (c);

  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n\n") == 0,
      "minimal commit: a time, no volumes");
  ok (reparse ("cairn-commit 2\ntime 2026-11-21T10:00:00Z\n\n") == -EBADMSG,
      "unknown format version");
  ok (reparse ("cairn-commit 1\n\n") == -EBADMSG, "no time");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\nbogus 1\n\n")
      == -EBADMSG, "unknown line");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n"
               "parent 11\n\n") == -EBADMSG, "short parent id");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n"
               "time 2026-11-21T10:00:00Z\n\n") == -EBADMSG, "two times");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n"
               "volume disk size=0 chunk=65536 root=0000000000000000000000000000000000000000000000000000000000000000\n\n")
      == -EBADMSG, "zero-sized volume");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n"
               "volume disk size=512 chunk=1000 root=0000000000000000000000000000000000000000000000000000000000000000\n\n")
      == -EBADMSG, "chunk size not a power of two");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n"
               "volume b size=512 chunk=65536 root=0000000000000000000000000000000000000000000000000000000000000000\n"
               "volume a size=512 chunk=65536 root=0000000000000000000000000000000000000000000000000000000000000000\n\n")
      == -EBADMSG, "volumes out of order");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\n\nno newline")
      == -EBADMSG, "message without final newline");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z\nlabel =x\n\n")
      == -EBADMSG, "label without key");
  ok (reparse ("cairn-commit 1\ntime 2026-11-21T10:00:00Z") == -EBADMSG,
      "truncated");
  return done_testing ();
}
