/* test-view: reading a committed volume through a view (store/view.c).
 *
 * A volume of 300.3 chunks is imported from memory: data chunks, a
 * chunk seen at several places, chunks half zeros, single holes, and
 * runs of holes, one longer than a tree leaf.  Through a view of its
 * commit, reads at any offset and length (across chunk boundaries and
 * across the 64 chunks one read looks up at once) give the imported
 * bytes; holes read as zeros; extents give exactly the runs of whole-zero
 * chunks and of the rest, clipped to the range asked for and maximal;
 * each chunk's id is a hole's zero id or the SHA-256 of its bytes.
 * Reading or asking extents past the end is refused, a commit without
 * the volume, an unknown commit and a pruned one are refused.  A volume
 * never written reads as zeros and is one hole; 1 TiB with one chunk
 * written is three runs.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "mem-source.h"
#include "scratch-store.h"
#include "tap.h"
#include "xorshift.h"

#define CS 4096
#define NCHUNKS 301             /* the last one partial */
#define SIZE ((NCHUNKS - 1) * (uint64_t) CS + 1234)
#define TIB (1ULL << 40)

static struct cairn_store *s;
static struct mem_source m;
static struct cairn_id commit;
static struct cairn_view view;
static uint64_t rng = 0x853c49e6748fea9bULL;

static bool
is_hole_chunk (uint64_t i)
{
  return (i >= 10 && i < 20) || (i >= 150 && i < 220) || i % 7 == 3;
}

/* The volume's bytes: see the file's comment. */
static void
make_source (void)
{
  mem_source_init (&m, SIZE);
  for (uint64_t i = 0; i < NCHUNKS; i++) {
    uint8_t *chunk = m.data + i * CS;
    size_t len = CAIRN_MIN ((uint64_t) CS, SIZE - i * CS);
    if (is_hole_chunk (i))
      continue;
    xorshift_fill (chunk, len, i % 13 == 0 ? 13 : i);
    if (i % 11 == 5)
      memset (chunk, 0, CS / 2);
  }
}

/* Reads LEN bytes at OFF through the view and compares with the source. */
static bool
reads_right (uint64_t off, size_t len)
{
  uint8_t *buf = malloc (len ? len : 1);
  bool same = buf && cairn_view_read (&view, buf, len, off) == 0
    && memcmp (buf, m.data + off, len) == 0;

  free (buf);
  return same;
}

static void
reads (void)
{
  unsigned wrong = 0;

  ok (mem_source_matches (s, &commit, "disk", &m),
      "the whole volume reads as imported");
  for (int k = 0; k < 400; k++) {
    uint64_t off = xorshift64 (&rng) % SIZE;
    size_t len = xorshift64 (&rng) % CAIRN_MIN (3 * CS + 100, SIZE - off + 1);
    if (!reads_right (off, len)) {
      diag ("read of %zu bytes at %" PRIu64 " differs", len, off);
      wrong++;
    }
  }
  is_int (wrong, 0, "400 reads at random offsets and lengths match");
  for (uint64_t i = 0; i < NCHUNKS; i++) {
    uint64_t end = CAIRN_MIN ((i + 1) * CS, SIZE);
    if (!reads_right (i * CS, 1) || !reads_right (end - 1, 1))
      wrong++;
  }
  is_int (wrong, 0, "the first and the last byte of every chunk match");
  ok (reads_right (CS - 1, 2), "2 bytes across a chunk boundary");
  ok (reads_right (1000, 100 * CS + 333),
      "100 chunks from an unaligned offset (more than one lookup batch)");
  ok (reads_right (SIZE - 1234 - 7, 1234 + 7), "the partial last chunk");
  ok (reads_right (SIZE, 0), "0 bytes at the end");

  uint8_t *buf = malloc (10 * CS);
  memset (buf, 0xff, 10 * CS);
  ok (cairn_view_read (&view, buf, 10 * CS - 10, 10 * CS + 5) == 0
      && cairn_is_zero (buf, 10 * CS - 10) && buf[10 * CS - 10] == 0xff,
      "a run of holes reads as zeros, exactly the length asked");
  free (buf);
}

