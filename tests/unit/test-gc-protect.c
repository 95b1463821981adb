/* test-gc-protect: what gc keeps although no commit or ref names it.
 *
 *  - A pin: objects a long writer stored before naming them (a volume
 *    stored for a VM commit not made yet) survive gc while the pin lives,
 *    and go with the next gc after it ends.
 *  - A lease: a commit a reader has open keeps its data after retention
 *    prunes it, until the lease ends.
 *  - A branch's working state: chunks sealed since its last commit, and
 *    the underlay of a chunk being rewritten, which only the "work"
 *    records name.
 *  - The epoch rule: chunks that a writer reuses (dedup) while gc sweeps
 *    are not deleted, although the mark did not reach them; and a writer
 *    whose chunk gc deleted first stores it again.  The gc step hook runs
 *    a commit right after gc's first deleting transaction, one object per
 *    transaction, so that the reused chunks are still ahead of the sweep.
 *    A tree node stored again likewise takes the current epoch.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gc/gc.h"
#include "store/backend.h"
#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (256 << 10)

static struct cairn_store *s;

static bool
node_exists (const struct cairn_id *id)
{
  struct cairn_txn *txn;
  struct cairn_val v;
  int r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    return false;
  r = cairn_object_get (txn, CAIRN_OBJECT_NODE, id, &v);
  cairn_txn_abort (s, txn);
  return r == 0;
}

static int
gc (const struct cairn_gc_options *o, struct cairn_gc_report *g)
{
  int r = cairn_gc (s, o, g);
  if (r < 0)
    diag ("gc: %s", cairn_last_error ());
  return r;
}

static bool
fsck_intact (void)
{
  struct cairn_fsck_report f;
  int r = cairn_fsck (s, &(struct cairn_fsck_options) { .read_data = true },
                      &f);
  bool intact = r == 0 && f.n_problems == 0;
  for (size_t i = 0; r == 0 && i < f.n_problems; i++)
    diag ("fsck: %s", f.problems[i]);
  if (r == 0)
    cairn_fsck_report_free (&f);
  return intact;
}

static int
prune_keep_last (const char *branch, const char *n)
{
  struct cairn_retention_policy p = { 0 };
  struct cairn_prune_result res;
  cairn_retention_policy_set (&p, "keep-last", n);
  int r = cairn_retention_set (s, branch, &p);
  if (r == 0)
    r = cairn_prune (s, &(struct cairn_prune_options) { 0 }, &res);
  if (r == 0)
    cairn_prune_result_free (&res);
  return r;
}

/* ---- pins --------------------------------------------------------------- */

static int
memory_read (void *arg, void *buf, size_t len, uint64_t off)
{
  memcpy (buf, (char *) arg + off, len);
  return 0;
}

static void
test_pin (void)
{
  struct cairn_import_source src = { .size = VOLUME, .read = memory_read };
  struct cairn_gc_report g;
  struct cairn_volume vol;
  struct cairn_pin *pin;
  char *data = malloc (VOLUME);

  fixture_fill (data, VOLUME, 777);
  src.arg = data;
  ok (cairn_pin_begin (s, &pin) == 0, "pin");
  ok (cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &vol, NULL) == 0,
      "store a volume that no commit names yet");
  free (data);
  ok (gc (NULL, &g) == 0, "gc while the pin lives");
  ok (node_exists (&vol.root), "the pinned tree is still there");
  ok (g.young_kept > 0, "gc counted %llu pinned objects as too new",
      (unsigned long long) g.young_kept);
  cairn_pin_end (pin);
  ok (gc (NULL, &g) == 0, "gc after the pin ended");
  ok (!node_exists (&vol.root), "the tree nobody named is gone");
  ok (g.chunks_swept >= VOLUME / CHUNK, "with its %llu chunks",
      (unsigned long long) g.chunks_swept);
}

/* ---- leases ------------------------------------------------------------- */

/* SHA-256 of volume "disk" of commit ID, even if it is a tombstone. */
static int
raw_digest (const struct cairn_id *id, struct cairn_id *digest)
{
  struct cairn_commit *c;
  struct cairn_txn *txn;
  struct cairn_view v;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_commit_read (txn, id, &c);
  cairn_txn_abort (s, txn);
  if (r < 0)
    return r;
  cairn_view_init (s, cairn_commit_volume (c, "disk"), &v);
  cairn_commit_free (c);
  char *buf = malloc (v.vol.size);
  r = cairn_view_read (&v, buf, v.vol.size, 0);
  if (r == 0)
    cairn_sha256 (buf, v.vol.size, digest);
  free (buf);
  return r;
}

