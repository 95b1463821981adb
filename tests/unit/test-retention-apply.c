/* test-retention-apply: cairn_prune() on a real store.
 *
 * History (times UTC, 2026-11-...):
 *
 *   main:  c1 18T09:00 (tag v1) - c2 20T10:00 - c3 21T10:00 - c4 21T10:30
 *          - c5 21T11:00 - c6 21T11:15
 *   dev:   branched from c3, then d1 21T12:00
 *
 * Policies: main keep-hourly 2, dev keep-last 3.  Hand-computed:
 *   main keeps c6 (hourly 21T11, its base) and c4 (hourly 21T10), c1 for
 *   its tag; dev keeps d1, c3, c2 (last 1..3; d1 its base), c1 for its
 *   tag.  So only c5 goes.  After dev is deleted, d1 is unreachable and
 *   c3, c2 are only main's, which does not keep them.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

static struct cairn_store *s;
static struct cairn_id c[7], d1;

/* The decision about ID in RES, or NULL. */
static const struct cairn_retention_decision *
decision (const struct cairn_prune_result *res, const struct cairn_id *id)
{
  for (size_t i = 0; i < res->verdicts->n_decisions; i++)
    if (cairn_id_equal (&res->verdicts->decisions[i].id, id))
      return &res->verdicts->decisions[i];
  return NULL;
}

/* "keep: r1; r2", or "prune", or "absent". */
static const char *
verdict (const struct cairn_prune_result *res, const struct cairn_id *id)
{
  static char buf[512];
  const struct cairn_retention_decision *d = decision (res, id);
  size_t at;

  if (!d)
    return "absent";
  if (!d->keep)
    return "prune";
  at = snprintf (buf, sizeof buf, "keep:");
  for (size_t i = 0; i < d->n_reasons && at < sizeof buf; i++)
    at += snprintf (buf + at, sizeof buf - at, "%s %s", i ? ";" : "",
                    d->reasons[i]);
  return buf;
}

static int
set_policy (const char *branch, const char *rule, const char *value)
{
  struct cairn_retention_policy p = { 0 };
  int r = cairn_retention_policy_set (&p, rule, value);
  return r < 0 ? r : cairn_retention_set (s, branch, &p);
}

static int
prune (const char *branch, bool dry, cairn_retention_keep_fn keep,
       struct cairn_prune_result *res)
{
  struct cairn_prune_options o = { .branch = branch, .dry_run = dry,
                                   .keep = keep };
  return cairn_prune (s, &o, res);
}

static int
keep_c2 (struct cairn_store *st, struct cairn_txn *txn,
         int (*add) (void *, const struct cairn_id *, const char *),
         void *ctx, void *arg)
{
  return add (ctx, &c[2], "vm web");
}

static void
test_policies (void)
{
  struct cairn_retention_policy p;
  struct cairn_txn *txn;

  ok (set_policy ("nosuch", "keep-last", "3") == CAIRN_ENOREF,
      "a policy needs an existing branch");
  ok (set_policy ("main", "keep-hourly", "2") == 0, "set main keep-hourly 2");
  ok (set_policy ("dev", "keep-last", "3") == 0, "set dev keep-last 3");
  cairn_txn_begin (s, false, &txn);
  ok (cairn_retention_get (s, txn, "main", &p) == 0 && p.keep_hourly == 2
      && p.keep_last == 0, "main's policy reads back");
  cairn_txn_abort (s, txn);
  ok (cairn_retention_clear (s, "nosuch") == CAIRN_ENOREF,
      "clearing no policy is an error");
}

