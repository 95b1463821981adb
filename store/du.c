/* du.c: which commits own which bytes.
 *
 * A commit's chunks are "unique" if no other live commit reaches them and
 * "shared" otherwise.  Asking every commit separately would cost commits x
 * volume size; instead one pass over all live commits records, for every
 * distinct node and chunk, its first owner and whether a second commit
 * reached it.  A node found shared marks its whole subtree shared, then is
 * never entered again, so each node is entered at most three times
 * (first owner, the owner again via another path - skipped at once, and
 * the pass that marks it shared).  The cost is O(distinct nodes + chunks).
 *
 * Values kept per id: bits 0-30 owner commit index + 1, bit 31 shared,
 * bits 32-63 the chunk's stored size.  Subtree sums (stored bytes under a
 * node, counting each position) are memoized in a second set.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/idset.h"
#include "store/internal.h"

#define OWNER_MASK 0x7fffffffULL
#define SHARED (1ULL << 31)

struct du {
  struct cairn_txn *txn;
  struct idset nodes, chunks, sums;
};

static int
chunk_size_of (struct du *d, const struct cairn_id *id, uint64_t *size)
{
  struct cairn_object_info info;
  int r = TOPS (d->txn)->object_stat (d->txn->bt, CAIRN_OBJECT_CHUNK, id,
                                      &info);
  if (r == -ENOENT) {
    *size = 0;                  /* fsck reports it; du just counts 0 */
    return 0;
  }
  *size = info.stored_len;
  return r;
}

/* Marks ID (a node at LEVEL, or a chunk if LEVEL is -1) as reached by
 * commit C. */
static int
visit (struct du *d, const struct cairn_id *id, int level, uint64_t c)
{
  struct idset *set = level < 0 ? &d->chunks : &d->nodes;
  bool added;
  struct idset_slot *slot;
  int r;

  if (cairn_id_is_zero (id))
    return 0;
  slot = idset_add (set, id, &added);
  if (!slot)
    return -ENOMEM;
  if (added) {
    slot->value = c + 1;
    if (level < 0) {
      uint64_t size;
      r = chunk_size_of (d, id, &size);
      /* The set may have moved the slot while growing: find it again. */
      idset_find (set, id)->value |= size << 32;
      return r;
    }
  }
  else {
    uint64_t owner = slot->value & OWNER_MASK;
    if ((slot->value & SHARED) || owner == c + 1)
      return 0;
    slot->value |= SHARED;
    if (level < 0)
      return 0;
  }
  struct cairn_id *children = malloc (TREE_FANOUT * sizeof *children);
  unsigned lv;
  if (!children)
    return -ENOMEM;
  r = cairn_tree_node_read (d->txn, id, &lv, children);
  for (unsigned i = 0; r == 0 && i < TREE_FANOUT; i++)
    r = visit (d, &children[i], level == 0 ? -1 : level - 1, c);
  free (children);
  return r;
}

/* Stored bytes under node ID, counting every position. */
static int
subtree_bytes (struct du *d, const struct cairn_id *id, int level,
               uint64_t *out)
{
  if (cairn_id_is_zero (id)) {
    *out = 0;
    return 0;
  }
  if (level < 0) {
    struct idset_slot *slot = idset_find (&d->chunks, id);
    *out = slot ? slot->value >> 32 : 0;
    return 0;
  }
  struct idset_slot *memo = idset_find (&d->sums, id);
  if (memo) {
    *out = memo->value;
    return 0;
  }
  struct cairn_id *children = malloc (TREE_FANOUT * sizeof *children);
  unsigned lv;
  uint64_t sum = 0;
  if (!children)
    return -ENOMEM;
  int r = cairn_tree_node_read (d->txn, id, &lv, children);
  for (unsigned i = 0; r == 0 && i < TREE_FANOUT; i++) {
    uint64_t part;
    r = subtree_bytes (d, &children[i], level == 0 ? -1 : level - 1, &part);
    sum += part;
  }
  free (children);
  if (r < 0)
    return r;
  memo = idset_add (&d->sums, id, NULL);
  if (!memo)
    return -ENOMEM;
  memo->value = sum;
  *out = sum;
  return 0;
}

struct live {
  struct cairn_id *ids;
  size_t n, cap;
};

