/* test-import: storing a whole volume from a byte source (store/import.c),
 * with the source in memory.
 *
 * A new branch gets one commit whose volume reads as the source; the
 * stats count its chunks, holes and new chunks, and the bytes stored are
 * those of its chunks.  Importing into the branch again makes a child
 * commit and stores only the chunks that changed (none for the same
 * bytes, none for a chunk the store has elsewhere); a volume of another
 * name joins the branch's others.  With extents, the holes they report
 * are not read and not stored; extents that fail mean reading all.  A
 * source whose read fails leaves no new branch, an existing branch as it
 * was and no pin behind; an empty source, a tag's name and bad names are
 * refused.  cairn_volume_store with a base and a bitmap reads the marked
 * chunks only, and a base of another size means a full store.
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
#define NCHUNKS 601             /* more than the pipeline's ring, twice */
#define SIZE ((NCHUNKS - 1) * (uint64_t) CS + 100)

static struct cairn_store *s;
static struct mem_source m;

static bool
is_hole_chunk (uint64_t i)
{
  return i % 9 == 4 || (i >= 300 && i < 340);
}

/* The source's bytes: a distinct chunk at every place but the holes;
 * some chunks hold data in one sector only. */
static void
make_source (void)
{
  mem_source_init (&m, SIZE);
  for (uint64_t i = 0; i < NCHUNKS; i++) {
    size_t len = CAIRN_MIN ((uint64_t) CS, SIZE - i * CS);
    if (is_hole_chunk (i))
      continue;
    if (i % 10 == 7)
      xorshift_fill (m.data + i * CS + 1024, 512, i + 1);
    else
      xorshift_fill (m.data + i * CS, len, i + 1);
  }
}

static uint64_t
hole_chunks (void)
{
  uint64_t n = 0;

  for (uint64_t i = 0; i < NCHUNKS; i++)
    n += is_hole_chunk (i);
  return n;
}

/* The base commit of BRANCH into *BASE; CAIRN_ENOREF if there is none. */
static int
branch_base (const char *branch, struct cairn_id *base)
{
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_branch_info_get (txn, branch, &info);
  cairn_txn_abort (s, txn);
  if (r == 0) {
    *base = info.base;
    cairn_branch_info_free (&info);
  }
  return r;
}

/* Commit ID, read into *C (the caller frees it). */
static int
read_commit (const struct cairn_id *id, struct cairn_commit **c)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_commit_read (txn, id, c);
  cairn_txn_abort (s, txn);
  return r;
}

/* True if commit ID has NPARENTS parents, the first PARENT, and its
 * volume VOLUME has ROOT (NULL: any root). */
static bool
commit_is (const struct cairn_id *id, size_t nparents,
           const struct cairn_id *parent, const char *volume,
           const struct cairn_id *root)
{
  struct cairn_commit *c;
  bool right;

  if (read_commit (id, &c) < 0)
    return false;
  const struct cairn_volume *vol = cairn_commit_volume (c, volume);
  right = c->nparents == nparents
    && (!parent || cairn_id_equal (&c->parents[0], parent))
    && vol && (!root || cairn_id_equal (&vol->root, root));
  cairn_commit_free (c);
  return right;
}

static struct cairn_id
root_of (const struct cairn_id *id, const char *volume)
{
  struct cairn_commit *c;
  struct cairn_id root = { { 0xff } };

  if (read_commit (id, &c) == 0) {
    const struct cairn_volume *vol = cairn_commit_volume (c, volume);
    if (vol)
      root = vol->root;
    cairn_commit_free (c);
  }
  return root;
}

static bool
root_is (const struct cairn_id *id, const char *volume,
         const struct cairn_id *root)
{
  struct cairn_id got = root_of (id, volume);
  return cairn_id_equal (&got, root);
}

/* Stored bytes of the chunks of volume VOLUME of commit ID, each once. */
struct stored_ctx {
  struct cairn_txn *txn;
  struct cairn_id seen[NCHUNKS];
  size_t nseen;
  uint64_t bytes;
};

static int
add_stored (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct stored_ctx *x = arg;
  struct cairn_val val;

  for (size_t i = 0; i < x->nseen; i++)
    if (cairn_id_equal (&x->seen[i], id))
      return 0;
  if (x->nseen < NCHUNKS)
    x->seen[x->nseen++] = *id;
  int r = cairn_object_get (x->txn, CAIRN_OBJECT_CHUNK, id, &val);
  x->bytes += r == 0 ? val.len : 0;
  return r;
}

