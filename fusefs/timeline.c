/* timeline.c: by-time/<branch>/, a branch's history by commit time.
 *
 * by-time/<branch>/ holds one link per commit of the branch's
 * first-parent history (the states its volumes went through, not the
 * history of branches merged into it), named for the commit's time as its
 * text writes it, "2026-11-21T10:00:00.123456789Z", so that ls lists it in
 * time order.  Two commits with the same time (possible with --time) would
 * share a name: the one with the greater id gets "~" and its whole id
 * appended, which keeps names unique and stable however many more commits
 * come.
 *
 * Building a timeline reads every commit of the history, so the last
 * TIMELINES_CACHED branches' timelines are cached and rebuilt only when
 * their branch has moved; a lookup then costs a binary search.  Users hold
 * a reference (an open directory keeps its listing while the branch moves
 * on); the cache holds one too.  The lock guards the slots and every
 * timeline's reference count; a timeline's contents never change.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusefs/cairnfs.h"

#define TIMELINES_CACHED 8

struct timeline_cache {
  pthread_mutex_t lock;
  struct timeline *slots[TIMELINES_CACHED];
  uint64_t used[TIMELINES_CACHED];      /* LRU stamps */
  uint64_t clock;
};

struct timeline_cache *
timeline_cache_new (void)
{
  struct timeline_cache *tc = calloc (1, sizeof *tc);

  if (tc)
    pthread_mutex_init (&tc->lock, NULL);
  return tc;
}

static void
timeline_free (struct timeline *tl)
{
  free (tl->entries);
  free (tl);
}

/* Drops one reference; the caller holds the lock. */
static void
unref_locked (struct timeline *tl)
{
  if (tl && --tl->refs == 0)
    timeline_free (tl);
}

void
timeline_cache_free (struct timeline_cache *tc)
{
  if (!tc)
    return;
  for (int i = 0; i < TIMELINES_CACHED; i++)
    unref_locked (tc->slots[i]);
  pthread_mutex_destroy (&tc->lock);
  free (tc);
}

static int
by_time_then_id (const void *a, const void *b)
{
  const struct timeline_entry *x = a, *y = b;

  if (x->time != y->time)
    return x->time < y->time ? -1 : 1;
  return memcmp (x->commit.bytes, y->commit.bytes, CAIRN_ID_SIZE);
}

static int
by_name (const void *a, const void *b)
{
  const struct timeline_entry *x = a, *y = b;
  return strcmp (x->name, y->name);
}

int
timeline_entries (struct cairn_txn *txn, const struct cairn_id *ids,
                  size_t n, struct timeline_entry **out)
{
  struct timeline_entry *e = calloc (n ? n : 1, sizeof *e);

  if (!e)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    struct cairn_commit *c;
    int r = cairn_commit_read (txn, &ids[i], &c);
    if (r < 0) {
      free (e);
      return r;
    }
    e[i].commit = ids[i];
    e[i].time = c->time;
    cairn_commit_free (c);
  }
  qsort (e, n, sizeof *e, by_time_then_id);
  for (size_t i = 0; i < n; i++) {
    cairn_time_format (e[i].time, e[i].name);
    if (i > 0 && e[i].time == e[i - 1].time) {
      char hex[CAIRN_HEX_SIZE + 1];
      size_t k = strlen (e[i].name);
      cairn_id_to_hex (&e[i].commit, hex);
      snprintf (e[i].name + k, sizeof e[i].name - k, "~%s", hex);
    }
  }
  /* Time order is name order for the years 1000..9999; sort by name so
   * that lookups can rely on it whatever the times. */
  qsort (e, n, sizeof *e, by_name);
  *out = e;
  return 0;
}

static int
timeline_build (struct cairn_txn *txn, const char *branch,
                const struct cairn_id *head, struct timeline **out)
{
  struct timeline *tl = calloc (1, sizeof *tl);
  struct cairn_id *ids = NULL;
  int r;

  if (!tl)
    return -ENOMEM;
  snprintf (tl->branch, sizeof tl->branch, "%s", branch);
  tl->head = *head;
  r = cairn_history (txn, head, 1, true, &ids, &tl->n);
  if (r == 0)
    r = timeline_entries (txn, ids, tl->n, &tl->entries);
  free (ids);
  if (r < 0) {
    free (tl);
    return r;
  }
  tl->refs = 1;
  *out = tl;
  return 0;
}

/* The cached timeline of BRANCH at HEAD with a new reference, or NULL. */
static struct timeline *
cached (struct timeline_cache *tc, const char *branch,
        const struct cairn_id *head)
{
  for (int i = 0; i < TIMELINES_CACHED; i++) {
    struct timeline *tl = tc->slots[i];
    if (tl && strcmp (tl->branch, branch) == 0
        && cairn_id_equal (&tl->head, head)) {
      tc->used[i] = ++tc->clock;
      tl->refs++;
      return tl;
    }
  }
  return NULL;
}

/* Puts TL in the slot of its branch, or the least recently used one. */
static void
cache_insert (struct timeline_cache *tc, struct timeline *tl)
{
  int victim = 0;

  for (int i = 0; i < TIMELINES_CACHED; i++) {
    if (tc->slots[i] && strcmp (tc->slots[i]->branch, tl->branch) == 0) {
      victim = i;
      break;
    }
    if (!tc->slots[i] || tc->used[i] < tc->used[victim])
      victim = i;
  }
  unref_locked (tc->slots[victim]);
  tc->slots[victim] = tl;
  tc->used[victim] = ++tc->clock;
  tl->refs++;
}

int
timeline_get (struct timeline_cache *tc, struct cairn_txn *txn,
              const char *branch, const struct cairn_id *head,
              struct timeline **out)
{
  struct timeline *tl;
  int r;

  pthread_mutex_lock (&tc->lock);
  tl = cached (tc, branch, head);
  pthread_mutex_unlock (&tc->lock);
  if (tl) {
    *out = tl;
    return 0;
  }
  /* Built without the lock: it reads the whole history. */
  r = timeline_build (txn, branch, head, &tl);
  if (r < 0)
    return r;
  pthread_mutex_lock (&tc->lock);
  cache_insert (tc, tl);
  pthread_mutex_unlock (&tc->lock);
  *out = tl;
  return 0;
}

void
timeline_put (struct timeline_cache *tc, struct timeline *tl)
{
  pthread_mutex_lock (&tc->lock);
  unref_locked (tl);
  pthread_mutex_unlock (&tc->lock);
}

const struct timeline_entry *
timeline_find (const struct timeline *tl, const char *name)
{
  struct timeline_entry key;

  if (strlen (name) >= sizeof key.name)
    return NULL;
  strcpy (key.name, name);
  return bsearch (&key, tl->entries, tl->n, sizeof key, by_name);
}
