/* test-index-housekeep: the index's checkpoints fall on the sealer, not
 * on commits (store/backend.h, housekeep).
 *
 * A write transaction checkpoints first once the redo log is long enough
 * (store/redo.h); a checkpoint flushes LMDB's file, tens of milliseconds,
 * which a commit would wait for.  A sealer pass checkpoints at half that,
 * so with a sealer running no commit has to.  The loop below is a sealed
 * write then a commit, again and again, as in bench-commit: each step is
 * checked for whether the checkpoint's sequence number moved during it;
 * a tag every third round keeps the count of records from deciding
 * which of the two reaches the limit.
 *
 * Without a sealer (every write sealed by the commit itself) the commits
 * must still checkpoint, or the log would grow without bound.  And the
 * store must reopen with every commit reading as made and fsck clean.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "gc/gc.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (4 << 20)
#define ROUNDS 400

static struct cairn_id id[2 * ROUNDS];
static struct cairn_id digest[2 * ROUNDS];

/* ROUNDS writes and commits on BRANCH; with SEAL, each write is sealed
 * before its commit.  Counts the checkpoints taken during seals and
 * during commits.  Commit I goes to id[FIRST + I]. */
static int
rounds (struct fixture *f, struct cairn_branch *b, bool seal, int first,
        int *in_seal, int *in_commit)
{
  struct cairn_bvol *v = cairn_branch_volume (b, "disk");
  char buf[CHUNK];

  *in_seal = *in_commit = 0;
  for (int i = 0; i < ROUNDS; i++) {
    fixture_fill (buf, sizeof buf, first + i);
    if (cairn_bvol_write (v, buf, sizeof buf,
                          (uint64_t) (i * 37 % (VOLUME / CHUNK)) * CHUNK) < 0)
      return -1;
    uint64_t before = fixture_checkpoint_seq (f->path);
    if (seal && cairn_branch_seal (b) < 0)
      return -1;
    uint64_t sealed = fixture_checkpoint_seq (f->path);
    if (cairn_branch_commit (b, NULL, &id[first + i]) < 0)
      return -1;
    uint64_t after = fixture_checkpoint_seq (f->path);
    *in_seal += sealed > before;
    *in_commit += after > sealed;
    /* A tag every third round, so that which transaction reaches the
     * log's limit first does not follow from the loop's rhythm. */
    char tag[32];
    snprintf (tag, sizeof tag, "t%d", first + i);
    if (i % 3 == 2 && cairn_tag_create (f->s, tag, &id[first + i]) < 0)
      return -1;
  }
  return 0;
}

int
main (void)
{
  struct fixture f;
  struct cairn_branch *b;
  int in_seal = 0, in_commit = 0;

  plan (7);
  if (fixture_open (&f, CHUNK) < 0
      || cairn_branch_create_empty (f.s, "main", "disk", VOLUME) < 0
      || cairn_branch_open (f.s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    return printf ("Bail out! setup: %s\n", cairn_last_error ()), 1;

  ok (rounds (&f, b, true, 0, &in_seal, &in_commit) == 0,
      "%d sealed writes and commits", ROUNDS);
  ok (in_seal >= 2, "the sealer took the checkpoints (%d)", in_seal);
  ok (in_commit == 0, "no commit waited for one (%d did)", in_commit);

  ok (rounds (&f, b, false, ROUNDS, &in_seal, &in_commit) == 0,
      "%d commits that seal their own write", ROUNDS);
  ok (in_commit >= 1, "with no sealer, commits checkpoint (%d did)",
      in_commit);
  cairn_branch_close (b);

  /* Every 25th commit and the last of each half, to keep it short. */
  int bad = 0, checked = 0;
  for (int i = 24; i < 2 * ROUNDS; i += 25, checked++)
    bad += fixture_digest (f.s, &id[i], &digest[i]) < 0;
  cairn_store_close (f.s);
  f.s = NULL;

  struct cairn_fsck_report rep = { 0 };
  int wrong = 0;
  if (cairn_store_open (f.path, 0, &f.s) < 0)
    return printf ("Bail out! reopen: %s\n", cairn_last_error ()), 1;
  for (int i = 24; i < 2 * ROUNDS; i += 25) {
    struct cairn_id d;
    wrong += fixture_digest (f.s, &id[i], &d) < 0
      || !cairn_id_equal (&d, &digest[i]);
  }
  ok (checked > 0 && bad == 0 && wrong == 0, "after a reopen, %d commits "
      "read as made (%d differ)", checked, bad + wrong);
  ok (cairn_fsck (f.s, &(struct cairn_fsck_options) { .read_data = true },
                  &rep) == 0 && rep.n_problems == 0,
      "fsck finds nothing wrong (%zu)", rep.n_problems);
  cairn_fsck_report_free (&rep);
  fixture_close (&f);
  return tap_exit_status ();
}
