/* tree.c: Merkle block-map trees.
 *
 * A volume's block map is a radix tree of fan-out 64 over chunk indexes:
 * a leaf (level 0) names up to 64 consecutive chunks, a node at level k
 * names up to 64 nodes of level k-1.  The height is the least that covers
 * the volume (8 GiB of 64 KiB chunks: 3 levels, 1 TiB: 4).  A missing
 * child is the zero id, meaning "all zeros" at any level, and a node whose
 * children are all zero is itself the zero id and is never stored: a
 * sparse volume has a tiny tree, an empty one has none.
 *
 * Why 64: a commit hashes and stores the path from each changed chunk to
 * the root, one single SHA-256 after another (each node names the one
 * below).  A node of fan-out 256 is 8 KiB when full, so a commit of a
 * 1 MiB write to an 8 GiB volume hashed about 20 KiB; at 64 a full node is
 * 2 KiB, one more level costs less than that saves, and the commit took a
 * third less CPU here (where SHA-256 runs at 300-400 MB/s, without the
 * SHA extensions).
 *
 * Nodes are immutable and named by the SHA-256 of their serialized form,
 * so identical subtrees are stored once and an update rewrites only the
 * path from each changed chunk to the root: O(changes x height) nodes, the
 * rest shared with the old tree.  Serialized node: see store.h, Trees.
 * A lookup reads the child straight from the stored bytes: its position
 * is the popcount of the bitmap below its slot.
 */
#include <config.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define NODE_MAGIC "ctn2"
#define NODE_BITMAP (TREE_FANOUT / 8)
#define NODE_HEADER (8 + NODE_BITMAP)
#define NODE_MAX (NODE_HEADER + TREE_FANOUT * CAIRN_ID_SIZE)

static atomic_uint_fast64_t nodes_written;

uint64_t
cairn_tree_nodes_written (void)
{
  return atomic_load (&nodes_written);
}

unsigned
cairn_tree_levels (uint64_t size, uint32_t chunk_size)
{
  uint64_t chunks = (size + chunk_size - 1) / chunk_size;
  unsigned levels = 1;

  while (levels < TREE_MAX_LEVELS
         && chunks > (1ULL << (TREE_FANOUT_BITS * levels)))
    levels++;
  return levels;
}

/* A node expanded to its TREE_FANOUT children. */
struct node {
  unsigned level;
  struct cairn_id child[TREE_FANOUT];
};

static int
node_corrupt (const struct cairn_id *id, const char *why)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (id, hex);
  return cairn_error (-EBADMSG, "tree node %s is corrupt: %s", hex, why);
}

/* Checks a stored node's framing and returns its child count. */
static int
node_check (const struct cairn_id *id, const struct cairn_val *v,
            unsigned level)
{
  const uint8_t *p = v->data;

  if (v->len < NODE_HEADER || memcmp (p, NODE_MAGIC, 4) != 0)
    return node_corrupt (id, "bad header");
  if (p[4] != level)
    return node_corrupt (id, "wrong level");
  unsigned n = p[6] | p[7] << 8, count = 0;
  for (int i = 0; i < NODE_BITMAP; i++)
    count += __builtin_popcount (p[8 + i]);
  if (n != count || v->len != NODE_HEADER + (size_t) n * CAIRN_ID_SIZE)
    return node_corrupt (id, "bad length");
  return n;
}

/* Fetches node ID of LEVEL.  Nodes are checked against their id when
 * gc's fsck reads them; here the framing is checked on every use. */
static int
node_get (struct cairn_txn *txn, const struct cairn_id *id, unsigned level,
          struct cairn_val *v)
{
  int r = TOPS (txn)->object_get (txn->bt, CAIRN_OBJECT_NODE, id, v, NULL);
  if (r == -ENOENT) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (id, hex);
    return cairn_error (-EBADMSG, "tree node %s is missing from the store",
                        hex);
  }
  if (r < 0)
    return r;
  r = node_check (id, v, level);
  return r < 0 ? r : 0;
}

