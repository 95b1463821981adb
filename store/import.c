/* import.c: storing a whole volume from a byte source, in parallel.
 *
 * Design
 * ------
 * Hashing and compressing are the cost, and they are independent per
 * chunk, so worker threads (one per core) claim batches of chunks, ask the
 * source which parts are holes (never read), read the rest, and seal each
 * chunk (hash, dedup check, compress).  Results land in a ring indexed by
 * position; the calling thread consumes them strictly in order, puts the
 * chunks in write transactions and feeds the streaming tree builder, which
 * needs increasing indexes.  Workers never run more than the ring ahead of
 * the consumer, so memory is bounded (ring x chunk size) whatever the
 * volume's size: a 2 GiB or a 2 TiB image costs the same RAM.
 *
 * Transactions are committed every BATCH_BYTES of new data: each commit
 * syncs the pack first, so durability costs one fdatasync per batch, not
 * per chunk.  Nothing names the chunks and nodes until the final commit;
 * a pin keeps gc off them meanwhile, and if the process dies they are
 * garbage for gc to take.
 *
 * An incremental store (a base volume and a bitmap of changed chunks, for
 * VM memory) runs the same pipeline over the changed chunks only and
 * applies them to the base tree with tree_update: O(changed), not O(size).
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "store/internal.h"

#define RING 256                /* chunks in flight */
#define CLAIM 16                /* chunks a worker claims at once */
#define BATCH_BYTES (64ULL << 20)
#define MAX_WORKERS 16

struct result {
  bool ready;
  uint64_t index;
  struct cairn_sealed sealed;
  void *raw;                    /* kept for a known chunk */
};

struct pipeline {
  struct cairn_store *s;
  const struct cairn_import_source *src;
  uint32_t cs;
  const uint64_t *indexes;      /* NULL: every chunk 0..total-1 */
  uint64_t total;
  pthread_mutex_t lock;         /* guards everything below */
  pthread_cond_t space, ready;
  uint64_t next;                /* next position to claim */
  uint64_t consumed;            /* positions the consumer has taken */
  struct result ring[RING];
  int error;
};

static uint64_t
position_index (const struct pipeline *p, uint64_t pos)
{
  return p->indexes ? p->indexes[pos] : pos;
}

struct hole_map {
  uint64_t start;               /* byte offset of the batch */
  uint32_t cs;
  uint64_t data;                /* bit i: chunk i of the batch has data */
};

static int
mark_data (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct hole_map *h = arg;
  if (hole || len == 0)
    return 0;
  uint64_t first = (off - h->start) / h->cs;
  uint64_t last = (off + len - 1 - h->start) / h->cs;
  for (uint64_t i = first; i <= last && i < 64; i++)
    h->data |= 1ULL << i;
  return 0;
}

/* Reads the chunk at INDEX into a new R->raw (none for a hole, whose
 * R is sealed already: the zero id). */
static int
read_one (struct pipeline *p, uint64_t index, bool hole, struct result *r)
{
  uint64_t off = index * p->cs;

  memset (r, 0, sizeof *r);
  r->index = index;
  if (hole) {
    r->sealed.known = true;
    return 0;
  }
  r->raw = malloc (p->cs);
  if (!r->raw)
    return -ENOMEM;
  size_t n = CAIRN_MIN ((uint64_t) p->cs, p->src->size - off);
  if (n < p->cs)
    memset ((char *) r->raw + n, 0, p->cs - n);
  return p->src->read (p->src->arg, r->raw, n, off);
}

/* Seals the N results R that read_one read, together; keeps the bytes of
 * a chunk the store has (see struct result) and frees the rest. */
