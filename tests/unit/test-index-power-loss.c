/* test-index-power-loss: the index's redo log (store/redo.h) keeps every
 * completed commit through a power loss and a killed process.
 *
 * Power loss.  A store makes a few commits and closes (a checkpoint),
 * and LMDB's file is copied: what the disk holds at the checkpoint.  The
 * store then makes more commits, branches, tags and deletes, each durable
 * only through the log (no checkpoint comes between: fewer records than
 * the store's checkpoint interval).  A "crash image" of the store is its
 * files as they are, except LMDB's file: each page that changed since the
 * checkpoint is taken from either the checkpoint's copy or the current
 * file, at random - what a disk may hold after the kernel wrote back some
 * pages and not others.  The two meta pages are chosen the same way, so
 * some images hold a meta page newer than the pages it names.  Each image
 * is opened as after a restart (another boot id): every commit made must
 * be there and read as when made, the refs must be as left, and fsck must
 * find nothing wrong.
 *
 * The same images opened without the restart (same boot id: the meta pages
 * are not put back) must go wrong in some of them, or the simulation does
 * not bite.  Those opens run in a child, as LMDB may crash on them.
 *
 * A killed process.  A child makes a commit and is killed right after its
 * K-th redo record is written, before LMDB commits it
 * (CAIRN_TEST_KILL_AT_RECORD).  The next open voids the record: the
 * branch stays where a read-only open saw it after the kill, also after
 * a restart later; fsck finds nothing wrong, the older commits read as
 * before, and the branch takes a new commit.  A copy of the store opened
 * as after a restart instead applies the record, and for some K moves the
 * branch to the complete new commit: the kill did leave a record that
 * would move it.
 *
 * A failed flush.  The flush of a commit's K-th redo record fails, as on
 * a failing disk (CAIRN_TEST_FAIL_FLUSH_AT_RECORD): the commit fails with
 * an error naming the log (also when the record was the sealer's), and so
 * does every write after it in that process.  The next open finds the store as after a kill.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc/gc.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (256 << 10)
#define BEFORE 3                /* commits before the checkpoint */
#define AFTER 24                /* commits after it */
#define IMAGES 12

static struct cairn_id id[BEFORE + AFTER + 1], digest[BEFORE + AFTER + 1];

/* Where branch "main" of the store at PATH is, opened with FLAGS. */
static int
main_head (const char *path, unsigned flags, struct cairn_id *head)
{
  struct cairn_store *s;
  int r = cairn_store_open (path, flags, &s);

  if (r < 0)
    return r;
  r = fixture_resolve (s, "main", head);
  cairn_store_close (s);
  return r;
}

static int
copy_file (const char *from, const char *to)
{
  char cmd[2048];
  snprintf (cmd, sizeof cmd, "cp -a '%s' '%s'", from, to);
  return system (cmd) == 0 ? 0 : -1;
}

/* Commit I on "main", its 32 KiB at a place chosen by I. */
static int
make_commit (struct cairn_store *s, int i)
{
  char when[32];
  snprintf (when, sizeof when, "2026-11-22T10:%02d:00Z", i);
  int r = fixture_commit (s, "main", (i * 5 % 8) * 32768, 32768, i, when,
                          &id[i]);
  if (r == 0)
    r = fixture_digest (s, &id[i], &digest[i]);
  return r;
}

/* Commits 1..COMMITS must read as made and fsck find nothing wrong;
 * with REFS, the refs must be as power_loss left them.  0 or -1. */
static int
check_store (const char *path, int commits, bool refs, bool quiet)
{
  struct cairn_store *s;
  struct cairn_fsck_report rep;
  int bad = 0;

  if (cairn_store_open (path, 0, &s) < 0) {
    if (!quiet)
      diag ("open: %s", cairn_last_error ());
    return -1;
  }
  cairn_store_set_cache_size (s, 0);
  for (int i = 1; i <= commits; i++) {
    struct cairn_id d;
    if (fixture_digest (s, &id[i], &d) < 0 || !cairn_id_equal (&d, &digest[i])) {
      if (!quiet)
        diag ("commit %d does not read as made", i);
      bad++;
    }
  }
  struct cairn_id head;
  const char *wrong = NULL;
  if (!refs)
    ;
  else if (fixture_resolve (s, "main", &head) < 0
           || !cairn_id_equal (&head, &id[commits]))
    wrong = "main is not at the last commit";
  else if (fixture_resolve (s, "t-last", &head) < 0
           || !cairn_id_equal (&head, &id[commits]))
    wrong = "tag t-last is wrong";
  else if (fixture_resolve (s, "gone", &head) == 0)
    wrong = "deleted branch gone is back";
  else if (fixture_resolve (s, "kept", &head) < 0)
    wrong = "branch kept is missing";
  if (wrong) {
    if (!quiet)
      diag ("%s", wrong);
    bad++;
  }
  memset (&rep, 0, sizeof rep);
  if (cairn_fsck (s, &(struct cairn_fsck_options) { .read_data = true },
                  &rep) < 0 || rep.n_problems > 0) {
    if (!quiet)
      diag ("fsck: %zu problems%s%s", rep.n_problems,
            rep.n_problems ? ", first: " : "",
            rep.n_problems ? rep.problems[0] : "");
    bad++;
  }
  cairn_fsck_report_free (&rep);
  cairn_store_close (s);
  return bad ? -1 : 0;
}

