/* test-du: which commits own which bytes (store/du.c).
 *
 * A small history by hand, in a store that does not compress (so each
 * chunk is 4096 stored bytes): A = [P Q - R], its child B = [P Q - S]:
 * each references 3 chunks, owns 1 and shares 2, asked together or
 * alone; a commit repeating one chunk counts every place it names it,
 * owns it once; a commit that adds volume "memory" [S U] to B shares B's
 * whole disk tree; a pruned commit references nothing, and what it
 * shared becomes its child's own.
 *
 * Then a history of 200-chunk volumes (a tree of four leaves) drawn from
 * a few contents, compressed, on two branches: cairn_du of any subset of
 * its commits, in any order, before and after a prune, equals a count
 * made by brute force over each commit's chunk ids and their stored
 * sizes.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "gc-fixture.h"
#include "mem-source.h"
#include "scratch-store.h"
#include "tap.h"
#include "xorshift.h"

#define CS 4096

static struct cairn_store *s;

/* Imports CHUNKS (a content seed per chunk, 0: a hole) as VOLUME of
 * BRANCH into *COMMIT; fills IDS, if not NULL, with each chunk's id. */
static int
import_chunks (const char *branch, const char *volume, const int *chunks,
               size_t n, struct cairn_id *commit, struct cairn_id *ids)
{
  struct mem_source m;
  int r;

  mem_source_init (&m, n * CS);
  for (size_t i = 0; i < n; i++) {
    if (chunks[i])
      fixture_fill (m.data + i * CS, CS, chunks[i]);
    if (ids) {
      memset (&ids[i], 0, sizeof ids[i]);
      if (chunks[i])
        cairn_sha256 (m.data + i * CS, CS, &ids[i]);
    }
  }
  r = mem_source_import (s, branch, volume, &m, commit, NULL);
  mem_source_free (&m);
  return r;
}

static int
du (const struct cairn_id *ids, size_t n, struct cairn_du_entry *out)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_du (txn, ids, n, out);
  cairn_txn_abort (s, txn);
  return r;
}

static int
prune (const struct cairn_id *id)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  return cairn_txn_end (s, txn, cairn_commit_prune (txn, id));
}

static bool
entry_is (const struct cairn_du_entry *e, const struct cairn_id *id,
          uint64_t referenced, uint64_t unique, uint64_t shared)
{
  if (cairn_id_equal (&e->id, id) && e->referenced == referenced
      && e->unique == unique && e->shared == shared)
    return true;
  diag ("  got referenced %" PRIu64 " unique %" PRIu64 " shared %" PRIu64
        ", want %" PRIu64 " %" PRIu64 " %" PRIu64, e->referenced, e->unique,
        e->shared, referenced, unique, shared);
  return false;
}

static int64_t
commit_time (const struct cairn_id *id)
{
  struct cairn_txn *txn;
  struct cairn_commit *c;
  int64_t t = -1;

  if (cairn_txn_begin (s, false, &txn) < 0)
    return -1;
  if (cairn_commit_read (txn, id, &c) == 0) {
    t = c->time;
    cairn_commit_free (c);
  }
  cairn_txn_abort (s, txn);
  return t;
}

enum { P = 1, Q, R, S, T, U };

