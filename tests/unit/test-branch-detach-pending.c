/* test-branch-detach-pending: a write to a chunk that a running commit
 * has frozen but not captured yet moves the chunk to a fresh, empty slot
 * and copies nothing ("detach"): until the commit ends, the sectors the
 * write did not cover are the frozen chunk's, its *pending* underlay
 * (store/branch.c, Commit).  Reads see them there; a flush meanwhile
 * copies them into the new slot ("merge"), since a record names one
 * slot; when the commit ends, the committed chunk is the underlay.
 *
 * A child process, with a commit stalled between its freeze and its
 * capture ($CAIRN_TEST_CAPTURE_STALL_MS) and a merge stalled before it
 * copies ($CAIRN_TEST_MERGE_STALL_MS):
 *
 *   1. on branch "one", writes chunk A all 'a'; a commit freezes it;
 *      4 KiB of 'n' at the start of A detach it; a read of A then; a
 *      flush merges A while the commit waits; the commit ends;
 *   2. on branch "two", writes chunk C all 'c'; a commit freezes it;
 *      4 KiB of 'm' at 4 KiB into C detach it; a read of C then; the
 *      commit ends without a flush in between, so C's underlay is the
 *      committed chunk; a flush; SIGKILL.
 *
 * It reports each check through a pipe.  Both branches must then reopen
 * with A and C as written (from the records the flushes wrote after the
 * freezes), and each commit hold what it froze.
 *
 * 3. A commit that fails after a detach (its index write fails,
 *    $CAIRN_TEST_FAIL_FLUSH_AT_RECORD) merges the pending underlay
 *    before it lets go of the frozen slot: the chunk still reads as
 *    written, from its own slot. */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"
#include "gc-fixture.h"

#define A 0
#define C 5
#define CHECKS 8

static struct cairn_branch *b;
static struct cairn_bvol *v;
static uint32_t cs;
static int commit_result, flush_result;

static void *
committer (void *arg)
{
  commit_result = cairn_branch_commit (b, NULL, arg);
  return NULL;
}

static void *
flusher (void *arg)
{
  (void) arg;
  flush_result = cairn_branch_flush (b);
  return NULL;
}

/* Chunk INDEX of BUF (CS bytes) is all FILL but [AT, AT+4096), which is
 * PATCH (AT < 0: no patch). */
static bool
chunk_is (const char *buf, char fill, long at, char patch)
{
  for (long i = 0; i < (long) cs; i++)
    if (buf[i] != (at >= 0 && i >= at && i < at + 4096 ? patch : fill))
      return false;
  return true;
}

static bool
branch_chunk_is (struct cairn_bvol *bv, uint64_t index, char fill, long at,
                 char patch)
{
  char *buf = malloc (cs);
  bool same = buf && cairn_bvol_read (bv, buf, cs, index * cs) == 0
    && chunk_is (buf, fill, at, patch);
  free (buf);
  return same;
}

static bool
view_chunk_is (struct cairn_store *s, const struct cairn_id *commit,
               uint64_t index, char fill, long at, char patch)
{
  struct cairn_view view;
  char *buf = malloc (cs);
  bool same = buf && fixture_view (s, commit, &view) == 0
    && cairn_view_read (&view, buf, cs, index * cs) == 0
    && chunk_is (buf, fill, at, patch);
  free (buf);
  return same;
}

static int
put (uint64_t index, long at, char c)
{
  char *buf = malloc (cs);
  size_t len = at < 0 ? cs : 4096;
  if (!buf)
    return -1;
  memset (buf, c, len);
  int r = cairn_bvol_write (v, buf, len, index * cs + (at < 0 ? 0 : at));
  free (buf);
  return r;
}

static struct cairn_branch_stats
stats (void)
{
  struct cairn_branch_stats st;
  cairn_branch_stats (b, &st);
  return st;
}

static uint64_t
pending (void)
{
  return stats ().pending;
}

/* Waits (up to 10 s) for the commit just started to freeze the chunks
 * (it stalls before reading them). */