/* Writes a crash image of store SRC at DST: LMDB's file mixes the
 * checkpoint's pages (BASE) and the current ones (NOW) at random; META
 * 0: the checkpoint's meta pages, 1: the current ones, 2: at random. */
static int
crash_image (const char *src, const char *dst, const char *base,
             size_t base_len, const char *now, size_t now_len,
             unsigned seed, int meta)
{
  char path[600];
  size_t page = 4096;

  if (copy_file (src, dst) < 0)
    return -1;
  snprintf (path, sizeof path, "%s/index/lock.mdb", dst);
  unlink (path);
  snprintf (path, sizeof path, "%s/index/data.mdb", dst);
  int fd = open (path, O_WRONLY | O_TRUNC);
  if (fd < 0)
    return -1;
  srand (seed);
  for (size_t off = 0; off < now_len; off += page) {
    bool cur = off < 2 * page && meta < 2 ? meta == 1 : rand () % 2;
    const char *p = cur || off >= base_len ? now + off : base + off;
    if (!cur && off >= base_len) {
      static const char zeros[4096];
      p = zeros;
    }
    if (pwrite (fd, p, page, off) != (ssize_t) page) {
      close (fd);
      return -1;
    }
  }
  return close (fd);
}

static void
power_loss (void)
{
  struct fixture f;
  struct cairn_store *s;
  char path[600], *base = NULL, *now = NULL;
  size_t base_len = 0, now_len = 0;
  int r;

  setenv ("CAIRN_TEST_BOOT_ID", "before", 1);
  r = fixture_open (&f, CHUNK);
  s = f.s;
  if (r == 0)
    r = cairn_branch_create_empty (s, "main", "disk", VOLUME);
  for (int i = 1; r == 0 && i <= BEFORE; i++)
    r = make_commit (s, i);
  if (r == 0)
    r = cairn_branch_create_from (s, "gone", &id[1]);
  cairn_store_close (s);
  f.s = NULL;
  snprintf (path, sizeof path, "%s/index/data.mdb", f.path);
  ok (r == 0 && cairn_read_file (path, &base, &base_len) == 0,
      "a store with %d commits, checkpointed by its close", BEFORE);

  /* After the checkpoint: durable through the log only. */
  uint64_t seq = fixture_checkpoint_seq (f.path);
  r = cairn_store_open (f.path, 0, &s);
  if (r == 0)
    cairn_store_set_cache_size (s, 0);
  for (int i = BEFORE + 1; r == 0 && i <= BEFORE + AFTER; i++) {
    r = make_commit (s, i);
    if (r == 0 && i == BEFORE + 2)
      r = cairn_branch_delete (s, "gone");
    if (r == 0 && i == BEFORE + 3)
      r = cairn_branch_create_from (s, "kept", &id[i]);
  }
  if (r == 0)
    r = cairn_tag_create (s, "t-last", &id[BEFORE + AFTER]);
  ok (r == 0 && cairn_read_file (path, &now, &now_len) == 0
      && now_len >= base_len,
      "%d more commits, a branch made, one deleted, a tag", AFTER);
  if (r < 0)
    diag ("%s", cairn_last_error ());
  /* The images below take every page not written since the checkpoint
   * to be the checkpoint's: another checkpoint would void that. */
  ok (seq > 0 && fixture_checkpoint_seq (f.path) == seq,
      "no checkpoint came after the first (checkpoint %" PRIu64 ")", seq);

  /* The store stays open (its close would checkpoint): its files are as
   * a machine that lost power would have left them, but for LMDB's. */
  int failed = 0, bitten = 0;
  char img[600];
  snprintf (img, sizeof img, "%s/crash", f.dir);
  for (int k = 0; k < IMAGES; k++) {
    int meta = k % 3;
    cairn_remove_tree (img);
    if (crash_image (f.path, img, base, base_len, now, now_len, 1000 + k,
                     meta) < 0) {
      failed++;
      continue;
    }
    /* Same boot: the meta pages stay as the image has them. */
    pid_t pid = fork ();
    if (pid == 0) {
      alarm (60);
      _exit (check_store (img, BEFORE + AFTER, true, true) == 0 ? 0 : 1);
    }
    int st;
    waitpid (pid, &st, 0);
    if (!WIFEXITED (st) || WEXITSTATUS (st) != 0)
      bitten++;

    cairn_remove_tree (img);
    crash_image (f.path, img, base, base_len, now, now_len, 1000 + k, meta);
    setenv ("CAIRN_TEST_BOOT_ID", "after", 1);
    if (check_store (img, BEFORE + AFTER, true, false) < 0) {
      diag ("image %d (meta pages %s) lost data", k,
            meta == 0 ? "old" : meta == 1 ? "new" : "mixed");
      failed++;
    }
    setenv ("CAIRN_TEST_BOOT_ID", "before", 1);
  }
  ok (failed == 0, "%d crash images opened after a restart: every commit, "
      "ref and chunk intact (%d lost data)", IMAGES, failed);
  ok (bitten > 0, "the same images opened as if no restart happened: "
      "%d of %d go wrong (the simulation bites)", bitten, IMAGES);

  cairn_store_close (s);
  free (base);
  free (now);
  fixture_close (&f);
}