static int
collect_commit (const struct cairn_id *id,
                const struct cairn_object_info *info, void *arg)
{
  struct live *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    struct cairn_id *p = realloc (l->ids, l->cap * sizeof *p);
    if (!p)
      return -ENOMEM;
    l->ids = p;
  }
  l->ids[l->n++] = *id;
  return 0;
}

int
cairn_du (struct cairn_txn *txn, const struct cairn_id *ids, size_t n,
          struct cairn_du_entry *out)
{
  struct du d = { .txn = txn };
  struct live all = { 0 };
  struct idset req;
  struct cairn_id *order = NULL;
  struct cairn_du_entry *u = NULL;
  size_t *first = NULL, nu = 0, total;
  int r;

  idset_init (&d.nodes);
  idset_init (&d.chunks);
  idset_init (&d.sums);
  idset_init (&req);
  r = TOPS (txn)->object_scan (txn->bt, CAIRN_OBJECT_COMMIT, NULL,
                               collect_commit, &all);
  if (r < 0)
    goto out;
  /* The requested commits come first, each once (a commit asked for
   * twice is still one owner), so their indexes are 0..nu-1; the other
   * live commits only make bytes shared.  FIRST maps each of IDS to its
   * index. */
  order = malloc ((n + all.n + 1) * sizeof *order);
  first = malloc ((n + 1) * sizeof *first);
  u = calloc (n + 1, sizeof *u);
  if (!order || !first || !u) {
    r = -ENOMEM;
    goto out;
  }
  for (size_t k = 0; k < n; k++) {
    bool added;
    struct idset_slot *slot = idset_add (&req, &ids[k], &added);
    if (!slot) {
      r = -ENOMEM;
      goto out;
    }
    if (added) {
      slot->value = nu;
      order[nu++] = ids[k];
    }
    first[k] = slot->value;
  }
  total = nu;
  for (size_t i = 0; i < all.n; i++)
    if (!idset_find (&req, &all.ids[i]))
      order[total++] = all.ids[i];

  for (size_t i = 0; i < total && r == 0; i++) {
    struct cairn_commit *c;
    if (i < nu)
      u[i].id = order[i];       /* the rest is zero (calloc) */
    if (cairn_commit_pruned (txn, &order[i])) {
      if (i < nu) {
        u[i].pruned = true;
        if ((r = cairn_commit_read (txn, &order[i], &c)) == 0) {
          u[i].time = c->time;
          cairn_commit_free (c);
        }
      }
      continue;
    }
    r = cairn_commit_read (txn, &order[i], &c);
    if (r < 0)
      break;
    if (i < nu)
      u[i].time = c->time;
    for (size_t v = 0; v < c->nvolumes && r == 0; v++) {
      unsigned levels = cairn_tree_levels (c->volumes[v].size,
                                           c->volumes[v].chunk_size);
      r = visit (&d, &c->volumes[v].root, levels - 1, i);
    }
    cairn_commit_free (c);
  }

  /* Unique: chunks owned by one requested commit and nobody else. */
  for (size_t i = 0; r == 0 && i < d.chunks.cap; i++) {
    struct idset_slot *slot = &d.chunks.slots[i];
    if (!slot->used || (slot->value & SHARED))
      continue;
    uint64_t owner = (slot->value & OWNER_MASK) - 1;
    if (owner < nu)
      u[owner].unique += slot->value >> 32;
  }
  for (size_t i = 0; r == 0 && i < nu; i++) {
    struct cairn_commit *c;
    if (u[i].pruned)
      continue;
    r = cairn_commit_read (txn, &order[i], &c);
    for (size_t v = 0; r == 0 && v < c->nvolumes; v++) {
      unsigned levels = cairn_tree_levels (c->volumes[v].size,
                                           c->volumes[v].chunk_size);
      uint64_t bytes;
      r = subtree_bytes (&d, &c->volumes[v].root, levels - 1, &bytes);
      u[i].referenced += bytes;
    }
    if (r == 0)
      cairn_commit_free (c);
    u[i].shared = u[i].referenced > u[i].unique
      ? u[i].referenced - u[i].unique : 0;
  }

  for (size_t k = 0; r == 0 && k < n; k++)
    out[k] = u[first[k]];

 out:
  free (order);
  free (first);
  free (u);
  idset_free (&req);
  free (all.ids);
  idset_free (&d.nodes);
  idset_free (&d.chunks);
  idset_free (&d.sums);
  return r;
}