static void
await_freeze (void)
{
  for (int i = 0; i < 1000 && stats ().frozen == 0; i++)
    sleep_ms (10);
}

/* Makes BR the branch at hand, writes its chunk INDEX all FILL, starts a
 * commit of it in *TC (to *ID; to be joined) and, once the commit has
 * frozen the chunk, writes 4 KiB of PATCH at AT into it: whether both
 * writes succeeded and the last left the chunk a pending underlay. */
static bool
detach_in_commit (struct cairn_branch *br, uint64_t index, char fill,
                  long at, char patch, pthread_t *tc, struct cairn_id *id)
{
  b = br;
  v = cairn_branch_volume (b, "disk");
  bool filled = put (index, -1, fill) == 0;
  pthread_create (tc, NULL, committer, id);
  await_freeze ();
  return filled && put (index, at, patch) == 0 && pending () == 1;
}

/* The child: runs the two commits, writes one '1' or '0' per check to
 * FD, and kills itself. */
static void
child (const char *path, int fd)
{
  struct cairn_store *s;
  struct cairn_branch *one, *two;
  struct cairn_id ids[2];
  pthread_t tc, tf;
  char got[CHECKS];

  /* A store of its own: LMDB does not survive fork. */
  if (cairn_store_open (path, 0, &s) < 0
      || cairn_branch_open (s, "one", CAIRN_BRANCH_WRITE, &one) < 0
      || cairn_branch_open (s, "two", CAIRN_BRANCH_WRITE, &two) < 0)
    _exit (2);

  /* 1. */
  got[0] = detach_in_commit (one, A, 'a', 0, 'n', &tc, &ids[0]);
  got[1] = branch_chunk_is (v, A, 'a', 0, 'n');
  pthread_create (&tf, NULL, flusher, NULL);
  pthread_join (tf, NULL);
  /* The commit, stalled before its capture, waits for the flush to end
   * its own transaction: this is the flush's doing. */
  got[2] = flush_result == 0 && pending () == 0;
  pthread_join (tc, NULL);
  got[3] = commit_result == 0 && branch_chunk_is (v, A, 'a', 0, 'n');

  /* 2. */
  got[4] = detach_in_commit (two, C, 'c', 4096, 'm', &tc, &ids[1]);
  got[5] = branch_chunk_is (v, C, 'c', 4096, 'm');
  pthread_join (tc, NULL);
  got[6] = commit_result == 0 && pending () == 0
    && branch_chunk_is (v, C, 'c', 4096, 'm');
  got[7] = cairn_branch_flush (b) == 0 && cairn_branch_flush (one) == 0;

  for (int i = 0; i < CHECKS; i++)
    got[i] = got[i] ? '1' : '0';
  if (write (fd, got, sizeof got) != sizeof got)
    _exit (4);
  kill (getpid (), SIGKILL);
  _exit (5);
}

/* 3., in a child whose store fails the index's Nth write: writes one
 * '1' or '0' to FD for each of: the write left a pending underlay; the
 * commit failed; none was left after; A reads as written. */
static void
fail_child (const char *path, int fd, int nth)
{
  struct cairn_store *s;
  struct cairn_branch *three;
  struct cairn_id id;
  pthread_t tc;
  char got[4];
  char n[16];

  snprintf (n, sizeof n, "%d", nth);
  setenv ("CAIRN_TEST_FAIL_FLUSH_AT_RECORD", n, 1);
  if (cairn_store_open (path, 0, &s) < 0
      || cairn_branch_open (s, "three", CAIRN_BRANCH_WRITE, &three) < 0)
    _exit (2);
  got[0] = detach_in_commit (three, A, 'a', 0, 'n', &tc, &id);
  pthread_join (tc, NULL);
  got[1] = commit_result < 0;
  got[2] = pending () == 0;
  got[3] = branch_chunk_is (v, A, 'a', 0, 'n');
  for (int i = 0; i < 4; i++)
    got[i] = got[i] ? '1' : '0';
  _exit (write (fd, got, sizeof got) == sizeof got ? 0 : 4);
}

