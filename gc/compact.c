/* compact.c: giving the space of dead chunks in packs back to the disk.
 *
 * Design
 * ------
 * A sweep only deletes index entries: the dead records stay in their
 * packs.  Compaction rewrites the packs whose live fraction fell below a
 * threshold: it copies their live records into new packs and unlinks
 * them.  Packs with nothing live are unlinked without copying.
 *
 *  1. Hold every pack no writer holds (cairn_pack_hold: the writers' own
 *     flock), inside a write transaction: a writer lets go of a pack it
 *     filled when it syncs it, just before its transaction commits, so
 *     outside one a pack nobody holds could still get entries from a
 *     transaction in flight.  From then on nobody appends to a held pack,
 *     so the entries naming it can only disappear (a sweep) or move (this
 *     compaction).
 *  2. In one snapshot taken after that, count each pack's live bytes (the
 *     records its index entries name) and choose the packs to rewrite;
 *     let go of the others; list the entries of the chosen ones.
 *  3. Copy those records, in pack order, to new packs (numbers reserved
 *     from next-pack in a short transaction, never reused; each file made
 *     outside it), rolling over at the pack size limit, writing each
 *     1 MiB out at once (sync_file_range) and syncing every 16 MiB, and
 *     after each resting four times as long as it took, with the copying
 *     thread's I/O in the idle class (so that commits' own syncs neither
 *     queue behind more than 1 MiB of gc's dirty pages nor lose the disk
 *     to gc for long).  After every output's final fdatasync,
 *     repoint the entries in id order, in short write transactions (at
 *     most 2 ms and 1024 entries): the moved entries are most of what the
 *     index has left after the sweep, so consecutive ids share index
 *     pages, and each transaction writes (and syncs) few of them - that
 *     write-out is what a commit waiting for the lock waits for.  An entry
 *     moves only if it still names its old place.
 *  4. Wait until every reader's snapshot is at least as new as the last
 *     repointing (mdb_reader_list): older snapshots could still look for
 *     a chunk in the old pack.  (A reader that does finds the pack gone and
 *     retries with a fresh snapshot anyway - store/chunk.c - so this wait
 *     is belt and braces.)  Past reader_wait_ms, the unlink is left to the
 *     next gc, which finds those packs empty.
 *  5. Check in a fresh snapshot that no entry names a chosen pack any
 *     more; cut each down 16 MiB at a time, resting as long as each cut
 *     took (on a filesystem mounted with discard, freeing gigabytes at
 *     once stalls every other sync for seconds); then unlink them inside
 *     a write transaction (no writer can be between opening a pack and
 *     locking it then) and sync the directory.
 *
 * kill -9 at any instant: before step 3's repointing the new packs hold
 * copies nobody names (garbage the next gc drops: a pack with nothing
 * live is unlinked); during it, each entry names either its old record or
 * its copy, both on disk and synced; after it, the old packs hold only
 * dead records.  A crash between a repointing and its being durable is
 * LMDB's business: the entry names the old place, which still exists,
 * because unlinks come after every repointing committed.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/ioprio.h>

#include "gc/gc-internal.h"

#define SYNC_EVERY (16ULL << 20)
/* What the output may have dirty in the page cache, at most: a writer's
 * fsync (ext4 commits its journal, flushing data whose blocks it
 * allocates) then never waits for more of gc's data than this. */
#define WRITE_BEHIND (1ULL << 20)
/* After each sync of the output, rest this many times as long as it
 * took: the disk is the writers' four fifths of the time. */
#define REST_PER_SYNC 4
#define READER_POLL_NS (10 * 1000000)
/* Entries repointed per transaction, at most: what a commit waiting for
 * the lock waits for is mostly the write-out of the pages they dirty. */
#define RELOCATE_PER_TXN 1024
/* A compacted pack's space goes back this much at a time. */
#define SHRINK_STEP (16ULL << 20)

struct pack {
  uint32_t number;
  uint64_t size;
  bool writable;                /* nobody held it when listed */
  int fd;                       /* held by us, or -1 */
  uint64_t live, live_bytes;
  bool chosen;
  bool keep;                    /* an entry still names it: do not unlink */
};

struct move {
  struct cairn_id id;
  struct cairn_object_info from;
  uint32_t to_pack;
  uint64_t to_offset;
  bool copied;
};