/* The child in SLOT of a stored node, or the zero id. */
static void
node_child (const struct cairn_val *v, unsigned slot, struct cairn_id *out)
{
  const uint8_t *p = v->data, *bits = p + 8;

  if (!(bits[slot / 8] & (1u << (slot % 8)))) {
    *out = cairn_zero_id;
    return;
  }
  unsigned pos = 0;
  for (unsigned i = 0; i < slot / 8; i++)
    pos += __builtin_popcount (bits[i]);
  pos += __builtin_popcount (bits[slot / 8] & ((1u << (slot % 8)) - 1));
  memcpy (out->bytes, p + NODE_HEADER + pos * CAIRN_ID_SIZE, CAIRN_ID_SIZE);
}

/* The TREE_FANOUT children of node ID of LEVEL (all zero if ID is). */
static int
node_children (struct cairn_txn *txn, const struct cairn_id *id,
               unsigned level, struct cairn_id child[TREE_FANOUT])
{
  if (cairn_id_is_zero (id)) {
    memset (child, 0, TREE_FANOUT * sizeof *child);
    return 0;
  }
  struct cairn_val v;
  int r = node_get (txn, id, level, &v);
  if (r < 0)
    return r;
  const uint8_t *p = v.data, *bits = p + 8, *ids = p + NODE_HEADER;
  for (unsigned i = 0; i < TREE_FANOUT; i++) {
    if (bits[i / 8] & (1u << (i % 8))) {
      memcpy (child[i].bytes, ids, CAIRN_ID_SIZE);
      ids += CAIRN_ID_SIZE;
    }
    else
      child[i] = cairn_zero_id;
  }
  return 0;
}

static int
node_load (struct cairn_txn *txn, const struct cairn_id *id, unsigned level,
           struct node *n)
{
  n->level = level;
  return node_children (txn, id, level, n->child);
}

/* Serializes, hashes and stores N; *ID is zero if N is empty. */
static int
node_store (struct cairn_txn *txn, const struct node *n, struct cairn_id *id)
{
  uint8_t buf[NODE_MAX];
  uint8_t *ids = buf + NODE_HEADER;
  unsigned count = 0;

  memset (buf, 0, NODE_HEADER);
  memcpy (buf, NODE_MAGIC, 4);
  buf[4] = n->level;
  for (unsigned i = 0; i < TREE_FANOUT; i++) {
    if (cairn_id_is_zero (&n->child[i]))
      continue;
    buf[8 + i / 8] |= 1u << (i % 8);
    memcpy (ids, n->child[i].bytes, CAIRN_ID_SIZE);
    ids += CAIRN_ID_SIZE;
    count++;
  }
  if (count == 0) {
    *id = cairn_zero_id;
    return 0;
  }
  buf[6] = count & 0xff;
  buf[7] = count >> 8;
  size_t len = ids - buf;
  cairn_sha256 (buf, len, id);
  int r = TOPS (txn)->object_put (txn->bt, CAIRN_OBJECT_NODE, id, buf, len,
                                  len, 0);
  if (r < 0)
    return r;
  atomic_fetch_add (&nodes_written, 1);
  /* The callers keep only copies of nodes (struct node): nothing points
   * into the transaction across this. */
  if (txn->checkpoint_nodes && ++txn->nodes_put >= txn->checkpoint_nodes)
    return txn_checkpoint (txn);
  return 0;
}

int
cairn_tree_node_read (struct cairn_txn *txn, const struct cairn_id *id,
                      unsigned *level, struct cairn_id *children)
{
  struct cairn_val v;
  int r = TOPS (txn)->object_get (txn->bt, CAIRN_OBJECT_NODE, id, &v, NULL);
  if (r < 0)
    return r;
  if (v.len < NODE_HEADER)
    return node_corrupt (id, "bad header");
  *level = ((const uint8_t *) v.data)[4];
  r = node_check (id, &v, *level);
  if (r < 0)
    return r;
  for (unsigned i = 0; i < TREE_FANOUT; i++)
    node_child (&v, i, &children[i]);
  return 0;
}

static unsigned
slot_at (uint64_t index, unsigned level)
{
  return (index >> (TREE_FANOUT_BITS * level)) & (TREE_FANOUT - 1);
}

static bool
index_fits (uint64_t index, unsigned levels)
{
  return TREE_FANOUT_BITS * levels >= 64
    || index < (1ULL << (TREE_FANOUT_BITS * levels));
}

