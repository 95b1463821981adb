/* test-fusefs-timeline: by-time/<branch>/ names.  One entry per commit of
 * the branch's first-parent history, named for its time, in time order;
 * commits with the very same time get distinct names; timelines are
 * cached until the branch moves, and one held stays valid after. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusefs/cairnfs.h"
#include "tap.h"

#define SEC 1000000000LL

static struct cairn_store *s;

static int
commit_at (struct cairn_branch *b, int64_t time, struct cairn_id *id)
{
  struct cairn_commit_options o = { .time = time };
  return cairn_branch_commit (b, &o, id);
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-timeline.XXXXXX", path[256];
  struct timeline_cache *tc = timeline_cache_new ();
  struct timeline *tl, *again, *moved;
  struct cairn_branch *b;
  struct cairn_txn *txn;
  struct cairn_id c[5];
  int r = 0;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  ok (cairn_store_init (path, NULL) == 0 && cairn_store_open (path, 0, &s) == 0
      && cairn_branch_create_empty (s, "vm", "disk", 1 << 20) == 0
      && cairn_branch_open (s, "vm", CAIRN_BRANCH_WRITE, &b) == 0,
      "a store with a branch");
  /* Two commits at 2000 s: their ids decide which gets the suffix. */
  r |= commit_at (b, 1000 * SEC, &c[0]);
  r |= commit_at (b, 2000 * SEC, &c[1]);
  r |= commit_at (b, 2000 * SEC, &c[2]);
  r |= commit_at (b, 3000 * SEC + 5, &c[3]);
  ok (r == 0, "four commits");
  int lo = memcmp (&c[1], &c[2], sizeof c[1]) < 0 ? 1 : 2, hi = 3 - lo;
  char hex[CAIRN_HEX_SIZE + 1], want[200];

  cairn_txn_begin (s, false, &txn);
  ok (timeline_get (tc, txn, "vm", &c[3], &tl) == 0, "the timeline");
  is_int (tl->n, 4, "has every commit");
  is_str (tl->entries[0].name, "1970-01-01T00:16:40.000000000Z",
          "named for its time, oldest first");
  ok (cairn_id_equal (&tl->entries[0].commit, &c[0]), "the oldest commit");
  is_str (tl->entries[1].name, "1970-01-01T00:33:20.000000000Z",
          "of two with one time, one keeps the plain name");
  ok (cairn_id_equal (&tl->entries[1].commit, &c[lo]),
      "the one with the smaller id");
  cairn_id_to_hex (&c[hi], hex);
  snprintf (want, sizeof want, "1970-01-01T00:33:20.000000000Z~%s", hex);
  is_str (tl->entries[2].name, want, "the other gets its id appended");
  is_str (tl->entries[3].name, "1970-01-01T00:50:00.000000005Z",
          "nanoseconds are kept");
  const struct timeline_entry *e = timeline_find (tl, want);
  ok (e && cairn_id_equal (&e->commit, &c[hi]), "names look up");
  ok (!timeline_find (tl, "1970-01-01T00:33:20Z"), "other names do not");

  ok (timeline_get (tc, txn, "vm", &c[3], &again) == 0 && again == tl,
      "asked again, the cached timeline");
  timeline_put (tc, again);
  cairn_txn_abort (s, txn);

  r = commit_at (b, 4000 * SEC, &c[4]);
  cairn_txn_begin (s, false, &txn);
  ok (r == 0 && timeline_get (tc, txn, "vm", &c[4], &moved) == 0
      && moved != tl && moved->n == 5, "the branch moved: a new timeline");
  ok (tl->n == 4 && strcmp (tl->entries[3].name,
                            "1970-01-01T00:50:00.000000005Z") == 0,
      "the one held is still whole");
  cairn_txn_abort (s, txn);
  timeline_put (tc, moved);
  timeline_put (tc, tl);

  cairn_branch_close (b);
  timeline_cache_free (tc);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
