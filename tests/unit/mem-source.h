/* mem-source.h: an import source (store.h, struct cairn_import_source)
 * over bytes in memory, for the tests of import and of what reads an
 * imported volume back (views, du).
 *
 * Its extents, when offered, report every CAIRN_SECTOR of zeros as hole,
 * as a sparse file would.  It counts its reads, and can be told to fail
 * the read that covers one offset, or its extents query.
 */
#ifndef CAIRN_MEM_SOURCE_H
#define CAIRN_MEM_SOURCE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

struct mem_source {
  uint8_t *data;
  uint64_t size;
  bool with_extents;            /* offer the extents callback */
  int extents_error;            /* non-zero: extents fails with it */
  uint64_t fail_at;             /* the read covering it fails with -EIO;
                                   UINT64_MAX: none does */
  unsigned reads;               /* read calls so far */
};

/* A source of SIZE zero bytes.  Bails out if memory runs out. */
static inline void
mem_source_init (struct mem_source *m, uint64_t size)
{
  memset (m, 0, sizeof *m);
  m->size = size;
  m->fail_at = UINT64_MAX;
  m->data = calloc (size ? size : 1, 1);
  if (!m->data) {
    printf ("Bail out! out of memory\n");
    exit (1);
  }
}

static inline void
mem_source_free (struct mem_source *m)
{
  free (m->data);
  m->data = NULL;
}

static inline int
mem_source_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct mem_source *m = arg;

  __atomic_add_fetch (&m->reads, 1, __ATOMIC_SEQ_CST);
  if (off + len > m->size)
    return -EINVAL;
  if (m->fail_at >= off && m->fail_at < off + len)
    return -EIO;
  memcpy (buf, m->data + off, len);
  return 0;
}

static inline int
mem_source_extents (void *arg, uint64_t off, uint64_t len,
                    cairn_extent_fn fn, void *fnarg)
{
  struct mem_source *m = arg;
  uint64_t end = off + len, run = off;

  if (m->extents_error)
    return m->extents_error;
  while (run < end) {
    bool hole = cairn_is_zero (m->data + run,
                               CAIRN_MIN (end - run, (uint64_t) CAIRN_SECTOR));
    uint64_t at = run;
    while (at < end) {
      uint64_t n = CAIRN_MIN (end - at, (uint64_t) CAIRN_SECTOR);
      if (cairn_is_zero (m->data + at, n) != hole)
        break;
      at += n;
    }
    int r = fn (run, at - run, hole, fnarg);
    if (r)
      return r;
    run = at;
  }
  return 0;
}

/* The import source that reads M. */
static inline struct cairn_import_source
mem_source_of (struct mem_source *m)
{
  return (struct cairn_import_source) {
    .size = m->size,
    .read = mem_source_read,
    .extents = m->with_extents ? mem_source_extents : NULL,
    .arg = m,
  };
}

/* Imports M as volume VOLUME of BRANCH into *COMMIT (stats into *ST, if
 * not NULL). */
static inline int
mem_source_import (struct cairn_store *s, const char *branch,
                   const char *volume, struct mem_source *m,
                   struct cairn_id *commit, struct cairn_import_stats *st)
{
  struct cairn_import_source src = mem_source_of (m);

  return cairn_import (s, branch, volume, &src, NULL, NULL, NULL, commit, st);
}

/* True if volume VOLUME of COMMIT reads, through a view, exactly as M. */
static inline bool
mem_source_matches (struct cairn_store *s, const struct cairn_id *commit,
                    const char *volume, const struct mem_source *m)
{
  struct cairn_txn *txn;
  struct cairn_view v;
  bool same = false;

  if (cairn_txn_begin (s, false, &txn) < 0)
    return false;
  int r = cairn_view_open (s, txn, commit, volume, &v);
  cairn_txn_abort (s, txn);
  if (r < 0 || v.vol.size != m->size)
    return false;
  char *buf = malloc (m->size);
  if (buf && cairn_view_read (&v, buf, m->size, 0) == 0)
    same = memcmp (buf, m->data, m->size) == 0;
  free (buf);
  return same;
}

#endif /* CAIRN_MEM_SOURCE_H */