struct compact {
  struct cairn_store *s;
  const struct cairn_gc_options *o;
  struct cairn_gc_report *report;
  bool dry;
  const struct markset *marked;
  uint64_t cutoff;
  struct pack *packs;
  size_t npacks;
  struct move *moves;
  size_t nmoves, cap;
  uint64_t last_change;         /* snapshot id that last moved an entry */
  uint64_t written;             /* bytes of the packs written */
};

static int
pack_cmp (const void *key, const void *elem)
{
  uint32_t n = *(const uint32_t *) key;
  const struct pack *p = elem;
  return n < p->number ? -1 : n > p->number;
}

static struct pack *
find_pack (struct compact *c, uint32_t number)
{
  return bsearch (&number, c->packs, c->npacks, sizeof *c->packs, pack_cmp);
}

static int
move_cmp (const void *a, const void *b)
{
  const struct move *x = a, *y = b;
  if (x->from.pack != y->from.pack)
    return x->from.pack < y->from.pack ? -1 : 1;
  return x->from.offset < y->from.offset ? -1 : x->from.offset > y->from.offset;
}

static int
list_packs (struct compact *c)
{
  struct cairn_pack_stat *st;
  size_t n;
  int r = cairn_packs_list (cairn_store_backend (c->s), &st, &n);

  if (r < 0)
    return r;
  c->packs = calloc (n ? n : 1, sizeof *c->packs);
  if (!c->packs) {
    free (st);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    c->packs[i].number = st[i].pack;
    c->packs[i].size = st[i].size;
    c->packs[i].writable = st[i].writable;
    c->packs[i].fd = -1;
  }
  c->npacks = n;
  free (st);
  return 0;
}

static void
release (struct pack *p)
{
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
}

/* Step 1, inside a write transaction: a writer lets go of a pack it
 * filled when it syncs it, just before its transaction commits, so a
 * pack nobody holds may still get entries from a transaction in flight;
 * with the write lock taken, none is. */
static int
hold_packs (struct compact *c)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (c->s, true, &txn);

  if (r < 0)
    return r;
  for (size_t i = 0; i < c->npacks; i++) {
    struct pack *p = &c->packs[i];
    r = cairn_pack_hold (cairn_store_backend (c->s), p->number, &p->fd);
    if (r < 0) {
      p->fd = -1;
      c->report->packs_busy += r == -EAGAIN;
    }
  }
  cairn_txn_abort (c->s, txn);
  return 0;
}

static bool
is_live (struct compact *c, const struct cairn_id *id,
         const struct cairn_object_info *info)
{
  /* Really: whatever the index still names.  Dry: what a sweep would
   * leave. */
  return !c->dry || info->epoch >= c->cutoff || markset_has (c->marked, id);
}

static int
count_live (const struct cairn_id *id, const struct cairn_object_info *info,
            void *arg)
{
  struct compact *c = arg;
  struct pack *p = find_pack (c, info->pack);

  if (p && is_live (c, id, info)) {
    p->live++;
    p->live_bytes += GC_RECORD_OVERHEAD + info->stored_len;
  }
  return 0;
}

static int
collect_moves (const struct cairn_id *id,
               const struct cairn_object_info *info, void *arg)
{
  struct compact *c = arg;
  struct pack *p = find_pack (c, info->pack);

  if (!p || !p->chosen)
    return 0;
  if (c->nmoves == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 1024;
    struct move *m = realloc (c->moves, c->cap * sizeof *m);
    if (!m)
      return -ENOMEM;
    c->moves = m;
  }
  memset (&c->moves[c->nmoves], 0, sizeof *c->moves);
  c->moves[c->nmoves].id = *id;
  c->moves[c->nmoves].from = *info;
  c->nmoves++;
  return 0;
}

/* Step 2: live bytes per pack, the choice, and the entries to move. */
static int
choose (struct compact *c, double below)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (c->s, false, &txn);

  if (r < 0)
    return r;
  r = gc_object_scan (c->s, txn, CAIRN_OBJECT_CHUNK, count_live, c);
  for (size_t i = 0; r == 0 && i < c->npacks; i++) {
    struct pack *p = &c->packs[i];
    if (c->dry ? !p->writable : p->fd < 0)
      continue;
    double live = (double) (GC_PACK_HEADER + p->live_bytes) / (p->size ? p->size
                                                             : 1);
    p->chosen = p->live == 0 || live < below;
    if (!p->chosen)
      release (p);
  }
  if (r == 0 && !c->dry)
    r = gc_object_scan (c->s, txn, CAIRN_OBJECT_CHUNK, collect_moves, c);
  c->last_change = cairn_btxn_snapshot (cairn_txn_backend (txn));
  cairn_txn_abort (c->s, txn);
  return r;
}