static uint64_t
stored_bytes (const struct cairn_id *id, const char *volume)
{
  static struct stored_ctx x;
  struct cairn_id root = root_of (id, volume);

  x.nseen = 0;
  x.bytes = 0;
  if (cairn_txn_begin (s, false, &x.txn) < 0)
    return 0;
  if (cairn_tree_walk (x.txn, &root, cairn_tree_levels (SIZE, CS), 0,
                       NCHUNKS - 1, add_stored, &x) < 0)
    x.bytes = 0;
  cairn_txn_abort (s, x.txn);
  return x.bytes;
}

struct progress {
  uint64_t calls, last_done, total;
  bool backwards;
};

static void
progress (void *arg, uint64_t done, uint64_t total)
{
  struct progress *p = arg;

  if (done < p->last_done)
    p->backwards = true;
  p->calls++;
  p->last_done = done;
  p->total = total;
}

/* ---- new and existing branches ---------------------------------------- */

static struct cairn_id first;   /* the first commit of "main" */
static struct cairn_id first_root;      /* and its volume's tree */

static void
new_branch (void)
{
  struct cairn_import_source src = mem_source_of (&m);
  struct cairn_commit_options o = { .message = "the first image" };
  struct cairn_import_stats st;
  struct progress p = { 0 };
  struct cairn_id base;
  struct cairn_commit *c;

  ok (cairn_import (s, "main", "disk", &src, &o, progress, &p, &first, &st)
      == 0, "import a volume of %d chunks into a new branch", NCHUNKS);
  ok (branch_base ("main", &base) == 0 && cairn_id_equal (&base, &first),
      "the branch exists, at the new commit");
  ok (commit_is (&first, 0, NULL, "disk", NULL)
      && read_commit (&first, &c) == 0 && c->nvolumes == 1
      && c->volumes[0].size == SIZE && c->volumes[0].chunk_size == CS
      && strcmp (c->message, "the first image") == 0,
      "its commit: no parent, one volume 'disk' of the source's size, "
      "the message given");
  cairn_commit_free (c);
  ok (mem_source_matches (s, &first, "disk", &m), "it reads as the source");
  first_root = root_of (&first, "disk");
  is_int (m.reads, NCHUNKS, "without extents every chunk was read");
  is_int (st.chunks, NCHUNKS, "stats: %d chunks", NCHUNKS);
  is_int (st.holes, hole_chunks (), "stats: the zero chunks are holes");
  is_int (st.new_chunks, NCHUNKS - hole_chunks (),
          "stats: every other chunk is new");
  is_int (st.stored_bytes, stored_bytes (&first, "disk"),
          "stats: bytes stored, those of the volume's chunks");
  ok (p.calls > 0 && !p.backwards && p.last_done == p.total
      && p.total == NCHUNKS * (uint64_t) CS,
      "progress went forward to its total, %" PRIu64, p.total);
}

static void
existing_branch (void)
{
  struct cairn_import_stats st;
  struct cairn_id same, changed, base;

  m.reads = 0;
  ok (mem_source_import (s, "main", "disk", &m, &same, &st) == 0
      && commit_is (&same, 1, &first, "disk", NULL),
      "the same bytes again: a child commit of the first");
  ok (root_is (&same, "disk", &first_root), "with the same tree");
  ok (st.new_chunks == 0 && st.stored_bytes == 0,
      "nothing new stored (%" PRIu64 " chunks, %" PRIu64 " bytes)",
      st.new_chunks, st.stored_bytes);

  /* Chunk 1 becomes a hole, 2 and 3 new bytes, 5 a copy of chunk 6. */
  memset (m.data + 1 * CS, 0, CS);
  memset (m.data + 2 * CS + 17, 0x5a, 3);
  xorshift_fill (m.data + 3 * CS, CS, 100000);
  memcpy (m.data + 5 * CS, m.data + 6 * CS, CS);
  ok (mem_source_import (s, "main", "disk", &m, &changed, &st) == 0
      && commit_is (&changed, 1, &same, "disk", NULL)
      && mem_source_matches (s, &changed, "disk", &m),
      "4 chunks changed: a child commit that reads as the new bytes");
  is_int (st.new_chunks, 2, "only the 2 chunks of new bytes were stored");
  is_int (st.holes, hole_chunks () + 1, "the new zero chunk is a hole");
  ok (branch_base ("main", &base) == 0 && cairn_id_equal (&base, &changed),
      "the branch is at the new commit");
  ok (root_is (&first, "disk", &first_root), "the first commit is unchanged");
}