/* From ROOT down to the node of level STOP on INDEX's path: its id in
 * *ID (zero if a hole on the way). */
static int
descend (struct cairn_txn *txn, const struct cairn_id *root, unsigned levels,
         uint64_t index, unsigned stop, struct cairn_id *id)
{
  struct cairn_id cur = *root;

  if (!index_fits (index, levels))
    return -EINVAL;
  for (int level = levels - 1; level >= (int) stop && !cairn_id_is_zero (&cur);
       level--) {
    struct cairn_val v;
    int r = node_get (txn, &cur, level, &v);
    if (r < 0)
      return r;
    node_child (&v, slot_at (index, level), &cur);
  }
  *id = cur;
  return 0;
}

int
tree_lookup (struct cairn_txn *txn, const struct cairn_id *root,
             unsigned levels, uint64_t index, struct cairn_id *id)
{
  return descend (txn, root, levels, index, 0, id);
}

int
tree_leaf (struct cairn_txn *txn, const struct cairn_id *root,
           unsigned levels, uint64_t index, struct cairn_id child[TREE_FANOUT])
{
  struct cairn_id leaf;
  int r = descend (txn, root, levels, index, 1, &leaf);
  return r < 0 ? r : node_children (txn, &leaf, 0, child);
}

static int
update_node (struct cairn_txn *txn, const struct cairn_id *id,
             unsigned level, const struct tree_change *ch, size_t n,
             struct cairn_id *out)
{
  struct node *node = malloc (sizeof *node);
  int r;

  if (!node)
    return -ENOMEM;
  r = node_load (txn, id, level, node);
  for (size_t i = 0; r == 0 && i < n;) {
    unsigned slot = slot_at (ch[i].index, level);
    size_t j = i + 1;
    while (j < n && slot_at (ch[j].index, level) == slot)
      j++;
    if (level == 0)
      node->child[slot] = ch[j - 1].id;
    else
      r = update_node (txn, &node->child[slot], level - 1, ch + i, j - i,
                       &node->child[slot]);
    i = j;
  }
  if (r == 0)
    r = node_store (txn, node, out);
  free (node);
  return r;
}

int
tree_update (struct cairn_txn *txn, const struct cairn_id *root,
             unsigned levels, const struct tree_change *changes, size_t n,
             struct cairn_id *new_root)
{
  if (n == 0) {
    *new_root = *root;
    return 0;
  }
  if (!index_fits (changes[n - 1].index, levels))
    return -EINVAL;
  return update_node (txn, root, levels - 1, changes, n, new_root);
}

int
cairn_tree_update (struct cairn_txn *txn, const struct cairn_volume *base,
                   const struct cairn_tree_change *changes, size_t n,
                   struct cairn_volume *out)
{
  unsigned levels = cairn_tree_levels (base->size, base->chunk_size);
  struct tree_change *tc = malloc ((n ? n : 1) * sizeof *tc);
  struct cairn_id root;
  int r;

  if (!tc)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    tc[i].index = changes[i].index;
    tc[i].id = changes[i].id;
    if (changes[i].index >= (base->size + base->chunk_size - 1)
        / base->chunk_size || (i > 0 && changes[i].index <= tc[i - 1].index)) {
      free (tc);
      return -EINVAL;
    }
  }
  r = tree_update (txn, &base->root, levels, tc, n, &root);
  free (tc);
  if (r == 0) {
    *out = *base;
    out->root = root;
  }
  return r;
}

/* Depth-first walk of the chunks in [FIRST, LAST] under node ID, whose
 * first chunk index is BASE. */
