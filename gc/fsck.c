/* fsck.c: proving that nothing reachable is lost, or naming what is.
 *
 * Design
 * ------
 * One read transaction gives a consistent snapshot; the gc lock keeps
 * compaction from moving records under it (writers may go on: what they
 * add after the snapshot is not looked at).
 *
 *  1. Every commit object: its bytes hash to its id, it parses, and its
 *     parents exist.
 *  2. Every ref resolves: branch bases and tags name commits that exist.
 *  3. From the roots gc marks from (gc.h), every reachable tree node
 *     exists, hashes to its id, is well framed and sits at the level its
 *     parent expects; every reachable chunk has an index entry whose
 *     record lies inside an existing pack.  Each distinct object is
 *     checked once.  With read_data, every reachable chunk is read,
 *     decompressed and re-hashed (cairn_chunk_verify), in pack order, on
 *     every core.
 *  4. Damage is reported as sentences, then as what it affects: a second
 *     walk, memoized per node (so O(distinct nodes) again), finds every
 *     commit whose trees reach a damaged object, and the branches and tags
 *     that name such commits or reach damage through their own records.
 *
 * Tombstones a ref or lease still names are walked, but what is missing
 * under them is not damage: their data may have been reclaimed before
 * the ref came.  Unreachable objects and pack bytes no entry names are
 * reported as information (what the next gc would give back).
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gc/gc-internal.h"

/* Sentences kept; past that only the count grows. */
#define MAX_PROBLEMS 200

/* Values in the node and chunk sets. */
#define OBJ_BAD 1               /* missing or corrupt */
#define OBJ_DONE 2              /* reach computed (nodes) */
#define OBJ_REACH 4             /* reaches a bad object (nodes) */

struct pack_size {
  uint32_t number;
  uint64_t size;
  uint64_t named;               /* bytes of records the index names */
};

struct to_read {
  struct cairn_id id;
  uint32_t pack;
  uint64_t offset;
  uint32_t stored;
  int result;
  char *message;
};

struct fsck {
  struct cairn_store *s;
  const struct cairn_fsck_options *o;
  struct cairn_fsck_report *rep;
  struct cairn_txn *txn;
  const struct cairn_backend_ops *ops;
  struct cairn_btxn *bt;
  struct idset nodes, chunks, bad_commits;
  struct pack_size *packs;
  size_t npacks;
  struct cairn_id *children[GC_MAX_LEVELS];
  struct to_read *reads;
  size_t nreads, capreads;
  size_t total_problems;
  bool damaged;
};

/* Appends OWNED (malloc'd, or NULL: out of memory) to *LIST of *N. */
static int
list_append (char ***list, size_t *n, char *owned)
{
  char **p = owned ? realloc (*list, (*n + 1) * sizeof *p) : NULL;

  if (!p) {
    free (owned);
    return -ENOMEM;
  }
  p[(*n)++] = owned;
  *list = p;
  return 0;
}

static char *
format (const char *fmt, va_list ap)
{
  char *msg;
  return vasprintf (&msg, fmt, ap) < 0 ? NULL : msg;
}

/* Damage: a sentence in the report (the first MAX_PROBLEMS of them). */
static void
problem (struct fsck *f, const char *fmt, ...)
{
  va_list ap;

  f->damaged = true;
  f->total_problems++;
  if (f->rep->n_problems >= MAX_PROBLEMS)
    return;
  va_start (ap, fmt);
  list_append (&f->rep->problems, &f->rep->n_problems, format (fmt, ap));
  va_end (ap);
}

/* Information that is not damage. */
static void
note (struct fsck *f, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  list_append (&f->rep->notes, &f->rep->n_notes, format (fmt, ap));
  va_end (ap);
}

static const char *
hex_of (const struct cairn_id *id, char hex[CAIRN_HEX_SIZE + 1])
{
  cairn_id_to_hex (id, hex);
  return hex;
}

static int
pack_size_cmp (const void *key, const void *elem)
{
  uint32_t n = *(const uint32_t *) key;
  const struct pack_size *p = elem;
  return n < p->number ? -1 : n > p->number;
}

static struct pack_size *
find_pack (struct fsck *f, uint32_t number)
{
  return bsearch (&number, f->packs, f->npacks, sizeof *f->packs,
                  pack_size_cmp);
}

/* ---- 1. commits --------------------------------------------------------- */