/* A store of BEFORE commits on "main", closed, at TMPL; WORK is where
 * the tests copy it to.  Both 600 bytes. */
static int
template_store (struct fixture *f, char *tmpl, char *work)
{
  f->s = NULL;
  int r = fixture_open (f, CHUNK);

  if (r == 0)
    r = cairn_branch_create_empty (f->s, "main", "disk", VOLUME);
  for (int i = 1; r == 0 && i <= BEFORE; i++)
    r = make_commit (f->s, i);
  cairn_store_close (f->s);
  f->s = NULL;
  snprintf (tmpl, 600, "%s/store", f->dir);
  snprintf (work, 600, "%s/work", f->dir);
  return r;
}

/* Where "main" of the store at PATH is after a writable open as after a
 * restart (another boot id) if RESTART, else in this boot. */
static int
main_head_opened (const char *path, bool restart, struct cairn_id *head)
{
  if (restart)
    setenv ("CAIRN_TEST_BOOT_ID", "restart", 1);
  int r = main_head (path, 0, head);
  unsetenv ("CAIRN_TEST_BOOT_ID");
  return r;
}

static void
killed_after_record (void)
{
  struct fixture f;
  char tmpl[600], work[600], copy[600];
  int r, k, failed = 0, moved = 0, appeared = 0;

  unsetenv ("CAIRN_TEST_BOOT_ID");
  r = template_store (&f, tmpl, work);
  snprintf (copy, sizeof copy, "%s/restart", f.dir);
  ok (r == 0, "a store with %d commits", BEFORE);

  for (k = 1; k <= 8; k++) {
    cairn_remove_tree (work);
    if (copy_file (tmpl, work) < 0) {
      failed++;
      break;
    }
    pid_t pid = fork ();
    if (pid == 0) {
      struct cairn_store *s;
      char n[16];
      snprintf (n, sizeof n, "%d", k);
      setenv ("CAIRN_TEST_KILL_AT_RECORD", n, 1);
      if (cairn_store_open (work, 0, &s) < 0)
        _exit (2);
      int e = make_commit (s, BEFORE + 1);
      _exit (e == 0 ? 0 : 3);
    }
    int st;
    waitpid (pid, &st, 0);
    bool killed = WIFSIGNALED (st) && WTERMSIG (st) == SIGKILL;
    if (!killed)
      break;                    /* the commit logged fewer than K records */
    /* A read-only open does not touch the log: where the dead process
     * left the index. */
    struct cairn_id left, head, d;
    if (main_head (work, CAIRN_OPEN_READONLY, &left) < 0)
      failed++;
    /* A copy opened as after a restart applies the record. */
    cairn_remove_tree (copy);
    if (copy_file (work, copy) < 0
        || main_head_opened (copy, true, &head) < 0)
      failed++;
    else if (!cairn_id_equal (&head, &left)) {
      struct cairn_store *c = NULL;
      if (cairn_store_open (copy, CAIRN_OPEN_READONLY, &c) < 0
          || fixture_digest (c, &head, &d) < 0
          || !cairn_id_equal (&d, &digest[BEFORE + 1]))
        failed++, diag ("K=%d: after a restart main is at a commit that "
                        "reads wrong", k);
      else
        moved++;
      if (c)
        cairn_store_close (c);
    }
    /* In this boot the record is voided: main stays, also after a
     * restart that comes later. */
    if (main_head_opened (work, false, &head) < 0
        || !cairn_id_equal (&head, &left))
      appeared++, diag ("K=%d: main moved at the next open", k);
    else if (main_head_opened (work, true, &head) < 0
             || !cairn_id_equal (&head, &left))
      appeared++, diag ("K=%d: main moved at a restart after that", k);
    /* The store after the kill: the old commits, fsck clean, the next
     * commit works. */
    if (check_store (work, BEFORE, false, false) < 0)
      failed++;
    struct cairn_store *s;
    if (cairn_store_open (work, 0, &s) < 0) {
      failed++;
      continue;
    }
    struct cairn_id next;
    if (fixture_commit (s, "main", 0, 4096, 99, NULL, &next) < 0)
      failed++, diag ("K=%d: no commit after: %s", k, cairn_last_error ());
    cairn_store_close (s);
  }
  ok (failed == 0 && k > 1, "killed after each of the %d redo records of a "
      "commit: fsck clean, old commits intact, the next commit works",
      k - 1);
  ok (appeared == 0, "the branch stayed where it was after the kill, at the "
      "next open and at a restart after it");
  /* Killed after the record that moves the branch, before LMDB committed
   * it: the record was there to apply. */
  ok (moved > 0, "a copy opened as after a restart applied the record "
      "and moved the branch to the complete new commit, after %d of those "
      "kills", moved);
  fixture_close (&f);
}

