/* lease.c: one store lease per commit that has volume files open.
 *
 * gc treats the commit of every live lease as a root (store.h), so a
 * volume file that is open keeps returning its commit's data even if
 * retention prunes the commit and gc runs meanwhile.  Beginning a lease
 * is a write transaction with an fsync, so cairnfs takes one per commit,
 * not per open: the first open of any volume of a commit begins it, the
 * last release ends it, and the table counts the opens in between.
 *
 * A lease dies with its process (its lock file is released), so a cairnfs
 * killed with -9 leaves nothing that keeps gc from reclaiming.
 *
 * Locking: the lock guards the table and is held while a lease begins or
 * ends, so that two opens of one commit never take two leases and a
 * release never ends a lease another open has just counted on.  Opens of
 * different commits wait for each other's fsync; opens are rare next to
 * reads, which never take this lock.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "fusefs/cairnfs.h"

struct held_lease {
  struct cairn_id commit;
  unsigned users;               /* open files of the commit */
  struct cairn_lease *lease;
};

struct lease_table {
  pthread_mutex_t lock;
  struct cairn_store *s;
  bool enabled;
  struct held_lease *v;
  size_t n, cap;
};

struct lease_table *
lease_table_new (struct cairn_store *s, bool enabled)
{
  struct lease_table *t = calloc (1, sizeof *t);

  if (!t)
    return NULL;
  pthread_mutex_init (&t->lock, NULL);
  t->s = s;
  t->enabled = enabled;
  return t;
}

void
lease_table_free (struct lease_table *t)
{
  if (!t)
    return;
  for (size_t i = 0; i < t->n; i++)
    cairn_lease_end (t->v[i].lease);
  free (t->v);
  pthread_mutex_destroy (&t->lock);
  free (t);
}

static struct held_lease *
find (struct lease_table *t, const struct cairn_id *id)
{
  for (size_t i = 0; i < t->n; i++)
    if (cairn_id_equal (&t->v[i].commit, id))
      return &t->v[i];
  return NULL;
}

int
lease_hold (struct lease_table *t, const struct cairn_id *id)
{
  struct held_lease *h;
  int r = 0;

  if (!t->enabled)
    return 0;
  pthread_mutex_lock (&t->lock);
  h = find (t, id);
  if (h) {
    h->users++;
    goto out;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 8;
    struct held_lease *v = realloc (t->v, cap * sizeof *v);
    if (!v) {
      r = -ENOMEM;
      goto out;
    }
    t->v = v;
    t->cap = cap;
  }
  h = &t->v[t->n];
  r = cairn_lease_begin (t->s, id, &h->lease);
  if (r == 0) {
    h->commit = *id;
    h->users = 1;
    t->n++;
  }
 out:
  pthread_mutex_unlock (&t->lock);
  return r;
}

void
lease_release (struct lease_table *t, const struct cairn_id *id)
{
  if (!t->enabled)
    return;
  pthread_mutex_lock (&t->lock);
  struct held_lease *h = find (t, id);
  if (h && --h->users == 0) {
    cairn_lease_end (h->lease);
    *h = t->v[--t->n];
  }
  pthread_mutex_unlock (&t->lock);
}
