/* gc.c: mark and sweep of chunks and tree nodes, while writers write.
 *
 * Design
 * ------
 * A run is four steps, each leaving the store consistent if the process
 * dies at any instant (every write below is one LMDB transaction, and
 * nothing is deleted that a committed transaction still names):
 *
 *  1. Epoch.  One write transaction bumps META "epoch" to E.  From then
 *     on every object put - new, or an existing one reused by dedup - is
 *     stamped E or later (backend.h: object_put refreshes epochs).
 *
 *  2. Mark, in one read transaction begun after step 1, from the roots
 *     (gc.h; roots.c).  Nodes go into an exact set, and a node already in
 *     it is not entered again, so the cost is O(distinct tree nodes) (each
 *     leaf adds its chunk ids once), however many commits share them.
 *     Chunks go into a set of 64-bit fingerprints (markset.c).  A node
 *     missing under a live root stops the run before anything is deleted.
 *
 *  3. Sweep.  An object is deleted if it is not marked *and* its epoch is
 *     below min(E, the oldest live pin's epoch).  Why this never deletes
 *     what a writer needs: anything a transaction committed before the
 *     mark snapshot names is marked; anything a transaction committed
 *     after step 1 names was put by that transaction (a commit puts its
 *     chunks and nodes; sealing puts a chunk with the record naming it;
 *     a branch made from a commit names a commit that is itself a root)
 *     and so carries epoch >= E; and a long writer that puts objects
 *     before naming them (import, VM memory) holds a pin whose epoch is at
 *     most theirs.  The epoch is read again inside each deleting
 *     transaction, so a chunk reused between mark and sweep survives; a
 *     writer that found a chunk known just before gc deleted it gets
 *     -ENOENT from its put and stores the chunk again (chunk.c).
 *     Deletions run in write transactions of at most txn_ms (2 ms) each,
 *     with a pause between them as long as the last one took, so a commit
 *     waits a few ms at most and gc holds the lock half the time at most.
 *
 *  4. Compaction of packs that became mostly garbage (compact.c).
 *
 * Commit objects are never deleted (tombstones keep their text), and
 * neither are records: retention, not gc, decides what history keeps.
 * Dead pin and lease records (their process is gone) are removed first.
 *
 * Only one gc (or fsck) runs at a time: STORE/run/gc.lock.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "gc/gc-internal.h"

void
gc_sleep_ns (int64_t ns)
{
  struct timespec ts = { ns / 1000000000, ns % 1000000000 };
  nanosleep (&ts, NULL);
}

int
gc_lock (struct cairn_store *s, const char *what, int *fd)
{
  char path[4096], holder[64] = "";

  snprintf (path, sizeof path, "%s/run/gc.lock", cairn_store_path (s));
  int f = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f == -1)
    return cairn_error (-errno, "%s: %m", path);
  if (flock (f, LOCK_EX | LOCK_NB) == -1) {
    int r = errno;
    ssize_t n = pread (f, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = '\0';
    holder[strcspn (holder, "\n")] = '\0';
    close (f);
    if (r == EWOULDBLOCK)
      return cairn_error (-EBUSY, "%s cannot run: %s holds the store's gc "
                          "lock", what, *holder ? holder : "another gc");
    return cairn_error (-r, "%s: %s", path, strerror (r));
  }
  int len = snprintf (holder, sizeof holder, "%s (pid %d)\n", what,
                      (int) getpid ());
  if (ftruncate (f, 0) == 0 && pwrite (f, holder, len, 0) != len) {
    /* the holder's name is only for the message of a refused run */
  }
  *fd = f;
  return 0;
}

void
gc_unlock (int fd)
{
  if (fd >= 0)
    close (fd);
}

int
gc_object_scan (struct cairn_store *s, struct cairn_txn *txn,
                enum cairn_object_type type, cairn_object_scan_fn fn,
                void *arg)
{
  struct cairn_backend *b = cairn_store_backend (s);
  int r = b->ops->object_scan (cairn_txn_backend (txn), type, NULL, fn, arg);
  return r > 0 ? 0 : r;
}

void
gc_step (const struct cairn_gc_options *o, const char *phase)
{
  if (o->step)
    o->step (o->step_arg, phase);
}

int
gc_txn_commit (struct cairn_store *s, struct cairn_txn *txn,
               int64_t began_ns, const struct cairn_gc_options *o,
               struct cairn_gc_report *report, const char *phase)
{
  int r = cairn_txn_commit (s, txn);

  if (r < 0)
    return r;
  gc_txn_account (report, began_ns, phase);
  gc_step (o, phase);
  return 0;
}