static void
by_hand (void)
{
  char dir[] = "/tmp/cairn-test-du.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS, .compress_level = -1 };
  const int a_chunks[] = { P, Q, 0, R }, b_chunks[] = { P, Q, 0, S };
  const int c_chunks[] = { T, T, T, 0 }, memory[] = { S, U };
  struct cairn_id a, b, c, d, ab[2], unknown;
  struct cairn_du_entry e[2];

  scratch_store_open (dir, &o, &s);
  ok (import_chunks ("main", "disk", a_chunks, 4, &a, NULL) == 0
      && import_chunks ("main", "disk", b_chunks, 4, &b, NULL) == 0,
      "A = [P Q - R] and its child B = [P Q - S], uncompressed");
  ab[0] = a;
  ab[1] = b;
  ok (du (ab, 2, e) == 0, "du of A and B");
  ok (entry_is (&e[0], &a, 3 * CS, CS, 2 * CS),
      "A: references 3 chunks, owns R, shares P and Q");
  ok (entry_is (&e[1], &b, 3 * CS, CS, 2 * CS),
      "B: references 3 chunks, owns S, shares P and Q");
  ok (!e[0].pruned && !e[1].pruned && e[0].time == commit_time (&a)
      && e[1].time == commit_time (&b), "neither pruned; their times");
  ok (du (&b, 1, e) == 0 && entry_is (&e[0], &b, 3 * CS, CS, 2 * CS),
      "B alone: the same, A still shares P and Q");
  struct cairn_id bb[2] = { b, b };
  ok (du (bb, 2, e) == 0 && entry_is (&e[0], &b, 3 * CS, CS, 2 * CS)
      && entry_is (&e[1], &b, 3 * CS, CS, 2 * CS),
      "B asked for twice: the same figures twice (it does not share with "
      "itself)");
  ok (du (ab, 0, e) == 0, "du of no commit");
  cairn_sha256 ("none", 4, &unknown);
  ok (du (&unknown, 1, e) < 0, "du of an unknown commit fails");

  /* referenced counts every place a chunk is named (du.c), unique the
   * bytes deleting the commit would free. */
  ok (import_chunks ("dup", "disk", c_chunks, 4, &c, NULL) == 0
      && du (&c, 1, e) == 0 && entry_is (&e[0], &c, 3 * CS, CS, 2 * CS),
      "C = [T T T -] on another branch: references T thrice, owns it once");

  ok (import_chunks ("main", "memory", memory, 2, &d, NULL) == 0
      && du (&d, 1, e) == 0 && entry_is (&e[0], &d, 5 * CS, CS, 4 * CS),
      "D = B + memory [S U]: B's disk and S shared, owns U");
  ok (du (&b, 1, e) == 0 && entry_is (&e[0], &b, 3 * CS, 0, 3 * CS),
      "now B owns nothing: D names all it names");

  ok (prune (&a) == 0 && du (ab, 2, e) == 0, "A pruned");
  ok (e[0].pruned && entry_is (&e[0], &a, 0, 0, 0)
      && e[0].time == commit_time (&a),
      "A: a tombstone, references nothing; its time still given");
  ok (entry_is (&e[1], &b, 3 * CS, 0, 3 * CS), "B: still all shared with D");
  ok (prune (&d) == 0 && du (ab, 2, e) == 0
      && entry_is (&e[1], &b, 3 * CS, 3 * CS, 0),
      "D pruned too: B owns P, Q and S");

  cairn_store_close (s);
  cairn_remove_tree (dir);
}

/* ---- against brute force --------------------------------------------- */

#define VCHUNKS 200
#define VERSIONS 6

struct version {
  struct cairn_id commit;
  struct cairn_id chunk[VCHUNKS];
  bool pruned;
};

static struct version v[VERSIONS];
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static unsigned
next_random (unsigned n)
{
  return xorshift64 (&rng) % n;
}

/* Stored bytes of chunk ID (0 for the zero id). */
static uint64_t
stored_bytes (struct cairn_txn *txn, const struct cairn_id *id)
{
  struct cairn_val val;

  if (cairn_id_is_zero (id)
      || cairn_object_get (txn, CAIRN_OBJECT_CHUNK, id, &val) < 0)
    return 0;
  return val.len;
}

static bool
names (const struct version *x, const struct cairn_id *id)
{
  for (size_t i = 0; i < VCHUNKS; i++)
    if (cairn_id_equal (&x->chunk[i], id))
      return true;
  return false;
}

