/* test-branch-dirty-limit: with the sealer running, the chunks a branch
 * holds dirty stay under the dirty limit, and writers past it wait for
 * the sealer instead of failing or losing anything.
 *
 * Random 4K writes all over a big sparse volume dirty a 64 KiB chunk
 * each, faster than the sealer can seal them: without a limit the dirty
 * set (its scratch slots, its entries, and the commit that must seal it
 * all) grew as long as the writes came.  The limit is 2 GiB of slots;
 * $CAIRN_TEST_DIRTY_LIMIT_KB makes it 64 chunks here, and one writer
 * dirties 1000 chunks in a row, much faster than the sealer's 200 ms
 * idle rule lets it keep up.  The scratch slots' high-water mark must
 * stay near the limit, every write must land, and a commit must hold
 * them all. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"
#include "gc-fixture.h"

#define CHUNKS 1000
#define LIMIT_CHUNKS 64

int
main (void)
{
  char dir[] = "/tmp/cairn-test-dirty-limit.XXXXXX", limit[32];
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_branch_stats st;
  struct cairn_id id;
  uint32_t cs;

  if (!mkdtemp (dir))
    abort ();
  plan (4);
  if (cairn_store_init (dir, &(struct cairn_store_options) {
                          .compress_level = 1 }) < 0
      || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", 1ULL << 40) < 0)
    abort ();
  cs = cairn_store_chunk_size (s);
  snprintf (limit, sizeof limit, "%u", LIMIT_CHUNKS * cs / 1024);
  setenv ("CAIRN_TEST_DIRTY_LIMIT_KB", limit, 1);
  if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER,
                         &b) < 0)
    abort ();

  struct cairn_bvol *v = cairn_branch_volume (b, "disk");
  char block[4096];
  int r = 0;
  for (unsigned c = 0; c < CHUNKS && r == 0; c++) {
    memset (block, 0, sizeof block);
    memcpy (block, &c, sizeof c);
    r = cairn_bvol_write (v, block, sizeof block, (uint64_t) c * 97 * cs);
  }
  ok (r == 0, "%d chunks dirtied one after the other, all written", CHUNKS);
  cairn_branch_stats (b, &st);
  ok (st.scratch_slots <= LIMIT_CHUNKS + 8,
      "at most %llu chunks were dirty at once (limit %d)",
      (unsigned long long) st.scratch_slots, LIMIT_CHUNKS);

  ok (cairn_branch_commit (b, NULL, &id) == 0, "committed");
  cairn_branch_close (b);

  struct cairn_view view;
  unsigned good = 0;
  if (fixture_view (s, &id, &view) < 0)
    abort ();
  for (unsigned c = 0; c < CHUNKS; c++) {
    unsigned got = ~0u;
    if (cairn_view_read (&view, &got, sizeof got, (uint64_t) c * 97 * cs) == 0
        && got == c)
      good++;
  }
  ok (good == CHUNKS, "the commit holds every write (%u of %d)", good,
      CHUNKS);

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
