/* test-gc-seal-race: a chunk written while the sealer seals it must not
 * keep, in memory only, an underlay that no durable record names.
 *
 * Chunk 0 is written and sealed: SEALED(A), and A is named by nothing but
 * that record.  A sector of chunk 0 is written (DIRTY over underlay A),
 * then a seal pass runs while another thread keeps writing that chunk.
 * When the write lands between the pass's capture and its end, the pass
 * persists SEALED(Y) (Y = A merged with the captured sectors) but the
 * chunk stays DIRTY.  If memory still says "underlay A", nothing durable
 * names A any more: gc deletes it, and the branch can no longer read or
 * commit chunk 0.  The underlay must become Y, which the record names.
 *
 * The race is retried until a round shows it happened (record SEALED,
 * chunk still dirty), then gc runs and the chunk must read back exactly.
 */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gc/gc.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 65536
#define VOLUME (4 * CHUNK)
#define ROUNDS 500

static struct cairn_store *s;
static struct cairn_bvol *v;
static atomic_bool stop;
static char model[CHUNK];
static pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keeps writing sector 1 of chunk 0 (the model follows). */
static void *
scribbler (void *arg)
{
  char sector[512];
  for (unsigned n = 0; !atomic_load (&stop); n++) {
    memset (sector, n, sizeof sector);
    pthread_mutex_lock (&model_lock);
    if (cairn_bvol_write (v, sector, sizeof sector, 512) == 0)
      memcpy (model + 512, sector, sizeof sector);
    pthread_mutex_unlock (&model_lock);
  }
  return NULL;
}

/* True if chunk 0's work record is SEALED. */
static int
is_sealed (struct cairn_val key, struct cairn_val value, void *arg)
{
  const uint8_t *k = key.data;
  if (key.len == 16 && cairn_be64 (k + 8) == 0)
    *(bool *) arg = ((const uint8_t *) value.data)[0] == 1;
  return 0;
}

static bool
record_sealed (void)
{
  bool sealed = false;
  return fixture_scan_work (s, is_sealed, &sealed) == 0 && sealed;
}

int
main (void)
{
  struct fixture f;
  struct cairn_branch *b;
  struct cairn_branch_stats st;
  char buf[CHUNK];
  int round;
  bool raced = false;

  if (fixture_open (&f, CHUNK) < 0
      || cairn_branch_create_empty (f.s, "main", "disk", VOLUME) < 0
      || cairn_branch_open (f.s, "main", CAIRN_BRANCH_WRITE, &b) < 0) {
    printf ("Bail out! cannot make the branch\n");
    return 1;
  }
  s = f.s;
  v = cairn_branch_volume (b, "disk");
  for (round = 0; round < ROUNDS && !raced; round++) {
    pthread_t t;
    fixture_fill (model, CHUNK, round + 1);
    cairn_bvol_write (v, model, CHUNK, 0);
    cairn_branch_seal (b);               /* SEALED(A) */
    memset (buf, 0xee, 512);
    cairn_bvol_write (v, buf, 512, 0);   /* DIRTY over A */
    memcpy (model, buf, 512);
    atomic_store (&stop, false);
    pthread_create (&t, NULL, scribbler, NULL);
    cairn_branch_seal (b);
    atomic_store (&stop, true);
    pthread_join (t, NULL);
    cairn_branch_stats (b, &st);
    raced = st.unsealed > 0 && record_sealed ();
  }
  ok (raced, "a write landed inside a seal pass (round %d)", round);
  if (!raced)
    return done_testing ();

  struct cairn_gc_report g;
  ok (cairn_gc (s, NULL, &g) == 0, "gc");
  ok (cairn_bvol_read (v, buf, CHUNK, 0) == 0, "chunk 0 still reads");
  if (*cairn_last_error ())
    diag ("%s", cairn_last_error ());
  ok (memcmp (buf, model, CHUNK) == 0, "with exactly what was written");
  struct cairn_id id;
  ok (cairn_branch_commit (b, NULL, &id) == 0, "and commits");
  cairn_branch_close (b);

  struct cairn_fsck_report fr;
  ok (cairn_fsck (s, NULL, &fr) == 0 && fr.n_problems == 0,
      "fsck: intact");
  for (size_t i = 0; i < fr.n_problems; i++)
    diag ("fsck: %s", fr.problems[i]);
  cairn_fsck_report_free (&fr);
  fixture_close (&f);
  return done_testing ();
}