static struct fixture f;

/* Branch NAME reopens with chunk INDEX as FILL but for 4 KiB of PATCH at
 * AT, and its base commit holds it all FILL. */
static bool
reopens_as (const char *name, uint64_t index, char fill, long at, char patch)
{
  struct cairn_branch *br;
  struct cairn_id base;

  if (cairn_branch_open (f.s, name, CAIRN_BRANCH_WRITE, &br) < 0)
    return false;
  bool same = branch_chunk_is (cairn_branch_volume (br, "disk"), index,
                               fill, at, patch);

  cairn_branch_base (br, &base);
  cairn_branch_close (br);
  return same && view_chunk_is (f.s, &base, index, fill, -1, 0);
}

int
main (void)
{
  int fds[2], status;
  char got[CHECKS] = { 0 };

  plan (CHECKS + 5);
  setenv ("CAIRN_TEST_CAPTURE_STALL_MS", "1000", 1);
  setenv ("CAIRN_TEST_MERGE_STALL_MS", "300", 1);
  if (fixture_open (&f, 0) < 0
      || cairn_branch_create_empty (f.s, "one", "disk", 16ULL << 20) < 0
      || cairn_branch_create_empty (f.s, "two", "disk", 16ULL << 20) < 0
      || cairn_branch_create_empty (f.s, "three", "disk", 16ULL << 20) < 0
      || pipe (fds) < 0) {
    printf ("Bail out! cannot make the branch\n");
    return 1;
  }
  cs = cairn_store_chunk_size (f.s);

  pid_t pid = fork ();
  if (pid == 0) {
    close (fds[0]);
    child (f.path, fds[1]);
  }
  close (fds[1]);
  bool all = read (fds[0], got, sizeof got) == sizeof got;
  waitpid (pid, &status, 0);
  ok (all && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
      "the child ran both commits and was killed with SIGKILL "
      "(status %#x)", status);
  ok (got[0] == '1', "a 4K write to frozen chunk A left it a pending "
      "underlay");
  ok (got[1] == '1', "A read then: the write, and the frozen sectors");
  ok (got[2] == '1', "a flush merged A's pending underlay");
  ok (got[3] == '1', "the commit succeeded; A reads as written after "
      "it");
  ok (got[4] == '1', "a 4K write to frozen chunk C left it a pending "
      "underlay");
  ok (got[5] == '1', "C read then: the write, and the frozen sectors");
  ok (got[6] == '1', "the commit ended with no pending underlay left; C "
      "reads as written");
  ok (got[7] == '1', "the flushes after it succeeded");

  ok (reopens_as ("one", A, 'a', 0, 'n'), "branch one reopens after the "
      "kill, A as written: the flush's record names the merged slot; "
      "its commit holds A as frozen");
  ok (reopens_as ("two", C, 'c', 4096, 'm'), "branch two reopens, C as "
      "written: the record names the new slot over the committed chunk; "
      "its commit holds C as frozen");

  /* 3.  The index's writes are counted from the store's open: try the
   * first ones until one is the commit's (earlier ones fail the open or
   * the write before it). */
  char three[4] = { 0 };
  int nth;
  for (nth = 1; nth <= 16; nth++) {
    if (pipe (fds) < 0)
      break;
    pid = fork ();
    if (pid == 0) {
      close (fds[0]);
      fail_child (f.path, fds[1], nth);
    }
    close (fds[1]);
    bool said = read (fds[0], three, sizeof three) == sizeof three;
    close (fds[0]);
    waitpid (pid, &status, 0);
    if (said && three[0] == '1' && three[1] == '1')
      break;
  }
  ok (nth <= 16, "a commit failed after a detach (the index's write %d "
      "failed)", nth);
  ok (three[2] == '1' && three[3] == '1', "it merged the pending underlay "
      "first: none left, and the chunk reads as written");

  fixture_close (&f);
  return tap_exit_status ();
}
