/* test-branch-detach-fresh: a write to a chunk a commit has frozen works
 * when the chunk's slot is the last, partly written one of its scratch
 * file.
 *
 * A write to a frozen chunk that the commit has not captured yet moves
 * the chunk to a new slot ("detach"), which once copied the old one.  The
 * copy read the whole old slot; a slot at the end of the scratch file
 * holds only the sectors written to it, so the read ran past the end of
 * the file and the write failed with EIO (nbdkit answered fio's write
 * with an error during commits).  A detach copies nothing now, but the
 * old slot is still read, by the commit and by reads of the chunk until
 * the commit ends (store/branch.c, Commit).  Here one thread writes the start of a fresh chunk -
 * a new slot at the end of the file - and then another part of it, again
 * and again, while another commits as fast as it can: no write may fail. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"

#define CHUNKS 20000

static struct cairn_branch *b;
static atomic_bool stop;
static atomic_int commits, commit_error;

static void *
committer (void *arg)
{
  struct cairn_id id;

  while (!atomic_load (&stop)) {
    int r = cairn_branch_commit (b, NULL, &id);
    if (r < 0) {
      atomic_store (&commit_error, r);
      break;
    }
    atomic_fetch_add (&commits, 1);
  }
  return NULL;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-detach-tail.XXXXXX";
  struct cairn_store *s;
  char buf[4096];
  pthread_t t;
  int r = 0;
  unsigned c;

  if (!mkdtemp (dir))
    abort ();
  plan (3);
  if (cairn_store_init (dir, NULL) < 0 || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk",
                                    (uint64_t) CHUNKS * 65536) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    abort ();
  struct cairn_bvol *v = cairn_branch_volume (b, "disk");

  pthread_create (&t, NULL, committer, NULL);
  for (c = 0; c < CHUNKS && r == 0; c++) {
    memset (buf, 'a' + c % 26, sizeof buf);
    r = cairn_bvol_write (v, buf, sizeof buf, (uint64_t) c * 65536);
    if (r == 0)
      r = cairn_bvol_write (v, buf, sizeof buf, (uint64_t) c * 65536 + 8192);
  }
  atomic_store (&stop, true);
  pthread_join (t, NULL);

  is_int (r, 0, "every write succeeds while commits run (%u chunks, "
          "%d commits)", c, atomic_load (&commits));
  is_int (atomic_load (&commit_error), 0, "every commit succeeds");
  char got[4096];
  memset (buf, 'a' + (c - 1) % 26, sizeof buf);
  ok (cairn_bvol_read (v, got, sizeof got, (uint64_t) (c - 1) * 65536 + 8192)
      == 0 && memcmp (got, buf, sizeof got) == 0, "and reads back");

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