static int
check_commit (const struct cairn_id *id, const struct cairn_object_info *info,
              void *arg)
{
  struct fsck *f = arg;
  char hex[CAIRN_HEX_SIZE + 1], phex[CAIRN_HEX_SIZE + 1];
  struct cairn_val v;
  struct cairn_id check;
  struct cairn_commit *c;
  bool bad = false;

  f->rep->checked_commits++;
  f->rep->tombstones += cairn_commit_pruned (f->txn, id);
  hex_of (id, hex);
  int r = f->ops->object_get (f->bt, CAIRN_OBJECT_COMMIT, id, &v, NULL);
  if (r < 0)
    return r;
  cairn_sha256 (v.data, v.len, &check);
  if (!cairn_id_equal (&check, id)) {
    problem (f, "commit %s is corrupt: its bytes do not hash to its id", hex);
    bad = true;
  }
  else if (cairn_commit_parse (v.data, v.len, &c) < 0) {
    problem (f, "commit %s is corrupt: it does not parse", hex);
    bad = true;
  }
  else {
    for (size_t i = 0; i < c->nparents; i++)
      if (f->ops->object_stat (f->bt, CAIRN_OBJECT_COMMIT, &c->parents[i],
                               NULL) < 0) {
        problem (f, "commit %s names parent %s, which is missing", hex,
                 hex_of (&c->parents[i], phex));
        bad = true;
      }
    cairn_commit_free (c);
  }
  cairn_clear_error ();
  if (bad && !idset_add (&f->bad_commits, id, NULL))
    return -ENOMEM;
  return 0;
}

/* ---- 3. reachable objects ----------------------------------------------- */

/* Checks chunk ID; WHERE, if not NULL, says what names it (for the
 * problem's sentence). */
static int
check_chunk_from (struct fsck *f, const struct cairn_id *id, bool tolerant,
                  const char *where)
{
  char hex[CAIRN_HEX_SIZE + 1];
  struct cairn_object_info info;
  const char *why = NULL;
  char buf[128];

  if (cairn_id_is_zero (id) || idset_find (&f->chunks, id))
    return 0;
  int r = f->ops->object_stat (f->bt, CAIRN_OBJECT_CHUNK, id, &info);
  if (r == -ENOENT)
    why = "is missing from the index";
  else if (r == -EBADMSG)
    why = "has a corrupt index entry";
  else if (r < 0)
    return r;
  else {
    struct pack_size *p = find_pack (f, info.pack);
    if (!p) {
      snprintf (buf, sizeof buf, "is in pack %08x, which is missing",
                info.pack);
      why = buf;
    }
    else if (info.offset + GC_RECORD_OVERHEAD + info.stored_len > p->size) {
      snprintf (buf, sizeof buf, "lies past the end of pack %08x",
                info.pack);
      why = buf;
    }
  }
  if (why && tolerant)
    return 0;
  struct idset_slot *slot = idset_add (&f->chunks, id, NULL);
  if (!slot)
    return -ENOMEM;
  if (why) {
    slot->value = OBJ_BAD;
    problem (f, "chunk %s%s %s", hex_of (id, hex), where ? where : "", why);
    return 0;
  }
  f->rep->chunks++;
  f->rep->chunk_bytes += info.stored_len;
  if (!f->o->read_data)
    return 0;
  if (f->nreads == f->capreads) {
    f->capreads = f->capreads ? 2 * f->capreads : 1024;
    struct to_read *p = realloc (f->reads, f->capreads * sizeof *p);
    if (!p)
      return -ENOMEM;
    f->reads = p;
  }
  f->reads[f->nreads++] = (struct to_read) { .id = *id, .pack = info.pack,
                                             .offset = info.offset,
                                             .stored = info.stored_len };
  return 0;
}

static int
check_chunk (struct fsck *f, const struct cairn_id *id, bool tolerant)
{
  return check_chunk_from (f, id, tolerant, NULL);
}

/* Why node ID is bad, or NULL. */
static const char *
node_defect (struct fsck *f, const struct cairn_id *id, unsigned level,
             int *err)
{
  struct cairn_val v;
  struct cairn_id check;
  unsigned got;

  *err = f->ops->object_get (f->bt, CAIRN_OBJECT_NODE, id, &v, NULL);
  if (*err == -ENOENT) {
    *err = 0;
    return "is missing";
  }
  if (*err < 0)
    return NULL;
  cairn_sha256 (v.data, v.len, &check);
  if (!cairn_id_equal (&check, id))
    return "is corrupt: its bytes do not hash to its id";
  if (cairn_tree_node_read (f->txn, id, &got, f->children[level]) < 0) {
    cairn_clear_error ();
    return "is corrupt: bad framing";
  }
  if (got != level)
    return "is at the wrong level of its tree";
  return NULL;
}