void
gc_txn_account (struct cairn_gc_report *report, int64_t began_ns,
                const char *phase)
{
  int64_t took = cairn_mono_ns () - began_ns;

  report->txns++;
  if (took > report->longest_txn_ns) {
    report->longest_txn_ns = took;
    report->longest_txn_phase = phase;
  }
}

/* ---- 1. epoch --------------------------------------------------------- */

static int
read_epoch (struct cairn_store *s, struct cairn_txn *txn, uint64_t *epoch)
{
  struct cairn_backend *b = cairn_store_backend (s);
  struct cairn_val v;
  *epoch = 0;
  int r = b->ops->record_get (cairn_txn_backend (txn), CAIRN_TABLE_META,
                              "epoch", 5, &v);
  if (r == -ENOENT) {
    *epoch = 0;
    return 0;
  }
  if (r < 0)
    return r;
  if (v.len != 8)
    return cairn_error (-EBADMSG, "the store's gc epoch record is corrupt");
  *epoch = cairn_le64 (v.data);
  return 0;
}

/* Bumps the epoch (or, dry, only reads what it would become). */
static int
bump_epoch (struct cairn_store *s, const struct cairn_gc_options *o,
            struct cairn_gc_report *report, uint64_t *epoch)
{
  struct cairn_backend *b = cairn_store_backend (s);
  struct cairn_txn *txn;
  uint8_t le[8];
  int r = cairn_txn_begin (s, !o->dry_run, &txn);
  int64_t began = cairn_mono_ns ();

  if (r < 0)
    return r;
  r = read_epoch (s, txn, epoch);
  if (r < 0 || o->dry_run) {
    cairn_txn_abort (s, txn);
    if (r == 0)
      ++*epoch;
    return r;
  }
  ++*epoch;
  cairn_put_le64 (le, *epoch);
  r = b->ops->record_put (cairn_txn_backend (txn), CAIRN_TABLE_META, "epoch",
                          5, le, sizeof le);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  return gc_txn_commit (s, txn, began, o, report, "epoch");
}

/* ---- 2. mark ---------------------------------------------------------- */

struct mark {
  struct cairn_txn *txn;
  struct idset nodes;           /* exact: never entered twice */
  struct markset chunks;
  struct cairn_id *children[GC_MAX_LEVELS];
  uint64_t chunk_refs;
};

/* Marks node ID of LEVEL and everything under it.  TOLERANT (under a
 * tombstone a ref or lease keeps): what is gone or broken is skipped,
 * since a tombstone's data may have been reclaimed before the ref came. */
static int
mark_node (struct mark *m, const struct cairn_id *id, unsigned level,
           bool tolerant)
{
  char hex[CAIRN_HEX_SIZE + 1];
  unsigned got;
  int r;

  if (cairn_id_is_zero (id) || idset_find (&m->nodes, id))
    return 0;
  cairn_id_to_hex (id, hex);
  if (level >= GC_MAX_LEVELS)
    r = cairn_error (-EBADMSG, "tree node %s is deeper than any tree", hex);
  else {
    r = cairn_tree_node_read (m->txn, id, &got, m->children[level]);
    if (r == -ENOENT)
      r = cairn_error (-EBADMSG, "tree node %s is missing", hex);
    else if (r == 0 && got != level)
      r = cairn_error (-EBADMSG, "tree node %s is at level %u, not %u", hex,
                       got, level);
  }
  if (r == -EBADMSG && tolerant) {
    cairn_clear_error ();
    return 0;
  }
  if (r == -EBADMSG) {
    char why[256];
    snprintf (why, sizeof why, "%s", cairn_last_error ());
    return cairn_error (r, "%s: the store is damaged and gc deletes nothing "
                        "on a guess; run cairn fsck", why);
  }
  if (r < 0)
    return r;
  if (!idset_add (&m->nodes, id, NULL))
    return -ENOMEM;

  const struct cairn_id *children = m->children[level];
  for (unsigned i = 0; i < GC_FANOUT; i++) {
    if (cairn_id_is_zero (&children[i]))
      continue;
    if (level == 0) {
      m->chunk_refs++;
      r = markset_add (&m->chunks, &children[i]);
    }
    else
      r = mark_node (m, &children[i], level - 1, tolerant);
    if (r < 0)
      return r;
  }
  return 0;
}

static int
mark_commit (struct mark *m, const struct cairn_id *id, bool tolerant)
{
  struct cairn_commit *c;
  int r = cairn_commit_read (m->txn, id, &c);

  if (r < 0) {
    char hex[CAIRN_HEX_SIZE + 1], why[256];
    if (tolerant) {
      cairn_clear_error ();
      return 0;
    }
    cairn_id_to_hex (id, hex);
    snprintf (why, sizeof why, "%s", cairn_last_error ());
    return cairn_error (r, "commit %s cannot be read (%s): run cairn fsck",
                        hex, why);
  }
  for (size_t i = 0; r == 0 && i < c->nvolumes; i++)
    r = mark_node (m, &c->volumes[i].root,
                   cairn_tree_levels (c->volumes[i].size,
                                      c->volumes[i].chunk_size) - 1,
                   tolerant);
  cairn_commit_free (c);
  return r;
}