static int
seal_read (struct pipeline *p, struct result *r, size_t n)
{
  const void *raw[CLAIM];
  struct cairn_sealed sealed[CLAIM];
  size_t which[CLAIM], m = 0;
  int e;

  for (size_t i = 0; i < n; i++)
    if (r[i].raw) {
      raw[m] = r[i].raw;
      which[m++] = i;
    }
  e = cairn_chunk_seal_many (p->s, raw, m, sealed);
  for (size_t k = 0; k < m; k++) {
    struct result *x = &r[which[k]];
    x->sealed = sealed[k];
    if (e < 0 || !x->sealed.known || cairn_id_is_zero (&x->sealed.id)) {
      free (x->raw);
      x->raw = NULL;
    }
  }
  return e;
}

static void *
worker (void *arg)
{
  struct pipeline *p = arg;

  for (;;) {
    pthread_mutex_lock (&p->lock);
    while (p->error == 0 && p->next < p->total
           && p->next + CLAIM > p->consumed + RING)
      pthread_cond_wait (&p->space, &p->lock);
    if (p->error || p->next >= p->total) {
      pthread_mutex_unlock (&p->lock);
      return NULL;
    }
    uint64_t pos = p->next, end = CAIRN_MIN (pos + CLAIM, p->total);
    p->next = end;
    pthread_mutex_unlock (&p->lock);

    /* One extents query per claimed run of consecutive chunks. */
    struct hole_map holes = { .cs = p->cs, .data = ~0ULL };
    uint64_t i0 = position_index (p, pos), i1 = position_index (p, end - 1);
    if (p->src->extents && i1 - i0 == end - 1 - pos) {
      holes.start = i0 * p->cs;
      holes.data = 0;
      uint64_t len = CAIRN_MIN ((i1 + 1) * p->cs, p->src->size) - holes.start;
      if (p->src->extents (p->src->arg, holes.start, len, mark_data,
                           &holes) < 0)
        holes.data = ~0ULL;     /* unknown: read everything */
    }

    struct result r[CLAIM];
    int e = 0;
    for (uint64_t q = pos; q < end; q++) {
      uint64_t index = position_index (p, q);
      /* The map covers only a run of consecutive indexes (then
       * index - i0 < CLAIM): test that first, the shift needs it. */
      bool hole = p->src->extents && i1 - i0 == end - 1 - pos
        && !(holes.data >> (index - i0) & 1);
      int ee = read_one (p, index, hole, &r[q - pos]);
      if (ee < 0 && e == 0)
        e = ee;
    }
    /* After a failed read the batch is not sealed: its results only
     * carry the error (the ring's leftovers are freed at the end). */
    if (e == 0)
      e = seal_read (p, r, end - pos);
    pthread_mutex_lock (&p->lock);
    if (e < 0 && p->error == 0)
      p->error = e;
    for (uint64_t q = pos; q < end; q++) {
      p->ring[q % RING] = r[q - pos];
      p->ring[q % RING].ready = true;
    }
    pthread_cond_broadcast (&p->ready);
    pthread_mutex_unlock (&p->lock);
    if (e < 0)
      return NULL;
  }
}

/* What the consumer does with each chunk, in index order. */
struct sink {
  struct cairn_tree_builder *tb;        /* full build */
  struct tree_change *changes;          /* incremental */
  size_t nchanges;
};

/* Runs the pipeline; the consumer puts every chunk and hands its id to
 * SINK.  Commits every batch; leaves *TXN open for the caller's last
 * writes (nodes), to be committed by the caller. */
static int
run_pipeline (struct pipeline *p, struct sink *sink, struct cairn_txn **txnp,
              cairn_progress_fn progress, void *parg,
              struct cairn_import_stats *st)
{
  struct cairn_store *s = p->s;
  pthread_t th[MAX_WORKERS];
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  int nworkers = ncpu < 1 ? 1 : ncpu > MAX_WORKERS ? MAX_WORKERS : ncpu;
  int started = 0, r = 0;
  uint64_t batch = 0;
  struct cairn_txn *txn = NULL;