static void
failed_flush (void)
{
  struct fixture f;
  char tmpl[600], work[600];
  int failed = 0, k, r = template_store (&f, tmpl, work);

  for (k = 1; r == 0 && k <= 8; k++) {
    struct cairn_store *s;
    struct cairn_id head, d, next;
    char n[16];
    cairn_remove_tree (work);
    if (copy_file (tmpl, work) < 0) {
      failed++;
      break;
    }
    snprintf (n, sizeof n, "%d", k);
    setenv ("CAIRN_TEST_FAIL_FLUSH_AT_RECORD", n, 1);
    int opened = cairn_store_open (work, 0, &s);
    unsetenv ("CAIRN_TEST_FAIL_FLUSH_AT_RECORD");
    if (opened < 0) {
      failed++;
      break;
    }
    if (make_commit (s, BEFORE + 1) == 0) {
      cairn_store_close (s);
      break;                    /* the commit logged fewer than K records */
    }
    /* "flushing the index's redo log", or if the sealer's flush failed
     * first, "the index's redo log could not be flushed". */
    if (!strstr (cairn_last_error (), "the index's redo log"))
      failed++, diag ("K=%d: the commit failed with: %s", k,
                      cairn_last_error ());
    else if (cairn_branch_create_empty (s, "other", "disk", VOLUME) == 0
             || !strstr (cairn_last_error (), "could not be flushed"))
      failed++, diag ("K=%d: a write after it: %s", k, cairn_last_error ());
    cairn_store_close (s);
    /* Opened again: fsck clean, the old commits intact, main at the old
     * head or at a complete new commit, and a commit works. */
    if (check_store (work, BEFORE, false, false) < 0
        || cairn_store_open (work, 0, &s) < 0) {
      failed++;
      continue;
    }
    cairn_store_set_cache_size (s, 0);
    if (fixture_resolve (s, "main", &head) < 0)
      failed++;
    else if (!cairn_id_equal (&head, &id[BEFORE])
             && (fixture_digest (s, &head, &d) < 0
                 || !cairn_id_equal (&d, &digest[BEFORE + 1])))
      failed++, diag ("K=%d: main is at a commit that reads wrong", k);
    if (fixture_commit (s, "main", 0, 4096, 99, NULL, &next) < 0)
      failed++, diag ("K=%d: no commit after: %s", k, cairn_last_error ());
    cairn_store_close (s);
  }
  ok (r == 0 && failed == 0 && k > 1, "a failed flush of each of the %d "
      "redo records of a commit: the commit and the writes after it fail, "
      "the next open finds fsck clean, old commits intact, commits work",
      k - 1);
  fixture_close (&f);
}

int
main (void)
{
  power_loss ();
  killed_after_record ();
  failed_flush ();
  done_testing ();
}
