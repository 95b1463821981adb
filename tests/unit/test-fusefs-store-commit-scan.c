/* test-fusefs-store-commit-scan: cairn_commit_scan lists every commit id
 * once, in id order, resumes from any id (what paging a directory of
 * commits needs), and stops when asked. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"

#define N 50

struct listing {
  struct cairn_id ids[N + 1];
  int n;
  int stop_after;               /* 0: never */
};

static int
collect (const struct cairn_id *id, void *arg)
{
  struct listing *l = arg;

  if (l->n <= N)
    l->ids[l->n] = *id;
  l->n++;
  return l->stop_after && l->n == l->stop_after ? 7 : 0;
}

static int
by_id (const void *a, const void *b)
{
  return memcmp (a, b, CAIRN_ID_SIZE);
}

static int
scan (struct cairn_store *s, const struct cairn_id *start,
      struct listing *l)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_commit_scan (txn, start, collect, l);
  cairn_txn_abort (s, txn);
  return r;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-scan.XXXXXX", path[256];
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_id made[N];
  struct listing all = { .n = 0 }, rest = { .n = 0 }, some = { .n = 0 };
  int r = 0;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  plan (8);

  ok (cairn_store_init (path, NULL) == 0
      && cairn_store_open (path, 0, &s) == 0
      && cairn_branch_create_empty (s, "main", "disk", 1 << 20) == 0
      && cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "a store with a branch");
  for (int i = 0; i < N && r == 0; i++)
    r = cairn_branch_commit (b, NULL, &made[i]);
  cairn_branch_close (b);
  ok (r == 0, "%d commits", N);
  qsort (made, N, sizeof made[0], by_id);

  is_int (scan (s, NULL, &all), 0, "scan from the start");
  ok (all.n == N && memcmp (all.ids, made, sizeof made) == 0,
      "every commit once, in id order");

  /* Resume from an id that is not a commit: just after the 20th. */
  struct cairn_id after = made[19];
  for (int i = CAIRN_ID_SIZE - 1; i >= 0 && ++after.bytes[i] == 0; i--)
    ;
  is_int (scan (s, &after, &rest), 0, "scan from an id between commits");
  ok (rest.n == N - 20 && memcmp (rest.ids, made + 20,
                                  (N - 20) * sizeof made[0]) == 0,
      "resumes with the next commit");

  some.stop_after = 5;
  is_int (scan (s, NULL, &some), 7, "a positive value stops the scan");
  is_int (some.n, 5, "after that many commits");

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
