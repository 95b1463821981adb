/* test-branch-stale-records: a commit of more flushed entries than a
 * sweep deletes at once leaves their records stale for the sealer, and
 * they read as absent: killed with SIGKILL right after such a commit and
 * a flush of a few rewrites, the branch reopens as the commit plus those
 * rewrites, not as the stale records say.  Then a commit without a
 * sealer leaves no record behind.
 *
 * Each chunk carries its number and a generation in its first 8 bytes. */
#include <config.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"
#include "gc-fixture.h"

#define CHUNKS 5000             /* more than the sweep's 4096 */
#define REWRITTEN 10

static uint32_t cs;

static int
put (struct cairn_bvol *v, unsigned c, unsigned gen)
{
  uint32_t tag[2] = { c, gen };
  return cairn_bvol_write (v, tag, sizeof tag, (uint64_t) c * cs);
}

/* The generation chunk C should have now. */
static unsigned
gen_now (unsigned c)
{
  return c < REWRITTEN ? 2 : 1;
}

static int
count_record (struct cairn_val key, struct cairn_val data, void *arg)
{
  (void) key, (void) data;
  ++*(size_t *) arg;
  return 0;
}

static size_t
work_records (struct cairn_store *s)
{
  size_t n = 0;
  return fixture_scan_work (s, count_record, &n) == 0 ? n : (size_t) -1;
}

int
main (void)
{
  struct fixture f;
  struct cairn_branch *b;
  struct cairn_bvol *v;
  struct cairn_id id;
  int status, r = 0;

  plan (7);
  if (fixture_open (&f, 0) < 0
      || cairn_branch_create_empty (f.s, "main", "disk",
                                    (uint64_t) CHUNKS << 20) < 0) {
    printf ("Bail out! cannot make the branch\n");
    return 1;
  }
  cs = cairn_store_chunk_size (f.s);

  pid_t pid = fork ();
  if (pid == 0) {
    /* A store of its own: LMDB does not survive fork. */
    struct cairn_store *s;
    if (cairn_store_open (f.path, 0, &s) < 0
        || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE
                              | CAIRN_BRANCH_SEALER, &b) < 0)
      _exit (2);
    v = cairn_branch_volume (b, "disk");
    for (unsigned c = 0; c < CHUNKS && r == 0; c++)
      r = put (v, c, 1);
    if (r < 0 || cairn_branch_flush (b) < 0)
      _exit (3);
    if (cairn_branch_commit (b, NULL, &id) < 0)
      _exit (4);
    for (unsigned c = 0; c < REWRITTEN && r == 0; c++)
      r = put (v, c, 2);
    if (r < 0 || cairn_branch_flush (b) < 0)
      _exit (5);
    kill (getpid (), SIGKILL);
    _exit (6);
  }
  waitpid (pid, &status, 0);
  ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
      "a child wrote %d chunks, flushed, committed, rewrote %d, flushed, "
      "and was killed with SIGKILL (status %#x)", CHUNKS, REWRITTEN, status);

  /* The sealer deletes a batch of 4096 each time it wakes (every 50 ms);
   * the kill came a few ms after the commit. */
  size_t stale = work_records (f.s);
  ok (stale > REWRITTEN, "records left stale by the commit were still "
      "there at the kill (%zu records)", stale);
  ok (cairn_branch_open (f.s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "the branch reopens");
  v = cairn_branch_volume (b, "disk");
  unsigned good = 0;
  for (unsigned c = 0; c < CHUNKS; c++) {
    uint32_t tag[2] = { 0, 0 };
    if (cairn_bvol_read (v, tag, sizeof tag, (uint64_t) c * cs) == 0
        && tag[0] == c && tag[1] == gen_now (c))
      good++;
  }
  ok (good == CHUNKS, "every chunk reads as committed or rewritten after "
      "(%u of %d)", good, CHUNKS);

  struct cairn_view view;
  unsigned committed = 0;
  cairn_branch_base (b, &id);
  bool viewed = fixture_view (f.s, &id, &view) == 0;
  for (unsigned c = 0; viewed && c < CHUNKS; c++) {
    uint32_t tag[2] = { 0, 0 };
    if (cairn_view_read (&view, tag, sizeof tag, (uint64_t) c * cs) == 0
        && tag[0] == c && tag[1] == 1)
      committed++;
  }
  ok (committed == CHUNKS, "the commit holds the first generation of "
      "every chunk (%u of %d)", committed, CHUNKS);

  ok (cairn_branch_commit (b, NULL, &id) == 0, "committed again, without "
      "a sealer");
  cairn_branch_close (b);
  size_t left = work_records (f.s);
  ok (left == 0, "no work record is left (%zu)", left);

  fixture_close (&f);
  return tap_exit_status ();
}
