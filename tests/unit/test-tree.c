/* test-tree: Merkle block-map trees (store/tree.c): lookup, update with
 * structural sharing, the streaming builder, walks and diffs. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/internal.h"
#include "tap.h"

static struct cairn_store *s;

static struct cairn_id
fake_chunk (uint64_t i)
{
  struct cairn_id id;
  cairn_sha256 (&i, sizeof i, &id);
  return id;
}

static int
cmp_change (const void *a, const void *b)
{
  uint64_t x = ((const struct tree_change *) a)->index;
  uint64_t y = ((const struct tree_change *) b)->index;
  return x < y ? -1 : x > y;
}

struct collect {
  uint64_t *idx;
  size_t n, cap;
};

static int
collect_chunk (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct collect *c = arg;
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    c->idx = realloc (c->idx, c->cap * sizeof *c->idx);
  }
  c->idx[c->n++] = index;
  return 0;
}

static int
collect_diff (uint64_t index, const struct cairn_id *a,
              const struct cairn_id *b, void *arg)
{
  return collect_chunk (index, a, arg);
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-tree.XXXXXX", path[256];
  struct cairn_txn *txn;
  struct cairn_id root, root2, id;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  if (cairn_store_init (path, NULL) < 0 || cairn_store_open (path, 0, &s) < 0)
    return 1;

  is_int (cairn_tree_levels (1, 65536), 1, "one chunk: one level");
  is_int (cairn_tree_levels (64ULL * 65536, 65536), 1, "64 chunks: one level");
  is_int (cairn_tree_levels (65ULL * 65536, 65536), 2, "65 chunks: two");
  is_int (cairn_tree_levels (8ULL << 30, 65536), 3, "8 GiB of 64 KiB: three");
  is_int (cairn_tree_levels (1ULL << 40, 65536), 4, "1 TiB of 64 KiB: four");
  is_int (cairn_tree_levels (1ULL << 40, 4096), 5, "1 TiB of 4 KiB: five");

  /* A 1 TiB volume (4 levels) with 20000 chunks scattered over it. */
  unsigned levels = 4;
  size_t n = 20000;
  struct tree_change *ch = malloc (n * sizeof *ch);
  srand (7);
  for (size_t i = 0; i < n; i++) {
    ch[i].index = ((uint64_t) rand () << 8 ^ rand ()) % (1ULL << 24);
    ch[i].id = fake_chunk (ch[i].index);
  }
  qsort (ch, n, sizeof *ch, cmp_change);
  size_t u = 0;
  for (size_t i = 0; i < n; i++)
    if (u == 0 || ch[u - 1].index != ch[i].index)
      ch[u++] = ch[i];
  n = u;

  cairn_txn_begin (s, true, &txn);
  ok (tree_update (txn, &cairn_zero_id, levels, ch, n, &root) == 0,
      "build a sparse tree by update (%zu chunks)", n);
  bool all = true;
  for (size_t i = 0; i < n; i++)
    all &= tree_lookup (txn, &root, levels, ch[i].index, &id) == 0
      && cairn_id_equal (&id, &ch[i].id);
  ok (all, "every chunk is found where it was put");
  ok (tree_lookup (txn, &root, levels, ch[0].index + 1, &id) == 0
      && (ch[1].index == ch[0].index + 1 || cairn_id_is_zero (&id)),
      "a chunk never written is a hole");

  /* A whole leaf at once, as the branch's leaf cache reads it: a leaf
   * with chunks, and one under a hole. */
  struct cairn_id leaf[TREE_FANOUT];
  for (int k = 0; k < 2; k++) {
    uint64_t first = k == 0 ? ch[n / 3].index & ~(uint64_t) (TREE_FANOUT - 1)
                            : (1ULL << 24) - TREE_FANOUT;
    bool same = tree_leaf (txn, &root, levels, first + 5, leaf) == 0;
    unsigned chunks = 0;
    for (unsigned i = 0; same && i < TREE_FANOUT; i++) {
      same = tree_lookup (txn, &root, levels, first + i, &id) == 0
        && cairn_id_equal (&id, &leaf[i]);
      chunks += !cairn_id_is_zero (&leaf[i]);
    }
    ok (same && (k == 0 ? chunks > 0 : true),
        "tree_leaf gives what tree_lookup does, chunk by chunk (%u chunks "
        "in the leaf)", chunks);
  }
  ok (tree_leaf (txn, &root, levels, 1ULL << 24, leaf) == -EINVAL,
      "tree_leaf refuses an index past the tree");

  /* Structural sharing: one changed chunk writes one node per level. */
  uint64_t before = cairn_tree_nodes_written ();
  struct tree_change one = { ch[n / 2].index, fake_chunk (999999999) };
  ok (tree_update (txn, &root, levels, &one, 1, &root2) == 0, "update one");
  is_int (cairn_tree_nodes_written () - before, levels,
          "one changed chunk writes exactly one node per level");
  ok (tree_lookup (txn, &root2, levels, one.index, &id) == 0
      && cairn_id_equal (&id, &one.id), "the new tree has the new chunk");
  ok (tree_lookup (txn, &root, levels, one.index, &id) == 0
      && cairn_id_equal (&id, &ch[n / 2].id), "the old tree is unchanged");

  /* 16 consecutive chunks (1 MiB at 64 KiB) share a leaf. */
  struct tree_change run[16];
  uint64_t base = 5ULL << 20;
  for (int i = 0; i < 16; i++) {
    run[i].index = base + i;
    run[i].id = fake_chunk (base + i + 7);
  }
  before = cairn_tree_nodes_written ();
  tree_update (txn, &root, levels, run, 16, &root2);
  is_int (cairn_tree_nodes_written () - before, levels,
          "1 MiB written in one place writes one node per level");

  /* Restoring the old content gives the old root: ids are canonical. */
  struct tree_change back = { one.index, ch[n / 2].id };
  struct cairn_id root3;
  tree_update (txn, &root2, levels, &run[0], 0, &root3);
  struct tree_change undo[17];
  for (int i = 0; i < 16; i++) {
    undo[i].index = run[i].index;
    tree_lookup (txn, &root, levels, run[i].index, &undo[i].id);
  }
  tree_update (txn, &root2, levels, undo, 16, &root3);
  ok (cairn_id_equal (&root3, &root), "undoing changes gives the same root");
  (void) back;

  /* Zeroing every chunk collapses the tree to the zero id. */
  struct tree_change *zero = malloc (n * sizeof *zero);
  for (size_t i = 0; i < n; i++) {
    zero[i].index = ch[i].index;
    zero[i].id = cairn_zero_id;
  }
  tree_update (txn, &root, levels, zero, n, &root3);
  ok (cairn_id_is_zero (&root3), "an all-hole tree is the zero id");

  /* The streaming builder gives the same root as updates. */
  struct cairn_tree_builder *tb;
  ok (cairn_tree_builder_new (levels, &tb) == 0, "builder");
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++)
    r = cairn_tree_builder_add (tb, txn, ch[i].index, &ch[i].id);
  ok (r == 0 && cairn_tree_builder_finish (tb, txn, &root3) == 0
      && cairn_id_equal (&root3, &root),
      "builder and update agree on the root");
  cairn_tree_builder_free (tb);
  cairn_tree_builder_new (levels, &tb);
  ok (cairn_tree_builder_add (tb, txn, 10, &ch[0].id) == 0
      && cairn_tree_builder_add (tb, txn, 9, &ch[0].id) == -EINVAL,
      "builder refuses indexes out of order");
  cairn_tree_builder_free (tb);

  /* Walks visit chunks in order and honour the range. */
  struct collect c = { 0 };
  cairn_tree_walk (txn, &root, levels, 0, UINT64_MAX >> 1, collect_chunk, &c);
  all = c.n == n;
  for (size_t i = 0; all && i < n; i++)
    all = c.idx[i] == ch[i].index;
  ok (all, "walk visits every chunk in index order");
  c.n = 0;
  cairn_tree_walk (txn, &root, levels, ch[100].index, ch[199].index,
                   collect_chunk, &c);
  ok (c.n == 100 && c.idx[0] == ch[100].index,
      "a ranged walk visits exactly the chunks in range");

  /* Diff finds exactly the changed chunks. */
  c.n = 0;
  ok (cairn_tree_diff (txn, &root, levels, &root2, levels, collect_diff, &c)
      == 0, "diff");
  all = c.n == 16;
  for (size_t i = 0; all && i < 16; i++)
    all = c.idx[i] == base + i;
  ok (all, "diff reports exactly the 16 changed chunks (got %zu)", c.n);
  c.n = 0;
  cairn_tree_diff (txn, &root, levels, &root, levels, collect_diff, &c);
  is_int (c.n, 0, "a tree does not differ from itself");

  /* Trees of different heights: a 1-level tree against a 3-level one. */
  struct tree_change small[2] = { { 3, fake_chunk (3) },
                                  { 50, fake_chunk (50) } };
  struct cairn_id r1, r3;
  tree_update (txn, &cairn_zero_id, 1, small, 2, &r1);
  tree_update (txn, &cairn_zero_id, 3, small, 2, &r3);
  c.n = 0;
  cairn_tree_diff (txn, &r1, 1, &r3, 3, collect_diff, &c);
  is_int (c.n, 0, "the same chunks at different heights do not differ");
  small[1].id = fake_chunk (51);
  tree_update (txn, &cairn_zero_id, 3, small, 2, &r3);
  c.n = 0;
  cairn_tree_diff (txn, &r1, 1, &r3, 3, collect_diff, &c);
  ok (c.n == 1 && c.idx[0] == 50, "a changed chunk across heights");

  cairn_txn_commit (s, txn);
  free (c.idx);
  free (ch);
  free (zero);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
