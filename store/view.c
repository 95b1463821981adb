/* view.c: reading a committed volume (a tree) without a branch. */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "store/internal.h"

void
cairn_view_init (struct cairn_store *s, const struct cairn_volume *vol,
                 struct cairn_view *v)
{
  v->s = s;
  v->vol = *vol;
  v->levels = cairn_tree_levels (vol->size, vol->chunk_size);
}

int
cairn_view_open (struct cairn_store *s, struct cairn_txn *txn,
                 const struct cairn_id *commit, const char *name,
                 struct cairn_view *v)
{
  struct cairn_commit *c;
  int r = cairn_commit_read (txn, commit, &c);

  if (r < 0)
    return r;
  const struct cairn_volume *vol = cairn_commit_volume (c, name);
  if (!vol) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (commit, hex);
    cairn_commit_free (c);
    return cairn_error (CAIRN_ENOVOLUME, "commit %.12s has no volume '%s'",
                        hex, name);
  }
  if (cairn_commit_pruned (txn, commit)) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (commit, hex);
    cairn_commit_free (c);
    return cairn_error (-ENOENT, "commit %.12s was pruned: its volumes are "
                        "gone", hex);
  }
  cairn_view_init (s, vol, v);
  cairn_commit_free (c);
  return 0;
}

int
cairn_view_chunk (struct cairn_view *v, struct cairn_txn *txn, uint64_t i,
                  struct cairn_id *id)
{
  return tree_lookup (txn, &v->vol.root, v->levels, i, id);
}

/* Chunks cairn_view_read looks up, then reads together. */
#define VIEW_PARTS 64

int
cairn_view_read (struct cairn_view *v, void *buf, size_t len, uint64_t off)
{
  uint32_t cs = v->vol.chunk_size;
  struct cairn_chunk_part parts[VIEW_PARTS];
  char *p = buf;
  int r = 0;

  if (off > v->vol.size || len > v->vol.size - off)
    return -EINVAL;
  if (cairn_id_is_zero (&v->vol.root)) {
    memset (buf, 0, len);
    return 0;
  }
  while (len > 0 && r == 0) {
    struct cairn_txn *txn;
    size_t n = 0;
    r = cairn_txn_begin (v->s, false, &txn);
    if (r < 0)
      return r;
    for (; n < VIEW_PARTS && len > 0 && r == 0; n++) {
      struct cairn_chunk_part *part = &parts[n];
      part->within = off % cs;
      part->len = CAIRN_MIN (len, cs - part->within);
      part->buf = p;
      r = tree_lookup (txn, &v->vol.root, v->levels, off / cs, &part->id);
      p += part->len;
      off += part->len;
      len -= part->len;
    }
    cairn_txn_abort (v->s, txn);
    if (r == 0)
      r = cairn_chunk_read_parts (v->s, parts, n);
  }
  return r;
}

struct extent_ctx {
  uint32_t cs;
  uint64_t start, end;          /* the byte range asked for */
  uint64_t pos;                 /* reported up to here */
  cairn_extent_fn fn;
  void *arg;
  /* the run being built */
  uint64_t run_off, run_len;
  bool run_hole;
};

static int
extent_emit (struct extent_ctx *x, uint64_t off, uint64_t len, bool hole)
{
  if (len == 0)
    return 0;
  if (x->run_len > 0 && x->run_hole == hole
      && x->run_off + x->run_len == off) {
    x->run_len += len;
    return 0;
  }
  if (x->run_len > 0) {
    int r = x->fn (x->run_off, x->run_len, x->run_hole, x->arg);
    if (r)
      return r;
  }
  x->run_off = off;
  x->run_len = len;
  x->run_hole = hole;
  return 0;
}

static int
extent_chunk (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct extent_ctx *x = arg;
  uint64_t lo = CAIRN_MAX (index * x->cs, x->start);
  uint64_t hi = CAIRN_MIN ((index + 1) * x->cs, x->end);
  int r = extent_emit (x, x->pos, lo - x->pos, true);

  if (r == 0)
    r = extent_emit (x, lo, hi - lo, false);
  x->pos = hi;
  return r;
}

int
cairn_view_extents (struct cairn_view *v, uint64_t off, uint64_t len,
                    cairn_extent_fn fn, void *arg)
{
  struct extent_ctx x = { .cs = v->vol.chunk_size, .start = off,
                          .end = off + len, .pos = off, .fn = fn,
                          .arg = arg };
  struct cairn_txn *txn;
  int r;

  if (off > v->vol.size || len > v->vol.size - off)
    return -EINVAL;
  if (len == 0)
    return 0;
  r = cairn_txn_begin (v->s, false, &txn);
  if (r < 0)
    return r;
  r = cairn_tree_walk (txn, &v->vol.root, v->levels, off / x.cs,
                       (off + len - 1) / x.cs, extent_chunk, &x);
  cairn_txn_abort (v->s, txn);
  if (r == 0)
    r = extent_emit (&x, x.pos, x.end - x.pos, true);
  if (r == 0 && x.run_len > 0)
    r = fn (x.run_off, x.run_len, x.run_hole, arg);
  return r < 0 ? r : 0;
}
