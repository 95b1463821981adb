/* test-branch-concurrent: commits taken while writer threads run are
 * consistent points in time and contain every acknowledged write.
 *
 * Each writer thread owns a region of the volume and writes sector-sized
 * records stamped (thread, sequence) to pseudo-random sectors of it, one
 * after another, as a journaling filesystem would.  Around every commit
 * the test notes each thread's last acknowledged sequence before the
 * request (A) and the last issued before the commit returned (B).  In the
 * commit, for each thread, let K be the highest sequence found: then
 * A <= K <= B (nothing acknowledged is missing, nothing from the future is
 * there), and every write j <= K is visible - its sector holds j or a
 * later write to the same sector - so the commit is a prefix of the
 * thread's history: a consistent point in time. */
#include <config.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"

#define THREADS 4
#define REGION (2 << 20)
#define SECTORS (REGION / 512)
#define SIZE (THREADS * REGION)
#define MAX_WRITES 200000

static struct cairn_store *s;
static struct cairn_bvol *v;
static atomic_bool stop;
static atomic_uint_fast64_t acked[THREADS], issued[THREADS];
static uint32_t *where[THREADS];        /* sector of write j */

struct stamp {
  uint32_t thread;
  uint32_t seq;
  char fill[504];
};

static void *
writer (void *arg)
{
  uint32_t t = (uintptr_t) arg;
  unsigned state = t * 7919 + 1;
  struct stamp st;

  memset (&st, 0, sizeof st);
  for (uint32_t j = 1; j < MAX_WRITES && !atomic_load (&stop); j++) {
    state = state * 1103515245 + 12345;
    uint32_t sec = (state >> 8) % SECTORS;
    /* Mostly nearby sectors (like a log), sometimes far away. */
    if (j % 4)
      sec = (where[t][j - 1] + 1) % SECTORS;
    where[t][j] = sec;
    st.thread = t;
    st.seq = j;
    memset (st.fill, (char) j, sizeof st.fill);
    atomic_store (&issued[t], j);
    if (cairn_bvol_write (v, &st, sizeof st,
                          (uint64_t) t * REGION + (uint64_t) sec * 512) < 0)
      break;
    atomic_store (&acked[t], j);
  }
  return NULL;
}

/* Checks one thread's region of a commit. */
static int
check_region (const char *img, uint32_t t, uint64_t lo, uint64_t hi,
              uint64_t *k_out)
{
  const char *region = img + (uint64_t) t * REGION;
  uint32_t *seen = calloc (SECTORS, sizeof *seen);
  uint64_t k = 0;
  int bad = 0;

  for (uint32_t sec = 0; sec < SECTORS; sec++) {
    const struct stamp *st = (const void *) (region + (uint64_t) sec * 512);
    if (st->seq == 0)
      continue;
    if (st->thread != t || where[t][st->seq] != sec
        || (unsigned char) st->fill[0] != (st->seq & 0xff)) {
      bad++;                    /* torn or misplaced: never allowed */
      continue;
    }
    seen[sec] = st->seq;
    if (st->seq > k)
      k = st->seq;
  }
  if (k < lo || k > hi)
    bad++;
  /* Every write up to K must be visible: its sector holds it or later. */
  for (uint64_t j = 1; j <= k; j++)
    if (seen[where[t][j]] < j)
      bad++;
  free (seen);
  *k_out = k;
  return bad;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-conc.XXXXXX", path[256];
  pthread_t th[THREADS];
  struct cairn_branch *b;
  int ncommits = 0, bad = 0, errors = 0;
  char *img = malloc (SIZE);

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  cairn_store_init (path, NULL);
  cairn_store_open (path, 0, &s);
  cairn_branch_create_empty (s, "main", "disk", SIZE);
  cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER, &b);
  v = cairn_branch_volume (b, "disk");
  for (int t = 0; t < THREADS; t++) {
    where[t] = calloc (MAX_WRITES, sizeof *where[t]);
    pthread_create (&th[t], NULL, writer, (void *) (uintptr_t) t);
  }

  for (int i = 0; i < 25; i++) {
    uint64_t lo[THREADS], hi[THREADS], k;
    struct cairn_id id;
    usleep (20000 + (i % 5) * 10000);
    for (int t = 0; t < THREADS; t++)
      lo[t] = atomic_load (&acked[t]);
    errors += cairn_branch_commit (b, NULL, &id) != 0;
    for (int t = 0; t < THREADS; t++)
      hi[t] = atomic_load (&issued[t]);
    ncommits++;

    struct cairn_view view;
    struct cairn_txn *txn;
    cairn_txn_begin (s, false, &txn);
    errors += cairn_view_open (s, txn, &id, "disk", &view) != 0;
    cairn_txn_abort (s, txn);
    errors += cairn_view_read (&view, img, SIZE, 0) != 0;
    for (int t = 0; t < THREADS; t++) {
      int b1 = check_region (img, t, lo[t], hi[t], &k);
      if (b1 && bad == 0)
        diag ("commit %d thread %d: acked %llu issued %llu found %llu, "
              "%d problems", i, t, (unsigned long long) lo[t],
              (unsigned long long) hi[t], (unsigned long long) k, b1);
      bad += b1;
    }
  }
  atomic_store (&stop, true);
  for (int t = 0; t < THREADS; t++)
    pthread_join (th[t], NULL);

  /* After the writers stop, the branch holds exactly their last writes. */
  errors += cairn_bvol_read (v, img, SIZE, 0) != 0;
  for (int t = 0; t < THREADS; t++) {
    uint64_t k, a = atomic_load (&acked[t]);
    bad += check_region (img, t, a, a, &k);
  }

  diag ("%d commits; writes acknowledged per thread: %llu %llu %llu %llu",
        ncommits, (unsigned long long) acked[0], (unsigned long long) acked[1],
        (unsigned long long) acked[2], (unsigned long long) acked[3]);
  is_int (errors, 0, "no operation failed");
  is_int (bad, 0, "every commit is a consistent point in time holding every "
          "acknowledged write");
  ok (acked[0] > 100, "the writers made progress during the commits");
  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  for (int t = 0; t < THREADS; t++)
    free (where[t]);
  free (img);
  return done_testing ();
}
