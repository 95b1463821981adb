/* test-gc-concurrent: gc in another process while threads write, commit
 * and prune, and nothing any kept commit needs is ever lost.
 *
 * A child process runs gc over and over.  In the parent, writer threads
 * write whole chunks of a served-style branch (sealer thread on); each
 * chunk flips between a few versions, so that a version dies, becomes
 * garbage, and is soon written again while gc is deleting it (dedup
 * against garbage: the epoch rule and the reseal path).  A model of the
 * volume follows every write.  The main thread commits every few
 * milliseconds (writers paused
 * for the moment of the commit, so the model is exactly the commit),
 * records the SHA-256 of the model as the commit's digest, and prunes to
 * the last few commits plus a tagged one now and then.  At the end, every
 * commit that is not a tombstone must read back with its digest, and
 * fsck --read-data must find the store intact.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gc/gc.h"
#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define CHUNKS 1024
#define VOLUME (CHUNKS * CHUNK)
#define WRITERS 2
#define COMMITS 120
#define VERSIONS 4

static struct cairn_store *s;
static struct cairn_bvol *vol;
static char *model;
static pthread_rwlock_t pause_lock = PTHREAD_RWLOCK_INITIALIZER;
static atomic_bool stop;
static atomic_int write_errors;

struct made {
  struct cairn_id id, digest;
};

/* Writer T writes the chunks whose index is T modulo WRITERS, so that
 * its model updates are in the order of its writes. */
static void *
writer (void *arg)
{
  unsigned t = (uintptr_t) arg, state = t * 7919 + 17;
  char buf[CHUNK];

  while (!atomic_load (&stop)) {
    state = state * 1103515245 + 12345;
    uint64_t index = ((state >> 8) % (CHUNKS / WRITERS)) * WRITERS + t;
    uint64_t seed = index * VERSIONS + (state >> 4) % VERSIONS + 1;
    fixture_fill (buf, CHUNK, seed);
    pthread_rwlock_rdlock (&pause_lock);
    int r = cairn_bvol_write (vol, buf, CHUNK, index * CHUNK);
    if (r == 0)
      memcpy (model + index * CHUNK, buf, CHUNK);
    pthread_rwlock_unlock (&pause_lock);
    if (r < 0)
      atomic_fetch_add (&write_errors, 1);
  }
  return NULL;
}

/* The gc process: runs gc until its stdin (a pipe) closes; exit status
 * 0 if every run succeeded. */
static int
gc_child (const char *path, int stop_fd)
{
  struct cairn_store *cs;
  int runs = 0, failed = 0;

  if (cairn_store_open (path, 0, &cs) < 0)
    return 2;
  for (;;) {
    struct cairn_gc_report g;
    char c;
    fd_set fds;
    struct timeval tv = { 0, 1000 };
    FD_ZERO (&fds);
    FD_SET (stop_fd, &fds);
    if (select (stop_fd + 1, &fds, NULL, NULL, &tv) > 0
        && read (stop_fd, &c, 1) <= 0)
      break;
    /* Every other run sweeps a few objects per transaction: a long sweep
     * gives writers time to reuse what it selected. */
    struct cairn_gc_options o = { .txn_objects = runs % 2 ? 1 : 0 };
    if (cairn_gc (cs, &o, &g) < 0) {
      fprintf (stderr, "gc child: %s\n", cairn_last_error ());
      failed++;
    }
    runs++;
  }
  cairn_store_close (cs);
  printf ("# the gc process ran %d times\n", runs);
  fflush (stdout);
  return failed ? 1 : runs > 0 ? 0 : 3;
}

static int
prune_now (void)
{
  struct cairn_prune_result res;
  int r = cairn_prune (s, &(struct cairn_prune_options) { .branch = "live" },
                       &res);
  if (r == 0)
    cairn_prune_result_free (&res);
  return r;
}

