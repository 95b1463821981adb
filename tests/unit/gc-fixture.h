/* gc-fixture.h: stores with a history, for the tests of gc and retention
 * (and fixture_view and fixture_byte, a commit's volume to read, for the
 * branch tests; fixture_resolve also for fusefs-helper).
 *
 * A fixture is a fresh store in a temporary directory.  Commits are made
 * through the store API with chosen times and seeded contents, and the
 * SHA-256 of a commit's volume read back through a view is its digest:
 * taken when the commit is made, compared after gc, it proves the commit
 * still reads byte for byte the same.  The fixture's store caches no
 * chunk, so that every read after gc comes from what gc left.
 */
#ifndef CAIRN_GC_FIXTURE_H
#define CAIRN_GC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/util.h"

struct fixture {
  char dir[256];
  char path[300];
  struct cairn_store *s;
};

static inline int
fixture_open (struct fixture *f, uint32_t chunk_size)
{
  const char *tmp = getenv ("TMPDIR");
  struct cairn_store_options o = { .chunk_size = chunk_size };

  snprintf (f->dir, sizeof f->dir, "%s/cairn-gc-test.XXXXXX",
            tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp (f->dir))
    return -1;
  snprintf (f->path, sizeof f->path, "%s/store", f->dir);
  if (cairn_store_init (f->path, &o) < 0 || cairn_store_open (f->path, 0,
                                                             &f->s) < 0)
    return -1;
  /* Reads must come from the store, not from chunks cached before gc. */
  cairn_store_set_cache_size (f->s, 0);
  return 0;
}

static inline void
fixture_close (struct fixture *f)
{
  if (f->s)
    cairn_store_close (f->s);
  f->s = NULL;
  cairn_remove_tree (f->dir);
}

/* LEN bytes from SEED: half random, half a repeated pattern, so that the
 * compressor has something to do and chunks differ by seed. */
static inline void
fixture_fill (void *buf, size_t len, uint64_t seed)
{
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  uint8_t *p = buf;

  for (size_t i = 0; i < len; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    uint64_t v = (i / 512) % 2 ? seed : x;
    memcpy (p + i, &v, len - i < 8 ? len - i : 8);
  }
}

/* Writes LEN bytes of SEED at OFF of BRANCH's volume "disk" and commits at
 * TIME (ISO 8601, NULL: now) into *ID. */
static inline int
fixture_commit (struct cairn_store *s, const char *branch, uint64_t off,
                size_t len, uint64_t seed, const char *time,
                struct cairn_id *id)
{
  struct cairn_commit_options o = { .message = "fixture" };
  struct cairn_branch *b;
  void *buf = malloc (len ? len : 1);
  int r;

  if (!buf)
    return -1;
  fixture_fill (buf, len, seed);
  if (time && cairn_time_parse (time, &o.time) < 0) {
    free (buf);
    return -1;
  }
  r = cairn_branch_open (s, branch, CAIRN_BRANCH_WRITE, &b);
  if (r == 0) {
    struct cairn_bvol *v = cairn_branch_volume (b, "disk");
    r = len ? cairn_bvol_write (v, buf, len, off) : 0;
    if (r == 0)
      r = cairn_branch_commit (b, &o, id);
    cairn_branch_close (b);
  }
  free (buf);
  return r;
}

/* The commit SPEC (a branch, tag or id) names, into *ID. */
static inline int
fixture_resolve (struct cairn_store *s, const char *spec, struct cairn_id *id)
{
  struct cairn_txn *txn;
  struct cairn_ref ref;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_resolve (txn, spec, &ref);
  cairn_txn_abort (s, txn);
  if (r == 0)
    *id = ref.commit;
  return r;
}

/* A view of volume "disk" of commit ID (it outlives the transaction
 * that found the commit). */
static inline int
fixture_view (struct cairn_store *s, const struct cairn_id *id,
              struct cairn_view *v)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_view_open (s, txn, id, "disk", v);
  cairn_txn_abort (s, txn);
  return r;
}

/* Calls FN on every work record of the store (store.h: "work"), in a
 * read transaction.  0, or an error. */
static inline int
fixture_scan_work (struct cairn_store *s, cairn_record_scan_fn fn, void *arg)
{
  struct cairn_backend *b = cairn_store_backend (s);
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = b->ops->record_scan (cairn_txn_backend (txn), CAIRN_TABLE_WORK, "", 0,
                           NULL, 0, fn, arg);
  cairn_txn_abort (s, txn);
  return r < 0 ? r : 0;
}

/* The byte at OFF of commit ID's volume "disk", or -1. */
static inline int
fixture_byte (struct cairn_store *s, const struct cairn_id *id, uint64_t off)
{
  struct cairn_view v;
  char c = 0;
  int r = fixture_view (s, id, &v);

  if (r == 0)
    r = cairn_view_read (&v, &c, 1, off);
  return r < 0 ? -1 : c;
}

/* SHA-256 of volume "disk" of commit ID, read through a view. */
static inline int
fixture_digest (struct cairn_store *s, const struct cairn_id *id,
                struct cairn_id *digest)
{
  struct cairn_view v;
  int r = fixture_view (s, id, &v);

  if (r < 0)
    return r;
  char *buf = malloc (v.vol.size);
  if (!buf)
    return -1;
  r = cairn_view_read (&v, buf, v.vol.size, 0);
  if (r == 0)
    cairn_sha256 (buf, v.vol.size, digest);
  free (buf);
  return r;
}

/* The sequence number of the current checkpoint of the store at PATH
 * (store/redo.h: the higher of the two slots'), or 0. */
static inline uint64_t
fixture_checkpoint_seq (const char *path)
{
  char file[600], *data = NULL;
  size_t len = 0;
  uint64_t seq = 0;

  snprintf (file, sizeof file, "%s/index/redo.ckpt", path);
  if (cairn_read_file (file, &data, &len) < 0)
    return 0;
  for (size_t at = 0; at + 16 <= len; at += 64 * 1024)
    if (memcmp (data + at, "cck1", 4) == 0 && cairn_le64 (data + at + 8) > seq)
      seq = cairn_le64 (data + at + 8);
  free (data);
  return seq;
}

/* Bytes of the store's pack files. */
static inline uint64_t
fixture_pack_bytes (struct cairn_store *s)
{
  struct cairn_backend *b = cairn_store_backend (s);
  uint64_t bytes = 0, packs = 0;
  b->ops->space (b, &bytes, &packs);
  return bytes;
}

static inline bool
fixture_pruned (struct cairn_store *s, const struct cairn_id *id)
{
  struct cairn_txn *txn;
  bool pruned = false;

  if (cairn_txn_begin (s, false, &txn) == 0) {
    pruned = cairn_commit_pruned (txn, id);
    cairn_txn_abort (s, txn);
  }
  return pruned;
}

#endif /* CAIRN_GC_FIXTURE_H */
