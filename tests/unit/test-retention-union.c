/* test-retention-union: branches that share history protect each other.
 *
 * Selection runs per branch; cairn_retention_union() merges the verdicts.
 * The history used throughout:
 *
 *   m1 ── m2 ── m3 ── m4    main  (Nov 1, 2, 3, 4)
 *          └─── d1          dev   (Nov 5), branched from m2
 *
 * main's first-parent chain is m4 m3 m2 m1, dev's is d1 m2 m1.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "retention/retention.h"
#include "tap.h"

enum { M1 = 1, M2, M3, M4, D1 };

static const char *const times[] = {
  [M1] = "2026-11-01T12:00:00Z",
  [M2] = "2026-11-02T12:00:00Z",
  [M3] = "2026-11-03T12:00:00Z",
  [M4] = "2026-11-04T12:00:00Z",
  [D1] = "2026-11-05T12:00:00Z",
};

static struct cairn_retention_item
item (int commit)
{
  struct cairn_retention_item it = { .id = { { commit } } };

  cairn_time_parse (times[commit], &it.time);
  return it;
}

/* Runs selection on a chain of commits (head first) under OPTIONS. */
static struct cairn_retention_result *
select_chain (const int *chain, size_t n, const char *name, const char *value)
{
  struct cairn_retention_policy policy = { 0 };
  struct cairn_retention_item items[8];
  struct cairn_retention_result *result = NULL;

  if (name)
    cairn_retention_policy_set (&policy, name, value);
  for (size_t i = 0; i < n; i++)
    items[i] = item (chain[i]);
  if (cairn_retention_select (&policy, items, n, &result) < 0)
    diag ("select failed");
  return result;
}

static const struct cairn_retention_decision *
find (const struct cairn_retention_result *result, int commit)
{
  for (size_t i = 0; result && i < result->n_decisions; i++)
    if (result->decisions[i].id.bytes[0] == commit)
      return &result->decisions[i];
  return NULL;
}

static void
join (const struct cairn_retention_decision *d, char *buf, size_t len)
{
  buf[0] = '\0';
  for (size_t i = 0; d && i < d->n_reasons; i++)
    snprintf (buf + strlen (buf), len - strlen (buf), "%s%s",
              i ? "; " : "", d->reasons[i]);
}

/* Checks that COMMIT is in RESULT with the verdict WANT (NULL: pruned). */
static void
check (const struct cairn_retention_result *result, int commit,
       const char *want, const char *what)
{
  const struct cairn_retention_decision *d = find (result, commit);
  char got[512];

  join (d, got, sizeof got);
  if (!ok (d && d->keep == (want != NULL) && strcmp (got, want ? want : "") == 0,
           "%s: %s", what, want ? want : "pruned"))
    diag ("  got %s \"%s\"", !d ? "nothing" : d->keep ? "kept" : "pruned", got);
}

static const int main_chain[] = { M4, M3, M2, M1 };
static const int dev_chain[] = { D1, M2, M1 };

static void
test_shared_commit_is_protected (void)
{
  struct cairn_retention_result *main_r = select_chain (main_chain, 4, "keep-last", "2");
  struct cairn_retention_result *dev_r = select_chain (dev_chain, 3, "keep-last", "2");
  const struct cairn_retention_result *both[] = { main_r, dev_r };
  const char *names[] = { "main", "dev" };
  struct cairn_retention_result *u = NULL;

  check (main_r, M2, NULL, "main alone would prune m2");
  check (dev_r, M2, "last 2", "dev alone keeps m2");

  is_int (cairn_retention_union (both, names, 2, &u), 0, "union of main and dev");
  check (u, D1, "dev: last 1", "d1");
  check (u, M4, "main: last 1", "m4");
  check (u, M3, "main: last 2", "m3");
  check (u, M2, "dev: last 2", "m2 is kept: dev keeps it though main drops it");
  check (u, M1, NULL, "m1 is pruned: no branch keeps it");
  is_int (u ? u->n_decisions : 0, 5, "one decision per distinct commit");
  is_int (u ? u->n_keep : 0, 4, "four kept");

  bool order = u && u->n_decisions == 5;
  static const int newest_first[] = { D1, M4, M3, M2, M1 };
  for (size_t i = 0; order && i < 5; i++)
    order = u->decisions[i].id.bytes[0] == newest_first[i];
  ok (order, "union is newest first: d1 m4 m3 m2 m1");
  cairn_retention_result_free (u);

  /* The branch that keeps m2 comes first now: no vote may undo a keep. */
  const struct cairn_retention_result *reversed[] = { dev_r, main_r };
  const char *reversed_names[] = { "dev", "main" };
  cairn_retention_union (reversed, reversed_names, 2, &u);
  check (u, M2, "dev: last 2", "m2 is kept whichever branch comes first");
  check (u, M1, NULL, "m1 is still pruned");

  cairn_retention_result_free (u);
  cairn_retention_result_free (main_r);
  cairn_retention_result_free (dev_r);
}

