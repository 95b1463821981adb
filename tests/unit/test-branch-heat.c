/* test-branch-heat: the background sealer leaves a chunk that keeps
 * coming back longer before it seals it again (its heat), forgets that
 * once the chunk has gone quiet for long, and ignores it near the dirty
 * limit.
 *
 * The sealer seals a chunk once it has been quiet for an idle time
 * ($CAIRN_TEST_SEALER_IDLE_MS makes it IDLE_MS here); a chunk written
 * again within that time after being sealed waits four times as long
 * the next time.  The test writes a chunk, waits for the sealer to seal
 * it, and writes it again at once together with a chunk never written
 * before: the new chunk must be sealed first, the hot one alone, and not
 * before four idle times.  Then, left alone for longer than four of its
 * idle times, the chunk is cold again: written with another new one, the
 * two are sealed together.  Last, with the dirty chunks at half the
 * dirty limit, a hot chunk and four new ones are sealed together.  A
 * slow machine only delays the sealer, which cannot make these fail: the
 * hot chunk's wait is a lower bound, and chunks written together share
 * their idle time (see wait_together for the one exception, and the
 * margin it is given).  Every chunk reads back what was last written. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tap.h"

#define IDLE_MS 250
#define HEAT_FACTOR 4
#define LIMIT_CHUNKS 10

static struct cairn_branch *b;
static struct cairn_bvol *v;
static uint32_t cs;

static long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static uint64_t
unsealed (void)
{
  struct cairn_branch_stats st;
  cairn_branch_stats (b, &st);
  return st.unsealed;
}

/* Waits until fewer than N chunks are unsealed; returns how many are. */
static uint64_t
wait_below (uint64_t n)
{
  long end = now_ms () + 60000;
  uint64_t u;
  while ((u = unsealed ()) >= n) {
    if (now_ms () > end)
      {
        diag ("the sealer sealed nothing in 60 s");
        exit (1);
      }
    sleep_ms (2);
  }
  return u;
}

/* Waits until fewer than N chunks are unsealed, then until none are:
 * how many ms the last took after the first (0 if none were left).
 * Chunks written one after the other become quiet microseconds apart,
 * so a sealer pass may, rarely, start between them and leave the last
 * ones to the next pass, 50 ms later; a hot chunk waits four idle times
 * instead. */
static long
wait_together (uint64_t n)
{
  if (wait_below (n) == 0)
    return 0;
  long t = now_ms ();
  wait_below (1);
  return now_ms () - t;
}

/* Writes 4 KiB of BYTE at the start of chunk C. */
static void
put (unsigned c, int byte)
{
  char block[4096];
  memset (block, byte, sizeof block);
  if (cairn_bvol_write (v, block, sizeof block, (uint64_t) c * cs) < 0)
    {
      diag ("write to chunk %u failed", c);
      exit (1);
    }
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-heat.XXXXXX", env[32];
  struct cairn_store *s;

  if (!mkdtemp (dir))
    abort ();
  plan (5);
  if (cairn_store_init (dir, &(struct cairn_store_options) {
                          .compress_level = 1 }) < 0
      || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 1ULL << 30) < 0)
    abort ();
  cs = cairn_store_chunk_size (s);
  snprintf (env, sizeof env, "%d", IDLE_MS);
  setenv ("CAIRN_TEST_SEALER_IDLE_MS", env, 1);
  snprintf (env, sizeof env, "%u", LIMIT_CHUNKS * cs / 1024);
  setenv ("CAIRN_TEST_DIRTY_LIMIT_KB", env, 1);
  if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER,
                         &b) < 0)
    abort ();
  v = cairn_branch_volume (b, "disk");

  /* Hot: written again right after its seal. */
  put (0, 'a');
  wait_below (1);
  long t0 = now_ms ();          /* no later than the write */
  put (0, 'b');
  put (1, 'c');
  uint64_t left = wait_below (2);
  ok (left == 1, "a chunk written right after its seal is left dirty when "
      "a chunk new at the same moment is sealed (%llu unsealed)",
      (unsigned long long) left);
  wait_below (1);
  long waited = now_ms () - t0;
  ok (waited >= HEAT_FACTOR * IDLE_MS, "then sealed after %ld ms quiet "
      "(at least %d)", waited, HEAT_FACTOR * IDLE_MS);

  /* Cold again: quiet for more than four of its idle times. */
  sleep_ms (HEAT_FACTOR * HEAT_FACTOR * IDLE_MS + IDLE_MS);
  put (0, 'd');
  put (2, 'e');
  long apart = wait_together (2);
  ok (apart < 2 * IDLE_MS, "quiet long enough, it is sealed with a new "
      "chunk written with it (%ld ms apart)", apart);

  /* Hot again, but the dirty chunks reach half the limit. */
  put (0, 'f');
  for (unsigned c = 3; c < 3 + LIMIT_CHUNKS / 2 - 1; c++)
    put (c, 'g');
  apart = wait_together (LIMIT_CHUNKS / 2);
  ok (apart < 2 * IDLE_MS, "at half the dirty limit, a hot chunk is sealed "
      "with the new ones (%ld ms apart)", apart);

  /* What was last written. */
  static const struct { unsigned c; char byte; } want[] = {
    { 0, 'f' }, { 1, 'c' }, { 2, 'e' }, { 3, 'g' }, { 6, 'g' },
  };
  unsigned good = 0;
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (want); i++) {
    char got[4096], expect[4096];
    memset (expect, want[i].byte, sizeof expect);
    if (cairn_bvol_read (v, got, sizeof got, (uint64_t) want[i].c * cs) == 0
        && memcmp (got, expect, sizeof got) == 0)
      good++;
  }
  ok (good == CAIRN_ARRAY_SIZE (want), "every chunk reads back its last "
      "write (%u of %zu)", good, CAIRN_ARRAY_SIZE (want));
  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
