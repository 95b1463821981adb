/* test-branch-model: a property test of branches against a model kept in
 * plain memory.  Random unaligned writes, zeroing, flushes, seals,
 * commits, reopenings and new branches from earlier commits, interleaved;
 * every read is checked, and at the end every commit ever made must read
 * back exactly as the model was when it was made.
 *
 * After a reopen (a crash, for the working state), a sector written since
 * the last flush or commit may hold its flushed value or any value
 * written to it since: block-device semantics, and sealing persists early.
 * The model keeps, per sector, the hashes of the values it may hold, and
 * a reopen must give one of them for every sector.
 *
 * CAIRN_TEST_SEED picks the seed (printed, so a failure can be replayed);
 * CAIRN_TEST_STEPS the number of operations. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"

#define SIZE ((1 << 20) + 3 * 512)   /* not a multiple of the chunk size */

struct saved {
  struct cairn_id id;
  char *content;
};

static struct cairn_store *s;
static struct saved *saved;
static size_t nsaved;

#define SECTORS (SIZE / 512)

/* Per sector: hashes of the contents a crash may leave there. */
struct candidates {
  uint64_t *h;
  size_t n, cap;
};
static struct candidates cand[SECTORS];

static uint64_t
sector_hash (const char *p)
{
  uint64_t h = 1469598103934665603ULL;
  for (int i = 0; i < 512; i++)
    h = (h ^ (unsigned char) p[i]) * 1099511628211ULL;
  return h;
}

static void
cand_push (size_t sec, const char *model)
{
  struct candidates *c = &cand[sec];
  uint64_t h = sector_hash (model + sec * 512);
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 4;
    c->h = realloc (c->h, c->cap * sizeof *c->h);
  }
  c->h[c->n++] = h;
}

/* The range [OFF, OFF+LEN) of MODEL changed: its sectors may now hold it. */
static void
cand_touch (uint64_t off, size_t len, const char *model)
{
  for (size_t sec = off / 512; sec * 512 < off + len; sec++)
    cand_push (sec, model);
}

/* Everything is durable: each sector holds what the model holds. */
static void
cand_settle (const char *model)
{
  for (size_t sec = 0; sec < SECTORS; sec++) {
    cand[sec].n = 0;
    cand_push (sec, model);
  }
}

static uint64_t
rnd (uint64_t n)
{
  return n ? ((uint64_t) random () << 31 ^ random ()) % n : 0;
}