  for (; started < nworkers; started++)
    if (pthread_create (&th[started], NULL, worker, p) != 0)
      break;
  if (started == 0)
    return -EAGAIN;

  for (uint64_t pos = 0; pos < p->total && r == 0; pos++) {
    struct result res;
    pthread_mutex_lock (&p->lock);
    while (!p->ring[pos % RING].ready && p->error == 0)
      pthread_cond_wait (&p->ready, &p->lock);
    if (p->error) {
      r = p->error;
      pthread_mutex_unlock (&p->lock);
      break;
    }
    res = p->ring[pos % RING];
    p->ring[pos % RING].ready = false;
    p->consumed = pos + 1;
    pthread_cond_broadcast (&p->space);
    pthread_mutex_unlock (&p->lock);

    if (!txn && (r = cairn_txn_begin (s, true, &txn)) < 0)
      goto free_res;
    bool added;
    r = chunk_put_or_reseal (txn, res.raw, &res.sealed, &added);
    if (r < 0)
      goto free_res;
    st->chunks++;
    if (cairn_id_is_zero (&res.sealed.id))
      st->holes++;
    else if (added) {           /* once, however often the image has it */
      st->new_chunks++;
      st->stored_bytes += res.sealed.len;
      batch += res.sealed.len;
    }
    if (sink->tb)
      r = cairn_tree_builder_add (sink->tb, txn, res.index, &res.sealed.id);
    else {
      sink->changes[sink->nchanges].index = res.index;
      sink->changes[sink->nchanges].id = res.sealed.id;
      sink->nchanges++;
    }
    if (r == 0 && batch >= BATCH_BYTES) {
      r = cairn_txn_commit (s, txn);
      txn = NULL;
      batch = 0;
    }
    if (progress && (pos % 64 == 0 || pos + 1 == p->total))
      progress (parg, (pos + 1) * (uint64_t) p->cs, p->total * (uint64_t) p->cs);
  free_res:
    free (res.raw);
    cairn_sealed_free (&res.sealed);
  }

  pthread_mutex_lock (&p->lock);
  if (r < 0 && p->error == 0)
    p->error = r;
  pthread_cond_broadcast (&p->space);
  pthread_mutex_unlock (&p->lock);
  for (int i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  /* Results produced but not consumed (after an error). */
  for (size_t i = 0; i < RING; i++)
    if (p->ring[i].ready) {
      free (p->ring[i].raw);
      cairn_sealed_free (&p->ring[i].sealed);
      p->ring[i].ready = false;
    }
  if (r == 0 && !txn)
    r = cairn_txn_begin (s, true, &txn);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  *txnp = txn;
  return 0;
}

static void
pipeline_init (struct pipeline *p, struct cairn_store *s,
               const struct cairn_import_source *src)
{
  memset (p, 0, sizeof *p);
  p->s = s;
  p->src = src;
  p->cs = s->chunk_size;
  pthread_mutex_init (&p->lock, NULL);
  pthread_cond_init (&p->space, NULL);
  pthread_cond_init (&p->ready, NULL);
}

static void
pipeline_destroy (struct pipeline *p)
{
  pthread_mutex_destroy (&p->lock);
  pthread_cond_destroy (&p->space);
  pthread_cond_destroy (&p->ready);
}

int
cairn_volume_store (struct cairn_store *s,
                    const struct cairn_import_source *src,
                    const struct cairn_volume *base, const uint8_t *changed,
                    cairn_progress_fn progress, void *parg,
                    struct cairn_volume *out, struct cairn_import_stats *st)
{
  struct cairn_import_stats dummy;
  struct pipeline p;
  struct sink sink = { 0 };
  struct cairn_txn *txn = NULL;
  uint64_t *indexes = NULL;
  int r;