/* What cairn_du must say of version K, counted the long way. */
static struct cairn_du_entry
brute_force (struct cairn_txn *txn, size_t k)
{
  struct cairn_du_entry e = { .id = v[k].commit, .pruned = v[k].pruned };

  if (v[k].pruned)
    return e;
  for (size_t i = 0; i < VCHUNKS; i++) {
    const struct cairn_id *id = &v[k].chunk[i];
    uint64_t bytes = stored_bytes (txn, id);
    bool first = true, elsewhere = false;
    e.referenced += bytes;
    for (size_t j = 0; j < i && first; j++)
      first = !cairn_id_equal (&v[k].chunk[j], id);
    for (size_t x = 0; x < VERSIONS && !elsewhere; x++)
      elsewhere = x != k && !v[x].pruned && names (&v[x], id);
    if (first && !elsewhere)
      e.unique += bytes;
  }
  e.shared = e.referenced - e.unique;
  return e;
}

/* True if cairn_du of the versions WHICH[0..N) equals brute force. */
static bool
du_right (const size_t *which, size_t n)
{
  struct cairn_id ids[VERSIONS];
  struct cairn_du_entry got[VERSIONS];
  struct cairn_txn *txn;
  bool same = true;

  for (size_t i = 0; i < n; i++)
    ids[i] = v[which[i]].commit;
  if (du (ids, n, got) < 0 || cairn_txn_begin (s, false, &txn) < 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    struct cairn_du_entry want = brute_force (txn, which[i]);
    if (got[i].pruned != want.pruned)
      same = false;
    else if (!entry_is (&got[i], &want.id, want.referenced, want.unique,
                        want.shared))
      same = false;
  }
  cairn_txn_abort (s, txn);
  return same;
}

/* Version K: version FROM with CHANGES random chunks redrawn from a few
 * contents (a fifth of them holes), imported into BRANCH. */
static int
make_version (size_t k, int from, unsigned changes, const char *branch)
{
  static int seeds[VERSIONS][VCHUNKS];

  for (size_t i = 0; i < VCHUNKS; i++)
    seeds[k][i] = from < 0 ? (int) next_random (30) : seeds[from][i];
  for (unsigned c = 0; c < changes; c++)
    seeds[k][next_random (VCHUNKS)] = (int) next_random (30);
  for (size_t i = 0; i < VCHUNKS; i++)
    if (seeds[k][i] % 5 == 0)
      seeds[k][i] = 0;
  return import_chunks (branch, "disk", seeds[k], VCHUNKS, &v[k].commit,
                        v[k].chunk);
}

static void
against_brute_force (void)
{
  char dir[] = "/tmp/cairn-test-du.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS };
  static const size_t all[] = { 0, 1, 2, 3, 4, 5 };
  static const size_t reversed[] = { 5, 4, 3, 2, 1, 0 };
  static const size_t some[] = { 3, 0 }, one[] = { 2 };

  scratch_store_open (dir, &o, &s);
  ok (make_version (0, -1, 0, "main") == 0
      && make_version (1, 0, 3, "main") == 0
      && make_version (2, 1, 1, "main") == 0
      && make_version (3, 1, 2, "other") == 0
      && make_version (4, 0, 0, "main") == 0
      && make_version (5, 3, 40, "third") == 0,
      "six versions of a 200-chunk volume on three branches");
  ok (du_right (all, 6), "du of all six equals brute force");
  ok (du_right (reversed, 6), "in reverse order too");
  ok (du_right (some, 2), "of two of them");
  ok (du_right (one, 1), "of one");
  ok (prune (&v[1].commit) == 0 && prune (&v[4].commit) == 0,
      "two of them pruned");
  v[1].pruned = v[4].pruned = true;
  ok (du_right (all, 6), "du of all six equals brute force after the prune");
  ok (du_right (reversed, 6), "in reverse order too");
  ok (du_right (some, 2), "of two of them");
  cairn_store_close (s);
  cairn_remove_tree (dir);
}

int
main (void)
{
  by_hand ();
  against_brute_force ();
  return done_testing ();
}
