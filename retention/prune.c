/* prune.c: stored policies and the apply step of retention (prune.h).
 *
 * Design notes.
 *
 * Selection and tombstoning happen in one write transaction, so prune
 * decides on one state and changes that same state: a tag created, a
 * branch made or a commit added meanwhile either happened before (and is
 * seen, so its commit is kept) or waits for the transaction and comes
 * after.  Reading a thousand commits and selecting takes milliseconds; a
 * writer waits that long at most.
 *
 * Each branch's chain is walked from its base through first parents, so
 * that commits with equal times keep their chain order (retention.h asks
 * for the chain from the head backwards).  Tombstones on the way are
 * stepped through, not handed to selection: pruning twice prunes nothing
 * more.
 *
 * Unreachable commits.  A commit that no branch, tag, lease or keep hook
 * reaches through any parent link (the history of a deleted branch) is on
 * no branch's chain, so no policy can ever decide about it, and gc, for
 * which every commit that is not a tombstone is a root, would keep its
 * data forever.  `cairn prune` without a branch therefore tombstones them
 * too, and says so: deleting a branch and pruning is how its space comes
 * back.  Merged side history that a branch still reaches is never pruned
 * this way.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retention/prune.h"
#include "store/idset.h"

/* ---- stored policies -------------------------------------------------- */

int
cairn_retention_get (struct cairn_store *s, struct cairn_txn *txn,
                     const char *branch, struct cairn_retention_policy *policy)
{
  struct cairn_val v;
  int r;

  memset (policy, 0, sizeof *policy);
  r = cairn_store_backend (s)->ops->record_get (cairn_txn_backend (txn),
                                                CAIRN_TABLE_RETENTION, branch,
                                                strlen (branch), &v);
  if (r < 0)
    return r;
  if (cairn_retention_policy_from_text (v.data, v.len, policy) < 0) {
    memset (policy, 0, sizeof *policy);
    return cairn_error (-EBADMSG, "the retention policy of branch '%s' is "
                        "corrupt", branch);
  }
  return 0;
}

int
cairn_retention_set (struct cairn_store *s, const char *branch,
                     const struct cairn_retention_policy *policy)
{
  char text[CAIRN_RETENTION_TEXT_MAX];
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  int r = cairn_retention_policy_to_text (policy, text, sizeof text);

  if (r < 0)
    return cairn_error (r, "the retention policy is invalid");
  r = cairn_txn_begin (s, true, &txn);
  if (r < 0)
    return r;
  r = cairn_branch_info_get (txn, branch, &info);
  if (r == 0) {
    cairn_branch_info_free (&info);
    r = cairn_store_backend (s)->ops->record_put (cairn_txn_backend (txn),
                                                  CAIRN_TABLE_RETENTION,
                                                  branch, strlen (branch),
                                                  text, strlen (text));
  }
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  return cairn_txn_commit (s, txn);
}

int
cairn_retention_clear (struct cairn_store *s, const char *branch)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  r = cairn_store_backend (s)->ops->record_delete (cairn_txn_backend (txn),
                                                   CAIRN_TABLE_RETENTION,
                                                   branch, strlen (branch));
  if (r == -ENOENT)
    r = cairn_error (CAIRN_ENOREF, "branch '%s' has no retention policy",
                     branch);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  return cairn_txn_commit (s, txn);
}

struct list_ctx {
  cairn_retention_policy_fn fn;
  void *arg;
};

static int
list_visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct list_ctx *l = arg;
  struct cairn_retention_policy p;
  char name[CAIRN_NAME_MAX + 1];

  if (key.len > CAIRN_NAME_MAX)
    return cairn_error (-EBADMSG, "a retention policy record is corrupt");
  memcpy (name, key.data, key.len);
  name[key.len] = '\0';
  if (cairn_retention_policy_from_text (value.data, value.len, &p) < 0)
    return cairn_error (-EBADMSG, "the retention policy of branch '%s' is "
                        "corrupt", name);
  return l->fn (name, &p, l->arg);
}

