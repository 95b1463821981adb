/* test-branch-detach-tail: a write to a chunk a commit has frozen but not
 * yet captured moves the chunk to a fresh slot; the old slot, which the
 * commit and reads of the chunk still read (and which the detach once
 * copied), may be the last of the scratch file and only partly written,
 * so the file ends inside it.  Reading it must not fail the write (and,
 * after it, the commit) with EIO.
 *
 * (Found by test-gc-plugin-fio: fio's 4K writes through nbdkit while
 * cairn commit runs every second failed with "pwrite: Input/output
 * error".)
 *
 * Each round makes a new branch and writes 4 KiB at the start of
 * PER_ROUND of its chunks, so that the last one's slot is the last of a
 * fresh scratch file, which ends 60 KiB into it; then it commits while a
 * thread keeps writing a sector of that last chunk:
 * the commit captures the chunks in no particular order, so the write
 * usually lands before that one is captured.  No write and no commit may
 * fail, and the branch must read back what was written.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 65536
#define ROUNDS 40
#define PER_ROUND 64

static struct cairn_bvol *v;
static atomic_bool stop;
static atomic_int write_errors, writes;
static uint64_t chunk;

static void *
scribbler (void *arg)
{
  char sector[512];

  memset (sector, 0x77, sizeof sector);
  while (!atomic_load (&stop))
    if (cairn_bvol_write (v, sector, sizeof sector, chunk * CHUNK + 1024) < 0)
      atomic_fetch_add (&write_errors, 1);
    else
      atomic_fetch_add (&writes, 1);
  return NULL;
}

int
main (void)
{
  struct fixture f;
  char head[4096], want[CHUNK], got[CHUNK];
  int commit_errors = 0, wrong = 0, setup_errors = 0;

  if (fixture_open (&f, CHUNK) < 0) {
    printf ("Bail out! cannot make a store\n");
    return 1;
  }
  memset (head, 0x11, sizeof head);
  for (int i = 0; i < ROUNDS; i++) {
    struct cairn_branch *b;
    char name[32];
    pthread_t t;
    struct cairn_id id;
    snprintf (name, sizeof name, "b%d", i);
    if (cairn_branch_create_empty (f.s, name, "disk", PER_ROUND * CHUNK) < 0
        || cairn_branch_open (f.s, name, CAIRN_BRANCH_WRITE, &b) < 0) {
      setup_errors++;
      continue;
    }
    v = cairn_branch_volume (b, "disk");
    for (int k = 0; k < PER_ROUND; k++)
      cairn_bvol_write (v, head, sizeof head, (uint64_t) k * CHUNK);
    chunk = PER_ROUND - 1;
    atomic_store (&stop, false);
    atomic_store (&writes, 0);
    pthread_create (&t, NULL, scribbler, NULL);
    if (cairn_branch_commit (b, NULL, &id) < 0)
      commit_errors++;
    atomic_store (&stop, true);
    pthread_join (t, NULL);
    for (int k = 0; k < PER_ROUND; k++) {
      memset (want, 0, sizeof want);
      memset (want, 0x11, sizeof head);
      if (k == PER_ROUND - 1 && atomic_load (&writes) > 0)
        memset (want + 1024, 0x77, 512);
      if (cairn_bvol_read (v, got, CHUNK, (uint64_t) k * CHUNK) < 0
          || memcmp (got, want, CHUNK) != 0)
        wrong++;
    }
    cairn_branch_close (b);
  }
  is_int (setup_errors, 0, "every branch was made");
  is_int (atomic_load (&write_errors), 0, "no write failed");
  is_int (commit_errors, 0, "no commit failed");
  is_int (wrong, 0, "every chunk reads back as written");
  fixture_close (&f);
  return done_testing ();
}