/* Repoints the copied entries MOVES[FROM, TO) in short transactions. */
static int
relocate (struct compact *c, size_t from, size_t to)
{
  int64_t budget = (int64_t) (c->o->txn_ms ? c->o->txn_ms : CAIRN_GC_TXN_MS)
    * 1000000;
  size_t i = from;
  int r = 0;

  while (r == 0 && i < to) {
    struct cairn_txn *txn;
    r = cairn_txn_begin (c->s, true, &txn);
    if (r < 0)
      break;
    int64_t began = cairn_mono_ns ();  /* holding the lock from here */
    struct cairn_btxn *bt = cairn_txn_backend (txn);
    for (size_t k = 0; r >= 0 && i < to; i++, k++) {
      struct move *m = &c->moves[i];
      if ((k % 16 == 15 && cairn_mono_ns () - began > budget)
          || k == (c->o->txn_objects ? c->o->txn_objects : RELOCATE_PER_TXN))
        break;
      if (m->copied)
        r = cairn_chunk_relocate (bt, &m->id, m->from.pack, m->from.offset,
                                  m->to_pack, m->to_offset);
    }
    uint64_t snapshot = cairn_btxn_snapshot (bt);
    if (r < 0) {
      cairn_txn_abort (c->s, txn);
      break;
    }
    r = gc_txn_commit (c->s, txn, began, c->o, c->report, "relocate");
    if (r == 0) {
      c->last_change = snapshot;
      if (i < to)
        gc_sleep_ns (CAIRN_MAX (GC_PAUSE_NS, cairn_mono_ns () - began));
    }
  }
  return r;
}

/* The copying thread's I/O runs in the idle class: the disk serves a
 * writer's syncs first.  Transactions go back to the normal class, or
 * a commit waiting for the index's lock would wait for gc's slowed sync
 * (priority inversion).  Where the kernel has no I/O priorities this
 * changes nothing. */
static void
io_idle (bool idle)
{
  int prio = idle ? IOPRIO_PRIO_VALUE (IOPRIO_CLASS_IDLE, 0)
    : IOPRIO_PRIO_VALUE (IOPRIO_CLASS_BE, 4);
  syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio);
}

/* Syncs OUT and closes it; its entries are repointed later. */
static int
finish_output (struct compact *c, struct cairn_pack_out *out)
{
  c->written += cairn_pack_out_size (out);
  return cairn_pack_out_close (out);
}

static int
move_id_cmp (const void *a, const void *b)
{
  const struct move *x = a, *y = b;
  return memcmp (x->id.bytes, y->id.bytes, CAIRN_ID_SIZE);
}

static int
new_output (struct compact *c, struct cairn_pack_out **out)
{
  struct cairn_txn *txn;
  uint32_t number;
  int r = cairn_txn_begin (c->s, true, &txn);
  int64_t began = cairn_mono_ns ();

  if (r < 0)
    return r;
  io_idle (false);
  r = cairn_pack_out_reserve (cairn_txn_backend (txn), &number);
  if (r < 0)
    cairn_txn_abort (c->s, txn);
  else
    r = gc_txn_commit (c->s, txn, began, c->o, c->report, "reserve");
  io_idle (true);
  /* The file is made outside the transaction: its syncs hold no lock. */
  if (r == 0)
    r = cairn_pack_out_create (cairn_store_backend (c->s), number, out);
  if (r < 0)
    return r;
  gc_step (c->o, "pack");
  c->report->packs_written++;
  return 0;
}