static void
test_reasons_of_every_branch (void)
{
  struct cairn_retention_result *main_r = select_chain (main_chain, 4, "keep-last", "3");
  struct cairn_retention_result *dev_r = select_chain (dev_chain, 3, "keep-last", "2");
  const struct cairn_retention_result *both[] = { main_r, dev_r };
  const char *names[] = { "main", "dev" };
  struct cairn_retention_result *u = NULL;

  cairn_retention_union (both, names, 2, &u);
  check (u, M2, "main: last 3; dev: last 2",
         "a commit kept by two branches lists both, in input order");
  cairn_retention_result_free (u);

  cairn_retention_union (both, NULL, 2, &u);
  check (u, M2, "last 3; last 2", "without branch names, no prefix");
  cairn_retention_result_free (u);
  cairn_retention_result_free (main_r);
  cairn_retention_result_free (dev_r);
}

static void
test_branch_without_policy (void)
{
  /* "old" has no policy: its empty policy keeps its whole chain, m1. */
  static const int old_chain[] = { M1 };
  struct cairn_retention_result *main_r = select_chain (main_chain, 4, "keep-last", "1");
  struct cairn_retention_result *old_r = select_chain (old_chain, 1, NULL, NULL);
  const struct cairn_retention_result *both[] = { main_r, old_r };
  const char *names[] = { "main", "old" };
  struct cairn_retention_result *u = NULL;

  cairn_retention_union (both, names, 2, &u);
  check (u, M1, "old: empty policy", "a branch without a policy protects its chain");
  check (u, M2, NULL, "m2 is pruned");
  cairn_retention_result_free (u);
  cairn_retention_result_free (main_r);
  cairn_retention_result_free (old_r);
}

static void
test_equal_times_keep_input_order (void)
{
  struct cairn_retention_item a = item (M1), b = item (M2);
  struct cairn_retention_policy policy = { .keep_last = 1 };
  struct cairn_retention_result *ra = NULL, *rb = NULL, *u = NULL;

  b.time = a.time;
  cairn_retention_select (&policy, &a, 1, &ra);
  cairn_retention_select (&policy, &b, 1, &rb);
  const struct cairn_retention_result *ab[] = { ra, rb }, *ba[] = { rb, ra };

  cairn_retention_union (ab, NULL, 2, &u);
  ok (u && u->n_decisions == 2 && u->decisions[0].id.bytes[0] == M1,
      "equal times: first appearance first (m1, m2)");
  cairn_retention_result_free (u);
  cairn_retention_union (ba, NULL, 2, &u);
  ok (u && u->n_decisions == 2 && u->decisions[0].id.bytes[0] == M2,
      "equal times: first appearance first (m2, m1)");
  cairn_retention_result_free (u);
  cairn_retention_result_free (ra);
  cairn_retention_result_free (rb);
}

static void
test_errors_and_edges (void)
{
  struct cairn_retention_item a = item (M1), b = item (M1);
  struct cairn_retention_policy policy = { .keep_last = 1 };
  struct cairn_retention_result *ra = NULL, *rb = NULL;
  static struct cairn_retention_result sentinel;
  struct cairn_retention_result *u = &sentinel;

  b.time += 1;
  cairn_retention_select (&policy, &a, 1, &ra);
  cairn_retention_select (&policy, &b, 1, &rb);
  const struct cairn_retention_result *both[] = { ra, rb };
  is_int (cairn_retention_union (both, NULL, 2, &u), -EINVAL,
          "one commit with two times is refused");
  ok (u == &sentinel, "and leaves *union_result alone");

  is_int (cairn_retention_union (NULL, NULL, 0, &u), 0, "a union of nothing");
  ok (u != &sentinel && u->n_decisions == 0, "is empty");
  cairn_retention_result_free (u);
  cairn_retention_result_free (ra);
  cairn_retention_result_free (rb);
}

int
main (void)
{
  test_shared_commit_is_protected ();
  test_reasons_of_every_branch ();
  test_branch_without_policy ();
  test_equal_times_keep_input_order ();
  test_errors_and_edges ();
  return done_testing ();
}