static void
test_lease (void)
{
  struct cairn_id x, y, dx, now;
  struct cairn_gc_report g;
  struct cairn_lease *lease;

  ok (cairn_branch_create_empty (s, "leased", "disk", VOLUME) == 0
      && fixture_commit (s, "leased", 0, VOLUME, 1, NULL, &x) == 0
      && raw_digest (&x, &dx) == 0, "commit X");
  ok (cairn_lease_begin (s, &x, &lease) == 0, "a reader leases X");
  ok (fixture_commit (s, "leased", 0, VOLUME, 2, NULL, &y) == 0,
      "commit Y over all of X's data");
  ok (prune_keep_last ("leased", "1") == 0 && fixture_pruned (s, &x),
      "retention prunes X");
  ok (gc (NULL, &g) == 0, "gc while the lease lives");
  ok (raw_digest (&x, &now) == 0 && cairn_id_equal (&now, &dx),
      "X still reads as before");
  cairn_lease_end (lease);
  ok (gc (NULL, &g) == 0, "gc after the lease ended");
  ok (g.chunks_swept >= VOLUME / CHUNK, "it reclaims X's %llu chunks",
      (unsigned long long) g.chunks_swept);
  ok (raw_digest (&x, &now) < 0, "X's data is gone");
  cairn_clear_error ();
  ok (fsck_intact (), "fsck: intact");
}

/* ---- working state ------------------------------------------------------ */

/* SHA-256 of BRANCH's volume as its writer sees it (working state). */
static int
live_digest (const char *branch, struct cairn_id *digest)
{
  struct cairn_branch *b;
  char *buf = malloc (VOLUME);
  int r = cairn_branch_open (s, branch, CAIRN_BRANCH_WRITE, &b);

  if (r == 0) {
    r = cairn_bvol_read (cairn_branch_volume (b, "disk"), buf, VOLUME, 0);
    cairn_branch_close (b);
  }
  if (r == 0)
    cairn_sha256 (buf, VOLUME, digest);
  free (buf);
  return r;
}

static void
test_working_state (void)
{
  struct cairn_id base, before, after;
  struct cairn_gc_report g;
  struct cairn_branch *b;
  char *data = malloc (VOLUME), sector[512];
  int r;

  ok (cairn_branch_create_empty (s, "work", "disk", VOLUME) == 0
      && fixture_commit (s, "work", 0, VOLUME, 20, NULL, &base) == 0,
      "a branch with a commit");
  fixture_fill (data, VOLUME, 21);
  memset (sector, 0x5a, sizeof sector);
  r = cairn_branch_open (s, "work", CAIRN_BRANCH_WRITE, &b);
  if (r == 0) {
    struct cairn_bvol *v = cairn_branch_volume (b, "disk");
    r = cairn_bvol_write (v, data, VOLUME, 0);
    if (r == 0)
      r = cairn_branch_seal (b);
    /* Chunk 0 is rewritten in part: its sealed content becomes the
     * underlay that only its scratch record names. */
    if (r == 0)
      r = cairn_bvol_write (v, sector, sizeof sector, 512);
    if (r == 0)
      r = cairn_branch_flush (b);
    cairn_branch_close (b);
  }
  free (data);
  ok (r == 0, "overwrite it all, seal, rewrite a sector of chunk 0, flush");
  ok (live_digest ("work", &before) == 0, "read the working state");
  ok (gc (NULL, &g) == 0, "gc");
  ok (live_digest ("work", &after) == 0 && cairn_id_equal (&before, &after),
      "the working state reads the same after gc");
  ok (fsck_intact (), "fsck: intact");
}

/* ---- the epoch rule ----------------------------------------------------- */

struct reuse {
  bool done;
  int r;
  struct cairn_id id;
};

/* After gc's first deleting transaction, commit a copy of pruned data. */
static void
reuse_step (void *arg, const char *phase)
{
  struct reuse *u = arg;

  if (u->done || strcmp (phase, "sweep") != 0)
    return;
  u->done = true;
  u->r = fixture_commit (s, "copy", 0, VOLUME, 10, NULL, &u->id);
}