int
main (void)
{
  static struct made made[COMMITS];
  struct fixture f;
  struct cairn_branch *b;
  pthread_t threads[WRITERS];
  int pipefd[2], status;
  int commit_errors = 0, prune_errors = 0;

  /* The store is made before the fork and opened after it, in each
   * process: an LMDB environment must not cross a fork. */
  const char *tmp = getenv ("TMPDIR");
  snprintf (f.dir, sizeof f.dir, "%s/cairn-gc-test.XXXXXX",
            tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (f.dir))
    return 1;
  snprintf (f.path, sizeof f.path, "%s/store", f.dir);
  setenv ("CAIRN_PACK_LIMIT", "128K", 1);
  if (cairn_store_init (f.path,
                        &(struct cairn_store_options) { .chunk_size = CHUNK })
      < 0 || pipe (pipefd) < 0)
    return 1;
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0) {
    close (pipefd[1]);
    _exit (gc_child (f.path, pipefd[0]));
  }
  close (pipefd[0]);

  if (cairn_store_open (f.path, 0, &f.s) < 0) {
    printf ("Bail out! cannot open the store\n");
    return 1;
  }
  s = f.s;
  cairn_store_set_cache_size (s, 0);
  model = calloc (1, VOLUME);
  struct cairn_retention_policy p = { 0 };
  cairn_retention_policy_set (&p, "keep-last", "4");
  if (cairn_branch_create_empty (s, "live", "disk", VOLUME) < 0
      || cairn_retention_set (s, "live", &p) < 0
      || cairn_branch_open (s, "live", CAIRN_BRANCH_WRITE | CAIRN_BRANCH_SEALER,
                            &b) < 0) {
    printf ("Bail out! cannot make the branch: %s\n", cairn_last_error ());
    return 1;
  }
  vol = cairn_branch_volume (b, "disk");
  for (uintptr_t i = 0; i < WRITERS; i++)
    pthread_create (&threads[i], NULL, writer, (void *) i);

  for (int i = 0; i < COMMITS; i++) {
    struct timespec ts = { 0, 15 * 1000000 };
    nanosleep (&ts, NULL);
    pthread_rwlock_wrlock (&pause_lock);
    int r = cairn_branch_commit (b, NULL, &made[i].id);
    if (r == 0)
      cairn_sha256 (model, VOLUME, &made[i].digest);
    pthread_rwlock_unlock (&pause_lock);
    if (r < 0) {
      diag ("commit: %s", cairn_last_error ());
      commit_errors++;
      memset (&made[i], 0, sizeof made[i]);
      continue;
    }
    char tag[16];
    snprintf (tag, sizeof tag, "t%d", i);
    if (i % 10 == 5 && cairn_tag_create (s, tag, &made[i].id) < 0)
      commit_errors++;
    if (i % 3 == 2 && prune_now () < 0) {
      diag ("prune: %s", cairn_last_error ());
      prune_errors++;
    }
  }
  atomic_store (&stop, true);
  for (int i = 0; i < WRITERS; i++)
    pthread_join (threads[i], NULL);
  cairn_branch_close (b);

  close (pipefd[1]);
  waitpid (pid, &status, 0);
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 0,
      "every gc run of the other process succeeded (status %d)",
      WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  is_int (atomic_load (&write_errors), 0, "no write failed");
  is_int (commit_errors, 0, "no commit or tag failed");
  is_int (prune_errors, 0, "no prune failed");

  /* One more prune and gc here, then check everything. */
  struct cairn_gc_report g;
  ok (prune_now () == 0 && cairn_gc (s, NULL, &g) == 0, "a last prune and gc");
  int kept = 0, good = 0, pruned = 0;
  for (int i = 0; i < COMMITS; i++) {
    struct cairn_id d;
    if (cairn_id_is_zero (&made[i].id))
      continue;
    if (fixture_pruned (s, &made[i].id)) {
      pruned++;
      continue;
    }
    kept++;
    if (fixture_digest (s, &made[i].id, &d) == 0
        && cairn_id_equal (&d, &made[i].digest))
      good++;
    else
      diag ("commit %d does not read back: %s", i, cairn_last_error ());
  }
  ok (pruned > COMMITS / 2, "%d commits were pruned on the way", pruned);
  ok (kept > 0 && good == kept, "all %d kept commits read back exactly (%d)",
      kept, good);

  struct cairn_fsck_report fr;
  ok (cairn_fsck (s, &(struct cairn_fsck_options) { .read_data = true }, &fr)
      == 0, "fsck --read-data");
  for (size_t i = 0; i < fr.n_problems; i++)
    diag ("fsck: %s", fr.problems[i]);
  is_int (fr.n_problems, 0, "the store is intact");
  is_int (fr.unreachable_chunks, 0, "and holds no garbage after the last gc");
  cairn_fsck_report_free (&fr);

  free (model);
  fixture_close (&f);
  return done_testing ();
}