int
cairn_retention_list (struct cairn_store *s, struct cairn_txn *txn,
                      cairn_retention_policy_fn fn, void *arg)
{
  struct list_ctx l = { fn, arg };
  int r = cairn_store_backend (s)->ops->record_scan (cairn_txn_backend (txn),
                                                     CAIRN_TABLE_RETENTION,
                                                     "", 0, NULL, 0,
                                                     list_visit, &l);
  return r < 0 ? r : 0;
}

/* ---- prune ------------------------------------------------------------ */

struct head {
  char name[CAIRN_NAME_MAX + 1];
  struct cairn_id base;
  bool held;                    /* a process serves it */
};

/* A reason to keep a commit whatever the policies say. */
struct keep {
  struct cairn_id commit;
  char *why;
};

struct prune {
  struct cairn_store *s;
  struct cairn_txn *txn;
  const struct cairn_prune_options *o;
  struct head *heads;
  size_t nheads;
  struct keep *keeps;
  size_t nkeeps;
  struct cairn_id *leases;
  size_t nleases;
};

static int
add_keep (struct prune *p, const struct cairn_id *commit, const char *fmt,
          const char *name)
{
  struct keep *k = realloc (p->keeps, (p->nkeeps + 1) * sizeof *k);
  if (!k)
    return -ENOMEM;
  p->keeps = k;
  if (asprintf (&k[p->nkeeps].why, fmt, name) < 0)
    return -ENOMEM;
  k[p->nkeeps++].commit = *commit;
  return 0;
}

static int
add_head (const struct cairn_ref *ref, void *arg)
{
  struct prune *p = arg;
  struct head *h = realloc (p->heads, (p->nheads + 1) * sizeof *h);
  int pid;

  if (!h)
    return -ENOMEM;
  p->heads = h;
  h = &h[p->nheads++];
  snprintf (h->name, sizeof h->name, "%s", ref->name);
  h->base = ref->commit;
  h->held = cairn_branch_is_held (p->s, ref->name, &pid);
  if (cairn_id_is_zero (&h->base))
    return 0;
  int r = add_keep (p, &h->base, "base of branch %s", ref->name);
  if (r == 0 && h->held)
    r = add_keep (p, &h->base, "live branch %s", ref->name);
  return r;
}

static int
add_tag (const struct cairn_ref *ref, void *arg)
{
  return add_keep (arg, &ref->commit, "tag %s", ref->name);
}

static int
add_hooked (void *arg, const struct cairn_id *commit, const char *why)
{
  return add_keep (arg, commit, "%s", why && *why ? why : "kept by a VM");
}

static int
add_lease (const struct cairn_id *commit, void *arg)
{
  struct prune *p = arg;
  struct cairn_id *l = realloc (p->leases, (p->nleases + 1) * sizeof *l);
  if (!l)
    return -ENOMEM;
  p->leases = l;
  l[p->nleases++] = *commit;
  return 0;
}

static void
items_free (struct cairn_retention_item *items, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free ((void *) items[i].always_keep);
  free (items);
}

/* The first-parent chain of branch H, tombstones left out, head first,
 * each with its always-keep reasons (borrowed from P->keeps). */
static int
chain_items (struct prune *p, const struct head *h,
             struct cairn_retention_item **out, size_t *n)
{
  struct cairn_retention_item *items = NULL;
  struct cairn_id id = h->base;
  size_t count = 0, cap = 0;
  int r = 0;

  while (r == 0 && !cairn_id_is_zero (&id)) {
    struct cairn_commit *c;
    r = cairn_commit_read (p->txn, &id, &c);
    if (r < 0)
      break;
    if (!cairn_commit_pruned (p->txn, &id)) {
      if (count == cap) {
        cap = cap ? 2 * cap : 64;
        struct cairn_retention_item *it = realloc (items, cap * sizeof *it);
        if (!it) {
          cairn_commit_free (c);
          r = -ENOMEM;
          break;
        }
        items = it;
      }
      struct cairn_retention_item *it = &items[count++];
      memset (it, 0, sizeof *it);
      it->id = id;
      it->time = c->time;
      for (size_t k = 0; k < p->nkeeps; k++) {
        if (!cairn_id_equal (&p->keeps[k].commit, &id))
          continue;
        const char **why = realloc ((void *) it->always_keep,
                                    (it->n_always_keep + 1) * sizeof *why);
        if (!why) {
          r = -ENOMEM;
          break;
        }
        why[it->n_always_keep++] = p->keeps[k].why;
        it->always_keep = why;
      }
    }
    id = c->nparents ? c->parents[0] : cairn_zero_id;
    cairn_commit_free (c);
  }
  if (r < 0) {
    items_free (items, count);
    return r;
  }
  *out = items;
  *n = count;
  return 0;
}

