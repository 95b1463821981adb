/* test-branch-evict: a branch keeps at most its entry bound in memory,
 * and the entries it evicts read back exactly, through every path that
 * meets them: reads, overwrites over them as underlay, zeroing, extents,
 * a commit, and a reopen after kill -9.
 *
 * $CAIRN_TEST_ENTRY_CACHE makes the bound 16 entries; the test dirties
 * 300 chunks, flushes and seals (a pass evicts what the last one sealed),
 * so most of them live only as work records.
 *
 * A commit does not read evicted entries back in: it applies their
 * records from a read transaction opened at its freeze, and leaves them
 * stale.  So the end checks that an evicted chunk read back, rewritten and
 * flushed while a commit runs is committed as it was at the freeze and
 * kept as it is now (also across a reopen), and that no record is left
 * once the commit is done. */
#include <config.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"
#include "gc-fixture.h"

#define CHUNKS 300
#define BOUND 16
#define SIZE (64ULL << 20)

static uint8_t *model;
static uint32_t cs;

/* Writes LEN bytes of pattern SEED at OFF into the model, and into V
 * unless it is NULL (replaying a child's writes). */
static int
put (struct cairn_bvol *v, uint64_t off, size_t len, unsigned seed)
{
  uint8_t *p = model + off;
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t) (seed * 31 + i * 7 + (i >> 9));
  return v ? cairn_bvol_write (v, p, len, off) : 0;
}

static bool
branch_matches (struct cairn_bvol *v)
{
  uint8_t *buf = malloc (cs);
  bool same = true;
  for (uint64_t off = 0; same && off < SIZE; off += cs)
    same = cairn_bvol_read (v, buf, cs, off) == 0
      && memcmp (buf, model + off, cs) == 0;
  free (buf);
  return same;
}

static bool
view_matches (struct cairn_store *s, const struct cairn_id *id)
{
  struct cairn_view view;
  uint8_t *buf = malloc (cs);
  bool same = fixture_view (s, id, &view) == 0;
  for (uint64_t off = 0; same && off < SIZE; off += cs)
    same = cairn_view_read (&view, buf, cs, off) == 0
      && memcmp (buf, model + off, cs) == 0;
  free (buf);
  return same;
}

struct ext_check {
  bool ok;
};

/* Every extent must agree with the model: holes all zeros. */
static int
check_extent (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct ext_check *x = arg;
  if (hole)
    for (uint64_t i = off; i < off + len; i++)
      x->ok &= model[i] == 0;
  return 0;
}

static bool
work_records_left (struct cairn_store *s)
{
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  bool dirty = true;
  if (cairn_txn_begin (s, false, &txn) == 0) {
    if (cairn_branch_info_get (txn, "main", &info) == 0) {
      dirty = info.dirty;
      cairn_branch_info_free (&info);
    }
    cairn_txn_abort (s, txn);
  }
  return dirty;
}

struct committer {
  struct cairn_branch *b;
  struct cairn_id id;
  int r;
};

static void *
commit_thread (void *arg)
{
  struct committer *c = arg;
  c->r = cairn_branch_commit (c->b, NULL, &c->id);
  return NULL;
}

