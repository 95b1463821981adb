/* test-branch-seal-flush: sealing never takes back what a flush made
 * durable.
 *
 * A seal pass captures the branch's dirty chunks, seals them outside any
 * lock, then persists SEALED(what it captured) for each.  A chunk that is
 * written and flushed after the pass read it has had its newer bytes
 * persisted by the flush: the pass must not replace that record with the
 * older content, or a crash before the next flush loses a write whose
 * flush had completed.
 *
 * Each round leaves 64 dirty chunks of 1 MiB persisted, and reopens the
 * branch with its background sealer, whose first pass (after 50 ms) takes
 * all of them and runs for tens of milliseconds.  Some time into it, the
 * test writes 4 KiB into every chunk and flushes once, waits for the pass
 * to end (the sealer leaves the written chunks alone for 200 ms more),
 * and crashes: closes without a flush.  After reopening, every write must
 * be there.  Rounds start writing at different moments, so that some land
 * in chunks the pass has already read, whatever the machine's speed. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "tap.h"

#define CS (1 << 20)
#define CHUNKS 64

static void
fill (char *buf, size_t len, unsigned gen, unsigned chunk)
{
  for (size_t i = 0; i < len; i += 8)
    snprintf (buf + i, 9, "%03u%04u", gen % 1000, chunk);
}

int
main (void)
{
  static const long delays_ms[] = { 55, 65, 80, 100 };
  char dir[] = "/tmp/cairn-test-seal-flush.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS };
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_bvol *v;
  char *buf = malloc (CS), *got = malloc (CS);
  int lost = 0, r = 0;

  if (!mkdtemp (dir))
    abort ();
  plan (2);
  if (cairn_store_init (dir, &o) < 0 || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk",
                                    (uint64_t) CHUNKS * CS) < 0)
    abort ();

  for (unsigned round = 0; round < CAIRN_ARRAY_SIZE (delays_ms); round++) {
    unsigned old = 2 * round, new = 2 * round + 1;
    /* 64 dirty chunks, persisted. */
    if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
      abort ();
    v = cairn_branch_volume (b, "disk");
    for (unsigned c = 0; c < CHUNKS; c++) {
      fill (buf, CS, old, c);
      r |= cairn_bvol_write (v, buf, CS, (uint64_t) c * CS);
    }
    r |= cairn_branch_flush (b);
    cairn_branch_close (b);

    /* The sealer's first pass takes them all; write during it. */
    if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER,
                           &b) < 0)
      abort ();
    v = cairn_branch_volume (b, "disk");
    sleep_ms (delays_ms[round]);
    for (unsigned c = 0; c < CHUNKS; c++) {
      fill (buf, 4096, new, c);
      r |= cairn_bvol_write (v, buf, 4096, (uint64_t) c * CS);
    }
    r |= cairn_branch_flush (b);
    sleep_ms (150);
    cairn_branch_close (b);     /* no flush: a crash */

    if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
      abort ();
    v = cairn_branch_volume (b, "disk");
    for (unsigned c = 0; c < CHUNKS; c++) {
      fill (buf, 4096, new, c);
      if (cairn_bvol_read (v, got, 4096, (uint64_t) c * CS) < 0
          || memcmp (got, buf, 4096) != 0) {
        if (!lost++)
          diag ("round %u: chunk %u lost its flushed write", round, c);
      }
    }
    cairn_branch_close (b);
  }
  ok (r == 0, "writes and flushes succeed");
  ok (!lost, "every flushed write survives a crash after a seal pass "
      "(%d lost)", lost);

  cairn_store_close (s);
  cairn_remove_tree (dir);
  free (buf);
  free (got);
  return tap_exit_status ();
}