/* Selects for every branch and merges: *UNION holds every chain's
 * commits; *MINE (if BRANCH) the ids of BRANCH's chain. */
static int
select_all (struct prune *p, struct cairn_retention_result **merged,
            struct idset *mine)
{
  struct cairn_retention_result **results;
  const char **names;
  size_t n = 0;
  int r = 0;

  results = calloc (p->nheads + 1, sizeof *results);
  names = calloc (p->nheads + 1, sizeof *names);
  if (!results || !names) {
    free (results);
    free (names);
    return -ENOMEM;
  }
  for (size_t i = 0; r == 0 && i < p->nheads; i++) {
    struct cairn_retention_policy policy;
    struct cairn_retention_item *items = NULL;
    size_t nitems = 0;
    r = cairn_retention_get (p->s, p->txn, p->heads[i].name, &policy);
    if (r == -ENOENT)
      r = 0;                    /* the empty policy keeps everything */
    if (r == 0)
      r = chain_items (p, &p->heads[i], &items, &nitems);
    if (r < 0)
      break;
    r = cairn_retention_select (&policy, items, nitems, &results[n]);
    if (r == 0)
      names[n++] = p->heads[i].name;
    bool is_mine = p->o->branch && strcmp (p->o->branch,
                                           p->heads[i].name) == 0;
    for (size_t k = 0; r == 0 && is_mine && k < nitems; k++)
      if (!idset_add (mine, &items[k].id, NULL))
        r = -ENOMEM;
    items_free (items, nitems);
  }
  if (r == 0)
    r = cairn_retention_union ((const struct cairn_retention_result *const *)
                               results, names, n, merged);
  for (size_t i = 0; i < n; i++)
    cairn_retention_result_free (results[i]);
  free (results);
  free (names);
  return r;
}

/* Leaves in RES only the decisions about commits in MINE. */
static void
keep_only (struct cairn_retention_result *res, const struct idset *mine)
{
  size_t w = 0;

  res->n_keep = 0;
  for (size_t i = 0; i < res->n_decisions; i++) {
    struct cairn_retention_decision *d = &res->decisions[i];
    if (!idset_find (mine, &d->id)) {
      for (size_t j = 0; j < d->n_reasons; j++)
        free (d->reasons[j]);
      free (d->reasons);
      continue;
    }
    res->n_keep += d->keep;
    res->decisions[w++] = *d;
  }
  res->n_decisions = w;
}

struct unreach_ctx {
  struct prune *p;
  struct idset reachable;
  struct cairn_prune_result *res;
  int r;
};

static int
find_unreachable (const struct cairn_id *id,
                  const struct cairn_object_info *info, void *arg)
{
  struct unreach_ctx *u = arg;
  struct cairn_prune_result *res = u->res;
  struct cairn_commit *c;

  if (idset_find (&u->reachable, id) || cairn_commit_pruned (u->p->txn, id))
    return 0;
  int r = cairn_commit_read (u->p->txn, id, &c);
  if (r < 0)
    return r;
  struct cairn_id *ids = realloc (res->unreachable,
                                  (res->n_unreachable + 1) * sizeof *ids);
  int64_t *times = ids ? realloc (res->unreachable_time,
                                  (res->n_unreachable + 1) * sizeof *times)
    : NULL;
  if (ids)
    res->unreachable = ids;
  if (times)
    res->unreachable_time = times;
  if (!ids || !times) {
    cairn_commit_free (c);
    return -ENOMEM;
  }
  ids[res->n_unreachable] = *id;
  times[res->n_unreachable++] = c->time;
  cairn_commit_free (c);
  return 0;
}