static void
refusals (void)
{
  uint8_t buf[16] = { 0 };

  is_int (cairn_view_read (&view, buf, 1, SIZE), -EINVAL,
          "a byte at the end: refused");
  is_int (cairn_view_read (&view, buf, 11, SIZE - 10), -EINVAL,
          "a read running 1 byte past the end: refused");
  is_int (cairn_view_read (&view, buf, 0, SIZE + 1), -EINVAL,
          "0 bytes past the end: refused");
  is_int (cairn_view_read (&view, buf, SIZE_MAX, 1), -EINVAL,
          "a length that wraps around: refused");

  struct cairn_txn *txn;
  struct cairn_view v;
  struct cairn_id unknown;
  cairn_sha256 ("no such commit", 14, &unknown);
  cairn_txn_begin (s, false, &txn);
  is_int (cairn_view_open (s, txn, &commit, "memory", &v), CAIRN_ENOVOLUME,
          "a volume the commit lacks: CAIRN_ENOVOLUME");
  ok (strstr (cairn_last_error (), "'memory'") != NULL,
      "the message names it: %s", cairn_last_error ());
  is_int (cairn_view_open (s, txn, &unknown, "disk", &v), CAIRN_ENOREF,
          "a commit that does not exist: CAIRN_ENOREF");
  cairn_txn_abort (s, txn);
}

/* ---- extents ---------------------------------------------------------- */

struct run {
  uint64_t off, len;
  bool hole;
};

struct runs {
  struct run r[2 * NCHUNKS + 2];
  size_t n;
  int stop_with;                /* returned by the callback; 0: go on */
};

static int
add_run (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct runs *runs = arg;

  if (runs->n < sizeof runs->r / sizeof runs->r[0])
    runs->r[runs->n] = (struct run) { off, len, hole };
  runs->n++;
  return runs->stop_with;
}

/* The runs a view must give for [OFF, OFF+LEN) of the source. */
static void
expected_runs (uint64_t off, uint64_t len, struct runs *want)
{
  want->n = 0;
  for (uint64_t at = off; at < off + len;) {
    uint64_t i = at / CS;
    uint64_t end = CAIRN_MIN ((i + 1) * CS, off + len);
    bool hole = is_hole_chunk (i);
    struct run *last = want->n ? &want->r[want->n - 1] : NULL;
    if (last && last->hole == hole)
      last->len += end - at;
    else
      want->r[want->n++] = (struct run) { at, end - at, hole };
    at = end;
  }
}

static bool
same_runs (const struct runs *got, const struct runs *want)
{
  if (got->n != want->n)
    return false;
  for (size_t i = 0; i < got->n; i++)
    if (got->r[i].off != want->r[i].off || got->r[i].len != want->r[i].len
        || got->r[i].hole != want->r[i].hole)
      return false;
  return true;
}

static bool
extents_right (uint64_t off, uint64_t len)
{
  static struct runs got, want;

  got.n = 0;
  got.stop_with = 0;
  expected_runs (off, len, &want);
  return cairn_view_extents (&view, off, len, add_run, &got) == 0
    && same_runs (&got, &want);
}

static void
extents (void)
{
  unsigned wrong = 0;

  ok (extents_right (0, SIZE), "extents of the whole volume: its holes and "
      "data, maximal runs");
  for (int k = 0; k < 200; k++) {
    uint64_t off = xorshift64 (&rng) % SIZE;
    uint64_t len = xorshift64 (&rng) % (SIZE - off + 1);
    if (!extents_right (off, len)) {
      diag ("extents of %" PRIu64 " bytes at %" PRIu64 " differ", len, off);
      wrong++;
    }
  }
  is_int (wrong, 0, "extents of 200 random ranges: clipped to the range");
  ok (extents_right (10 * CS + 1, 2), "2 bytes inside a hole");

  struct runs got = { .n = 0 };
  ok (cairn_view_extents (&view, 7, 0, add_run, &got) == 0 && got.n == 0,
      "an empty range: no run");
  is_int (cairn_view_extents (&view, SIZE - 1, 2, add_run, &got), -EINVAL,
          "a range past the end: refused");
  /* A positive return is no error; runs may still come after it (the
   * NBD plugin ignores them), so only the return is checked. */
  got.stop_with = 1;
  ok (cairn_view_extents (&view, 0, SIZE, add_run, &got) == 0 && got.n >= 1,
      "a callback returning 1: no error");
  got = (struct runs) { .stop_with = -EINTR };
  is_int (cairn_view_extents (&view, 0, SIZE, add_run, &got), -EINTR,
          "a callback's error is returned");
}

