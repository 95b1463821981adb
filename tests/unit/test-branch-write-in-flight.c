/* test-branch-write-in-flight: a write in flight when a commit freezes
 * the branch is never lost.
 *
 * A write counts itself in its chunk's generation when it starts and
 * marks its sectors in the chunk's bitmap when it is done.  A commit that
 * froze the chunk in between, and captured it with the bitmap of the
 * freeze, committed the chunk without the write and then, seeing the
 * generation unchanged, dropped the chunk from the branch as fully
 * committed: the write, acknowledged, was gone.
 *
 * $CAIRN_TEST_WRITE_STALL_MS holds every write of the branch between the
 * two for 400 ms; the test commits 100 ms into one.  Afterwards the
 * branch, the commit taken then (which may or may not hold the write: it
 * was not acknowledged before the commit was asked for) and the next
 * commit must agree: the branch and the next commit hold it. */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gc-fixture.h"
#include "store/store.h"
#include "tap.h"

#define CS 65536
#define AT (5 * CS)

static struct cairn_bvol *v;
static int write_result = -1;

static void *
writer (void *arg)
{
  (void) arg;
  char sector[512];
  memset (sector, 'B', sizeof sector);
  write_result = cairn_bvol_write (v, sector, sizeof sector, AT);
  return NULL;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-in-flight.XXXXXX", path[256], chunk[CS];
  struct cairn_store_options o = { .chunk_size = CS };
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_id base, during, after;
  pthread_t th;
  char c = 0;

  if (!mkdtemp (dir))
    abort ();
  snprintf (path, sizeof path, "%s/store", dir);

  /* The chunk holds 'A' in the base commit. */
  memset (chunk, 'A', sizeof chunk);
  if (cairn_store_init (path, &o) < 0 || cairn_store_open (path, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 16 * CS) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0
      || cairn_bvol_write (cairn_branch_volume (b, "disk"), chunk, CS, AT) < 0
      || cairn_branch_commit (b, NULL, &base) < 0) {
    printf ("Bail out! cannot make the base commit: %s\n",
            cairn_last_error ());
    return 1;
  }
  cairn_branch_close (b);

  setenv ("CAIRN_TEST_WRITE_STALL_MS", "400", 1);
  if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0) {
    printf ("Bail out! cannot open the branch\n");
    return 1;
  }
  unsetenv ("CAIRN_TEST_WRITE_STALL_MS");
  v = cairn_branch_volume (b, "disk");
  pthread_create (&th, NULL, writer, NULL);
  nanosleep (&(struct timespec) { 0, 100 * 1000000L }, NULL);
  ok (cairn_branch_commit (b, NULL, &during) == 0,
      "a commit while the write is in flight");
  pthread_join (th, NULL);
  is_int (write_result, 0, "the write succeeds");
  int rr = cairn_bvol_read (v, &c, 1, AT);
  ok (rr == 0 && c == 'B', "the branch holds it (reads '%c')", c ? c : '?');
  ok (cairn_branch_commit (b, NULL, &after) == 0
      && fixture_byte (s, &after, AT) == 'B', "so does the next commit");
  int d = fixture_byte (s, &during, AT);
  ok (d == 'A' || d == 'B', "the commit taken meanwhile holds the chunk "
      "before or after the write ('%c')", d > 0 ? d : '?');

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
