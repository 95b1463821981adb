/* test-gc-crash: gc killed (SIGKILL) after any of its steps leaves a
 * store that fsck finds intact, in which every kept commit reads as
 * before, and which the next gc finishes cleaning.
 *
 * The same store is rebuilt for each run (fixed times and contents, so
 * the same commits): twelve commits over 256 KiB of 4 KiB chunks in packs
 * of 32 KiB, pruned to the last three and a tagged one.  A child process
 * runs gc with three objects per transaction and kills itself right after
 * step K (a committed transaction, a pack created or unlinked: the epoch,
 * the sweep, the compaction output, the relocations, the unlinks); K runs
 * from 1 until gc finishes before reaching it.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc/gc.h"
#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (256 << 10)
#define COMMITS 12
#define GC_DONE 42

static struct cairn_id c[COMMITS + 1], digest[COMMITS + 1];
static bool kept[COMMITS + 1];

/* Builds the store at F and, the first time, notes what it kept. */
static int
build (struct fixture *f, bool first)
{
  struct cairn_store *s;
  struct cairn_retention_policy p = { 0 };
  struct cairn_prune_result res;
  int r;

  if (fixture_open (f, CHUNK) < 0)
    return -1;
  s = f->s;
  r = cairn_branch_create_empty (s, "main", "disk", VOLUME);
  for (int i = 1; r == 0 && i <= COMMITS; i++) {
    char when[32];
    struct cairn_id id;
    snprintf (when, sizeof when, "2026-11-21T10:%02d:00Z", i);
    r = i == 1 ? fixture_commit (s, "main", 0, VOLUME, i, when, &id)
      : fixture_commit (s, "main", (i * 3 % 8) * 32768, 32768, i, when, &id);
    if (r == 0 && first) {
      c[i] = id;
      r = fixture_digest (s, &id, &digest[i]);
    }
    else if (r == 0 && !cairn_id_equal (&id, &c[i]))
      r = -1;                   /* not the same history */
  }
  if (r == 0)
    r = cairn_tag_create (s, "t", &c[4]);
  cairn_retention_policy_set (&p, "keep-last", "3");
  if (r == 0)
    r = cairn_retention_set (s, "main", &p);
  if (r == 0)
    r = cairn_prune (s, &(struct cairn_prune_options) { 0 }, &res);
  if (r == 0)
    cairn_prune_result_free (&res);
  for (int i = 1; r == 0 && first && i <= COMMITS; i++)
    kept[i] = !fixture_pruned (s, &c[i]);
  /* The child opens its own: an LMDB environment must not cross fork. */
  cairn_store_close (s);
  f->s = NULL;
  return r;
}

struct killer {
  int step, at;
};

static void
kill_at (void *arg, const char *phase)
{
  struct killer *k = arg;
  if (++k->step == k->at) {
    printf ("# killed after step %d: %s\n", k->at, phase);
    fflush (stdout);
    raise (SIGKILL);
  }
}

/* Runs gc in a child killed after step AT: true if it was killed. */
static bool
gc_killed_at (const char *path, int at, const char **why)
{
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0) {
    struct cairn_store *s;
    struct killer k = { 0, at };
    struct cairn_gc_options o = { .txn_objects = 3, .step = kill_at,
                                  .step_arg = &k };
    struct cairn_gc_report g;
    setenv ("CAIRN_PACK_LIMIT", "32K", 1);
    if (cairn_store_open (path, 0, &s) < 0 || cairn_gc (s, &o, &g) < 0)
      _exit (1);
    _exit (GC_DONE);
  }
  int status;
  waitpid (pid, &status, 0);
  if (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL)
    return true;
  *why = WIFEXITED (status) && WEXITSTATUS (status) == GC_DONE ? "done"
    : "failed";
  return false;
}

/* fsck finds S intact and every kept commit reads as before. */
static bool
intact (struct cairn_store *s, bool clean)
{
  struct cairn_fsck_report fr;
  bool good = cairn_fsck (s, &(struct cairn_fsck_options) { .read_data =
                                                             true }, &fr) == 0;

  if (!good)
    return false;
  for (size_t i = 0; i < fr.n_problems; i++)
    diag ("fsck: %s", fr.problems[i]);
  good = fr.n_problems == 0 && (!clean || (fr.unreachable_chunks == 0
                                           && fr.unreachable_nodes == 0
                                           && fr.empty_packs == 0));
  cairn_fsck_report_free (&fr);
  for (int i = 1; good && i <= COMMITS; i++) {
    struct cairn_id d;
    if (!kept[i])
      continue;
    good = fixture_digest (s, &c[i], &d) == 0
      && cairn_id_equal (&d, &digest[i]);
    if (!good)
      diag ("commit %d: %s", i, cairn_last_error ());
  }
  return good;
}

int
main (void)
{
  int killed = 0, broken = 0, unfinished = 0;
  const char *why = "";

  setenv ("CAIRN_PACK_LIMIT", "32K", 1);
  for (int at = 1;; at++) {
    struct fixture f;
    if (build (&f, at == 1) < 0) {
      printf ("Bail out! cannot build the store: %s\n", cairn_last_error ());
      return 1;
    }
    if (!gc_killed_at (f.path, at, &why)) {
      fixture_close (&f);
      break;
    }
    killed++;
    struct cairn_gc_report g;
    if (cairn_store_open (f.path, 0, &f.s) < 0)
      broken++;
    else {
      cairn_store_set_cache_size (f.s, 0);
      if (!intact (f.s, false)) {
        diag ("after a kill at step %d the store is damaged", at);
        broken++;
      }
      else if (cairn_gc (f.s, NULL, &g) < 0 || !intact (f.s, true)) {
        diag ("after a kill at step %d the next gc did not finish the job",
              at);
        unfinished++;
      }
    }
    fixture_close (&f);
  }
  is_str (why, "done", "in the end gc ran to completion");
  ok (killed >= 20, "gc was killed after each of its %d steps", killed);
  is_int (broken, 0, "fsck found every store intact, every kept commit "
          "reading as before");
  is_int (unfinished, 0, "the next gc always cleaned up completely");
  return done_testing ();
}
