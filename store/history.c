/* history.c: walking commits through their parents.
 *
 * The order is git's --date-order: newest time first, but never a commit
 * before one of its children in the output.  Times are whatever commit
 * --time said, so a child can be older than its parent; sorting by time
 * alone would then list an ancestor above the branch's head, and "log
 * BRANCH -n1" would not show the head.
 *
 * Two passes, O(n log n) for n commits: a walk from the heads collects
 * each commit once with its time and parents (as indexes into the walk's
 * array, through an idset from id to index); then Kahn's algorithm emits
 * commits whose children have all been emitted, the newest of them first
 * from a binary heap (equal times by id, as cairn_dated_newest_first).  A
 * child and a parent of the same time therefore come child first.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/idset.h"
#include "store/internal.h"

struct history_node {
  struct cairn_dated dated;
  size_t parents;               /* first index into the parents array */
  size_t nparents;
  size_t children;              /* not yet emitted */
};

struct history {
  struct history_node *nodes;
  size_t n, cap;                /* caps in bytes (cairn_reserve) */
  size_t *parents;              /* node indexes once resolved */
  struct cairn_id *parent_ids;  /* as the commits name them */
  size_t nparents, parents_cap;
};

static void
history_free (struct history *h)
{
  free (h->nodes);
  free (h->parents);
  free (h->parent_ids);
}

/* Adds commit C as the next node, with its (first) parents' ids. */
static int
history_add (struct history *h, const struct cairn_commit *c, size_t np)
{
  if (cairn_reserve (&h->nodes, &h->cap, (h->n + 1) * sizeof *h->nodes,
                     64 * sizeof *h->nodes) < 0
      || cairn_reserve (&h->parent_ids, &h->parents_cap,
                        (h->nparents + np) * sizeof *h->parent_ids,
                        64 * sizeof *h->parent_ids) < 0)
    return -ENOMEM;
  h->nodes[h->n] = (struct history_node) {
    .dated = { .id = c->id, .time = c->time },
    .parents = h->nparents,
    .nparents = np,
  };
  h->n++;
  if (np > 0)                   /* a root's parents may be NULL */
    memcpy (&h->parent_ids[h->nparents], c->parents,
            np * sizeof *c->parents);
  h->nparents += np;
  return 0;
}

/* Collects every commit reachable from HEADS once, numbering them in SEEN
 * (the idset's value is the node index). */
static int
history_walk (struct cairn_txn *txn, const struct cairn_id *heads,
              size_t nheads, bool first_parent, struct idset *seen,
              struct history *h)
{
  struct cairn_id *stack = NULL;
  size_t len = 0, cap = 0;      /* cap in bytes */
  int r = 0;

  if (cairn_reserve (&stack, &cap, nheads * sizeof *stack, 0) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < nheads; i++)
    if (!cairn_id_is_zero (&heads[i]))
      stack[len++] = heads[i];
  while (len > 0) {
    struct cairn_id id = stack[--len];
    struct idset_slot *slot;
    struct cairn_commit *c;
    bool added;

    if (!(slot = idset_add (seen, &id, &added))) {
      r = -ENOMEM;
      goto out;
    }
    if (!added)
      continue;
    slot->value = h->n;
    if ((r = cairn_commit_read (txn, &id, &c)) < 0)
      goto out;
    size_t np = first_parent ? CAIRN_MIN (c->nparents, 1) : c->nparents;
    r = history_add (h, c, np);
    if (r == 0 && cairn_reserve (&stack, &cap, (len + np) * sizeof *stack,
                                 64 * sizeof *stack) < 0)
      r = -ENOMEM;
    if (r == 0) {
      if (np > 0)
        memcpy (&stack[len], c->parents, np * sizeof *stack);
      len += np;
    }
    cairn_commit_free (c);
    if (r < 0)
      goto out;
  }
 out:
  free (stack);
  return r;
}

/* Turns parent ids into node indexes and counts each node's children. */
static int
history_link (struct history *h, const struct idset *seen)
{
  h->parents = malloc ((h->nparents ? h->nparents : 1) * sizeof *h->parents);
  if (!h->parents)
    return -ENOMEM;
  for (size_t i = 0; i < h->nparents; i++) {
    /* The walk read every parent it was given, so each is in SEEN. */
    const struct idset_slot *slot = idset_find (seen, &h->parent_ids[i]);
    h->parents[i] = slot->value;
    h->nodes[slot->value].children++;
  }
  return 0;
}

/* True if node A comes before node B among commits that are both ready. */
static bool
history_before (const struct history *h, size_t a, size_t b)
{
  return cairn_dated_newest_first (&h->nodes[a].dated,
                                   &h->nodes[b].dated) < 0;
}

static void
heap_push (const struct history *h, size_t *heap, size_t *len, size_t node)
{
  size_t at = (*len)++;

  while (at > 0 && history_before (h, node, heap[(at - 1) / 2])) {
    heap[at] = heap[(at - 1) / 2];
    at = (at - 1) / 2;
  }
  heap[at] = node;
}

static size_t
heap_pop (const struct history *h, size_t *heap, size_t *len)
{
  size_t top = heap[0], last = heap[--*len], at = 0;

  for (;;) {
    size_t child = 2 * at + 1;
    if (child >= *len)
      break;
    if (child + 1 < *len && history_before (h, heap[child + 1], heap[child]))
      child++;
    if (!history_before (h, heap[child], last))
      break;
    heap[at] = heap[child];
    at = child;
  }
  if (*len > 0)
    heap[at] = last;
  return top;
}

/* Writes the ids in date order, children first, into IDS. */
static int
history_order (struct history *h, struct cairn_id *ids)
{
  size_t *heap = malloc ((h->n ? h->n : 1) * sizeof *heap);
  size_t len = 0, emitted = 0;

  if (!heap)
    return -ENOMEM;
  for (size_t i = 0; i < h->n; i++)
    if (h->nodes[i].children == 0)
      heap_push (h, heap, &len, i);
  while (len > 0) {
    const struct history_node *node = &h->nodes[heap_pop (h, heap, &len)];
    ids[emitted++] = node->dated.id;
    for (size_t p = 0; p < node->nparents; p++) {
      size_t parent = h->parents[node->parents + p];
      if (--h->nodes[parent].children == 0)
        heap_push (h, heap, &len, parent);
    }
  }
  free (heap);
  /* Ids are hashes of the text that names the parents: no cycles. */
  if (emitted != h->n)
    return cairn_error (-EBADMSG, "the commit history has a cycle");
  return 0;
}

int
cairn_history (struct cairn_txn *txn, const struct cairn_id *heads,
               size_t nheads, bool first_parent, struct cairn_id **ids,
               size_t *n)
{
  struct history h = { 0 };
  struct idset seen;
  struct cairn_id *out = NULL;
  int r;

  idset_init (&seen);
  r = history_walk (txn, heads, nheads, first_parent, &seen, &h);
  if (r == 0)
    r = history_link (&h, &seen);
  idset_free (&seen);
  if (r == 0 && !(out = malloc ((h.n ? h.n : 1) * sizeof *out)))
    r = -ENOMEM;
  if (r == 0)
    r = history_order (&h, out);
  if (r == 0) {
    *ids = out;
    *n = h.n;
    out = NULL;
  }
  free (out);
  history_free (&h);
  return r;
}