/* Marks from every root: live ones first, so that damage under them is
 * found before a tolerant walk has stepped past it. */
static int
mark_roots (struct mark *m, const struct gc_roots *roots)
{
  int r = 0;

  for (size_t i = 0; r == 0 && i < roots->ncommits; i++)
    if (!roots->commits[i].pruned)
      r = mark_commit (m, &roots->commits[i].id, false);
  for (size_t i = 0; r == 0 && i < roots->ntrees; i++)
    r = mark_node (m, &roots->trees[i].root, roots->trees[i].levels - 1,
                   false);
  for (size_t i = 0; r == 0 && i < roots->nchunks; i++)
    r = markset_add (&m->chunks, &roots->chunks[i].id);
  for (size_t i = 0; r == 0 && i < roots->ncommits; i++)
    if (roots->commits[i].pruned)
      r = mark_commit (m, &roots->commits[i].id, true);
  return r;
}

/* ---- 3. sweep --------------------------------------------------------- */

struct victim {
  struct cairn_id id;
  enum cairn_object_type type;
};

struct select_ctx {
  struct mark *m;
  enum cairn_object_type type;
  uint64_t cutoff;
  struct victim *v;
  size_t n, cap;
  struct cairn_gc_report *report;
};

static int
select_victim (const struct cairn_id *id, const struct cairn_object_info *info,
               void *arg)
{
  struct select_ctx *c = arg;
  bool marked = c->type == CAIRN_OBJECT_CHUNK
    ? markset_has (&c->m->chunks, id) : idset_find (&c->m->nodes, id) != NULL;

  if (marked)
    return 0;
  if (info->epoch >= c->cutoff) {
    c->report->young_kept++;
    return 0;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 1024;
    struct victim *v = realloc (c->v, c->cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    c->v = v;
  }
  c->v[c->n].id = *id;
  c->v[c->n].type = c->type;
  c->n++;
  if (c->type == CAIRN_OBJECT_CHUNK) {
    c->report->chunks_swept++;
    c->report->chunk_bytes_swept += GC_RECORD_OVERHEAD + info->stored_len;
  }
  else {
    c->report->nodes_swept++;
    c->report->node_bytes_swept += info->stored_len;
  }
  return 0;
}

/* Deletes the victims in short transactions; each object is looked at
 * again inside the transaction that deletes it. */
static int
sweep (struct cairn_store *s, const struct cairn_gc_options *o,
       uint64_t cutoff, const struct victim *v, size_t n,
       struct cairn_gc_report *report)
{
  const struct cairn_backend_ops *ops = cairn_store_backend (s)->ops;
  int64_t budget = (int64_t) (o->txn_ms ? o->txn_ms : CAIRN_GC_TXN_MS)
    * 1000000;
  size_t i = 0;
  int r = 0;

  /* Counted again below, from what is really deleted. */
  report->chunks_swept = report->chunk_bytes_swept = 0;
  report->nodes_swept = report->node_bytes_swept = 0;
  while (r == 0 && i < n) {
    struct cairn_txn *txn;
    r = cairn_txn_begin (s, true, &txn);
    if (r < 0)
      break;
    int64_t began = cairn_mono_ns ();  /* holding the lock from here */
    struct cairn_btxn *bt = cairn_txn_backend (txn);
    for (size_t k = 0; r == 0 && i < n; i++, k++) {
      struct cairn_object_info info;
      if ((k % 16 == 15 && cairn_mono_ns () - began > budget)
          || (o->txn_objects && k == o->txn_objects))
        break;
      r = ops->object_stat (bt, v[i].type, &v[i].id, &info);
      if (r == -ENOENT) {
        r = 0;
        continue;
      }
      if (r < 0)
        break;
      if (info.epoch >= cutoff) {
        report->young_kept++;   /* reused since the mark */
        continue;
      }
      r = ops->object_delete (bt, v[i].type, &v[i].id);
      if (r < 0)
        break;
      if (v[i].type == CAIRN_OBJECT_CHUNK) {
        report->chunks_swept++;
        report->chunk_bytes_swept += GC_RECORD_OVERHEAD + info.stored_len;
        report->index_bytes_freed += CAIRN_ID_SIZE + 32;
      }
      else {
        report->nodes_swept++;
        report->node_bytes_swept += info.stored_len;
        report->index_bytes_freed += CAIRN_ID_SIZE + GC_INLINE_OVERHEAD
          + info.stored_len;
      }
    }
    if (r < 0) {
      cairn_txn_abort (s, txn);
      break;
    }
    r = gc_txn_commit (s, txn, began, o, report, "sweep");
    if (r == 0 && i < n)
      gc_sleep_ns (CAIRN_MAX (GC_PAUSE_NS, cairn_mono_ns () - began));
  }
  return r;
}

/* ---- the run ---------------------------------------------------------- */

static int
run (struct cairn_store *s, const struct cairn_gc_options *o,
     struct cairn_gc_report *report)
{
  struct mark m = { 0 };
  struct gc_roots roots;
  struct cairn_txn *txn = NULL;
  struct select_ctx sel = { .m = &m, .report = report };
  uint64_t epoch, pinned;
  int64_t t0;
  int r;

  if (!o->dry_run && (r = cairn_sessions_cleanup (s)) < 0)
    return r;
  r = bump_epoch (s, o, report, &epoch);
  if (r < 0)
    return r;
  r = cairn_pins_oldest_epoch (s, &pinned);
  if (r < 0)
    return r;
  report->epoch = epoch;
  report->sweep_below = CAIRN_MIN (epoch, pinned);

  /* 2. Mark, in one snapshot begun after the epoch changed. */
  t0 = cairn_mono_ns ();
  idset_init (&m.nodes);
  markset_init (&m.chunks);
  for (int i = 0; i < GC_MAX_LEVELS; i++)
    if (!(m.children[i] = malloc (GC_FANOUT * sizeof (struct cairn_id)))) {
      r = -ENOMEM;
      goto out;
    }
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0) {
    txn = NULL;
    goto out;
  }
  m.txn = txn;
  r = gc_roots_load (s, txn, o->extra_roots, o->extra_roots_arg, &roots);
  if (r < 0)
    goto out;
  for (size_t i = 0; i < roots.ncommits; i++)
    report->root_commits += !roots.commits[i].pruned;
  r = mark_roots (&m, &roots);
  gc_roots_free (&roots);
  if (r < 0)
    goto out;
  report->nodes_marked = m.nodes.count;
  report->chunks_marked = m.chunks.count;
  report->chunk_refs = m.chunk_refs;
  report->mark_ns = cairn_mono_ns () - t0;

  /* 3. Sweep what the mark did not reach and is old enough. */
  t0 = cairn_mono_ns ();
  sel.cutoff = report->sweep_below;
  sel.type = CAIRN_OBJECT_NODE;
  r = gc_object_scan (s, txn, CAIRN_OBJECT_NODE, select_victim, &sel);
  sel.type = CAIRN_OBJECT_CHUNK;
  if (r == 0)
    r = gc_object_scan (s, txn, CAIRN_OBJECT_CHUNK, select_victim, &sel);
  cairn_txn_abort (s, txn);
  txn = NULL;
  if (r < 0)
    goto out;
  if (o->dry_run)
    report->index_bytes_freed = report->node_bytes_swept
      + report->nodes_swept * (CAIRN_ID_SIZE + GC_INLINE_OVERHEAD)
      + report->chunks_swept * (CAIRN_ID_SIZE + 32);
  else
    r = sweep (s, o, sel.cutoff, sel.v, sel.n, report);
  report->sweep_ns = cairn_mono_ns () - t0;
  if (r < 0)
    goto out;

  /* 4. Compaction. */
  t0 = cairn_mono_ns ();
  double below = o->compact_below == 0 ? CAIRN_GC_COMPACT_BELOW
    : o->compact_below;
  r = gc_compact (s, o, below, &m.chunks, sel.cutoff, report);
  report->compact_ns = cairn_mono_ns () - t0;

 out:
  if (txn)
    cairn_txn_abort (s, txn);
  free (sel.v);
  idset_free (&m.nodes);
  markset_free (&m.chunks);
  for (int i = 0; i < GC_MAX_LEVELS; i++)
    free (m.children[i]);
  return r;
}

int
cairn_gc (struct cairn_store *s, const struct cairn_gc_options *o,
          struct cairn_gc_report *report)
{
  static const struct cairn_gc_options defaults;
  int64_t t0 = cairn_mono_ns ();
  int lock, r;

  if (!o)
    o = &defaults;
  memset (report, 0, sizeof *report);
  report->dry_run = o->dry_run;
  r = gc_lock (s, "gc", &lock);
  if (r < 0)
    return r;
  r = run (s, o, report);
  gc_unlock (lock);
  report->total_ns = cairn_mono_ns () - t0;
  return r;
}