static void
test_shared_history (void)
{
  struct cairn_prune_result res;

  ok (prune ("main", true, NULL, &res) == 0, "dry prune of main");
  is_int (res.verdicts->n_decisions, 6, "main's chain has 6 commits");
  is_str (verdict (&res, &c[6]), "keep: main: hourly 2026-11-21T11; "
          "main: base of branch main", "c6: newest hour, base");
  is_str (verdict (&res, &c[5]), "prune", "c5: same hour as c6");
  is_str (verdict (&res, &c[4]), "keep: main: hourly 2026-11-21T10",
          "c4: second hour");
  is_str (verdict (&res, &c[3]), "keep: dev: last 2",
          "c3: pruned by main, kept by dev");
  is_str (verdict (&res, &c[2]), "keep: dev: last 3",
          "c2: pruned by main, kept by dev");
  is_str (verdict (&res, &c[1]), "keep: dev: tag v1; main: tag v1",
          "c1: older than every window, tagged");
  is_str (verdict (&res, &d1), "absent", "d1 is not main's to prune");
  is_int (res.n_pruned, 1, "one commit would go");
  is_int (res.n_unreachable, 0, "a branch prune looks for no unreachable");
  cairn_prune_result_free (&res);
  ok (!fixture_pruned (s, &c[5]), "a dry run changes nothing");

  ok (prune ("main", false, NULL, &res) == 0, "prune main");
  is_int (res.n_pruned, 1, "one commit pruned");
  cairn_prune_result_free (&res);
  ok (fixture_pruned (s, &c[5]), "c5 is a tombstone");
  ok (!fixture_pruned (s, &c[3]) && !fixture_pruned (s, &c[1])
      && !fixture_pruned (s, &d1), "the others are not");

  ok (prune (NULL, false, NULL, &res) == 0, "prune every branch");
  is_int (res.n_pruned, 0, "pruning twice prunes nothing more");
  is_str (verdict (&res, &c[5]), "absent", "a tombstone is not reconsidered");
  is_str (verdict (&res, &d1), "keep: dev: last 1; dev: base of branch dev",
          "d1: dev's newest and base");
  cairn_prune_result_free (&res);
}

static void
test_live_and_hook (void)
{
  struct cairn_prune_result res;
  struct cairn_branch *b;

  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "hold main as its writer would");
  ok (prune ("main", true, keep_c2, &res) == 0, "dry prune of a live branch");
  is_str (verdict (&res, &c[6]), "keep: main: hourly 2026-11-21T11; "
          "main: base of branch main; main: live branch main",
          "c6: the live branch's base says so");
  cairn_prune_result_free (&res);
  cairn_branch_close (b);

  ok (cairn_branch_delete (s, "dev") == 0, "delete dev");
  ok (prune (NULL, true, keep_c2, &res) == 0, "dry prune with a VM hook");
  is_str (verdict (&res, &c[2]), "keep: main: vm web",
          "c2: kept by the hook's reason");
  cairn_prune_result_free (&res);
}

static void
test_unreachable (void)
{
  struct cairn_prune_result res;

  ok (prune (NULL, false, NULL, &res) == 0, "prune every branch after "
      "deleting dev");
  is_str (verdict (&res, &c[3]), "prune", "c3 is only main's now");
  is_str (verdict (&res, &c[2]), "prune", "c2 is only main's now");
  is_str (verdict (&res, &c[1]), "keep: main: tag v1", "c1 stays tagged");
  is_int (res.n_unreachable, 1, "one commit is unreachable");
  ok (res.n_unreachable == 1 && cairn_id_equal (&res.unreachable[0], &d1),
      "it is d1, the deleted branch's");
  is_int (res.n_pruned, 3, "c3, c2 and d1 pruned");
  cairn_prune_result_free (&res);
  ok (fixture_pruned (s, &d1) && fixture_pruned (s, &c[3])
      && fixture_pruned (s, &c[2]), "they are tombstones");
  ok (!fixture_pruned (s, &c[6]) && !fixture_pruned (s, &c[4])
      && !fixture_pruned (s, &c[1]), "the kept ones are not");
  ok (prune ("dev", true, NULL, &res) == CAIRN_ENOREF,
      "pruning a branch that is gone is an error");
}

int
main (void)
{
  static const char *times[] = {
    NULL, "2026-11-18T09:00:00Z", "2026-11-20T10:00:00Z",
    "2026-11-21T10:00:00Z", "2026-11-21T10:30:00Z", "2026-11-21T11:00:00Z",
    "2026-11-21T11:15:00Z",
  };
  struct fixture f;
  int r = 0;

  if (fixture_open (&f, 4096) < 0) {
    printf ("Bail out! cannot make a store\n");
    return 1;
  }
  s = f.s;
  r = cairn_branch_create_empty (s, "main", "disk", 1 << 20);
  for (int i = 1; r == 0 && i <= 6; i++) {
    r = fixture_commit (s, "main", i * 8192, 4096, i, times[i], &c[i]);
    if (r == 0 && i == 1)
      r = cairn_tag_create (s, "v1", &c[1]);
    if (r == 0 && i == 3)
      r = cairn_branch_create_from (s, "dev", &c[3]);
  }
  if (r == 0)
    r = fixture_commit (s, "dev", 0, 4096, 100, "2026-11-21T12:00:00Z", &d1);
  if (r < 0) {
    printf ("Bail out! cannot make the history: %s\n", cairn_last_error ());
    return 1;
  }

  test_policies ();
  test_shared_history ();
  test_live_and_hook ();
  test_unreachable ();

  fixture_close (&f);
  return done_testing ();
}
