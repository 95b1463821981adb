/* writers.c: the branches this process holds for writing (see writers.h).
 *
 * Locking: writers_lock guards the list and every writer's users count.
 * It is held across opening and closing a branch, so that a connection
 * arriving while the last one leaves waits for the close (which releases
 * the branch lock) and then opens the branch afresh, instead of finding a
 * half-closed writer or racing its own process for the lock.  Opens and
 * closes are rare and take milliseconds; reads and writes never take
 * writers_lock.  One store per process: the list is keyed by name only.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
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

/* Ends W, unlinked already.  writers_lock held. */
static int
writer_end (struct writer *w)
{
  /* Flush while the control socket still answers; stopping it lets a
   * commit it is running finish.  Then the lock goes: a commit asked for
   * in the moment between waits for it (cairn_commit_branch). */
  int r = cairn_branch_flush (w->branch);
  cairn_control_stop (w->control);
  cairn_branch_close (w->branch);
  free (w);
  return r;
}

int
writer_release (struct writer *w)
{
  int r = 0;

  pthread_mutex_lock (&writers_lock);
  if (--w->users == 0) {
    struct writer **pp = &writers;
    while (*pp != w)
      pp = &(*pp)->next;
    *pp = w->next;
    r = writer_end (w);
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