/* Every commit nothing reaches through any parent link. */
static int
unreachable (struct prune *p, struct cairn_prune_result *res)
{
  const struct cairn_backend_ops *ops = cairn_store_backend (p->s)->ops;
  struct unreach_ctx u = { .p = p, .res = res };
  size_t nstarts = p->nheads + p->nkeeps + p->nleases, n = 0, nids;
  struct cairn_id *starts = malloc ((nstarts + 1) * sizeof *starts), *ids;
  int r;

  if (!starts)
    return -ENOMEM;
  for (size_t i = 0; i < p->nheads; i++)
    starts[n++] = p->heads[i].base;
  for (size_t i = 0; i < p->nkeeps; i++)
    starts[n++] = p->keeps[i].commit;
  for (size_t i = 0; i < p->nleases; i++)
    starts[n++] = p->leases[i];
  r = cairn_history (p->txn, starts, n, false, &ids, &nids);
  free (starts);
  if (r < 0)
    return r;
  idset_init (&u.reachable);
  for (size_t i = 0; r == 0 && i < nids; i++)
    if (!idset_add (&u.reachable, &ids[i], NULL))
      r = -ENOMEM;
  free (ids);
  if (r == 0)
    r = ops->object_scan (cairn_txn_backend (p->txn), CAIRN_OBJECT_COMMIT,
                          NULL, find_unreachable, &u);
  idset_free (&u.reachable);
  return r < 0 ? r : 0;
}

static int
apply (struct prune *p, struct cairn_prune_result *res)
{
  int r = 0;

  for (size_t i = 0; r == 0 && i < res->verdicts->n_decisions; i++)
    if (!res->verdicts->decisions[i].keep) {
      res->n_pruned++;
      if (!p->o->dry_run)
        r = cairn_commit_prune (p->txn, &res->verdicts->decisions[i].id);
    }
  for (size_t i = 0; r == 0 && i < res->n_unreachable; i++) {
    res->n_pruned++;
    if (!p->o->dry_run)
      r = cairn_commit_prune (p->txn, &res->unreachable[i]);
  }
  return r;
}

int
cairn_prune (struct cairn_store *s, const struct cairn_prune_options *o,
             struct cairn_prune_result *res)
{
  struct prune p = { .s = s, .o = o };
  struct idset mine;
  int r;

  memset (res, 0, sizeof *res);
  idset_init (&mine);
  /* Leases live beside the index; one taken after this names a commit
   * that gc keeps anyway while the lease lives. */
  r = cairn_leases_list (s, add_lease, &p);
  if (r < 0)
    goto out;
  r = cairn_txn_begin (s, !o->dry_run, &p.txn);
  if (r < 0) {
    p.txn = NULL;
    goto out;
  }
  if (o->branch) {
    struct cairn_branch_info info;
    r = cairn_branch_info_get (p.txn, o->branch, &info);
    if (r < 0)
      goto out;
    cairn_branch_info_free (&info);
  }
  r = cairn_ref_list (p.txn, CAIRN_REF_BRANCH, add_head, &p);
  if (r == 0)
    r = cairn_ref_list (p.txn, CAIRN_REF_TAG, add_tag, &p);
  if (r == 0 && o->keep)
    r = o->keep (s, p.txn, add_hooked, &p, o->keep_arg);
  if (r == 0)
    r = select_all (&p, &res->verdicts, &mine);
  if (r == 0 && o->branch)
    keep_only (res->verdicts, &mine);
  if (r == 0 && !o->branch)
    r = unreachable (&p, res);
  if (r == 0)
    r = apply (&p, res);
  if (r == 0 && !o->dry_run) {
    r = cairn_txn_commit (s, p.txn);
    p.txn = NULL;
  }

 out:
  if (p.txn)
    cairn_txn_abort (s, p.txn);
  for (size_t i = 0; i < p.nkeeps; i++)
    free (p.keeps[i].why);
  free (p.keeps);
  free (p.heads);
  free (p.leases);
  idset_free (&mine);
  if (r < 0)
    cairn_prune_result_free (res);
  return r;
}

void
cairn_prune_result_free (struct cairn_prune_result *res)
{
  cairn_retention_result_free (res->verdicts);
  free (res->unreachable);
  free (res->unreachable_time);
  memset (res, 0, sizeof *res);
}