static int
walk (struct cairn_txn *txn, const struct cairn_id *id, unsigned level,
      uint64_t base, uint64_t first, uint64_t last, cairn_chunk_fn fn,
      void *arg)
{
  struct cairn_val v;
  unsigned shift = TREE_FANOUT_BITS * level;
  int r = node_get (txn, id, level, &v);

  if (r < 0)
    return r;
  /* Copy the node: the callback may run other transactions' reads, and a
   * deep walk must not depend on the page staying mapped. */
  uint8_t *copy = malloc (v.len);
  if (!copy)
    return -ENOMEM;
  memcpy (copy, v.data, v.len);
  struct cairn_val cv = { copy, v.len };
  for (unsigned slot = 0; slot < TREE_FANOUT && r == 0; slot++) {
    uint64_t lo = base + ((uint64_t) slot << shift);
    uint64_t hi = lo + (((uint64_t) 1 << shift) - 1);
    if (hi < first || lo > last)
      continue;
    struct cairn_id child;
    node_child (&cv, slot, &child);
    if (cairn_id_is_zero (&child))
      continue;
    if (level == 0)
      r = fn (lo, &child, arg);
    else
      r = walk (txn, &child, level - 1, lo, first, last, fn, arg);
  }
  free (copy);
  return r;
}

int
cairn_tree_walk (struct cairn_txn *txn, const struct cairn_id *root,
                 unsigned levels, uint64_t first, uint64_t last,
                 cairn_chunk_fn fn, void *arg)
{
  if (cairn_id_is_zero (root) || first > last)
    return 0;
  int r = walk (txn, root, levels - 1, 0, first, last, fn, arg);
  return r > 0 ? 0 : r;
}

static int
walk_nodes (struct cairn_txn *txn, const struct cairn_id *id, unsigned level,
            uint64_t base, cairn_node_fn node_fn, cairn_chunk_fn chunk_fn,
            void *arg)
{
  int r = node_fn ? node_fn (id, level, arg) : 0;
  if (r != 0)
    return r > 0 ? 0 : r;       /* 1: skip the children */

  struct node *n = malloc (sizeof *n);
  if (!n)
    return -ENOMEM;
  r = node_load (txn, id, level, n);
  unsigned shift = TREE_FANOUT_BITS * level;
  for (unsigned slot = 0; slot < TREE_FANOUT && r == 0; slot++) {
    if (cairn_id_is_zero (&n->child[slot]))
      continue;
    uint64_t lo = base + ((uint64_t) slot << shift);
    if (level == 0)
      r = chunk_fn ? chunk_fn (lo, &n->child[slot], arg) : 0;
    else
      r = walk_nodes (txn, &n->child[slot], level - 1, lo, node_fn,
                      chunk_fn, arg);
  }
  free (n);
  return r;
}

int
cairn_tree_walk_nodes (struct cairn_txn *txn, const struct cairn_id *root,
                       unsigned levels, cairn_node_fn node_fn,
                       cairn_chunk_fn chunk_fn, void *arg)
{
  if (cairn_id_is_zero (root))
    return 0;
  return walk_nodes (txn, root, levels - 1, 0, node_fn, chunk_fn, arg);
}

/* Children of ID seen as a node at LEVEL of a tree of height LEVELS (a
 * level at or above the real height is a virtual node whose only child,
 * in slot 0, is the real root). */
static int
diff_children (struct cairn_txn *txn, const struct cairn_id *id,
               unsigned level, unsigned real_levels, struct node *n)
{
  if (level >= real_levels) {
    memset (n->child, 0, sizeof n->child);
    n->child[0] = *id;
    n->level = level;
    return 0;
  }
  return node_load (txn, id, level, n);
}

static int
diff (struct cairn_txn *txn, const struct cairn_id *a, unsigned la,
      const struct cairn_id *b, unsigned lb, unsigned level, uint64_t base,
      cairn_diff_fn fn, void *arg)
{
  /* Equal ids at equal heights are equal subtrees; a virtual level never
   * equals a real one unless both are virtual. */
  bool same_shape = (level >= la) == (level >= lb);
  if (same_shape && cairn_id_equal (a, b))
    return 0;

  struct node *na = malloc (sizeof *na), *nb = malloc (sizeof *nb);
  int r = -ENOMEM;
  if (!na || !nb)
    goto out;
  r = diff_children (txn, a, level, la, na);
  if (r == 0)
    r = diff_children (txn, b, level, lb, nb);
  unsigned shift = TREE_FANOUT_BITS * level;
  for (unsigned slot = 0; slot < TREE_FANOUT && r == 0; slot++) {
    const struct cairn_id *ca = &na->child[slot], *cb = &nb->child[slot];
    bool child_same_shape = level == 0
      || (level - 1 >= la) == (level - 1 >= lb);
    if (child_same_shape && cairn_id_equal (ca, cb))
      continue;
    if (cairn_id_is_zero (ca) && cairn_id_is_zero (cb))
      continue;
    uint64_t lo = base + ((uint64_t) slot << shift);
    if (level == 0)
      r = fn (lo, ca, cb, arg);
    else
      r = diff (txn, ca, la, cb, lb, level - 1, lo, fn, arg);
  }
 out:
  free (na);
  free (nb);
  return r;
}