static int
check_node (struct fsck *f, const struct cairn_id *id, unsigned level,
            bool tolerant)
{
  char hex[CAIRN_HEX_SIZE + 1];
  const char *why;
  int r;

  if (cairn_id_is_zero (id) || idset_find (&f->nodes, id))
    return 0;
  if (level >= GC_MAX_LEVELS)
    why = "is deeper than any tree";
  else if (!(why = node_defect (f, id, level, &r)) && r < 0)
    return r;
  if (why && tolerant)
    return 0;
  struct idset_slot *slot = idset_add (&f->nodes, id, NULL);
  if (!slot)
    return -ENOMEM;
  if (why) {
    slot->value = OBJ_BAD;
    problem (f, "tree node %s %s", hex_of (id, hex), why);
    return 0;
  }
  f->rep->nodes++;
  /* node_defect() left the children in this level's buffer; the subtrees
   * below use the buffers of lower levels. */
  const struct cairn_id *children = f->children[level];
  for (unsigned i = 0; i < GC_FANOUT; i++) {
    if (cairn_id_is_zero (&children[i]))
      continue;
    r = level == 0 ? check_chunk (f, &children[i], tolerant)
      : check_node (f, &children[i], level - 1, tolerant);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Calls FN on each volume root of commit ID; -ENOENT if unreadable. */
static int
for_each_volume (struct fsck *f, const struct cairn_id *id,
                 int (*fn) (struct fsck *, const struct cairn_id *, unsigned,
                            bool), bool tolerant)
{
  struct cairn_commit *c;
  int r = cairn_commit_read (f->txn, id, &c);

  if (r < 0) {
    cairn_clear_error ();
    return -ENOENT;
  }
  for (size_t i = 0; r == 0 && i < c->nvolumes; i++)
    r = fn (f, &c->volumes[i].root,
            cairn_tree_levels (c->volumes[i].size, c->volumes[i].chunk_size)
            - 1, tolerant);
  cairn_commit_free (c);
  return r;
}

/* ---- read-data: re-hash every reachable chunk, on every core ---------- */

struct readers {
  struct fsck *f;
  atomic_size_t next;
  atomic_uint_fast64_t bytes;
  uint64_t total;
};

static void *
read_worker (void *arg)
{
  struct readers *rd = arg;
  struct fsck *f = rd->f;

  for (;;) {
    size_t i = atomic_fetch_add (&rd->next, 1);
    if (i >= f->nreads)
      break;
    struct to_read *t = &f->reads[i];
    t->result = cairn_chunk_verify (f->s, &t->id);
    if (t->result < 0)
      t->message = strdup (*cairn_last_error () ? cairn_last_error ()
                           : cairn_strerror (t->result));
    uint64_t done = atomic_fetch_add (&rd->bytes, t->stored) + t->stored;
    if (f->o->progress && i % 64 == 0)
      f->o->progress (f->o->progress_arg, done, rd->total);
  }
  return NULL;
}

static int
read_cmp (const void *a, const void *b)
{
  const struct to_read *x = a, *y = b;
  if (x->pack != y->pack)
    return x->pack < y->pack ? -1 : 1;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int
read_data (struct fsck *f)
{
  long cpus = sysconf (_SC_NPROCESSORS_ONLN);
  size_t nthreads = cpus < 1 ? 1 : cpus > 8 ? 8 : (size_t) cpus;
  struct readers rd = { .f = f };
  pthread_t threads[8];
  size_t started = 0;

  if (f->nreads > 1)
    qsort (f->reads, f->nreads, sizeof *f->reads, read_cmp);
  for (size_t i = 0; i < f->nreads; i++)
    rd.total += f->reads[i].stored;
  atomic_init (&rd.next, 0);
  atomic_init (&rd.bytes, 0);
  for (; started < nthreads; started++)
    if (pthread_create (&threads[started], NULL, read_worker, &rd) != 0)
      break;
  if (started == 0)
    read_worker (&rd);
  for (size_t i = 0; i < started; i++)
    pthread_join (threads[i], NULL);
  if (f->o->progress)
    f->o->progress (f->o->progress_arg, rd.total, rd.total);

  for (size_t i = 0; i < f->nreads; i++) {
    struct to_read *t = &f->reads[i];
    f->rep->chunks_read += t->result == 0;
    if (t->result == 0)
      continue;
    if (t->result != -EBADMSG && t->result != -ENOENT && t->result != -EIO) {
      int r = t->result;
      cairn_error (r, "%s", t->message ? t->message : cairn_strerror (r));
      free (t->message);
      t->message = NULL;
      return r;
    }
    idset_find (&f->chunks, &t->id)->value = OBJ_BAD;
    problem (f, "%s", t->message ? t->message : "a chunk cannot be read");
    free (t->message);
    t->message = NULL;
  }
  return 0;
}

/* ---- 4. what the damage affects ---------------------------------------- */

static bool
chunk_bad (struct fsck *f, const struct cairn_id *id)
{
  struct idset_slot *slot = idset_find (&f->chunks, id);
  return slot && (slot->value & OBJ_BAD);
}

/* True if node ID reaches a bad node or chunk. */
static bool
reaches_bad (struct fsck *f, const struct cairn_id *id, unsigned level)
{
  struct idset_slot *slot = idset_find (&f->nodes, id);
  unsigned got;

  if (!slot || (slot->value & OBJ_BAD))
    return slot != NULL;
  if (slot->value & OBJ_DONE)
    return slot->value & OBJ_REACH;
  bool reach = false;
  if (cairn_tree_node_read (f->txn, id, &got, f->children[level]) < 0) {
    cairn_clear_error ();
    reach = true;
  }
  const struct cairn_id *children = f->children[level];
  for (unsigned i = 0; !reach && i < GC_FANOUT; i++) {
    if (cairn_id_is_zero (&children[i]))
      continue;
    reach = level == 0 ? chunk_bad (f, &children[i])
      : reaches_bad (f, &children[i], level - 1);
  }
  /* The set does not grow in this pass, so SLOT is still valid. */
  slot->value |= OBJ_DONE | (reach ? OBJ_REACH : 0);
  return reach;
}

static int
reach_volume (struct fsck *f, const struct cairn_id *root, unsigned level,
              bool unused)
{
  return !cairn_id_is_zero (root) && reaches_bad (f, root, level) ? 1 : 0;
}

static bool
commit_affected (struct fsck *f, const struct cairn_id *id, bool pruned)
{
  if (idset_find (&f->bad_commits, id))
    return true;
  if (pruned)
    return false;
  return for_each_volume (f, id, reach_volume, false) != 0;
}

static int
affected (struct fsck *f, const struct gc_roots *roots)
{
  struct cairn_fsck_report *rep = f->rep;
  struct idset hit;
  struct cairn_dated *list = calloc (roots->ncommits + 1, sizeof *list);
  size_t n = 0;
  int r = 0;

  if (!list)
    return -ENOMEM;
  idset_init (&hit);
  for (size_t i = 0; r == 0 && i < roots->ncommits; i++) {
    const struct gc_root_commit *c = &roots->commits[i];
    struct cairn_commit *cm;
    if (!commit_affected (f, &c->id, c->pruned))
      continue;
    list[n].id = c->id;
    if (cairn_commit_read (f->txn, &c->id, &cm) == 0) {
      list[n].time = cm->time;
      cairn_commit_free (cm);
    }
    cairn_clear_error ();
    n++;
    if (!idset_add (&hit, &c->id, NULL))
      r = -ENOMEM;
  }
  /* Damaged commits no ref keeps alive are damage too. */
  for (size_t i = 0; r == 0 && i < f->bad_commits.cap; i++) {
    struct idset_slot *slot = &f->bad_commits.slots[i];
    if (!slot->used || idset_find (&hit, &slot->id))
      continue;
    struct cairn_dated *p = realloc (list, (n + 1) * sizeof *p);
    if (!p) {
      r = -ENOMEM;
      break;
    }
    list = p;
    list[n++] = (struct cairn_dated) { slot->id, 0 };
    if (!idset_add (&hit, &slot->id, NULL))
      r = -ENOMEM;
  }
  qsort (list, n, sizeof *list, cairn_dated_newest_first);
  rep->commits = malloc ((n ? n : 1) * sizeof *rep->commits);
  if (r == 0 && !rep->commits)
    r = -ENOMEM;
  for (size_t i = 0; r == 0 && i < n; i++)
    rep->commits[rep->n_commits++] = list[i].id;
  free (list);

  for (size_t b = 0; r == 0 && b < roots->nbranches; b++) {
    const struct gc_branch *br = &roots->branches[b];
    bool bad = !cairn_id_is_zero (&br->base)
      && (idset_find (&hit, &br->base)
          || f->ops->object_stat (f->bt, CAIRN_OBJECT_COMMIT, &br->base,
                                  NULL) < 0);
    for (size_t i = 0; !bad && i < roots->ntrees; i++)
      bad = roots->trees[i].branch == b
        && !cairn_id_is_zero (&roots->trees[i].root)
        && reaches_bad (f, &roots->trees[i].root,
                        roots->trees[i].levels - 1);
    for (size_t i = 0; !bad && i < roots->nchunks; i++)
      bad = roots->chunks[i].branch == b
        && chunk_bad (f, &roots->chunks[i].id);
    if (bad)
      r = list_append (&rep->branches, &rep->n_branches, strdup (br->name));
  }
  for (size_t t = 0; r == 0 && t < roots->ntags; t++) {
    const struct gc_tag *tag = &roots->tags[t];
    if (idset_find (&hit, &tag->commit)
        || f->ops->object_stat (f->bt, CAIRN_OBJECT_COMMIT, &tag->commit,
                                NULL) < 0)
      r = list_append (&rep->tags, &rep->n_tags, strdup (tag->name));
  }
  idset_free (&hit);
  return r;
}

/* ---- unreachable objects and pack garbage ------------------------------ */

static int
count_chunk (const struct cairn_id *id, const struct cairn_object_info *info,
             void *arg)
{
  struct fsck *f = arg;
  struct pack_size *p = find_pack (f, info->pack);

  if (p)
    p->named += GC_RECORD_OVERHEAD + info->stored_len;
  if (!idset_find (&f->chunks, id)) {
    f->rep->unreachable_chunks++;
    f->rep->unreachable_chunk_bytes += GC_RECORD_OVERHEAD + info->stored_len;
  }
  return 0;
}

static int
count_node (const struct cairn_id *id, const struct cairn_object_info *info,
            void *arg)
{
  struct fsck *f = arg;

  if (!idset_find (&f->nodes, id)) {
    f->rep->unreachable_nodes++;
    f->rep->unreachable_node_bytes += info->stored_len;
  }
  return 0;
}

static int
load_packs (struct fsck *f)
{
  struct cairn_pack_stat *st;
  size_t n;
  int r = cairn_packs_list (cairn_store_backend (f->s), &st, &n);

  if (r == -ENOTSUP)
    return 0;
  if (r < 0)
    return r;
  f->packs = calloc (n ? n : 1, sizeof *f->packs);
  if (!f->packs) {
    free (st);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    f->packs[i].number = st[i].pack;
    f->packs[i].size = st[i].size;
    f->rep->pack_bytes += st[i].size;
  }
  f->npacks = f->rep->packs = n;
  free (st);
  return 0;
}

/* ---- the check ---------------------------------------------------------- */

static int
check (struct fsck *f)
{
  struct cairn_fsck_report *rep = f->rep;
  char hex[CAIRN_HEX_SIZE + 1];
  struct gc_roots roots;
  int r;

  r = cairn_txn_begin (f->s, false, &f->txn);
  if (r < 0)
    return r;
  f->bt = cairn_txn_backend (f->txn);
  /* After the snapshot began: every record it names is in these sizes. */
  r = load_packs (f);
  if (r == 0)
    r = gc_object_scan (f->s, f->txn, CAIRN_OBJECT_COMMIT, check_commit, f);
  if (r < 0)
    goto out;
  r = gc_roots_load (f->s, f->txn, f->o->extra_roots, f->o->extra_roots_arg,
                     &roots);
  if (r < 0)
    goto out;
  rep->checked_branches = roots.nbranches;
  rep->checked_tags = roots.ntags;

  /* 2. Refs. */
  for (size_t i = 0; i < roots.nbranches; i++) {
    const struct gc_branch *b = &roots.branches[i];
    if (!cairn_id_is_zero (&b->base)
        && f->ops->object_stat (f->bt, CAIRN_OBJECT_COMMIT, &b->base, NULL) < 0)
      problem (f, "branch '%s' names commit %s, which is missing", b->name,
               hex_of (&b->base, hex));
  }
  for (size_t i = 0; i < roots.ntags; i++) {
    const struct gc_tag *t = &roots.tags[i];
    if (f->ops->object_stat (f->bt, CAIRN_OBJECT_COMMIT, &t->commit, NULL) < 0)
      problem (f, "tag '%s' names commit %s, which is missing", t->name,
               hex_of (&t->commit, hex));
    else if (cairn_commit_pruned (f->txn, &t->commit))
      note (f, "tag '%s' names pruned commit %.12s: its data is not kept "
            "by retention", t->name, hex_of (&t->commit, hex));
  }

  /* 3. Reachable objects: live roots first, then tolerant ones. */
  for (size_t i = 0; r == 0 && i < roots.ncommits; i++)
    if (!roots.commits[i].pruned) {
      r = for_each_volume (f, &roots.commits[i].id, check_node, false);
      if (r == -ENOENT)
        r = 0;                  /* reported by the commit check */
    }
  for (size_t i = 0; r == 0 && i < roots.ntrees; i++)
    r = check_node (f, &roots.trees[i].root, roots.trees[i].levels - 1,
                    false);
  for (size_t i = 0; r == 0 && i < roots.nchunks; i++) {
    const struct gc_root_chunk *rc = &roots.chunks[i];
    char where[CAIRN_NAME_MAX + 96];
    snprintf (where, sizeof where, " (%s of chunk %llu in the working state "
              "of branch '%s')", rc->underlay ? "underlay" : "content",
              (unsigned long long) rc->index,
              rc->branch < roots.nbranches ? roots.branches[rc->branch].name
              : "?");
    r = check_chunk_from (f, &rc->id, false, where);
  }
  for (size_t i = 0; r == 0 && i < roots.ncommits; i++)
    if (roots.commits[i].pruned) {
      r = for_each_volume (f, &roots.commits[i].id, check_node, true);
      if (r == -ENOENT)
        r = 0;
    }
  if (r == 0 && f->o->read_data)
    r = read_data (f);

  /* 4. What the damage affects. */
  if (r == 0 && f->damaged)
    r = affected (f, &roots);

  if (r == 0)
    r = gc_object_scan (f->s, f->txn, CAIRN_OBJECT_CHUNK, count_chunk, f);
  if (r == 0)
    r = gc_object_scan (f->s, f->txn, CAIRN_OBJECT_NODE, count_node, f);
  for (size_t i = 0; r == 0 && i < f->npacks; i++) {
    const struct pack_size *p = &f->packs[i];
    if (p->named == 0)
      rep->empty_packs++;
    if (p->size > GC_PACK_HEADER + p->named)
      rep->pack_garbage_bytes += p->size - GC_PACK_HEADER - p->named;
  }
  if (f->total_problems > rep->n_problems)
    note (f, "%zu more problems were found and not listed",
          f->total_problems - rep->n_problems);
  gc_roots_free (&roots);
 out:
  cairn_txn_abort (f->s, f->txn);
  return r;
}

int
cairn_fsck (struct cairn_store *s, const struct cairn_fsck_options *o,
            struct cairn_fsck_report *report)
{
  static const struct cairn_fsck_options defaults;
  struct fsck f = { .s = s, .o = o ? o : &defaults, .rep = report,
                    .ops = cairn_store_backend (s)->ops };
  int lock, r;

  memset (report, 0, sizeof *report);
  idset_init (&f.nodes);
  idset_init (&f.chunks);
  idset_init (&f.bad_commits);
  r = gc_lock (s, "fsck", &lock);
  if (r < 0)
    return r;
  for (int i = 0; i < GC_MAX_LEVELS; i++)
    if (!(f.children[i] = malloc (GC_FANOUT * sizeof (struct cairn_id))))
      r = -ENOMEM;
  if (r == 0)
    r = check (&f);
  gc_unlock (lock);
  for (int i = 0; i < GC_MAX_LEVELS; i++)
    free (f.children[i]);
  for (size_t i = 0; i < f.nreads; i++)
    free (f.reads[i].message);
  free (f.reads);
  free (f.packs);
  idset_free (&f.nodes);
  idset_free (&f.chunks);
  idset_free (&f.bad_commits);
  if (r < 0)
    cairn_fsck_report_free (report);
  return r;
}

static void
free_list (char **list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (list[i]);
  free (list);
}

void
cairn_fsck_report_free (struct cairn_fsck_report *report)
{
  free_list (report->problems, report->n_problems);
  free_list (report->branches, report->n_branches);
  free_list (report->tags, report->n_tags);
  free_list (report->notes, report->n_notes);
  free (report->commits);
  memset (report, 0, sizeof *report);
}