static void
chunk_ids (void)
{
  struct cairn_txn *txn;
  unsigned wrong = 0;

  cairn_txn_begin (s, false, &txn);
  for (uint64_t i = 0; i < NCHUNKS; i++) {
    struct cairn_id got, want = { 0 };
    uint8_t chunk[CS] = { 0 };
    if (!is_hole_chunk (i)) {
      memcpy (chunk, m.data + i * CS, CAIRN_MIN ((uint64_t) CS, SIZE - i * CS));
      cairn_sha256 (chunk, CS, &want);
    }
    if (cairn_view_chunk (&view, txn, i, &got) < 0
        || !cairn_id_equal (&got, &want))
      wrong++;
  }
  cairn_txn_abort (s, txn);
  is_int (wrong, 0, "each chunk's id: zero for a hole, else the SHA-256 of "
          "its bytes, zero padded");
}

/* ---- other volumes ---------------------------------------------------- */

static int
open_view (const struct cairn_id *id, struct cairn_view *v)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r == 0) {
    r = cairn_view_open (s, txn, id, "disk", v);
    cairn_txn_abort (s, txn);
  }
  return r;
}

static void
never_written (void)
{
  struct cairn_id id;
  struct cairn_view v;
  struct runs got = { .n = 0 };
  uint8_t buf[3 * CS];

  ok (cairn_branch_create_empty (s, "empty", "disk", 1 << 20) == 0
      && cairn_commit_branch (s, "empty", NULL, &id) == 0
      && open_view (&id, &v) == 0, "a view of a volume never written");
  memset (buf, 0xff, sizeof buf);
  ok (cairn_view_read (&v, buf, sizeof buf, (1 << 20) - sizeof buf) == 0
      && cairn_is_zero (buf, sizeof buf), "it reads as zeros");
  ok (cairn_view_extents (&v, 0, 1 << 20, add_run, &got) == 0 && got.n == 1
      && got.r[0].hole && got.r[0].off == 0 && got.r[0].len == 1 << 20,
      "its extents: one hole");
  is_int (cairn_view_read (&v, buf, 1, 1 << 20), -EINVAL,
          "and reading past its end is refused");
}

static void
sparse_tebibyte (void)
{
  struct cairn_branch *b;
  struct cairn_id id;
  struct cairn_view v;
  struct runs got = { .n = 0 };
  uint64_t at = 700ULL << 30;
  char buf[8];
  int r;

  r = cairn_branch_create_empty (s, "big", "disk", TIB);
  if (r == 0 && (r = cairn_branch_open (s, "big", CAIRN_BRANCH_WRITE, &b)) == 0) {
    r = cairn_bvol_write (cairn_branch_volume (b, "disk"), "hello", 5,
                          at + 100);
    if (r == 0)
      r = cairn_branch_commit (b, NULL, &id);
    cairn_branch_close (b);
  }
  ok (r == 0 && open_view (&id, &v) == 0,
      "a 1 TiB volume with 5 bytes written at 700 GiB");
  ok (cairn_view_read (&v, buf, 5, at + 100) == 0
      && memcmp (buf, "hello", 5) == 0, "they read back");
  memset (buf, 0xff, sizeof buf);
  ok (cairn_view_read (&v, buf, 8, TIB - 8) == 0 && cairn_is_zero (buf, 8),
      "its last bytes read as zeros");
  ok (cairn_view_extents (&v, 0, TIB, add_run, &got) == 0 && got.n == 3
      && got.r[0].hole && got.r[0].off == 0 && got.r[0].len == at
      && !got.r[1].hole && got.r[1].off == at && got.r[1].len == CS
      && got.r[2].hole && got.r[2].off == at + CS
      && got.r[2].len == TIB - at - CS,
      "its extents: hole, the written chunk, hole");
}

static void
pruned (void)
{
  struct cairn_txn *txn;
  struct cairn_view v;

  cairn_txn_begin (s, true, &txn);
  cairn_commit_prune (txn, &commit);
  cairn_txn_commit (s, txn);
  is_int (open_view (&commit, &v), -ENOENT, "a pruned commit: -ENOENT");
  ok (strstr (cairn_last_error (), "pruned") != NULL,
      "saying it was pruned: %s", cairn_last_error ());
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-view.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS };

  scratch_store_open (dir, &o, &s);
  make_source ();
  ok (mem_source_import (s, "main", "disk", &m, &commit, NULL) == 0
      && open_view (&commit, &view) == 0,
      "a volume of %d chunks imported, its view opened", NCHUNKS);
  ok (view.vol.size == SIZE && view.vol.chunk_size == CS,
      "the view has the volume's size and chunk size");
  reads ();
  refusals ();
  extents ();
  chunk_ids ();
  never_written ();
  sparse_tebibyte ();
  pruned ();

  mem_source_free (&m);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