/* Step 3. */
static int
copy_live (struct compact *c)
{
  uint64_t limit = cairn_pack_limit (cairn_store_backend (c->s));
  struct cairn_pack_out *out = NULL;
  uint64_t unsynced = 0, behind = 0;
  int r = 0;

  if (c->nmoves > 1)
    qsort (c->moves, c->nmoves, sizeof *c->moves, move_cmp);
  io_idle (true);
  for (size_t i = 0; r == 0 && i < c->nmoves; i++) {
    struct move *m = &c->moves[i];
    uint64_t len = GC_RECORD_OVERHEAD + m->from.stored_len;
    if (out && cairn_pack_out_size (out) + len > limit) {
      r = finish_output (c, out);
      out = NULL;
      if (r < 0)
        break;
    }
    if (!out) {
      r = new_output (c, &out);
      if (r < 0)
        break;
      unsynced = behind = 0;
    }
    struct pack *p = find_pack (c, m->from.pack);
    r = cairn_pack_out_copy (out, p->fd, &m->id, &m->from, &m->to_offset);
    if (r == -EBADMSG) {
      /* A damaged record stays where it is, for fsck to name. */
      p->keep = true;
      r = 0;
      continue;
    }
    if (r < 0)
      break;
    m->to_pack = cairn_pack_out_number (out);
    m->copied = true;
    c->report->bytes_copied += len;
    unsynced += len;
    behind += len;
    if (behind >= WRITE_BEHIND) {
      int64_t t0 = cairn_mono_ns ();
      r = cairn_pack_out_write_behind (out);
      gc_sleep_ns (REST_PER_SYNC * (cairn_mono_ns () - t0));
      behind = 0;
    }
    if (r == 0 && unsynced >= SYNC_EVERY) {
      /* Rest: writers' own syncs get most of the disk. */
      int64_t t0 = cairn_mono_ns ();
      r = cairn_pack_out_sync (out);
      gc_sleep_ns (REST_PER_SYNC * (cairn_mono_ns () - t0));
      unsynced = 0;
    }
  }
  if (out) {
    int rf = finish_output (c, out);
    if (r == 0)
      r = rf;
  }
  io_idle (false);
  /* Every copy is durable now.  Repoint the entries in id order: the
   * moved entries are most of what the index has left, so consecutive ids
   * share index pages and each transaction writes few of them. */
  if (r == 0 && c->nmoves > 1)
    qsort (c->moves, c->nmoves, sizeof *c->moves, move_id_cmp);
  if (r == 0)
    r = relocate (c, 0, c->nmoves);
  return r;
}

/* Step 4: true once no reader is older than the last moved entry. */
static bool
readers_caught_up (struct compact *c)
{
  int64_t wait = (int64_t) (c->o->reader_wait_ms ? c->o->reader_wait_ms
                            : 2000) * 1000000;
  int64_t deadline = cairn_mono_ns () + wait;

  for (;;) {
    uint64_t oldest;
    if (cairn_index_oldest_reader (cairn_store_backend (c->s), &oldest) < 0)
      return false;
    if (oldest >= c->last_change)
      return true;
    if (cairn_mono_ns () > deadline)
      return false;
    gc_sleep_ns (READER_POLL_NS);
  }
}

/* Step 5, first half: keep any chosen pack an entry still names. */
static int
verify_empty (struct compact *c)
{
  const struct cairn_backend_ops *ops = cairn_store_backend (c->s)->ops;
  struct cairn_txn *txn;
  int r = cairn_txn_begin (c->s, false, &txn);

  if (r < 0)
    return r;
  for (size_t i = 0; r == 0 && i < c->nmoves; i++) {
    struct move *m = &c->moves[i];
    struct cairn_object_info now;
    r = ops->object_stat (cairn_txn_backend (txn), CAIRN_OBJECT_CHUNK,
                          &m->id, &now);
    if (r == -ENOENT) {
      r = 0;
      continue;
    }
    if (r == 0 && now.pack == m->from.pack)
      find_pack (c, m->from.pack)->keep = true;
  }
  cairn_txn_abort (c->s, txn);
  return r;
}

/* Step 5, second half: the packs' space goes back in SHRINK_STEP steps,
 * resting as long as each took, outside any transaction; then the empty
 * files go, in one short transaction. */
static int
shrink_chosen (struct compact *c)
{
  for (size_t i = 0; i < c->npacks; i++) {
    struct pack *p = &c->packs[i];
    if (!p->chosen || p->keep)
      continue;
    for (uint64_t size = p->size; size > 0;) {
      int64_t t0 = cairn_mono_ns ();
      size = size > SHRINK_STEP ? size - SHRINK_STEP : 0;
      int r = cairn_pack_shrink (cairn_store_backend (c->s), p->number,
                                 p->fd, size);
      if (r < 0)
        return r;
      gc_step (c->o, "shrink");
      gc_sleep_ns (cairn_mono_ns () - t0);
    }
  }
  return 0;
}

