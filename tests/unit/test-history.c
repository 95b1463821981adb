/* test-history: cairn_history's order (store/history.c).
 *
 * Newest first, but never a commit before one of its children (git's
 * --date-order), equal times by id: a head dated before its parent still
 * comes first, a child of the same time as its parent comes first, and a
 * random graph gets exactly what a plain O(n^2) Kahn's algorithm gives.
 * A long history with every time reversed takes O(n log n).
 *
 * Commits are written straight as objects, with any parents and times,
 * without branches.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/backend.h"
#include "store/store.h"
#include "scratch-store.h"
#include "tap.h"

#define SECOND 1000000000LL

static struct cairn_store *s;
static struct cairn_txn *txn;   /* the write transaction of the commits */
static unsigned serial;         /* makes commits of equal content differ */

static struct cairn_id
put_commit (int64_t time, const struct cairn_id *parents, size_t nparents)
{
  char message[32];
  struct cairn_commit c = {
    .parents = (struct cairn_id *) parents,
    .nparents = nparents,
    .time = time,
    .message = message,
  };
  struct cairn_id id = { 0 };
  char *text;
  size_t len;

  snprintf (message, sizeof message, "%u", serial++);
  if (cairn_commit_format (&c, &text, &len) < 0)
    return id;
  cairn_sha256 (text, len, &id);
  if (cairn_store_backend (s)->ops->object_put (cairn_txn_backend (txn),
                                                CAIRN_OBJECT_COMMIT, &id,
                                                text, len, len, 0) < 0)
    memset (&id, 0, sizeof id);
  free (text);
  return id;
}

/* The history of HEADS in TXN, or NULL. */
static struct cairn_id *
history (const struct cairn_id *heads, size_t nheads, bool first_parent,
         size_t *n)
{
  struct cairn_id *ids;
  return cairn_history (txn, heads, nheads, first_parent, &ids, n) == 0
    ? ids : NULL;
}

static bool
same_ids (const struct cairn_id *got, size_t ngot,
          const struct cairn_id *want, size_t nwant)
{
  return got && ngot == nwant
    && memcmp (got, want, nwant * sizeof *want) == 0;
}

static void
back_dated_head (void)
{
  struct cairn_id c[3], *ids;
  size_t n;

  c[2] = put_commit (3 * SECOND, NULL, 0);
  c[1] = put_commit (2 * SECOND, &c[2], 1);
  c[0] = put_commit (1 * SECOND, &c[1], 1);
  ids = history (&c[0], 1, false, &n);
  ok (same_ids (ids, n, c, 3),
      "each commit older than its parent: still head first");
  free (ids);
}

static void
equal_times (void)
{
  struct cairn_id c[6], *ids;
  size_t n;

  c[5] = put_commit (7 * SECOND, NULL, 0);
  for (int i = 4; i >= 0; i--)
    c[i] = put_commit (7 * SECOND, &c[i + 1], 1);
  ids = history (&c[0], 1, false, &n);
  ok (same_ids (ids, n, c, 6), "commits of one time: child before parent");
  free (ids);
}

static void
fork_and_merge (void)
{
  struct cairn_id root, a, a2, b, m, mp[2], *ids;
  size_t n;

  root = put_commit (10 * SECOND, NULL, 0);
  a = put_commit (50 * SECOND, &root, 1);
  b = put_commit (30 * SECOND, &root, 1);
  a2 = put_commit (5 * SECOND, &a, 1);

  struct cairn_id heads[] = { a2, b, b, { { 0 } } };
  struct cairn_id want[] = { b, a2, a, root };
  ids = history (heads, 4, false, &n);
  ok (same_ids (ids, n, want, 4),
      "two branches: newest ready first, each once, zero heads skipped");
  free (ids);

  mp[0] = a;
  mp[1] = b;
  m = put_commit (1 * SECOND, mp, 2);
  struct cairn_id all[] = { m, a, b, root };
  ids = history (&m, 1, false, &n);
  ok (same_ids (ids, n, all, 4), "a merge comes before both its parents");
  free (ids);
  struct cairn_id first[] = { m, a, root };
  ids = history (&m, 1, true, &n);
  ok (same_ids (ids, n, first, 3), "--first-parent leaves the side out");
  free (ids);
}

