/* test-branch-detach-copy: a write that detaches a chunk from a commit
 * keeps the old slot until it has copied it.
 *
 * A commit freezes a dirty chunk A; a write to A before the commit has
 * captured it gives A a fresh slot and copies A's sectors over from the
 * old slot, which it leaves to the commit ("detach").  The detach once
 * let go of the old slot before copying: when the commit captured A and
 * ended first, the old slot went back to the free list, a write to
 * another chunk B got it, and the copy then took B's bytes into A - an
 * acknowledged write lost and another chunk's data in its place.
 *
 * The stall hooks order it: the commit waits 300 ms between its freeze
 * and its capture ($CAIRN_TEST_CAPTURE_STALL_MS), the detach 700 ms
 * between taking the fresh slot and copying ($CAIRN_TEST_DETACH_STALL_MS).
 * At 0 ms the commit freezes A; at 50 ms a 4K write to A detaches it and
 * waits; at ~300 ms the commit captures A from the old slot and ends; at
 * 500 ms a write fills chunk B; at ~750 ms the detach copies.  A must
 * read back as the 4K write over its first content, and B as B. */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tap.h"
#include "gc-fixture.h"

static struct cairn_branch *b;
static struct cairn_bvol *v;
static uint32_t cs;
static struct cairn_id commit_id;
static int commit_result = -1, a_result = -1, b_result = -1;

static void *
committer (void *arg)
{
  (void) arg;
  commit_result = cairn_branch_commit (b, NULL, &commit_id);
  return NULL;
}

static void *
write_a (void *arg)
{
  (void) arg;
  char block[4096];
  memset (block, 'n', sizeof block);
  a_result = cairn_bvol_write (v, block, sizeof block, 0);
  return NULL;
}

static void *
write_b (void *arg)
{
  (void) arg;
  char *chunk = malloc (cs);
  memset (chunk, 'b', cs);
  b_result = cairn_bvol_write (v, chunk, cs, (uint64_t) 7 * cs);
  free (chunk);
  return NULL;
}

/* Every byte of [OFF, OFF+LEN) of the branch is C. */
static bool
reads_as (uint64_t off, size_t len, char c)
{
  char *buf = malloc (len);
  bool same = cairn_bvol_read (v, buf, len, off) == 0;
  for (size_t i = 0; same && i < len; i++)
    same = buf[i] == c;
  free (buf);
  return same;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-detach-copy.XXXXXX";
  struct cairn_store *s;
  pthread_t tc, ta, tb;

  if (!mkdtemp (dir))
    abort ();
  plan (5);
  setenv ("CAIRN_TEST_CAPTURE_STALL_MS", "300", 1);
  setenv ("CAIRN_TEST_DETACH_STALL_MS", "700", 1);
  if (cairn_store_init (dir, &(struct cairn_store_options) {
                          .compress_level = 1 }) < 0
      || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 1 << 20) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    abort ();
  cs = cairn_store_chunk_size (s);
  v = cairn_branch_volume (b, "disk");

  /* Chunk A, dirty in slot 0. */
  char *chunk = malloc (cs);
  memset (chunk, 'a', cs);
  if (cairn_bvol_write (v, chunk, cs, 0) < 0)
    abort ();
  free (chunk);

  pthread_create (&tc, NULL, committer, NULL);
  sleep_ms (50);
  pthread_create (&ta, NULL, write_a, NULL);
  sleep_ms (450);
  pthread_create (&tb, NULL, write_b, NULL);
  pthread_join (tc, NULL);
  pthread_join (ta, NULL);
  pthread_join (tb, NULL);

  ok (commit_result == 0 && a_result == 0 && b_result == 0,
      "the commit and both writes succeeded");
  ok (reads_as (0, 4096, 'n'), "A begins with the write that detached it");
  ok (reads_as (4096, cs - 4096, 'a'),
      "and the rest of A is what it held before, not another chunk's");
  ok (reads_as ((uint64_t) 7 * cs, cs, 'b'), "B is B");

  /* The commit holds A as frozen: all 'a'. */
  struct cairn_view view;
  char *got = malloc (cs);
  bool same = fixture_view (s, &commit_id, &view) == 0
    && cairn_view_read (&view, got, cs, 0) == 0;
  for (uint32_t i = 0; same && i < cs; i++)
    same = got[i] == 'a';
  free (got);
  ok (same, "the commit holds A as it was frozen");

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
