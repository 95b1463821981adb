/* test-branch-whole-write: a whole-chunk write over a fragmented slot
 * (see "Slots and the page cache" in store/branch.c) goes to another
 * slot, and the entry takes that slot only once the bytes have landed.
 *
 *   1. Over a flushed partial write: the branch, a flush, a reopen and a
 *      commit all read the whole-chunk write.
 *   2. A commit that freezes the chunk while the write is in flight: the
 *      write is still in the branch and the next commit, and the commit
 *      taken meanwhile holds the chunk before or after it.
 *   3. kill -9 while the write is in flight, after a flush: the flushed
 *      partial write is there after the crash (the persisted record must
 *      still name the old slot, not the one being written).
 *
 * $CAIRN_TEST_WRITE_STALL_MS holds each write between landing and being
 * accounted, which is where the entry changes slot. */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gc-fixture.h"
#include "store/store.h"
#include "tap.h"

#define CS 65536

static struct cairn_bvol *v;
static char whole[CS];
static int write_result = -1;

static void *
whole_writer (void *arg)
{
  write_result = cairn_bvol_write (v, whole, CS, *(uint64_t *) arg);
  return NULL;
}

/* Whether LEN bytes at OFF of the branch's volume are all C. */
static bool
reads_all (struct cairn_bvol *vol, uint64_t off, size_t len, char c)
{
  static char buf[CS];
  if (cairn_bvol_read (vol, buf, len, off) < 0)
    return false;
  for (size_t i = 0; i < len; i++)
    if (buf[i] != c)
      return false;
  return true;
}

/* A partial write of C at the start of chunk INDEX, flushed: its slot is
 * fragmented and named by the persisted record. */
static int
partial_flushed (struct cairn_branch *b, uint64_t index, char c)
{
  char sector[4096];
  memset (sector, c, sizeof sector);
  int r = cairn_bvol_write (v, sector, sizeof sector, index * CS);
  return r < 0 ? r : cairn_branch_flush (b);
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-whole-write.XXXXXX", path[256];
  struct cairn_store_options o = { .chunk_size = CS };
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_id during, after;
  pthread_t th;
  uint64_t at;

  if (!mkdtemp (dir))
    abort ();
  snprintf (path, sizeof path, "%s/store", dir);
  if (cairn_store_init (path, &o) < 0 || cairn_store_open (path, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 16 * CS) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0) {
    printf ("Bail out! cannot make the branch: %s\n", cairn_last_error ());
    return 1;
  }
  v = cairn_branch_volume (b, "disk");

  /* 1. */
  memset (whole, 'C', CS);
  ok (partial_flushed (b, 1, 'A') == 0
      && cairn_bvol_write (v, whole, CS, 1 * CS) == 0,
      "a whole-chunk write over a flushed partial one");
  ok (reads_all (v, CS, CS, 'C'), "the branch reads it");
  ok (cairn_branch_flush (b) == 0 && partial_flushed (b, 2, 'E') == 0,
      "flushed, and another chunk written");
  cairn_branch_close (b);
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0
      && (v = cairn_branch_volume (b, "disk"))
      && reads_all (v, CS, CS, 'C') && reads_all (v, 2 * CS, 4096, 'E'),
      "so does the branch reopened");
  ok (cairn_branch_commit (b, NULL, &after) == 0
      && fixture_byte (s, &after, CS) == 'C'
      && fixture_byte (s, &after, 2 * CS - 1) == 'C',
      "and a commit of it");
  cairn_branch_close (b);

  /* 2. */
  setenv ("CAIRN_TEST_WRITE_STALL_MS", "400", 1);
  int r = cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b);
  unsetenv ("CAIRN_TEST_WRITE_STALL_MS");
  if (r < 0) {
    printf ("Bail out! cannot open the branch\n");
    return 1;
  }
  v = cairn_branch_volume (b, "disk");
  at = 3 * CS;
  memset (whole, 'D', CS);
  ok (partial_flushed (b, 3, 'A') == 0, "a flushed partial write");
  pthread_create (&th, NULL, whole_writer, &at);
  sleep_ms (100);
  ok (cairn_branch_commit (b, NULL, &during) == 0,
      "a commit while a whole-chunk write over it is in flight");
  pthread_join (th, NULL);
  is_int (write_result, 0, "the write succeeds");
  ok (reads_all (v, at, CS, 'D'), "the branch holds it");
  ok (cairn_branch_commit (b, NULL, &after) == 0
      && fixture_byte (s, &after, at) == 'D'
      && fixture_byte (s, &after, at + CS - 1) == 'D',
      "so does the next commit");
  int d = fixture_byte (s, &during, at);
  ok (d == 'A' || d == 'D', "the commit taken meanwhile holds the chunk "
      "before or after the write ('%c')", d > 0 ? d : '?');
  cairn_branch_close (b);
  cairn_store_close (s);

  /* 3.  Every write of the child stalls 1.5 s. */
  int ready[2];
  if (pipe (ready) < 0)
    abort ();
  pid_t pid = fork ();
  if (pid == 0) {
    char sector[4096];
    setenv ("CAIRN_TEST_WRITE_STALL_MS", "1500", 1);
    if (cairn_store_open (path, 0, &s) < 0
        || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
      _exit (1);
    v = cairn_branch_volume (b, "disk");
    at = 4 * CS;
    memset (whole, 'F', CS);
    memset (sector, 'a', sizeof sector);
    if (partial_flushed (b, 4, 'A') < 0
        || cairn_bvol_write (v, sector, sizeof sector, at + 8192) < 0)
      _exit (1);
    pthread_create (&th, NULL, whole_writer, &at);
    sleep_ms (300);
    /* The flush persists the second partial write: its record must name
     * the old slot, which holds it, not the one being written. */
    if (cairn_branch_flush (b) < 0 || write (ready[1], "x", 1) != 1)
      _exit (1);
    sleep_ms (10000);
    _exit (2);
  }
  char x;
  close (ready[1]);
  bool flushed = read (ready[0], &x, 1) == 1;
  kill (pid, SIGKILL);
  int status;
  waitpid (pid, &status, 0);
  ok (flushed && WIFSIGNALED (status),
      "the writer is killed with the write in flight, after a flush");
  ok (cairn_store_open (path, 0, &s) == 0
      && cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "the branch opens after the crash");
  v = cairn_branch_volume (b, "disk");
  static char buf[CS];
  int rr = cairn_bvol_read (v, buf, CS, 4 * CS);
  ok (rr == 0
      && ((reads_all (v, 4 * CS, 4096, 'A')
           && reads_all (v, 4 * CS + 8192, 4096, 'a'))
          || reads_all (v, 4 * CS, CS, 'F')),
      "the chunk holds the flushed partial writes or the whole one, "
      "nothing else (reads '%c', '%c')", buf[0] ? buf[0] : '?',
      buf[8192] ? buf[8192] : '?');
  ok (reads_all (v, CS, CS, 'C') && reads_all (v, 3 * CS, CS, 'D'),
      "the chunks written before are intact");

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