int
cairn_tree_diff (struct cairn_txn *txn, const struct cairn_id *a,
                 unsigned la, const struct cairn_id *b, unsigned lb,
                 cairn_diff_fn fn, void *arg)
{
  unsigned levels = CAIRN_MAX (la, lb);
  int r = diff (txn, a, la, b, lb, levels - 1, 0, fn, arg);
  return r > 0 ? 0 : r;
}

/* The streaming builder keeps one partly filled node per level. */
struct cairn_tree_builder {
  unsigned levels;
  bool any;
  uint64_t last;
  struct cairn_id root;
  struct {
    bool used;
    uint64_t prefix;            /* position >> 8 of the node's children */
    struct node node;
  } level[TREE_MAX_LEVELS];
};

int
cairn_tree_builder_new (unsigned levels, struct cairn_tree_builder **out)
{
  if (levels == 0 || levels > TREE_MAX_LEVELS)
    return -EINVAL;
  struct cairn_tree_builder *tb = calloc (1, sizeof *tb);
  if (!tb)
    return -ENOMEM;
  tb->levels = levels;
  for (unsigned k = 0; k < levels; k++)
    tb->level[k].node.level = k;
  *out = tb;
  return 0;
}

static int place (struct cairn_tree_builder *tb, struct cairn_txn *txn,
                  unsigned k, uint64_t pos, const struct cairn_id *id);

/* Stores the partly filled node of level K and hands it up. */
static int
flush_level (struct cairn_tree_builder *tb, struct cairn_txn *txn, unsigned k)
{
  struct cairn_id id;
  int r = node_store (txn, &tb->level[k].node, &id);

  if (r < 0)
    return r;
  uint64_t prefix = tb->level[k].prefix;
  tb->level[k].used = false;
  memset (tb->level[k].node.child, 0, sizeof tb->level[k].node.child);
  if (k + 1 == tb->levels) {
    tb->root = id;
    return 0;
  }
  return cairn_id_is_zero (&id) ? 0 : place (tb, txn, k + 1, prefix, &id);
}

/* Puts ID at child position POS of level K (POS = index >> 8k). */
static int
place (struct cairn_tree_builder *tb, struct cairn_txn *txn, unsigned k,
       uint64_t pos, const struct cairn_id *id)
{
  uint64_t prefix = pos >> TREE_FANOUT_BITS;

  if (tb->level[k].used && tb->level[k].prefix != prefix) {
    int r = flush_level (tb, txn, k);
    if (r < 0)
      return r;
  }
  tb->level[k].used = true;
  tb->level[k].prefix = prefix;
  tb->level[k].node.child[pos & (TREE_FANOUT - 1)] = *id;
  return 0;
}

int
cairn_tree_builder_add (struct cairn_tree_builder *tb, struct cairn_txn *txn,
                        uint64_t index, const struct cairn_id *id)
{
  if ((tb->any && index <= tb->last) || !index_fits (index, tb->levels))
    return -EINVAL;
  tb->any = true;
  tb->last = index;
  if (cairn_id_is_zero (id))
    return 0;
  return place (tb, txn, 0, index, id);
}

int
cairn_tree_builder_finish (struct cairn_tree_builder *tb,
                           struct cairn_txn *txn, struct cairn_id *root)
{
  tb->root = cairn_zero_id;
  for (unsigned k = 0; k < tb->levels; k++)
    if (tb->level[k].used) {
      int r = flush_level (tb, txn, k);
      if (r < 0)
        return r;
    }
  *root = tb->root;
  return 0;
}

void
cairn_tree_builder_free (struct cairn_tree_builder *tb)
{
  free (tb);
}