static void
another_volume (void)
{
  struct mem_source small;
  struct cairn_id before, after;

  mem_source_init (&small, 3 * CS);
  xorshift_fill (small.data, 3 * CS, 77);
  ok (branch_base ("main", &before) == 0
      && mem_source_import (s, "main", "memory", &small, &after, NULL) == 0,
      "a volume 'memory' imported into the branch");
  ok (commit_is (&after, 1, &before, "memory", NULL)
      && mem_source_matches (s, &after, "memory", &small),
      "the new commit has it");
  struct cairn_id disk = root_of (&before, "disk");
  ok (root_is (&after, "disk", &disk), "and 'disk' as it was");
  mem_source_free (&small);
}

/* An image that holds one new chunk 40 times: stored, and counted, once. */
static void
repeated_chunk (void)
{
  struct mem_source rep;
  struct cairn_import_stats st;
  struct cairn_id id;

  mem_source_init (&rep, 40 * CS);
  xorshift_fill (rep.data, CS, 4040);
  for (int i = 1; i < 40; i++)
    memcpy (rep.data + i * CS, rep.data, CS);
  ok (mem_source_import (s, "repeated", "disk", &rep, &id, &st) == 0
      && mem_source_matches (s, &id, "disk", &rep), "an image of one chunk "
      "40 times imports");
  ok (st.chunks == 40 && st.new_chunks == 1 && st.stored_bytes > CS / 2
      && st.stored_bytes < 2 * CS, "stats: 40 chunks, 1 new, its bytes once "
      "(got %" PRIu64 " new, %" PRIu64 " bytes)", st.new_chunks,
      st.stored_bytes);
  mem_source_free (&rep);
}

/* Chunks that hold data in the extents' view: any sector not zero. */
static uint64_t
data_chunks (const struct mem_source *x)
{
  uint64_t n = 0;

  for (uint64_t i = 0; i < NCHUNKS; i++)
    n += !cairn_is_zero (x->data + i * CS, CAIRN_MIN ((uint64_t) CS,
                                                      x->size - i * CS));
  return n;
}

static void
extents (void)
{
  struct cairn_import_stats st;
  struct cairn_id id;
  uint64_t data = data_chunks (&m);

  m.with_extents = true;
  m.reads = 0;
  ok (mem_source_import (s, "sparse", "disk", &m, &id, &st) == 0
      && mem_source_matches (s, &id, "disk", &m),
      "a source with extents, imported: it reads as the source");
  is_int (m.reads, data, "only the %" PRIu64 " chunks with data were read",
          data);
  is_int (st.holes, NCHUNKS - data, "the holes the extents gave are holes");

  struct cairn_txn *txn;
  struct cairn_view v;
  unsigned stored_holes = 0;
  cairn_txn_begin (s, false, &txn);
  if (cairn_view_open (s, txn, &id, "disk", &v) == 0)
    for (uint64_t i = 0; i < NCHUNKS; i++) {
      struct cairn_id chunk;
      if (is_hole_chunk (i) && (cairn_view_chunk (&v, txn, i, &chunk) < 0
                                || !cairn_id_is_zero (&chunk)))
        stored_holes++;
    }
  cairn_txn_abort (s, txn);
  is_int (stored_holes, 0, "and not stored: the tree names no chunk there");

  m.extents_error = -EIO;
  m.reads = 0;
  ok (mem_source_import (s, "sparse", "disk", &m, &id, &st) == 0
      && mem_source_matches (s, &id, "disk", &m),
      "extents that fail: the import still reads as the source");
  is_int (m.reads, NCHUNKS, "every chunk was read");
  m.extents_error = 0;
  m.with_extents = false;
}

/* ---- failures --------------------------------------------------------- */

static bool
no_pin_left (void)
{
  uint64_t epoch = 0;
  return cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == UINT64_MAX;
}

