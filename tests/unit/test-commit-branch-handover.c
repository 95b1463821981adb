/* test-commit-branch-handover: cairn_commit_branch while a writer is
 * letting go of the branch.
 *
 * A writer holds the branch lock a little longer than its control
 * socket: it stops the socket, flushes, and closes (and when it starts,
 * it takes the lock before it opens the socket).  A commit asked for in
 * between finds the branch held and nobody to ask.  It must wait for the
 * lock and commit, not fail: `cairn commit` right after the last NBD
 * client disconnects is the common case. */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tap.h"

static struct cairn_branch *held;

/* Lets go of the branch after 300 ms, like a writer that closes. */
static void *
release_later (void *arg)
{
  nanosleep (&(struct timespec) { 0, 300 * 1000000 }, NULL);
  cairn_branch_close (held);
  return NULL;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-handover.XXXXXX";
  struct cairn_store *s;
  struct cairn_id id;
  pthread_t t;
  char data[4096], buf[4096];

  if (!mkdtemp (dir))
    abort ();
  plan (3);
  memset (data, 'h', sizeof data);
  if (cairn_store_init (dir, NULL) < 0 || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 1 << 20) < 0)
    abort ();

  /* Held, with no control socket, and a flushed write in it. */
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &held) == 0
      && cairn_bvol_write (cairn_branch_volume (held, "disk"), data,
                           sizeof data, 8192) == 0
      && cairn_branch_flush (held) == 0, "a writer holds main");
  pthread_create (&t, NULL, release_later, NULL);
  int r = cairn_commit_branch (s, "main", NULL, &id);
  pthread_join (t, NULL);
  is_int (r, 0, "a commit asked for while it lets go waits and commits");

  struct cairn_view v;
  struct cairn_txn *txn;
  cairn_txn_begin (s, false, &txn);
  r = cairn_view_open (s, txn, &id, "disk", &v);
  cairn_txn_abort (s, txn);
  ok (r == 0 && cairn_view_read (&v, buf, sizeof buf, 8192) == 0
      && memcmp (buf, data, sizeof buf) == 0,
      "with the writer's flushed write in it");

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
