/* test-backend-cas: the backend's record compare-and-swap, through which
 * every ref changes (backend.h). */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"
#include "scratch-store.h"
#include "tap.h"

static struct cairn_txn *txn;

static int
cas (const char *expect, const char *to)
{
  return TOPS (txn)->record_cas (
    txn->bt, CAIRN_TABLE_REFS, "k", 1,
    expect ? &(struct cairn_val) { expect, strlen (expect) } : NULL,
    to ? &(struct cairn_val) { to, strlen (to) } : NULL);
}

/* True if the record holds WANT (NULL: absent). */
static bool
holds (const char *want)
{
  struct cairn_val v;
  int r = TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_REFS, "k", 1, &v);

  if (!want)
    return r == -ENOENT;
  return r == 0 && v.len == strlen (want) && memcmp (v.data, want, v.len) == 0;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-cas.XXXXXX";
  struct cairn_store *s;

  scratch_store (dir, &s, &txn);

  ok (cas ("a", "b") == -EEXIST && holds (NULL),
      "expecting a value where there is none: -EEXIST, nothing made");
  ok (cas (NULL, "a") == 0 && holds ("a"), "expecting absence: made");
  ok (cas (NULL, "b") == -EEXIST && holds ("a"),
      "expecting absence where there is a value: -EEXIST, unchanged");
  ok (cas ("b", "c") == -EEXIST && holds ("a"),
      "expecting another value: -EEXIST, unchanged");
  ok (cas ("ab", "c") == -EEXIST && holds ("a"),
      "expecting a longer value with the same start: -EEXIST");
  ok (cas ("a", "bb") == 0 && holds ("bb"), "expecting the value: swapped");
  ok (cas ("bb", NULL) == 0 && holds (NULL), "swapped for nothing: deleted");
  ok (cas ("bb", NULL) == -EEXIST, "deleting what is gone: -EEXIST");
  ok (cas (NULL, NULL) == 0 && holds (NULL),
      "absent for absent: nothing to do");
  ok (cairn_txn_commit (s, txn) == 0, "the transaction commits");

  /* Refs use nothing else: a tag made twice, a branch deleted twice. */
  struct cairn_id c;
  ok (cairn_branch_create_empty (s, "main", "disk", 1 << 20) == 0
      && cairn_commit_branch (s, "main", NULL, &c) == 0, "a branch, committed");
  ok (cairn_tag_create (s, "v1", &c) == 0 && cairn_tag_create (s, "v1", &c)
      == -EEXIST, "a tag twice: the second is refused");
  ok (cairn_branch_delete (s, "main") == 0
      && cairn_branch_delete (s, "main") == CAIRN_ENOREF,
      "a branch deleted twice: the second finds none");
  ok (cairn_tag_delete (s, "v1") == 0
      && cairn_tag_delete (s, "v1") == CAIRN_ENOREF,
      "a tag deleted twice: the second finds none");

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