static bool
view_equals (const struct cairn_id *id, const char *model)
{
  struct cairn_view view;
  struct cairn_txn *txn;
  char *buf = malloc (SIZE);
  cairn_txn_begin (s, false, &txn);
  int r = cairn_view_open (s, txn, id, "disk", &view);
  cairn_txn_abort (s, txn);
  bool same = r == 0 && cairn_view_read (&view, buf, SIZE, 0) == 0
    && memcmp (buf, model, SIZE) == 0;
  free (buf);
  return same;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-model.XXXXXX", path[256], name[32];
  char cur[32] = "b0";
  const char *env_seed = getenv ("CAIRN_TEST_SEED");
  const char *env_steps = getenv ("CAIRN_TEST_STEPS");
  unsigned seed = env_seed ? (unsigned) atoi (env_seed) : (unsigned) getpid ();
  int steps = env_steps ? atoi (env_steps) : 3000;
  struct cairn_branch *b;
  struct cairn_bvol *v;
  char *model = calloc (1, SIZE);
  char *buf = malloc (SIZE);
  int branches = 1, bad_reads = 0, errors = 0;
  int counts[8] = { 0 };
  bool verbose = getenv ("CAIRN_TEST_VERBOSE") != NULL;

  diag ("seed %u, %d steps (CAIRN_TEST_SEED=%u to replay)", seed, steps, seed);
  srandom (seed);
  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  /* 4 KiB chunks: many chunks, many trees levels in a small volume. */
  cairn_store_init (path, &(struct cairn_store_options) { .chunk_size = 4096 });
  cairn_store_open (path, 0, &s);
  cairn_branch_create_empty (s, "b0", "disk", SIZE);
  cairn_branch_open (s, "b0", CAIRN_BRANCH_WRITE, &b);
  v = cairn_branch_volume (b, "disk");
  cand_settle (model);
  int bad_recoveries = 0;

  for (int step = 0; step < steps; step++) {
    int op = rnd (100);
    if (op < 45) {                      /* write */
      uint64_t off = rnd (SIZE);
      size_t len = 1 + rnd (rnd (4) == 0 ? 40000 : 3000);
      if (len > SIZE - off)
        len = SIZE - off;
      for (size_t i = 0; i < len; i++)
        buf[i] = (char) random ();
      if (rnd (8) == 0)
        memset (buf, 0, len);           /* zeros written as data */
      errors += cairn_bvol_write (v, buf, len, off) != 0;
      memcpy (model + off, buf, len);
      cand_touch (off, len, model);
      counts[0]++;
    }
    else if (op < 55) {                 /* zero */
      uint64_t off = rnd (SIZE);
      size_t len = 1 + rnd (rnd (3) == 0 ? SIZE : 20000);
      if (len > SIZE - off)
        len = SIZE - off;
      errors += cairn_bvol_zero (v, len, off) != 0;
      memset (model + off, 0, len);
      cand_touch (off, len, model);
      counts[1]++;
    }
    else if (op < 75) {                 /* read */
      uint64_t off = rnd (SIZE);
      size_t len = 1 + rnd (70000);
      if (len > SIZE - off)
        len = SIZE - off;
      if (cairn_bvol_read (v, buf, len, off) != 0
          || memcmp (buf, model + off, len) != 0) {
        if (bad_reads++ == 0)
          diag ("step %d: read of %zu at %llu differs", step, len,
                (unsigned long long) off);
      }
      counts[2]++;
    }
    else if (op < 82) {                 /* flush */
      errors += cairn_branch_flush (b) != 0;
      cand_settle (model);
      counts[3]++;
    }
    else if (op < 87) {                 /* seal */
      errors += cairn_branch_seal (b) != 0;
      counts[4]++;
    }
    else if (op < 95) {                 /* commit */
      struct saved *sv;
      saved = realloc (saved, (nsaved + 1) * sizeof *saved);
      sv = &saved[nsaved++];
      sv->content = malloc (SIZE);
      memcpy (sv->content, model, SIZE);
      errors += cairn_branch_commit (b, NULL, &sv->id) != 0;
      /* A commit persists everything in it. */
      cand_settle (model);
      counts[5]++;
    }
    else if (op < 98) {                 /* close and reopen (flushed only) */
      cairn_branch_close (b);
      if (cairn_branch_open (s, cur, CAIRN_BRANCH_WRITE, &b) != 0) {
        diag ("step %d: cannot reopen %s: %s", step, cur, cairn_last_error ());
        errors++;
        b = NULL;
        break;
      }
      v = cairn_branch_volume (b, "disk");
      errors += cairn_bvol_read (v, buf, SIZE, 0) != 0;
      for (size_t sec = 0; sec < SECTORS; sec++) {
        uint64_t h = sector_hash (buf + sec * 512);
        bool found = false;
        for (size_t i = 0; i < cand[sec].n && !found; i++)
          found = cand[sec].h[i] == h;
        if (!found && bad_recoveries++ == 0)
          diag ("step %d: sector %zu recovered to a value never written "
                "since the last flush", step, sec);
      }
      memcpy (model, buf, SIZE);
      cand_settle (model);
      counts[6]++;
    }
    else if (nsaved > 0) {              /* branch off an earlier commit */
      struct saved *from = &saved[rnd (nsaved)];
      snprintf (name, sizeof name, "b%d", branches++);
      strcpy (cur, name);
      errors += cairn_branch_create_from (s, name, &from->id) != 0;
      cairn_branch_close (b);
      if (cairn_branch_open (s, name, CAIRN_BRANCH_WRITE, &b) != 0) {
        diag ("step %d: cannot open %s: %s", step, name, cairn_last_error ());
        errors++;
        b = NULL;
        break;
      }
      v = cairn_branch_volume (b, "disk");
      memcpy (model, from->content, SIZE);
      cand_settle (model);
      counts[7]++;
    }
    if (verbose) {
      static const char *names[] = { "write", "zero", "read", "flush", "seal",
                                     "commit", "reopen", "branch" };
      int k = op < 45 ? 0 : op < 55 ? 1 : op < 75 ? 2 : op < 82 ? 3
        : op < 87 ? 4 : op < 95 ? 5 : op < 98 ? 6 : 7;
      bool same = cairn_bvol_read (v, buf, SIZE, 0) == 0
        && memcmp (buf, model, SIZE) == 0;
      diag ("step %d: %s -> %s", step, names[k], same ? "ok" : "DIFFERS");
      if (!same) {
        for (size_t i = 0; i < SIZE; i++)
          if (buf[i] != model[i]) {
            diag ("first difference at byte %zu (chunk %zu)", i, i / 4096);
            break;
          }
        break;
      }
    }
  }
  diag ("writes %d zeros %d reads %d flushes %d seals %d commits %d "
        "reopens %d branches %d", counts[0], counts[1], counts[2], counts[3],
        counts[4], counts[5], counts[6], counts[7]);
  is_int (errors, 0, "no operation failed");
  if (!b)
    return done_testing ();
  is_int (bad_reads, 0, "every read matched the model");
  is_int (bad_recoveries, 0, "every reopen gave each sector a value it may "
          "hold after a crash");
  ok (cairn_bvol_read (v, buf, SIZE, 0) == 0
      && memcmp (buf, model, SIZE) == 0, "the final state matches");
  int bad = 0;
  for (size_t i = 0; i < nsaved; i++)
    bad += !view_equals (&saved[i].id, saved[i].content);
  ok (nsaved > 10 && bad == 0, "all %zu commits read back as they were made "
      "(%d differ)", nsaved, bad);

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  for (size_t i = 0; i < nsaved; i++)
    free (saved[i].content);
  free (saved);
  free (model);
  for (size_t sec = 0; sec < SECTORS; sec++)
    free (cand[sec].h);
  free (buf);
  return done_testing ();
}
