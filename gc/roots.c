/* roots.c: the roots gc marks from and fsck checks from (see gc.h).
 *
 * Everything is read in the caller's one read transaction, so the roots
 * are one consistent point in time, except the leases, which live beside
 * the index (a lock file per lease) and are listed after the transaction
 * began: a lease taken since then names a commit that was not yet a
 * tombstone when it was taken, so the transaction shows its data as a
 * root anyway.
 *
 * Working-state records ("work" table): format in store/store.h, Branches.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc/gc-internal.h"

#define WORK_SEALED 1
#define WORK_SCRATCH 2

/* Grows *ARRAY of *N items of SIZE by one and returns the new item,
 * zeroed; NULL if out of memory.  Capacity doubles from 16. */
static void *
push (void *array, size_t *n, size_t size)
{
  void **a = array;

  if (*n == 0 || (*n >= 16 && (*n & (*n - 1)) == 0)) {
    void *p = realloc (*a, (*n ? 2 * *n : 16) * size);
    if (!p)
      return NULL;
    *a = p;
  }
  void *item = (char *) *a + (*n)++ * size;
  memset (item, 0, size);
  return item;
}

struct load {
  struct cairn_store *s;
  struct cairn_txn *txn;
  struct gc_roots *roots;
  /* branch volumes' wids, to name the branch of a work record */
  struct wid_branch {
    uint64_t wid;
    size_t branch;
  } *wids;
  size_t nwids;
  struct idset wanted;          /* pruned commits a ref or lease names */
  int r;
};

static int
load_branch (const struct cairn_ref *ref, void *arg)
{
  struct load *l = arg;
  struct gc_roots *roots = l->roots;
  struct cairn_branch_info info;
  int r = cairn_branch_info_get (l->txn, ref->name, &info);

  if (r < 0)
    return r;
  struct gc_branch *b = push (&roots->branches, &roots->nbranches,
                              sizeof *b);
  if (!b) {
    cairn_branch_info_free (&info);
    return -ENOMEM;
  }
  snprintf (b->name, sizeof b->name, "%s", ref->name);
  b->base = info.base;
  for (size_t i = 0; i < info.nvolumes; i++) {
    const struct cairn_branch_volume *v = &info.volumes[i];
    struct gc_root_tree *t = push (&roots->trees, &roots->ntrees, sizeof *t);
    struct wid_branch *w = push (&l->wids, &l->nwids, sizeof *w);
    if (!t || !w) {
      cairn_branch_info_free (&info);
      return -ENOMEM;
    }
    t->root = v->root;
    t->levels = cairn_tree_levels (v->size, v->chunk_size);
    t->branch = roots->nbranches - 1;
    w->wid = v->wid;
    w->branch = roots->nbranches - 1;
  }
  cairn_branch_info_free (&info);
  if (!cairn_id_is_zero (&b->base) && !idset_add (&l->wanted, &b->base, NULL))
    return -ENOMEM;
  return 0;
}

static int
load_tag (const struct cairn_ref *ref, void *arg)
{
  struct load *l = arg;
  struct gc_tag *t = push (&l->roots->tags, &l->roots->ntags, sizeof *t);

  if (!t)
    return -ENOMEM;
  snprintf (t->name, sizeof t->name, "%s", ref->name);
  t->commit = ref->commit;
  return idset_add (&l->wanted, &ref->commit, NULL) ? 0 : -ENOMEM;
}

static int
load_work (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct load *l = arg;
  const uint8_t *p = value.data;

  if (key.len != 16 || value.len < 4 + CAIRN_ID_SIZE
      || (p[0] != WORK_SEALED && p[0] != WORK_SCRATCH))
    return cairn_error (-EBADMSG, "a working-state record is corrupt");
  struct cairn_id id;
  memcpy (id.bytes, p + 4, CAIRN_ID_SIZE);
  if (cairn_id_is_zero (&id))
    return 0;
  uint64_t wid = cairn_be64 (key.data);
  struct gc_root_chunk *c = push (&l->roots->chunks, &l->roots->nchunks,
                                  sizeof *c);
  if (!c)
    return -ENOMEM;
  c->id = id;
  c->branch = SIZE_MAX;
  c->underlay = p[0] == WORK_SCRATCH;
  c->index = cairn_be64 ((const uint8_t *) key.data + 8);
  for (size_t i = 0; i < l->nwids; i++)
    if (l->wids[i].wid == wid)
      c->branch = l->wids[i].branch;
  return 0;
}

static int
load_lease (const struct cairn_id *commit, void *arg)
{
  struct load *l = arg;
  struct cairn_id *c = push (&l->roots->leases, &l->roots->nleases,
                             sizeof *c);
  if (!c)
    return -ENOMEM;
  *c = *commit;
  return idset_add (&l->wanted, commit, NULL) ? 0 : -ENOMEM;
}

static int
load_extra (void *arg, const struct cairn_id *commit, const char *why)
{
  struct load *l = arg;
  struct gc_extra *e = push (&l->roots->extras, &l->roots->nextras,
                             sizeof *e);
  if (!e)
    return -ENOMEM;
  e->commit = *commit;
  snprintf (e->why, sizeof e->why, "%s", why ? why : "");
  return idset_add (&l->wanted, commit, NULL) ? 0 : -ENOMEM;
}

static int
load_commit (const struct cairn_id *id, const struct cairn_object_info *info,
             void *arg)
{
  struct load *l = arg;
  bool pruned = cairn_commit_pruned (l->txn, id);

  l->roots->all_commits++;
  l->roots->tombstones += pruned;
  if (pruned && !idset_find (&l->wanted, id))
    return 0;
  struct gc_root_commit *c = push (&l->roots->commits, &l->roots->ncommits,
                                   sizeof *c);
  if (!c)
    return -ENOMEM;
  c->id = *id;
  c->pruned = pruned;
  return 0;
}

int
gc_roots_load (struct cairn_store *s, struct cairn_txn *txn,
               cairn_extra_roots_fn extra, void *extra_arg,
               struct gc_roots *roots)
{
  struct load l = { .s = s, .txn = txn, .roots = roots };
  struct cairn_backend *b = cairn_store_backend (s);
  int r;

  memset (roots, 0, sizeof *roots);
  idset_init (&l.wanted);
  r = cairn_ref_list (txn, CAIRN_REF_BRANCH, load_branch, &l);
  if (r == 0)
    r = cairn_ref_list (txn, CAIRN_REF_TAG, load_tag, &l);
  if (r == 0)
    r = b->ops->record_scan (cairn_txn_backend (txn), CAIRN_TABLE_WORK, "",
                             0, NULL, 0, load_work, &l);
  if (r == 0)
    r = cairn_leases_list (s, load_lease, &l);
  if (r == 0 && extra)
    r = extra (s, txn, load_extra, &l, extra_arg);
  if (r == 0)
    r = gc_object_scan (s, txn, CAIRN_OBJECT_COMMIT, load_commit, &l);
  free (l.wids);
  idset_free (&l.wanted);
  if (r < 0)
    gc_roots_free (roots);
  return r < 0 ? r : 0;
}

void
gc_roots_free (struct gc_roots *roots)
{
  free (roots->commits);
  free (roots->branches);
  free (roots->trees);
  free (roots->chunks);
  free (roots->tags);
  free (roots->leases);
  free (roots->extras);
  memset (roots, 0, sizeof *roots);
}
