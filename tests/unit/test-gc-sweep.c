/* test-gc-sweep: what gc deletes, what it keeps, and what it gives back.
 *
 * A branch of ten commits over a 1 MiB volume of 4 KiB chunks (the first
 * writes it all, the others rewrite 64 KiB each), packs of 64 KiB so that
 * there are many.  Retention keeps the last two and a tagged one; gc must
 * then delete exactly the data only pruned commits reached, shrink the
 * packs, leave every kept commit reading as before, and do just what its
 * dry run said.  (What gc must keep although nothing names it:
 * test-gc-protect.)
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gc/gc.h"
#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

#define VOLUME (1 << 20)
#define CHUNK 4096
#define REWRITE (64 << 10)
#define COMMITS 10

static struct cairn_store *s;
static struct cairn_id c[COMMITS + 1], digest[COMMITS + 1];

static int
run_gc (const struct cairn_gc_options *o, struct cairn_gc_report *g)
{
  int r = cairn_gc (s, o, g);
  if (r < 0)
    diag ("gc: %s", cairn_last_error ());
  return r;
}

static bool
same_digest (int i)
{
  struct cairn_id d;
  return fixture_digest (s, &c[i], &d) == 0 && cairn_id_equal (&d, &digest[i]);
}

static int
fsck (struct cairn_fsck_report *f)
{
  int r = cairn_fsck (s, &(struct cairn_fsck_options) { .read_data = true },
                      f);
  for (size_t i = 0; r == 0 && i < f->n_problems; i++)
    diag ("fsck: %s", f->problems[i]);
  return r;
}

static int
prune_all (void)
{
  struct cairn_prune_result res;
  int r = cairn_prune (s, &(struct cairn_prune_options) { 0 }, &res);
  if (r == 0)
    cairn_prune_result_free (&res);
  return r;
}

static int
keep_last (const char *n)
{
  struct cairn_retention_policy p = { 0 };
  cairn_retention_policy_set (&p, "keep-last", n);
  return cairn_retention_set (s, "main", &p);
}

static void
test_reclaim (void)
{
  struct cairn_gc_report dry, g, again;
  struct cairn_fsck_report before, after;

  ok (keep_last ("2") == 0 && prune_all () == 0, "prune to the last 2");
  ok (fsck (&before) == 0 && before.n_problems == 0, "fsck before gc");
  ok (before.unreachable_chunks > 0, "pruning left %llu unreachable chunks",
      (unsigned long long) before.unreachable_chunks);

  uint64_t packs0 = fixture_pack_bytes (s);
  ok (run_gc (&(struct cairn_gc_options) { .dry_run = true }, &dry) == 0,
      "gc --dry-run");
  is_int (dry.chunks_swept, before.unreachable_chunks,
          "a dry run counts every unreachable chunk");
  ok (dry.reclaimed_bytes > 0, "and would reclaim %llu bytes",
      (unsigned long long) dry.reclaimed_bytes);
  is_int (fixture_pack_bytes (s), packs0, "a dry run changes no pack");
  ok (fsck (&after) == 0 && after.unreachable_chunks
      == before.unreachable_chunks, "nor the index");
  cairn_fsck_report_free (&after);

  ok (run_gc (NULL, &g) == 0, "gc");
  is_int (g.chunks_swept, dry.chunks_swept, "it swept what the dry run said");
  is_int (g.nodes_swept, before.unreachable_nodes, "and every dead node");
  ok (g.packs_compacted + g.packs_emptied > 0, "it compacted %llu packs and "
      "removed %llu", (unsigned long long) g.packs_compacted,
      (unsigned long long) g.packs_emptied);
  uint64_t packs1 = fixture_pack_bytes (s);
  ok (packs1 < packs0, "packs shrank from %llu to %llu bytes",
      (unsigned long long) packs0, (unsigned long long) packs1);
  is_int (g.reclaimed_bytes, packs0 - packs1, "the report says by how much");
  is_int (g.reclaimed_bytes, dry.reclaimed_bytes,
          "as much as the dry run said");
  ok (g.longest_txn_ns < 1000000000LL, "its longest transaction took "
      "%.1f ms", g.longest_txn_ns / 1e6);

  ok (fsck (&after) == 0 && after.n_problems == 0, "fsck --read-data after "
      "gc: intact");
  is_int (after.unreachable_chunks, 0, "nothing unreachable is left");
  is_int (after.unreachable_nodes, 0, "no dead node either");
  is_int (after.chunks, before.chunks, "every reachable chunk is still "
          "there");
  cairn_fsck_report_free (&after);
  cairn_fsck_report_free (&before);

  bool all = true;
  for (int i = 1; i <= COMMITS; i++)
    if (!fixture_pruned (s, &c[i]))
      all &= same_digest (i);
  ok (all, "every kept commit reads as before");
  ok (fixture_pruned (s, &c[5]) && !fixture_pruned (s, &c[3]),
      "the tagged commit was kept, its neighbours not");

  ok (run_gc (NULL, &again) == 0 && again.chunks_swept == 0
      && again.nodes_swept == 0, "a second gc finds nothing to sweep");
}

int
main (void)
{
  struct fixture f;
  int r;

  setenv ("CAIRN_PACK_LIMIT", "64K", 1);
  if (fixture_open (&f, CHUNK) < 0) {
    printf ("Bail out! cannot make a store\n");
    return 1;
  }
  s = f.s;
  r = cairn_branch_create_empty (s, "main", "disk", VOLUME);
  for (int i = 1; r == 0 && i <= COMMITS; i++) {
    char when[32];
    snprintf (when, sizeof when, "2026-11-21T10:%02d:00Z", i);
    r = i == 1 ? fixture_commit (s, "main", 0, VOLUME, i, when, &c[i])
      : fixture_commit (s, "main", ((i * 5) % 16) * REWRITE, REWRITE, i,
                        when, &c[i]);
    if (r == 0)
      r = fixture_digest (s, &c[i], &digest[i]);
  }
  if (r == 0)
    r = cairn_tag_create (s, "keep-me", &c[3]);
  if (r < 0) {
    printf ("Bail out! cannot make the history: %s\n", cairn_last_error ());
    return 1;
  }

  test_reclaim ();
  fixture_close (&f);
  return done_testing ();
}