static void
failed_read (void)
{
  struct cairn_id id, base, before;
  int pid;

  m.fail_at = 500 * (uint64_t) CS + 7;
  is_int (mem_source_import (s, "broken", "disk", &m, &id, NULL), -EIO,
          "a read failing at chunk 500: the import fails with its error");
  is_int (branch_base ("broken", &base), CAIRN_ENOREF,
          "no branch was created");
  ok (no_pin_left (), "no pin is left behind");

  ok (branch_base ("main", &before) == 0, "branch 'main' as it is");
  m.fail_at = 0;
  is_int (mem_source_import (s, "main", "disk", &m, &id, NULL), -EIO,
          "a read failing at once, into it: fails");
  ok (branch_base ("main", &base) == 0 && cairn_id_equal (&base, &before),
      "the branch is where it was");
  ok (!cairn_branch_is_held (s, "main", &pid) && no_pin_left (),
      "not held, no pin left");
  m.fail_at = UINT64_MAX;
  ok (mem_source_import (s, "main", "disk", &m, &id, NULL) == 0
      && commit_is (&id, 1, &before, "disk", NULL),
      "with the source mended, the next import works");
}

static void
refusals (void)
{
  struct mem_source empty;
  struct cairn_id id, tagged, base;

  mem_source_init (&empty, 0);
  is_int (mem_source_import (s, "void", "disk", &empty, &id, NULL), -EINVAL,
          "an empty source: -EINVAL");
  is_int (branch_base ("void", &base), CAIRN_ENOREF, "and no branch");
  mem_source_free (&empty);

  ok (branch_base ("main", &tagged) == 0
      && cairn_tag_create (s, "v1", &tagged) == 0, "tag v1");
  is_int (mem_source_import (s, "v1", "disk", &m, &id, NULL), -EEXIST,
          "importing into the tag's name: -EEXIST");
  ok (strstr (cairn_last_error (), "is a tag") != NULL,
      "saying it is a tag: %s", cairn_last_error ());
  struct cairn_txn *txn;
  struct cairn_id still;
  cairn_txn_begin (s, false, &txn);
  ok (cairn_tag_get (txn, "v1", &still) == 0
      && cairn_id_equal (&still, &tagged), "the tag is unchanged");
  cairn_txn_abort (s, txn);
  is_int (branch_base ("v1", &base), CAIRN_ENOREF, "no branch v1");

  is_int (mem_source_import (s, "-x", "disk", &m, &id, NULL), CAIRN_EBADNAME,
          "a bad branch name: CAIRN_EBADNAME");
  is_int (mem_source_import (s, "fine", "Disk", &m, &id, NULL),
          CAIRN_EBADNAME, "a bad volume name: CAIRN_EBADNAME");
  ok (no_pin_left (), "no pin is left behind");
}

/* ---- cairn_volume_store ---------------------------------------------- */

static void
volume_store (void)
{
  struct cairn_import_source src = mem_source_of (&m);
  struct cairn_import_stats st;
  struct cairn_volume full, inc, fresh, other;
  uint8_t changed[(NCHUNKS + 7) / 8] = { 0 };

  ok (cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &full, NULL) == 0
      && full.size == SIZE && full.chunk_size == CS,
      "a volume stored without a commit");
  xorshift_fill (m.data + 7 * CS, CS, 4242);
  changed[7 / 8] |= 1 << 7 % 8;
  changed[8 / 8] |= 1 << 8 % 8;           /* marked, not changed */
  changed[600 / 8] |= 1 << 600 % 8;       /* the partial last chunk */
  m.data[SIZE - 1] ^= 1;
  m.reads = 0;
  ok (cairn_volume_store (s, &src, &full, changed, NULL, NULL, &inc, &st)
      == 0, "stored again from it with 3 chunks marked");
  is_int (m.reads, 3, "only the marked chunks were read");
  ok (st.chunks == 3 && st.new_chunks == 2,
      "stats: 3 chunks, 2 of them new (got %" PRIu64 ", %" PRIu64 ")",
      st.chunks, st.new_chunks);
  ok (cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &fresh, NULL) == 0
      && cairn_id_equal (&fresh.root, &inc.root),
      "its tree is that of a full store of the same bytes");

  other = full;
  other.size -= CS;
  m.reads = 0;
  ok (cairn_volume_store (s, &src, &other, changed, NULL, NULL, &inc, NULL)
      == 0 && cairn_id_equal (&inc.root, &fresh.root) && m.reads == NCHUNKS,
      "a base of another size: every chunk read, the same tree");
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-import.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS };

  scratch_store_open (dir, &o, &s);
  make_source ();
  new_branch ();
  existing_branch ();
  another_volume ();
  repeated_chunk ();
  extents ();
  failed_read ();
  refusals ();
  volume_store ();

  mem_source_free (&m);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