  if (!st)
    st = &dummy;
  memset (st, 0, sizeof *st);
  if (src->size == 0)
    return cairn_error (-EINVAL, "an empty volume cannot be stored");
  pipeline_init (&p, s, src);
  uint64_t nchunks = (src->size + p.cs - 1) / p.cs;
  unsigned levels = cairn_tree_levels (src->size, p.cs);
  bool incremental = base && changed && base->size == src->size
    && base->chunk_size == p.cs;

  if (incremental) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < nchunks; i++)
      n += (changed[i / 8] >> (i % 8)) & 1;
    indexes = malloc ((n ? n : 1) * sizeof *indexes);
    sink.changes = malloc ((n ? n : 1) * sizeof *sink.changes);
    if (!indexes || !sink.changes) {
      r = -ENOMEM;
      goto out;
    }
    n = 0;
    for (uint64_t i = 0; i < nchunks; i++)
      if ((changed[i / 8] >> (i % 8)) & 1)
        indexes[n++] = i;
    p.indexes = indexes;
    p.total = n;
  }
  else {
    p.total = nchunks;
    r = cairn_tree_builder_new (levels, &sink.tb);
    if (r < 0)
      goto out;
  }

  r = run_pipeline (&p, &sink, &txn, progress, parg, st);
  if (r < 0)
    goto out;
  memset (out, 0, sizeof *out);
  out->size = src->size;
  out->chunk_size = p.cs;
  if (incremental) {
    strcpy (out->name, base->name);
    r = tree_update (txn, &base->root, levels, sink.changes, sink.nchanges,
                     &out->root);
  }
  else
    r = cairn_tree_builder_finish (sink.tb, txn, &out->root);
  r = cairn_txn_end (s, txn, r);

 out:
  cairn_tree_builder_free (sink.tb);
  free (sink.changes);
  free (indexes);
  pipeline_destroy (&p);
  return r;
}

int
cairn_import (struct cairn_store *s, const char *branch, const char *volume,
              const struct cairn_import_source *src,
              const struct cairn_commit_options *o,
              cairn_progress_fn progress, void *parg,
              struct cairn_id *commit, struct cairn_import_stats *st)
{
  struct cairn_commit_options opts = o ? *o : (struct cairn_commit_options) { 0 };
  struct cairn_volume vol;
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  struct cairn_pin *pin;
  struct cairn_branch *b = NULL;
  bool exists;
  int r;

  if (!cairn_ref_name_valid (branch))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid branch name",
                        branch);
  if (!cairn_volume_name_valid (volume))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid volume name",
                        volume);
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    return r;
  r = cairn_branch_info_get (txn, branch, &info);
  exists = r == 0;
  if (exists)
    cairn_branch_info_free (&info);
  else if (r == CAIRN_ENOREF) {
    struct cairn_id tag;
    bool tagged = cairn_tag_get (txn, branch, &tag) == 0;
    cairn_clear_error ();
    r = tagged ? cairn_error (-EEXIST, "'%s' is a tag, not a branch", branch)
      : 0;
  }
  cairn_txn_abort (s, txn);
  if (r < 0)
    return r;
  /* Refuse a branch that another process holds and cannot commit before
   * storing anything; hold it meanwhile if nobody serves it. */
  if (exists) {
    r = cairn_branch_open_committer (s, branch, &b);
    if (r < 0)
      return r;
  }

  r = cairn_pin_begin (s, &pin);
  if (r < 0)
    goto out_branch;
  r = cairn_volume_store (s, src, NULL, NULL, progress, parg, &vol, st);
  if (r < 0)
    goto out;
  strcpy (vol.name, volume);
  if (!exists)
    r = cairn_branch_create_with_commit (s, branch, &vol, 1, &opts, commit);
  else {
    opts.set_volumes = &vol;
    opts.nset_volumes = 1;
    r = b ? cairn_branch_commit (b, &opts, commit)
      : cairn_commit_branch (s, branch, &opts, commit);
  }
 out:
  cairn_pin_end (pin);
 out_branch:
  if (b)
    cairn_branch_close (b);
  return r;
}