static void
test_epoch (void)
{
  struct cairn_id old, digest, now;
  struct cairn_gc_report g;
  struct reuse u = { 0 };
  struct cairn_gc_options o = { .txn_objects = 1, .step = reuse_step,
                                .step_arg = &u };

  ok (cairn_branch_create_empty (s, "churn", "disk", VOLUME) == 0
      && fixture_commit (s, "churn", 0, VOLUME, 10, NULL, &old) == 0
      && raw_digest (&old, &digest) == 0, "commit data D");
  ok (fixture_commit (s, "churn", 0, VOLUME, 11, NULL, &now) == 0
      && prune_keep_last ("churn", "1") == 0 && fixture_pruned (s, &old),
      "overwrite and prune it: D is garbage");
  ok (cairn_branch_create_empty (s, "copy", "disk", VOLUME) == 0,
      "a branch to copy D into");
  ok (gc (&o, &g) == 0, "gc, one object per transaction");
  ok (u.done && u.r == 0, "a commit of D ran right after gc's first "
      "deletion");
  ok (g.young_kept >= VOLUME / CHUNK - 1, "gc kept %llu reused chunks it "
      "had selected", (unsigned long long) g.young_kept);
  ok (raw_digest (&u.id, &now) == 0 && cairn_id_equal (&now, &digest),
      "the copy reads as D");
  ok (fsck_intact (), "fsck: intact");
}

/* ---- the epoch rule for objects the index holds inline -------------------- */

/* Puts node ID (LEN bytes of DATA) in a transaction of its own: what
 * object_put returned (0 stored, 1 it existed), and the node's epoch then
 * in *EPOCH. */
static int
put_node (const struct cairn_id *id, const void *data, size_t len,
          uint64_t *epoch)
{
  const struct cairn_backend_ops *ops = cairn_store_backend (s)->ops;
  struct cairn_object_info info = { 0 };
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  int put = ops->object_put (cairn_txn_backend (txn), CAIRN_OBJECT_NODE, id,
                             data, len, len, 0);
  r = put < 0 ? put : ops->object_stat (cairn_txn_backend (txn),
                                        CAIRN_OBJECT_NODE, id, &info);
  r = cairn_txn_end (s, txn, r);
  *epoch = info.epoch;
  return r < 0 ? r : put;
}

static int
set_epoch (uint64_t epoch)
{
  struct cairn_txn *txn;
  uint8_t le[8];
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  cairn_put_le64 (le, epoch);
  r = cairn_store_backend (s)->ops->record_put (cairn_txn_backend (txn),
                                                CAIRN_TABLE_META, "epoch", 5,
                                                le, sizeof le);
  return cairn_txn_end (s, txn, r);
}

/* A tree node or a commit stored again takes the current epoch, as a
 * chunk does (test_epoch): gc must not sweep what a writer just named. */
static void
test_inline_epoch (void)
{
  static const char data[] = "the bytes of a node, stored twice";
  struct cairn_id id;
  struct cairn_txn *txn = NULL;
  struct cairn_val v = { 0 };
  uint64_t first = 0, again = 0;

  cairn_sha256 (data, sizeof data, &id);
  int r = put_node (&id, data, sizeof data, &first);
  ok (r == 0 && first > 0, "a new node is stored, in epoch %llu",
      (unsigned long long) first);
  ok (set_epoch (first + 5) == 0, "gc's epoch moves on to %llu",
      (unsigned long long) first + 5);
  r = put_node (&id, data, sizeof data, &again);
  ok (r == 1 && again == first + 5,
      "stored again, it existed and takes the new epoch (%llu)",
      (unsigned long long) again);
  ok (cairn_txn_begin (s, false, &txn) == 0
      && cairn_store_backend (s)->ops->object_get (cairn_txn_backend (txn),
                                                   CAIRN_OBJECT_NODE, &id,
                                                   &v, NULL) == 0
      && v.len == sizeof data && memcmp (v.data, data, v.len) == 0,
      "its bytes are as first stored");
  cairn_txn_abort (s, txn);
}

int
main (void)
{
  struct fixture f;

  if (fixture_open (&f, CHUNK) < 0) {
    printf ("Bail out! cannot make a store\n");
    return 1;
  }
  s = f.s;
  test_pin ();
  test_lease ();
  test_working_state ();
  test_epoch ();
  test_inline_epoch ();
  fixture_close (&f);
  return done_testing ();
}