/* 4 KiB at a different place in each of the first CHUNKS chunks. */
static int
dirty_all (struct cairn_bvol *v, unsigned seed)
{
  int r = 0;
  for (unsigned c = 0; c < CHUNKS && r == 0; c++)
    r = put (v, (uint64_t) c * cs + (c % 16) * 4096, 4096, seed + c);
  return r;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-evict.XXXXXX", bound[16];
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_branch_stats st;
  struct cairn_id id;

  if (!mkdtemp (dir))
    abort ();
  plan (19);
  snprintf (bound, sizeof bound, "%d", BOUND);
  setenv ("CAIRN_TEST_ENTRY_CACHE", bound, 1);
  if (cairn_store_init (dir, &(struct cairn_store_options) {
                          .compress_level = 1 }) < 0
      || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk", SIZE) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    abort ();
  cs = cairn_store_chunk_size (s);
  model = calloc (1, SIZE);
  struct cairn_bvol *v = cairn_branch_volume (b, "disk");

  ok (dirty_all (v, 1) == 0 && cairn_branch_flush (b) == 0
      && cairn_branch_seal (b) == 0, "%d chunks written, flushed, sealed",
      CHUNKS);
  cairn_branch_stats (b, &st);
  ok (st.entries <= BOUND && st.entries + st.evicted == CHUNKS,
      "%llu entries stay in memory, %llu evicted (bound %d)",
      (unsigned long long) st.entries, (unsigned long long) st.evicted,
      BOUND);
  ok (branch_matches (v), "every chunk reads back, evicted or not");

  /* Overwrite part of each chunk: the evicted content is the underlay. */
  int r = 0;
  for (unsigned c = 0; c < CHUNKS && r == 0; c += 2)
    r = put (v, (uint64_t) c * cs + 60000, 3000, 1000 + c);
  /* Zero a range of chunks, most of them evicted. */
  if (r == 0)
    r = cairn_bvol_zero (v, 20 * cs, 100ULL * cs);
  memset (model + 100ULL * cs, 0, 20 * cs);
  ok (r == 0 && branch_matches (v),
      "overwrites over evicted chunks and a zeroed range read back");
  struct ext_check x = { true };
  r = cairn_bvol_extents (v, 0, SIZE, check_extent, &x);
  ok (r == 0 && x.ok, "extents report no hole where there is data");

  ok (cairn_branch_flush (b) == 0 && cairn_branch_seal (b) == 0,
      "flushed and sealed again");
  ok (cairn_branch_commit (b, NULL, &id) == 0, "committed");
  ok (view_matches (s, &id), "the commit holds every chunk, evicted or not");
  cairn_branch_stats (b, &st);
  ok (st.entries == 0 && st.evicted == 0,
      "the commit absorbed the whole working state");

  /* kill -9 after a flush: the flushed writes, evicted in the child,
   * come back from their records. */
  cairn_branch_close (b);
  pid_t pid = fork ();
  if (pid == 0) {
    struct cairn_store *cs2;
    struct cairn_branch *cb;
    if (cairn_store_open (dir, 0, &cs2) < 0
        || cairn_branch_open (cs2, "main", CAIRN_BRANCH_WRITE, &cb) < 0)
      _exit (2);
    struct cairn_bvol *cv = cairn_branch_volume (cb, "disk");
    if (dirty_all (cv, 5000) < 0 || cairn_branch_flush (cb) < 0
        || cairn_branch_seal (cb) < 0)
      _exit (3);
    cairn_branch_stats (cb, &st);
    if (st.evicted == 0)
      _exit (4);
    /* More writes over evicted chunks, flushed but not sealed. */
    for (unsigned c = 1; c < CHUNKS; c += 3)
      if (put (cv, (uint64_t) c * cs + 20000, 512, 9000 + c) < 0)
        _exit (5);
    if (cairn_branch_flush (cb) < 0)
      _exit (6);
    kill (getpid (), SIGKILL);
    _exit (7);
  }
  int status;
  waitpid (pid, &status, 0);
  ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
      "a child wrote, flushed, evicted, and was killed with SIGKILL");
  /* The child's writes, in the model. */
  dirty_all (NULL, 5000);
  for (unsigned c = 1; c < CHUNKS; c += 3)
    put (NULL, (uint64_t) c * cs + 20000, 512, 9000 + c);
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "reopened");
  v = cairn_branch_volume (b, "disk");
  ok (branch_matches (v), "every flushed write survived the kill");
  ok (cairn_branch_commit (b, NULL, &id) == 0 && view_matches (s, &id),
      "and a commit holds them all");
  ok (!work_records_left (s), "no work record is left after that commit");

  /* A commit stalled after its freeze; meanwhile chunk 7, evicted, is
   * read back, rewritten and flushed. */
  cairn_branch_close (b);
  setenv ("CAIRN_TEST_CAPTURE_STALL_MS", "600", 1);
  if (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    abort ();
  unsetenv ("CAIRN_TEST_CAPTURE_STALL_MS");
  v = cairn_branch_volume (b, "disk");
  r = dirty_all (v, 7000);
  if (r == 0 && (r = cairn_branch_flush (b)) == 0)
    r = cairn_branch_seal (b);
  r = r ? r : put (v, 299ULL * cs + 1024, 512, 7777);  /* one DIRTY */
  cairn_branch_stats (b, &st);
  ok (r == 0 && st.evicted > 0 && st.unsealed == 1,
      "rewritten and sealed: %llu evicted, one chunk dirty",
      (unsigned long long) st.evicted);
  uint8_t *at_freeze = malloc (SIZE);
  memcpy (at_freeze, model, SIZE);
  struct committer c = { b, { { 0 } }, -1 };
  pthread_t th;
  if (pthread_create (&th, NULL, commit_thread, &c) != 0)
    abort ();
  usleep (200 * 1000);
  r = put (v, 7ULL * cs + 8192, 4096, 4242);
  r = r ? r : cairn_branch_flush (b);
  pthread_join (th, NULL);
  ok (r == 0 && c.r == 0, "committed while chunk 7 was rewritten and "
      "flushed");
  uint8_t *now = model;
  model = at_freeze;
  bool held = view_matches (s, &c.id);
  model = now;
  ok (held, "the commit holds chunk 7 as it was at its freeze");
  ok (branch_matches (v), "the branch has it as it is now");
  cairn_branch_close (b);
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0
      && branch_matches (cairn_branch_volume (b, "disk")),
      "and so after a reopen: its new record lives, the stale ones don't");
  free (at_freeze);

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  free (model);
  return tap_exit_status ();
}