struct ref_node {
  struct cairn_id id;
  int64_t time;
  size_t parents[2], nparents, children;
  bool done;
};

/* Kahn's algorithm the slow, obvious way: the order history.c must give. */
static void
reference_order (struct ref_node *nodes, size_t n, struct cairn_id *out)
{
  for (size_t i = 0; i < n; i++)
    for (size_t p = 0; p < nodes[i].nparents; p++)
      nodes[nodes[i].parents[p]].children++;
  for (size_t m = 0; m < n; m++) {
    size_t pick = n;
    for (size_t i = 0; i < n; i++) {
      if (nodes[i].done || nodes[i].children)
        continue;
      if (pick == n || nodes[i].time > nodes[pick].time
          || (nodes[i].time == nodes[pick].time
              && memcmp (&nodes[i].id, &nodes[pick].id,
                         sizeof nodes[i].id) < 0))
        pick = i;
    }
    nodes[pick].done = true;
    out[m] = nodes[pick].id;
    for (size_t p = 0; p < nodes[pick].nparents; p++)
      nodes[nodes[pick].parents[p]].children--;
  }
}

/* Commits with one or two random older parents (by creation) and times
 * from a small range, so that many are equal and many children are older
 * than their parents; heads are the commits nothing names. */
static void
random_graph (void)
{
  enum { N = 1500 };
  struct ref_node *nodes = calloc (N, sizeof *nodes);
  struct cairn_id *want = calloc (N, sizeof *want);
  struct cairn_id *heads = calloc (N, sizeof *heads), *ids;
  bool *named = calloc (N, sizeof *named);
  size_t nheads = 0, n;

  srand (42);
  for (size_t i = 0; i < N; i++) {
    struct cairn_id parents[2];
    nodes[i].time = (rand () % 40) * SECOND;
    nodes[i].nparents = i == 0 ? 0 : 1 + (rand () % 4 == 0);
    for (size_t p = 0; p < nodes[i].nparents; p++) {
      /* Mostly recent parents: long chains, and some far back. */
      size_t back = rand () % 8 ? 1 + (size_t) rand () % 3
                                : 1 + (size_t) rand () % i;
      nodes[i].parents[p] = back > i ? 0 : i - back;
      parents[p] = nodes[nodes[i].parents[p]].id;
      named[nodes[i].parents[p]] = true;
    }
    if (nodes[i].nparents == 2 && nodes[i].parents[0] == nodes[i].parents[1])
      nodes[i].nparents = 1;
    nodes[i].id = put_commit (nodes[i].time, parents, nodes[i].nparents);
  }
  for (size_t i = 0; i < N; i++)
    if (!named[i])
      heads[nheads++] = nodes[i].id;
  reference_order (nodes, N, want);
  ids = history (heads, nheads, false, &n);
  ok (same_ids (ids, n, want, N),
      "a random graph of %d commits and %zu heads: the reference order",
      N, nheads);
  free (ids);
  free (named);
  free (heads);
  free (want);
  free (nodes);
}

/* 100,000 commits, each dated before its parent: sorting by time alone
 * would put each one last.  (The suite times nothing; an O(n^2) order
 * would show here as a test that takes minutes.) */
static void
long_reversed_history (void)
{
  enum { N = 100000 };
  struct cairn_id *chain = malloc (N * sizeof *chain), *ids;
  size_t n;

  for (size_t i = 0; i < N; i++)
    chain[N - 1 - i] = put_commit ((int64_t) (N - i) * SECOND,
                                   i ? &chain[N - i] : NULL, i ? 1 : 0);
  ids = history (&chain[0], 1, false, &n);
  ok (same_ids (ids, n, chain, N),
      "%d commits, each older than its parent: head to root", N);
  free (ids);
  free (chain);
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-history.XXXXXX";

  scratch_store (dir, &s, &txn);

  back_dated_head ();
  equal_times ();
  fork_and_merge ();
  random_graph ();
  long_reversed_history ();

  cairn_txn_abort (s, txn);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
