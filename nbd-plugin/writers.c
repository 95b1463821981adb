/* writers.c: the branches this process holds for writing (see writers.h).
 *
 * Locking: writers_lock guards the list and every writer's users count.
 * It is held across opening and closing a branch, so that a connection
 * arriving while the last one leaves waits for the close (which releases
 * the branch lock) and then opens the branch afresh, instead of finding a
 * half-closed writer or racing its own process for the lock.  Opens and
 * closes are rare and take milliseconds.  The last user's flush, which
 * can take seconds, runs outside it: the writer stays listed meanwhile,
 * and a connection arriving then uses it again.  Reads and writes never
 * take writers_lock.  One store per process: the list is keyed by name
 * only.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-plugin/writers.h"

static pthread_mutex_t writers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct writer *writers;  /* writers_lock */

int
writer_acquire (struct cairn_store *s, const char *name, struct writer **out)
{
  struct writer *w;
  int r;

  pthread_mutex_lock (&writers_lock);
  for (w = writers; w; w = w->next)
    if (strcmp (w->name, name) == 0) {
      w->users++;
      *out = w;
      pthread_mutex_unlock (&writers_lock);
      return 0;
    }

  r = -ENOMEM;
  w = calloc (1, sizeof *w);
  if (!w || strlen (name) > CAIRN_NAME_MAX)
    goto out;
  strcpy (w->name, name);
  r = cairn_branch_open (s, name, CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER,
                         &w->branch);
  if (r < 0)
    goto out;
  r = cairn_control_start (s, w->branch, NULL, NULL, &w->control);
  if (r < 0)
    goto close_branch;
  w->users = 1;
  w->next = writers;
  writers = w;
  *out = w;
  pthread_mutex_unlock (&writers_lock);
  return 0;

 close_branch:
  cairn_branch_close (w->branch);
 out:
  free (w);
  pthread_mutex_unlock (&writers_lock);
  return r;
}

/* Ends W, unlinked already, flushed if it is to be: stops its control
 * socket (letting a commit it is running finish) and closes the branch,
 * which releases the lock (a commit asked for in the moment between waits
 * for it, see cairn_commit_branch).  writers_lock held. */
static void
writer_end (struct writer *w)
{
  cairn_control_stop (w->control);
  cairn_branch_close (w->branch);
  free (w);
}

int
writer_release (struct writer *w)
{
  pthread_mutex_lock (&writers_lock);
  bool last = --w->users == 0;
  if (last)
    w->flushing++;
  pthread_mutex_unlock (&writers_lock);
  if (!last)
    return 0;

  /* Flushed outside writers_lock: with gigabytes written and not flushed
   * (fio flat out) that takes seconds, and a connection arriving
   * meanwhile takes the writer over instead of waiting.  The control
   * socket still answers. */
  int r = cairn_branch_flush (w->branch);

  pthread_mutex_lock (&writers_lock);
  if (--w->flushing == 0 && w->users == 0) {
    struct writer **pp = &writers;
    while (*pp != w)
      pp = &(*pp)->next;
    *pp = w->next;
    writer_end (w);
  }
  pthread_mutex_unlock (&writers_lock);
  return r;
}

void
writers_close_all (void)
{
  pthread_mutex_lock (&writers_lock);
  while (writers) {
    struct writer *w = writers;
    writers = w->next;
    cairn_branch_flush (w->branch);
    writer_end (w);
  }
  pthread_mutex_unlock (&writers_lock);
}

unsigned
writers_count (void)
{
  unsigned n = 0;

  pthread_mutex_lock (&writers_lock);
  for (struct writer *w = writers; w; w = w->next)
    n++;
  pthread_mutex_unlock (&writers_lock);
  return n;
}