static int
unlink_chosen (struct compact *c)
{
  struct cairn_txn *txn;
  uint64_t freed = 0;
  bool any = false;
  int r = shrink_chosen (c);

  if (r == 0)
    r = cairn_txn_begin (c->s, true, &txn);
  if (r < 0)
    return r;
  int64_t began = cairn_mono_ns ();
  for (size_t i = 0; r == 0 && i < c->npacks; i++) {
    struct pack *p = &c->packs[i];
    if (!p->chosen || p->keep)
      continue;
    r = cairn_pack_unlink (cairn_txn_backend (txn), p->number);
    if (r < 0)
      break;
    any = true;
    freed += p->size;
    if (p->live)
      c->report->packs_compacted++;
    else
      c->report->packs_emptied++;
  }
  /* The transaction only kept writers out while files went away. */
  cairn_txn_abort (c->s, txn);
  gc_txn_account (c->report, began, "unlink");
  if (any) {
    int rs = cairn_packs_sync_dir (cairn_store_backend (c->s));
    if (r == 0)
      r = rs;
    gc_step (c->o, "unlink");
  }
  c->report->reclaimed_bytes = freed > c->written ? freed - c->written : 0;
  return r;
}

/* What a dry run would give back: chosen packs minus their live bytes. */
static void
plan (struct compact *c)
{
  uint64_t limit = cairn_pack_limit (cairn_store_backend (c->s));
  uint64_t freed = 0, copied = 0;

  for (size_t i = 0; i < c->npacks; i++) {
    struct pack *p = &c->packs[i];
    if (!p->chosen)
      continue;
    freed += p->size;
    copied += p->live_bytes;
    if (p->live)
      c->report->packs_compacted++;
    else
      c->report->packs_emptied++;
  }
  c->report->bytes_copied = copied;
  c->report->packs_written = (copied + limit - 1) / limit;
  c->written = copied + c->report->packs_written * GC_PACK_HEADER;
  c->report->reclaimed_bytes = freed > c->written ? freed - c->written : 0;
}

static void
totals (struct compact *c, uint64_t *packs, uint64_t *bytes)
{
  *packs = *bytes = 0;
  for (size_t i = 0; i < c->npacks; i++) {
    (*packs)++;
    *bytes += c->packs[i].size;
  }
}

int
gc_compact (struct cairn_store *s, const struct cairn_gc_options *o,
            double below, const struct markset *marked, uint64_t cutoff,
            struct cairn_gc_report *report)
{
  struct compact c = { .s = s, .o = o, .report = report, .dry = o->dry_run,
                       .marked = marked, .cutoff = cutoff };
  int r = list_packs (&c);

  if (r < 0)
    return r;
  totals (&c, &report->packs_before, &report->pack_bytes_before);
  if (!c.dry) {
    cairn_pack_out_remove_stale (cairn_store_backend (s));
    r = hold_packs (&c);
  }
  else
    for (size_t i = 0; i < c.npacks; i++)
      report->packs_busy += !c.packs[i].writable;
  if (r == 0)
    r = choose (&c, below);
  if (r == 0 && c.dry)
    plan (&c);
  else if (r == 0) {
    r = copy_live (&c);
    if (r == 0 && !readers_caught_up (&c)) {
      for (size_t i = 0; i < c.npacks; i++)
        report->packs_deferred += c.packs[i].chosen;
    }
    else if (r == 0) {
      r = verify_empty (&c);
      if (r == 0)
        r = unlink_chosen (&c);
    }
  }
  for (size_t i = 0; i < c.npacks; i++)
    release (&c.packs[i]);
  free (c.packs);
  free (c.moves);
  c.packs = NULL;
  c.npacks = 0;
  if (r == 0 && !c.dry) {
    r = list_packs (&c);
    if (r == 0)
      totals (&c, &report->packs_after, &report->pack_bytes_after);
    free (c.packs);
  }
  else if (r == 0) {
    report->packs_after = report->packs_before + report->packs_written
      - report->packs_compacted - report->packs_emptied;
    report->pack_bytes_after = report->pack_bytes_before
      - report->reclaimed_bytes;
  }
  return r;
}
