/* branch.c: writable branches: working state over a base commit.
 *
 * Design
 * ------
 * A branch volume is its base tree plus an overlay of *entries*, one per
 * chunk that differs from the base.  An entry is either
 *
 *   SEALED(id)    the chunk's new content is the stored chunk ID (zero id:
 *                 all zeros), or
 *   DIRTY         the chunk is being written: sectors whose bit is set in
 *                 its bitmap are in a *slot* of the volume's scratch file,
 *                 the others are those of its *underlay* chunk.
 *
 * A write goes straight to the slot (no read-modify-write of the chunk: the
 * bitmap says which 512-byte sectors are new), so writing costs what a raw
 * file costs.  Sealing turns a DIRTY entry into SEALED: merge slot and
 * underlay, hash, compress, append to a pack.  The background sealer does
 * this for chunks that went quiet, so that a commit is normally only
 * metadata: O(entries x tree height) node writes and one transaction.
 *
 * Scratch files (STORE/branches/NAME/VOLUME.scratch) are arrays of chunk-
 * sized slots, reused through a free list, so they stay as big as the
 * unsealed working set, never as big as the volume.
 *
 * Durability.  Entries are persisted in the "work" table (format: store.h).
 *
 * Stale records.  A commit bumps the branch's work epoch when it freezes
 * the overlay, and its transaction writes the epoch before the bump into
 * the branch record ("absorbed"): every record of that epoch or older
 * was written before the freeze, so the commit holds what it says (or
 * something newer), and it is stale from then on - read as if absent.
 * So a commit deletes only the records of the entries it has in memory,
 * and only if they are few (a transaction that dirtied a page per record
 * grew with the working state); the sealer deletes stale ones later, in
 * small transactions, and a record rewritten after the freeze simply
 * replaces its stale one.
 *
 * flush snapshots the entries changed since the last flush, fdatasyncs the
 * scratch files, then writes their records, in key order and at most
 * FLUSH_BATCH_RECORDS a transaction: a flushed write survives kill -9 and
 * power loss.  Sealing puts a chunk and the
 * record naming it in one transaction (so gc can never see the chunk
 * unreferenced).  A slot is reused only when nothing names it any more:
 * not its entry, not its persisted record, not a commit capturing it, not
 * a read or write in flight.  One reference count per slot counts all of
 * these ("holds").
 *
 * Commit.  A commit must contain every write acknowledged before it was
 * asked for, and be a consistent point in time, without stopping writers.
 * It freezes the overlay under the lock (copying the small SEALED entries,
 * marking DIRTY ones frozen), then captures each frozen chunk: a writer
 * that reaches a frozen chunk first moves the entry to a fresh, empty
 * slot and leaves the old one to the commit ("detach"); otherwise the
 * committer reads the slot while writers of that one chunk wait.  A
 * detached entry copies nothing: until the commit ends, the sectors its
 * new bitmap lacks are those of the frozen chunk (the old slot where the
 * old bitmap has them, the underlay elsewhere), kept as the entry's
 * *pending* underlay; when the commit ends, the committed chunk is its
 * underlay.  Only a flush meanwhile (a record names one slot) or a failed
 * commit copies the old slot's sectors in ("merge").  Copying on every
 * detach made a commit of a branch written flat out copy its whole
 * working set through the page cache within a second or two, every
 * writer thread contending for the scratch file's inode lock meanwhile:
 * fio's writes fell to a tenth.
 * Captured chunks are stored a batch at a time, under a pin that keeps
 * gc off them, so that a commit's memory does not grow with the data it
 * seals.  The transaction then puts the new tree nodes, the commit and the
 * branch record, and deletes the work records that the commit absorbed -
 * those not rewritten by a flush since the freeze (persist_seq witness).
 * Entries untouched since the freeze leave the overlay; touched ones stay,
 * with the committed chunk as their underlay.
 *
 * Eviction.  An entry that is SEALED and persisted says nothing its record
 * does not, so it need not stay in memory: random writes all over a big
 * volume leave one such entry per chunk they touched, and without a bound
 * the overlay grew with them.  Past ENTRY_CACHE_MAX entries a volume's
 * sealer pass evicts them by clock (second chance for an entry used since
 * the last sweep); a lookup that misses in memory while the volume has
 * evicted entries reads the record back (entry_get).  Records of entries
 * not in memory never change: flush and the sealer write only the records
 * of entries in memory.  A commit does not read evicted entries back in
 * (its memory would grow with every chunk written since the last one): it
 * copies their records, as of its freeze, to a spill file, and applies
 * them to the tree from there COMMIT_TREE_BATCH at a time, merged with
 * the entries in memory; the records go stale with the commit (see Stale
 * records).  A lookup drops the lock while it reads, so it starts over if
 * an eviction, a commit or a new base came meanwhile (evict_gen,
 * base_gen): what it read may be stale then.  Eviction runs under
 * seal_mutex and persist_mutex, so no seal job, commit or flush holds a
 * pointer to the entry it frees.
 *
 * Locks, in the order they are taken:
 *   seal_mutex     one sealing pass or commit at a time (the sealer lets a
 *                  waiting commit in between two passes)
 *   persist_mutex  one transaction writing this branch's records at a time
 *   lock           the overlay: entries, slots, volumes, base (short holds)
 * `lock` is never held across I/O except the short LMDB reads of a tree
 * lookup; `cond` (with `lock`) wakes writers waiting for a busy entry.
 *
 * Not done, on purpose: readers from other processes never see the
 * working state (a branch names its last commit outside its writer), and a
 * branch handle always writes: read-only access is a view of a commit.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"

#define WORK_SEALED 1
#define WORK_SCRATCH 2
#define WORK_FIXED 40
#define WORK_SLOT_WHOLE 2
#define NO_SLOT UINT32_MAX
#define SEALER_PERIOD_MS 50
#define SEALER_IDLE_NS (200 * 1000000LL)
/* Heat (see Queues): a chunk rewritten soon after the sealer sealed it
 * waits HEAT_FACTOR times longer before it is sealed again, up to
 * HEAT_LEVELS - 1 times (12.8 s). */
#define HEAT_LEVELS 4
#define HEAT_FACTOR 4
#define SEALER_BATCH 64
/* The sealer's nice value: background work, it yields the CPU to the
 * threads that serve the writes (nbdkit's), and catches up when they
 * pause; a commit seals whatever it left.  Its hashing and compressing
 * run at SCHED_IDLE besides (cairn_thread_background), but for passes
 * that writers waiting on the dirty limit need, and while a commit waits
 * for its seal_mutex (the commit hurries it).  At nice 10 alone, its
 * compressing (and that of commits every 100 ms) kept woken nbdkit
 * threads waiting for a CPU: fio's p999 write latency at 1000 IOPS was
 * about 3 ms, with or without commits, most of it outside the plugin's
 * write; at SCHED_IDLE it is 0.6 to 0.9 ms, 1 to 2 ms with commits. */
#define SEALER_NICE 10
/* A commit stores what it seals when this much has piled up: memory
 * stays bounded (the plugin's whole budget beside its cache is 64 MiB),
 * and each batch costs a few syncs. */
#define COMMIT_BATCH_BYTES (4 << 20)
/* ... or when this many chunks have: each put of a chunk with a random
 * id dirties an index leaf of its own, and LMDB keeps a transaction's
 * dirty pages for good (see COMMIT_CHECKPOINT_NODES).  Chunks of random
 * 4K writes all over a big volume compress to a few hundred bytes, and
 * 4 MiB of them made a transaction of 15000 puts: 61 MiB the plugin
 * then kept (heaptrack). */
#define COMMIT_BATCH_CHUNKS 1024
/* A flush writes its records this many a transaction, for the same
 * reason: the first flush after fio's random writes all over a 1 TiB
 * branch (nbdkit flushes when the client disconnects) wrote 180000
 * records, each to a leaf of its own, in one transaction: 20 MiB of
 * pages LMDB then kept, and the plugin's peak RSS. */
#define FLUSH_BATCH_RECORDS 1024
/* The sealer and a commit read this many chunks, then hash them together.
 * The copies are what memory they cost: 1 MiB of 64 KiB chunks. */
#define SEAL_GROUP CAIRN_HASH_BATCH
/* A commit's tree nodes go to the index in parts of this many, each its
 * own transaction: LMDB keeps every page a transaction dirties in memory
 * (and its freed pages for good), and random writes all over a big
 * volume change a leaf per chunk.  1024 puts dirty about 4 MiB, which
 * LMDB then keeps for reuse. */
#define COMMIT_CHECKPOINT_NODES 1024
/* A commit reads the records of evicted entries, and applies them to the
 * tree, this many at a time (40 bytes each, twice). */
#define COMMIT_TREE_BATCH 16384
/* Stale work records the sealer deletes per transaction. */
#define STALE_BATCH 4096
/* A commit that seals more chunks than this does it at SEALER_NICE (see
 * capture_niced); fewer are a few milliseconds of CPU, over sooner at
 * full priority than yielding to whatever else runs (gc, say). */
#define COMMIT_NICE_CHUNKS 64
/* Such a commit's hashing and compressing run at SCHED_IDLE for this
 * long after it was asked for, and after that while they get at least
 * COMMIT_IDLE_PCT percent of a CPU; else at SEALER_NICE: never taking a
 * CPU from the threads serving writes cuts their tail latency, but
 * while other processes keep both CPUs busy SCHED_IDLE gets nearly
 * nothing, and a commit must end (with gc looping beside fio,
 * test-gc-plugin-fio saw commits of a few MiB take seconds).  Under fio's
 * random writes flat out, a commit's capture at SCHED_IDLE still had 12
 * to 15% of a CPU; at nice 10 after 200 ms, fio's p99 write latency was
 * 3.3 to 4.3 times what it was without commits (bench-plugin-fio), and
 * 1.65 to 2.5 times with this rule. */
#define COMMIT_IDLE_NS (200 * 1000000LL)
#define COMMIT_IDLE_PCT 5
/* The dirty limit: with the sealer running, a write that would make one
 * more chunk of a volume dirty waits while this much is dirty already
 * (slots in use), until the sealer or a commit has caught up.  Random
 * 4K writes all over a big volume dirty a whole chunk each, faster than
 * two cores can seal them; without a limit the backlog - and the memory
 * of its entries and of the commit that must seal it - grows without
 * bound.  The kernel bounds dirty pages the same way. */
#define DIRTY_LIMIT_BYTES (2ULL << 30)
/* Entries a volume keeps in memory before the sealer evicts SEALED,
 * persisted ones (about 200 bytes each): 16384 is a few MiB, and more
 * than a guest's working set of recently written chunks usually is. */
#define ENTRY_CACHE_MAX 16384
/* Base leaves a volume keeps (8 KiB each, by leaf number modulo this):
 * 64 cover 1 GiB of 64 KiB chunks. */
#define LEAF_CACHE_SLOTS 64

enum entry_state { ENTRY_SEALED, ENTRY_DIRTY };

/* A leaf of a base tree, as base_lookup keeps it. */
struct leaf {
  uint64_t no;                  /* chunk index / TREE_FANOUT */
  struct cairn_id root;         /* of the tree it was read from; zero:
                                   none yet (no lookup asks for it) */
  struct cairn_id child[TREE_FANOUT];
};

/* The queues an entry can be on (see Queues), and its links in one:
 * Q_SEAL is one queue per heat level, and an entry on one of them is on
 * that of its heat. */
enum { Q_SEAL, Q_META, NQUEUES };

struct entry;
struct qlink {
  struct entry *prev, *next;
  bool on;
};
struct queue {
  struct entry *head, *tail;
};

struct frozen;

/* A detached entry's underlay while the commit that froze it runs: the
 * sectors BITMAP marks are in SLOT (the frozen one, held), the others in
 * the entry's underlay chunk (see Commit). */
struct pending {
  uint32_t slot;
  uint8_t bitmap[];
};

struct entry {
  uint64_t index;
  struct entry *hnext;
  enum entry_state state;
  struct cairn_id id;           /* SEALED: chunk; DIRTY: underlay */
  uint32_t slot;                /* DIRTY: its slot */
  uint32_t rec_slot;            /* slot its persisted record names */
  bool persisted;               /* a record exists for this index */
  bool dirty_meta;              /* state differs from the record */
  bool busy;                    /* slot being captured or copied */
  bool referenced;              /* used since the clock last passed */
  unsigned writers;             /* writes in flight */
  uint64_t gen;                 /* bumped by every write */
  uint64_t persist_seq;         /* bumped by every record write */
  int64_t last_write;           /* monotonic ns */
  int64_t sealed_at;            /* monotonic ns: the sealer's last seal */
  unsigned heat;                /* < HEAT_LEVELS: see Queues */
  struct frozen *frozen;        /* a commit has not captured it yet */
  struct pending *pend;         /* DIRTY, detached: see Commit */
  struct qlink q[NQUEUES];
  uint8_t bitmap[];             /* DIRTY: sectors in the slot */
};

struct cairn_bvol {
  struct cairn_branch *b;
  char name[CAIRN_VOLUME_NAME_MAX + 1];
  uint64_t wid;
  uint64_t size;
  uint32_t cs;
  unsigned levels;
  struct cairn_id root;         /* base tree */
  int scratch_fd;
  bool scratch_unsynced;
  /* entries by chunk index */
  struct entry **buckets;
  size_t nbuckets, count;
  /* entries evicted: their records, not in memory (see Eviction) */
  size_t evicted;
  uint64_t evict_gen;           /* bumped when entries leave or come back */
  size_t clock_hand;            /* next bucket eviction looks at */
  struct queue queues[NQUEUES][HEAT_LEVELS];   /* Q_META: [0] only */
  /* slots */
  uint32_t *holds;              /* per slot */
  bool *frag;                   /* per slot: see Slots and the page cache */
  uint32_t nslots;              /* high-water mark */
  uint32_t *free_slots;         /* free and not fragmented */
  size_t nfree;
  uint32_t *free_frag;          /* free and fragmented */
  size_t nfree_frag;
  /* base leaves read lately (see base_lookup), under their own lock */
  pthread_mutex_t leaf_lock;
  struct leaf *leaves;          /* LEAF_CACHE_SLOTS, allocated on use */
};

struct cairn_branch {
  struct cairn_store *s;
  char *name;
  int lock_fd;
  struct cairn_branch_info info;   /* record as last persisted */
  pthread_mutex_t seal_mutex;
  pthread_mutex_t persist_mutex;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct cairn_bvol **vols;
  size_t nvols;
  uint64_t base_gen;            /* bumped when the base changes */
  size_t bitmap_bytes;          /* per entry: chunk size / 4096 */
  /* Tests only ($CAIRN_TEST_WRITE_STALL_MS at open): each write sleeps
   * this long between landing in the slot and being accounted, so that
   * a test can commit while a write is in flight. */
  unsigned test_write_stall_ms;
  /* Tests only, likewise: a commit sleeps this long between its freeze
   * and its first capture ($CAIRN_TEST_CAPTURE_STALL_MS); a merge of a
   * pending underlay before it copies ($CAIRN_TEST_MERGE_STALL_MS). */
  unsigned test_capture_stall_ms, test_merge_stall_ms;
  /* unaligned writes read-modify-write whole sectors one at a time */
  pthread_mutex_t rmw_mutex;
  /* background sealer */
  bool sealer_running, sealer_stop;
  size_t npend;                 /* entries with a pending underlay */
  atomic_int commits_waiting;   /* for seal_mutex: the sealer yields */
  atomic_int sealer_tid;        /* to hurry it (cairn_thread_hurry) */
  pthread_t sealer;
  pthread_cond_t sealer_cond;
  unsigned throttled;           /* writers waiting on the dirty limit */
  uint64_t dirty_limit;         /* DIRTY_LIMIT_BYTES, or the test's */
  int64_t sealer_idle_ns;       /* SEALER_IDLE_NS, or the test's */
  size_t entry_cache_max;       /* ENTRY_CACHE_MAX, or the test's */
  /* Records are written with the work epoch; a commit's freeze bumps it
   * (lock) and its transaction makes the one before the absorbed epoch
   * of info (see Stale records). */
  uint64_t work_epoch;
  bool stale_records;           /* some may be left: the sealer deletes
                                   them (persist_mutex) */
};

/* Tests' stall hooks: milliseconds from the environment, 0 if unset. */
static unsigned
env_ms (const char *name)
{
  const char *v = getenv (name);
  return v ? (unsigned) atoi (v) : 0;
}

static void
sleep_ms (unsigned ms)
{
  if (ms)
    nanosleep (&(struct timespec) { ms / 1000, (ms % 1000) * 1000000L },
               NULL);
}

/* ---- entries ---------------------------------------------------- */

static size_t
hash_index (uint64_t index, size_t n)
{
  index *= 0x9e3779b97f4a7c15ULL;
  return (index >> 20) & (n - 1);
}

static struct entry *
entry_find (struct cairn_bvol *v, uint64_t index)
{
  if (v->nbuckets == 0)
    return NULL;
  for (struct entry *e = v->buckets[hash_index (index, v->nbuckets)]; e;
       e = e->hnext)
    if (e->index == index)
      return e;
  return NULL;
}

static int
entries_grow (struct cairn_bvol *v)
{
  size_t n = v->nbuckets ? v->nbuckets * 2 : 256;
  struct entry **b = calloc (n, sizeof *b);

  if (!b)
    return -ENOMEM;
  for (size_t i = 0; i < v->nbuckets; i++) {
    struct entry *e = v->buckets[i], *next;
    for (; e; e = next) {
      next = e->hnext;
      size_t at = hash_index (e->index, n);
      e->hnext = b[at];
      b[at] = e;
    }
  }
  free (v->buckets);
  v->buckets = b;
  v->nbuckets = n;
  return 0;
}

static struct entry *
entry_new (struct cairn_bvol *v, uint64_t index)
{
  if (v->count + 1 > v->nbuckets && entries_grow (v) < 0)
    return NULL;
  struct entry *e = calloc (1, sizeof *e + v->b->bitmap_bytes);
  if (!e)
    return NULL;
  e->index = index;
  e->slot = e->rec_slot = NO_SLOT;
  size_t at = hash_index (index, v->nbuckets);
  e->hnext = v->buckets[at];
  v->buckets[at] = e;
  v->count++;
  return e;
}

/* ---- queues ---------------------------------------------------------
 *
 * The sealer and flush must not look at every entry in memory while
 * holding the lock: there are up to ENTRY_CACHE_MAX of them (more while
 * no commit came), and a walk of them all under the lock stalled every
 * writer for a millisecond or two, every sealer pass.  So each volume
 * keeps two queues, both under the lock:
 *
 *   Q_SEAL  DIRTY entries, least recently written first: the sealer
 *           takes the quiet ones from the head and stops at the first
 *           one written too recently;
 *   Q_META  entries whose record is stale (dirty_meta): flush takes
 *           them all.
 *
 * Heat.  "Quiet for SEALER_IDLE_NS" guesses that a chunk is done with;
 * random writes all over a disk that fits the dirty limit prove it
 * wrong most of the time: each chunk comes back every few hundred ms,
 * and the sealer hashed and compressed a whole chunk every few 4K
 * writes (with the sealer off, bench-plugin-fio's 4K random writes ran
 * 1.5 to 2 times as fast).  So an entry has a heat: written
 * again within its idle time after the sealer sealed it, it heats up a
 * level, and waits HEAT_FACTOR times longer next time; written again
 * only after HEAT_FACTOR times that, it cools down a level.  Q_SEAL is
 * a queue per level, each in last-write order with one idle time, so a
 * pass still stops at the first entry too recent in each.  An entry
 * changes level only off Q_SEAL (while SEALED).  A commit seals what it
 * takes whatever its heat; an entry evicted or committed forgets it.
 * Near the dirty limit heat is ignored: writers waiting on the limit
 * need chunks sealed, and a working set bigger than the limit, all hot,
 * would otherwise keep them waiting for the longest idle time.
 *
 * An entry may stay queued after it stopped qualifying (a DIRTY entry
 * zeroed, say); whoever pops it checks.  Entries leave every queue
 * before they are freed. */

static void
queue_remove (struct cairn_bvol *v, struct entry *e, int q)
{
  struct qlink *l = &e->q[q];
  struct queue *qu = &v->queues[q][q == Q_SEAL ? e->heat : 0];

  if (!l->on)
    return;
  if (l->prev)
    l->prev->q[q].next = l->next;
  else
    qu->head = l->next;
  if (l->next)
    l->next->q[q].prev = l->prev;
  else
    qu->tail = l->prev;
  l->prev = l->next = NULL;
  l->on = false;
}

/* E to the tail of queue Q (moved there if it was on it). */
static void
queue_push (struct cairn_bvol *v, struct entry *e, int q)
{
  struct qlink *l = &e->q[q];
  struct queue *qu = &v->queues[q][q == Q_SEAL ? e->heat : 0];

  if (l->on && qu->tail == e)
    return;
  queue_remove (v, e, q);
  l->prev = qu->tail;
  l->next = NULL;
  if (qu->tail)
    qu->tail->q[q].next = e;
  else
    qu->head = e;
  qu->tail = e;
  l->on = true;
}

/* How long an entry of heat H must be quiet before the sealer takes it,
 * when the least is IDLE_NS. */
static int64_t
heat_idle (int64_t idle_ns, unsigned h)
{
  while (h-- > 0)
    idle_ns *= HEAT_FACTOR;
  return idle_ns;
}

/* E, SEALED, is written again at NOW: its new heat (see Queues). */
static void
heat_update (const struct cairn_bvol *v, struct entry *e, int64_t now)
{
  if (e->sealed_at == 0)
    return;                     /* not sealed by the sealer */
  int64_t after = now - e->sealed_at;
  int64_t idle = heat_idle (v->b->sealer_idle_ns, e->heat);
  if (after < idle && e->heat + 1 < HEAT_LEVELS)
    e->heat++;
  else if (after >= idle * HEAT_FACTOR && e->heat > 0)
    e->heat--;
}

/* E's record no longer says what E does: the next flush writes it. */
static void
meta_dirty (struct cairn_bvol *v, struct entry *e)
{
  e->dirty_meta = true;
  if (!e->q[Q_META].on)
    queue_push (v, e, Q_META);
}

/* E leaves the overlay: off the queues, out of its bucket, freed. */
static void
entry_free (struct cairn_bvol *v, struct entry *e)
{
  for (int q = 0; q < NQUEUES; q++)
    queue_remove (v, e, q);
  free (e->pend);
  free (e);
}

static void
entry_remove (struct cairn_bvol *v, struct entry *e)
{
  struct entry **pp = &v->buckets[hash_index (e->index, v->nbuckets)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  v->count--;
  entry_free (v, e);
}

/* Calls FN on every entry of V (FN must not remove entries). */
#define FOR_EACH_ENTRY(v, e)                                            \
  for (size_t for_i_ = 0; for_i_ < (v)->nbuckets; for_i_++)             \
    for (struct entry *e = (v)->buckets[for_i_]; e; e = e->hnext)

/* ---- sector bitmaps ---------------------------------------------- */

static unsigned
sectors_per_chunk (const struct cairn_bvol *v)
{
  return v->cs / CAIRN_SECTOR;
}

static bool
bit_get (const uint8_t *bm, unsigned i)
{
  return bm[i / 8] & (1u << (i % 8));
}

static void
bits_set (uint8_t *bm, unsigned from, unsigned to)
{
  for (unsigned i = from; i < to; i++)
    bm[i / 8] |= 1u << (i % 8);
}

/* Whether every byte of BM (sectors_per_chunk bits) is BYTE. */
static bool
bitmap_all (const struct cairn_bvol *v, const uint8_t *bm, uint8_t byte)
{
  unsigned n = sectors_per_chunk (v);
  for (unsigned i = 0; i < n / 8; i++)
    if (bm[i] != byte)
      return false;
  return true;
}

static bool
bitmap_full (const struct cairn_bvol *v, const uint8_t *bm)
{
  return bitmap_all (v, bm, 0xff);
}

/* ---- slots -------------------------------------------------------- */

/* Slots and the page cache.  The kernel caches a slot's pages in folios
 * as big as the writes that first brought them in, and never merges them
 * again: random 4K writes into fresh slots leave sixteen 4K folios per
 * 64K slot, and every later write to the slot pays per folio - whole-
 * chunk writes then ran about a third slower than into one large folio
 * (1M sequential writes after random 4K ones, bench-plugin-fio).  Slots
 * keep their folios through the free list, so without care the scratch
 * file ends up all small folios.  So a slot that took a partial write is
 * marked fragmented (frag), and a whole-chunk write does not go into one:
 *
 *   - if the slot holds nothing live (the entry's bitmap is empty and
 *     nothing else holds it), the write punches it first;
 *   - else it writes into another slot, punched first if fragmented
 *     too, and the entry takes that slot when the write has landed (the
 *     old one stays with its other holders, such as the persisted
 *     record, until they let go; so a flush meanwhile still names the
 *     old slot and its bytes).
 *
 * A punched slot's next write brings in folios of its own size.  But a
 * punch costs more than the write it speeds up (punching before every
 * whole-chunk write made them four times slower, not faster), so free
 * slots are kept in two lists: whole-chunk writes take clean ones, or a
 * new one, and partial writes fragmented ones, which they would fragment
 * anyway.  A whole-chunk write takes (and punches) a fragmented one only
 * when those are more than half of all slots, so the scratch file stays
 * within twice the most slots ever in use.  New slots (past the end of
 * the file) are holes.  The flag outlives the process in the slot's
 * record (a hint: the kernel keeps the folios across a reopen); at open,
 * free slots count as fragmented. */

/* Takes a slot for a write of a whole chunk (CLEAN) or of part of one;
 * a clean write must punch it if it comes out fragmented. */
static int
slot_alloc (struct cairn_bvol *v, bool clean, uint32_t *slot)
{
  bool frag = clean ? v->nfree == 0 && v->nfree_frag > v->nslots / 2
                    : v->nfree_frag > 0;

  if (frag || v->nfree > 0) {
    *slot = frag ? v->free_frag[--v->nfree_frag] : v->free_slots[--v->nfree];
    v->holds[*slot] = 1;
    return 0;
  }
  if ((v->nslots & (v->nslots - 1)) == 0 || v->nslots < 16) {
    uint32_t cap = v->nslots < 16 ? 16 : v->nslots * 2;
    uint32_t *h = realloc (v->holds, cap * sizeof *h);
    if (!h)
      return -ENOMEM;
    v->holds = h;
    uint32_t *f = realloc (v->free_slots, cap * sizeof *f);
    if (!f)
      return -ENOMEM;
    v->free_slots = f;
    f = realloc (v->free_frag, cap * sizeof *f);
    if (!f)
      return -ENOMEM;
    v->free_frag = f;
    bool *fr = realloc (v->frag, cap * sizeof *fr);
    if (!fr)
      return -ENOMEM;
    v->frag = fr;
  }
  *slot = v->nslots++;
  v->holds[*slot] = 1;
  v->frag[*slot] = false;
  return 0;
}

static void
slot_hold (struct cairn_bvol *v, uint32_t slot)
{
  if (slot != NO_SLOT)
    v->holds[slot]++;
}

static void
slot_free (struct cairn_bvol *v, uint32_t slot)
{
  if (v->frag[slot])
    v->free_frag[v->nfree_frag++] = slot;
  else
    v->free_slots[v->nfree++] = slot;
}

static void
slot_unhold (struct cairn_bvol *v, uint32_t slot)
{
  if (slot == NO_SLOT)
    return;
  if (--v->holds[slot] == 0) {
    slot_free (v, slot);
    if (v->b->throttled)
      pthread_cond_broadcast (&v->b->cond);
  }
}

/* The bytes of V's slots in use (lock held). */
static uint64_t
dirty_bytes (const struct cairn_bvol *v)
{
  return (uint64_t) (v->nslots - v->nfree - v->nfree_frag) * v->cs;
}

/* A writer that would dirty one more chunk of V must wait (lock held). */
static bool
over_dirty_limit (const struct cairn_bvol *v)
{
  return v->b->sealer_running && !v->b->sealer_stop
    && dirty_bytes (v) >= v->b->dirty_limit;
}

/* V's dirty chunks are half the dirty limit or more, or writers wait on
 * it: the sealer takes whatever is quiet, hot or not (see Queues). */
static bool
dirty_pressed (const struct cairn_bvol *v)
{
  return v->b->throttled > 0 || dirty_bytes (v) >= v->b->dirty_limit / 2;
}

/* The entry's persisted record now names NEW_SLOT (NO_SLOT: none). */
static void
entry_set_rec_slot (struct cairn_bvol *v, struct entry *e, uint32_t slot)
{
  slot_hold (v, slot);
  slot_unhold (v, e->rec_slot);
  e->rec_slot = slot;
}

static uint64_t
slot_offset (const struct cairn_bvol *v, uint32_t slot)
{
  return (uint64_t) slot * v->cs;
}

/* Drops SLOT's blocks and cached pages, so that its next write brings in
 * folios of its own size (see Slots and the page cache).  Best effort: a
 * file system that cannot punch only loses the speed. */
static void
slot_punch (struct cairn_bvol *v, uint32_t slot)
{
  (void) fallocate (v->scratch_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    (off_t) slot_offset (v, slot), v->cs);
}

/* ---- pending underlays (see Commit) ------------------------------ */

/* E's pending underlay is no longer needed (lock held): the commit that
 * made it ended, or E's own bitmap covers the chunk. */
static void
pend_drop (struct cairn_bvol *v, struct entry *e)
{
  if (!e->pend)
    return;
  slot_unhold (v, e->pend->slot);
  free (e->pend);
  e->pend = NULL;
  v->b->npend--;
}

/* Copies the sectors BM marks from slot FROM to slot TO, run by run: the
 * rest of FROM may lie past the end of the file. */
static int
copy_sectors (struct cairn_bvol *v, uint32_t from, uint32_t to,
              const uint8_t *bm)
{
  unsigned n = sectors_per_chunk (v);
  char *buf = NULL;
  int r = 0;

  for (unsigned i = 0, j; r == 0 && i < n; i = j) {
    for (j = i + 1; j < n && bit_get (bm, j) == bit_get (bm, i); j++)
      ;
    if (!bit_get (bm, i))
      continue;
    if (!buf && !(buf = malloc (v->cs))) {
      r = -ENOMEM;
      break;
    }
    size_t within = (size_t) i * CAIRN_SECTOR, len = (j - i) * CAIRN_SECTOR;
    r = cairn_pread_all (v->scratch_fd, buf, len,
                         slot_offset (v, from) + within);
    if (r == 0)
      r = cairn_pwrite_all (v->scratch_fd, buf, len,
                            slot_offset (v, to) + within);
  }
  free (buf);
  return r;
}

/* Copies E's pending underlay into E's own slot, where E's bitmap has
 * nothing, so that the slot and the underlay chunk say it all again
 * ("merge").  Lock held, dropped while copying; writers of the chunk wait
 * meanwhile. */
static int
pend_merge (struct cairn_bvol *v, struct entry *e)
{
  struct cairn_branch *b = v->b;
  uint8_t need[CAIRN_MAX_CHUNK_SIZE / CAIRN_SECTOR / 8];
  int r;

  while (e->pend && (e->busy || e->writers > 0))
    pthread_cond_wait (&b->cond, &b->lock);
  struct pending *p = e->pend;
  if (!p)
    return 0;
  for (size_t i = 0; i < b->bitmap_bytes; i++)
    need[i] = p->bitmap[i] & ~e->bitmap[i];
  e->busy = true;
  pthread_mutex_unlock (&b->lock);
  sleep_ms (b->test_merge_stall_ms);
  r = copy_sectors (v, p->slot, e->slot, need);
  pthread_mutex_lock (&b->lock);
  if (r == 0) {
    for (size_t i = 0; i < b->bitmap_bytes; i++)
      e->bitmap[i] |= p->bitmap[i];
    v->frag[e->slot] = true;
    pend_drop (v, e);
    meta_dirty (v, e);
    v->scratch_unsynced = true;
  }
  e->busy = false;
  pthread_cond_broadcast (&b->cond);
  return r;
}

/* Merges the pending underlays of the entries that have one (seal_mutex
 * or persist_mutex held, so that none is freed meanwhile; lock held,
 * dropped meanwhile). */
static int
pend_merge_all (struct cairn_branch *b)
{
  int r = 0;

  for (size_t i = 0; r == 0 && b->npend > 0 && i < b->nvols; i++) {
    struct cairn_bvol *v = b->vols[i];
    size_t n = 0, cap = 0;
    struct entry **list = NULL;
    FOR_EACH_ENTRY (v, e)
      if (e->pend && r == 0) {
        if (cairn_reserve (&list, &cap, (n + 1) * sizeof *list,
                           64 * sizeof *list) < 0)
          r = -ENOMEM;
        else
          list[n++] = e;
      }
    for (size_t k = 0; r == 0 && k < n; k++)
      r = pend_merge (v, list[k]);
    free (list);
  }
  return r;
}

/* ---- records ------------------------------------------------------ */

static void
work_key (uint64_t wid, uint64_t index, uint8_t key[16])
{
  cairn_put_be64 (key, wid);
  cairn_put_be64 (key + 8, index);
}

/* Encodes a record of V's chunk: SEALED(ID), or (BITMAP non-NULL) in
 * SLOT over underlay ID; returns its length.  Lock held (the epoch). */
static size_t
work_encode (const struct cairn_bvol *v, const struct cairn_id *id,
             uint32_t slot, const uint8_t *bitmap, uint8_t *buf)
{
  size_t len = 4 + CAIRN_ID_SIZE;

  memset (buf, 0, WORK_FIXED);
  buf[0] = bitmap ? WORK_SCRATCH : WORK_SEALED;
  buf[1] = WORK_HAS_EPOCH;
  memcpy (buf + 4, id->bytes, CAIRN_ID_SIZE);
  if (bitmap) {
    if (!v->frag[slot])
      buf[1] |= WORK_SLOT_WHOLE;
    cairn_put_le32 (buf + 36, slot);
    memcpy (buf + WORK_FIXED, bitmap, v->b->bitmap_bytes);
    len = WORK_FIXED + v->b->bitmap_bytes;
  }
  cairn_put_le64 (buf + len, v->b->work_epoch);
  return len + 8;
}

static size_t
work_encode_entry (const struct cairn_bvol *v, const struct entry *e,
                   uint8_t *buf)
{
  return work_encode (v, &e->id, e->slot,
                      e->state == ENTRY_DIRTY ? e->bitmap : NULL, buf);
}

/* A work record, decoded. */
struct work_rec {
  int type;                     /* WORK_SEALED or WORK_SCRATCH */
  struct cairn_id id;
  uint32_t slot;
  bool whole;                   /* the slot is not fragmented (a hint) */
  const uint8_t *bitmap;
  uint64_t epoch;
};

/* Decodes record VALUE of volume V: -EBADMSG if it is not one. */
static int
work_decode (const struct cairn_bvol *v, struct cairn_val value,
             struct work_rec *w)
{
  const uint8_t *p = value.data;
  size_t tail = value.len > 1 && (p[1] & WORK_HAS_EPOCH) ? 8 : 0;

  if (value.len < 4 + CAIRN_ID_SIZE + tail)
    return -EBADMSG;
  w->type = p[0];
  memcpy (w->id.bytes, p + 4, CAIRN_ID_SIZE);
  w->epoch = work_record_epoch (value.data, value.len);
  if (p[0] == WORK_SEALED && value.len == 4 + CAIRN_ID_SIZE + tail) {
    w->slot = NO_SLOT;
    w->bitmap = NULL;
    return 0;
  }
  if (p[0] == WORK_SCRATCH
      && value.len == WORK_FIXED + v->b->bitmap_bytes + tail) {
    w->slot = cairn_le32 (p + 36);
    w->whole = p[1] & WORK_SLOT_WHOLE;
    w->bitmap = p + WORK_FIXED;
    return w->slot > (1u << 30) ? -EBADMSG : 0;
  }
  return -EBADMSG;
}

/* A commit holds what record W says: read it as absent. */
static bool
work_stale (const struct cairn_bvol *v, const struct work_rec *w)
{
  return w->epoch <= __atomic_load_n (&v->b->info.absorbed, __ATOMIC_ACQUIRE);
}

struct load_ctx {
  struct cairn_bvol *v;
  int r;
};

static int
load_record (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct load_ctx *lc = arg;
  struct cairn_bvol *v = lc->v;
  struct cairn_branch *b = v->b;
  struct work_rec w;

  if (key.len != 16 || work_decode (v, value, &w) < 0)
    goto bad;
  if (work_stale (v, &w)) {
    b->stale_records = true;    /* for the sealer to delete */
    return 0;
  }
  if (w.epoch > b->work_epoch)
    b->work_epoch = w.epoch;
  /* Sealed records past the bound stay evicted: read back when used. */
  if (w.type == WORK_SEALED && v->count >= b->entry_cache_max) {
    v->evicted++;
    return 0;
  }
  uint64_t index = cairn_be64 ((const uint8_t *) key.data + 8);
  struct entry *e = entry_new (v, index);
  if (!e) {
    lc->r = -ENOMEM;
    return -ENOMEM;
  }
  e->id = w.id;
  e->persisted = true;
  if (w.type == WORK_SEALED)
    e->state = ENTRY_SEALED;
  else {
    uint32_t slot = w.slot;
    e->state = ENTRY_DIRTY;
    queue_push (v, e, Q_SEAL);
    memcpy (e->bitmap, w.bitmap, b->bitmap_bytes);
    /* Slots named by records are allocated up to the highest. */
    while (v->nslots <= slot) {
      uint32_t s;
      if (slot_alloc (v, false, &s) < 0) {
        lc->r = -ENOMEM;
        return -ENOMEM;
      }
      v->holds[s] = 0;
      v->frag[s] = true;
    }
    e->slot = slot;
    v->frag[slot] = !w.whole;
    v->holds[slot] += 2;        /* the entry and its record */
    e->rec_slot = slot;
  }
  return 0;

 bad:
  lc->r = cairn_error (-EBADMSG, "working state of branch '%s' is corrupt",
                       v->b->name);
  return lc->r;
}

/* ---- eviction ----------------------------------------------------- */

/* Reads the record of V's chunk INDEX, whose entry was not in memory:
 * 1 and *ID if it names a sealed chunk, 0 if there is none, -EAGAIN if
 * it names a slot (the entry came back and was written meanwhile). */
static int
work_lookup (struct cairn_bvol *v, uint64_t index, struct cairn_id *id)
{
  struct cairn_txn *txn;
  struct cairn_val val;
  uint8_t key[16];
  int r = cairn_txn_begin (v->b->s, false, &txn);

  if (r < 0)
    return r;
  work_key (v->wid, index, key);
  r = TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_WORK, key, sizeof key,
                              &val);
  if (r == 0) {
    struct work_rec w;
    if (work_decode (v, val, &w) < 0)
      r = cairn_error (-EBADMSG, "working state of branch '%s' is corrupt",
                       v->b->name);
    else if (work_stale (v, &w))
      r = 0;
    else if (w.type == WORK_SEALED) {
      *id = w.id;
      r = 1;
    }
    else
      r = -EAGAIN;
  }
  else if (r == -ENOENT)
    r = 0;
  cairn_txn_abort (v->b->s, txn);
  return r;
}

/* Puts back in memory the entry of INDEX, evicted as SEALED(ID).  Lock
 * held. */
static struct entry *
entry_reload (struct cairn_bvol *v, uint64_t index, const struct cairn_id *id)
{
  struct entry *e = entry_new (v, index);

  if (!e)
    return NULL;
  e->state = ENTRY_SEALED;
  e->id = *id;
  e->persisted = true;
  e->referenced = true;
  v->evicted--;
  return e;
}

/* The entry of chunk INDEX, read back in if it was evicted; NULL if the
 * chunk is the base's.  Lock held on entry and return, dropped while the
 * record is read. */
static int
entry_get (struct cairn_bvol *v, uint64_t index, struct entry **out)
{
  struct cairn_branch *b = v->b;

  for (;;) {
    struct entry *e = entry_find (v, index);
    if (e || v->evicted == 0) {
      if (e)
        e->referenced = true;
      *out = e;
      return 0;
    }
    uint64_t evict_gen = v->evict_gen, base_gen = b->base_gen;
    struct cairn_id id;
    pthread_mutex_unlock (&b->lock);
    int r = work_lookup (v, index, &id);
    pthread_mutex_lock (&b->lock);
    if (r == -EAGAIN || evict_gen != v->evict_gen || base_gen != b->base_gen
        || entry_find (v, index))
      continue;                 /* what was read may be stale */
    if (r <= 0) {
      *out = NULL;
      return r;
    }
    *out = entry_reload (v, index, &id);
    return *out ? 0 : -ENOMEM;
  }
}

/* What an entry says that its record does not: nothing, if this is
 * false. */
static bool
entry_evictable (const struct entry *e)
{
  return e->state == ENTRY_SEALED && e->persisted && !e->dirty_meta
    && !e->frozen && !e->busy && e->writers == 0 && e->slot == NO_SLOT
    && e->rec_slot == NO_SLOT;
}

/* Evicts V's entries by clock until at most MAX are left, sweeping the
 * buckets at most twice (the first sweep clears the referenced bits).
 * Lock, seal_mutex and persist_mutex held: nothing else holds a pointer
 * to an evictable entry then. */
static void
entries_evict (struct cairn_bvol *v, size_t max)
{
  size_t before = v->evicted;

  for (size_t seen = 0; v->count > max && seen < 2 * v->nbuckets; seen++) {
    struct entry **pp = &v->buckets[v->clock_hand++ & (v->nbuckets - 1)];
    while (*pp) {
      struct entry *e = *pp;
      if (e->referenced || !entry_evictable (e)) {
        e->referenced = false;
        pp = &e->hnext;
        continue;
      }
      *pp = e->hnext;
      entry_free (v, e);
      v->count--;
      v->evicted++;
    }
  }
  if (v->evicted != before)
    v->evict_gen++;
}

/* Keeps each volume's overlay within the entry bound.  seal_mutex held. */
static void
branch_evict (struct cairn_branch *b)
{
  pthread_mutex_lock (&b->persist_mutex);
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < b->nvols; i++)
    entries_evict (b->vols[i], b->entry_cache_max);
  pthread_mutex_unlock (&b->lock);
  pthread_mutex_unlock (&b->persist_mutex);
}

/* The live sealed records of chunks FIRST..LAST of a volume, or of the
 * first MAX of them (0: all); MORE then says where to go on. */
struct sealed_list {
  const struct cairn_bvol *v;
  uint64_t last;
  size_t max;
  bool more;
  uint64_t next;                /* with MORE: the first index not taken */
  struct tree_change *rec;      /* index and sealed chunk of each */
  size_t n, cap;
};

static int
collect_sealed (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct sealed_list *l = arg;
  struct work_rec w;

  if (key.len != 16 || work_decode (l->v, value, &w) < 0)
    return cairn_error (-EBADMSG, "working state of branch '%s' is corrupt",
                        l->v->b->name);
  uint64_t index = cairn_be64 ((const uint8_t *) key.data + 8);
  if (index > l->last)
    return 1;
  if (w.type != WORK_SEALED || work_stale (l->v, &w))
    return 0;
  if (l->max && l->n == l->max) {
    l->more = true;
    l->next = index;
    return 1;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 256;
    struct tree_change *rec = realloc (l->rec, cap * sizeof *rec);
    if (!rec)
      return -ENOMEM;
    l->rec = rec;
    l->cap = cap;
  }
  l->rec[l->n].index = index;
  l->rec[l->n++].id = w.id;
  return 0;
}

/* The live sealed records of V's chunks FIRST..LAST into L (whose max
 * may be set), read in TXN, or in a read transaction of its own. */
static int
work_scan_sealed (const struct cairn_bvol *v, struct cairn_txn *txn,
                  uint64_t first, uint64_t last, struct sealed_list *l)
{
  struct cairn_txn *own = NULL;
  uint8_t prefix[8], start[16];
  int r = 0;

  if (!txn && (r = cairn_txn_begin (v->b->s, false, &own)) < 0)
    return r;
  struct cairn_txn *t = txn ? txn : own;
  cairn_put_be64 (prefix, v->wid);
  work_key (v->wid, first, start);
  l->v = v;
  l->last = last;
  l->n = 0;
  l->more = false;
  r = TOPS (t)->record_scan (t->bt, CAIRN_TABLE_WORK, prefix, sizeof prefix,
                             start, sizeof start, collect_sealed, l);
  cairn_txn_abort (v->b->s, own);
  return r < 0 ? r : 0;
}

static void
sealed_list_free (struct sealed_list *l)
{
  free (l->rec);
}

/* ---- volumes ------------------------------------------------------ */

static void
bvol_free (struct cairn_bvol *v)
{
  if (!v)
    return;
  for (size_t i = 0; i < v->nbuckets; i++) {
    struct entry *e = v->buckets[i], *next;
    for (; e; e = next) {
      next = e->hnext;
      free (e);
    }
  }
  free (v->buckets);
  free (v->holds);
  free (v->frag);
  free (v->free_slots);
  free (v->free_frag);
  if (v->scratch_fd >= 0)
    close (v->scratch_fd);
  free (v->leaves);
  pthread_mutex_destroy (&v->leaf_lock);
  free (v);
}

static struct cairn_bvol *
bvol_new (struct cairn_branch *b)
{
  struct cairn_bvol *v = calloc (1, sizeof *v);
  if (v) {
    v->b = b;
    v->scratch_fd = -1;
    pthread_mutex_init (&v->leaf_lock, NULL);
  }
  return v;
}

static int
scratch_path (struct cairn_branch *b, const char *vol, char *buf, size_t len,
              bool mkdir)
{
  char file[3 * CAIRN_NAME_MAX + 1], dir[4096];

  branch_file_name (b->name, file, sizeof file);
  if (snprintf (dir, sizeof dir, "%s/branches/%s", b->s->path, file)
      >= (int) sizeof dir)
    return -ENAMETOOLONG;
  if (mkdir) {
    int r = cairn_mkdir_p (dir);
    if (r < 0)
      return r;
  }
  if (snprintf (buf, len, "%s/%s.scratch", dir, vol) >= (int) len)
    return -ENAMETOOLONG;
  return 0;
}

/* Builds volume V from its record and persisted working state. */
static int
bvol_load (struct cairn_branch *b, struct cairn_txn *txn,
           const struct cairn_branch_volume *rec, struct cairn_bvol **out)
{
  struct cairn_bvol *v = bvol_new (b);
  char path[4096];
  uint8_t prefix[8];
  int r;

  if (!v)
    return -ENOMEM;
  strcpy (v->name, rec->name);
  v->wid = rec->wid;
  v->size = rec->size;
  v->cs = rec->chunk_size;
  v->root = rec->root;
  v->levels = cairn_tree_levels (v->size, v->cs);
  if (v->cs != b->s->chunk_size) {
    r = cairn_error (-EINVAL, "volume '%s' has chunk size %u, the store %u",
                     v->name, v->cs, b->s->chunk_size);
    goto err;
  }

  cairn_put_be64 (prefix, v->wid);
  struct load_ctx lc = { v, 0 };
  r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_WORK, prefix,
                               sizeof prefix, NULL, 0, load_record, &lc);
  if (lc.r < 0)
    r = lc.r;
  if (r < 0)
    goto err;
  /* Slots below the high-water mark that no record names are free. */
  for (uint32_t i = 0; i < v->nslots; i++)
    if (v->holds[i] == 0)
      slot_free (v, i);

  r = scratch_path (b, v->name, path, sizeof path, true);
  if (r < 0)
    goto err;
  v->scratch_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (v->scratch_fd == -1) {
    r = cairn_error (-errno, "%s: %m", path);
    goto err;
  }
  /* Bytes past the last named slot are garbage from before a crash. */
  if (ftruncate (v->scratch_fd, slot_offset (v, v->nslots)) == -1) {
    r = cairn_error (-errno, "%s: %m", path);
    goto err;
  }
  *out = v;
  return 0;

 err:
  bvol_free (v);
  return r;
}

static int
add_bvol (struct cairn_branch *b, struct cairn_bvol *v)
{
  struct cairn_bvol **vols = realloc (b->vols, (b->nvols + 1) * sizeof *vols);
  if (!vols)
    return -ENOMEM;
  vols[b->nvols++] = v;
  b->vols = vols;
  return 0;
}

/* ---- open and close ----------------------------------------------- */

static void *sealer_main (void *arg);

int
cairn_branch_open (struct cairn_store *s, const char *name, unsigned flags,
                   struct cairn_branch **out)
{
  struct cairn_branch *b;
  struct cairn_txn *txn;
  int r;

  if (!(flags & CAIRN_BRANCH_WRITE))
    return cairn_error (-EINVAL, "branches open for writing only; read a "
                        "commit through a view");
  if (s->readonly)
    return -EROFS;
  b = calloc (1, sizeof *b);
  if (!b || !(b->name = strdup (name))) {
    free (b);
    return -ENOMEM;
  }
  b->s = s;
  b->test_write_stall_ms = env_ms ("CAIRN_TEST_WRITE_STALL_MS");
  b->test_capture_stall_ms = env_ms ("CAIRN_TEST_CAPTURE_STALL_MS");
  b->test_merge_stall_ms = env_ms ("CAIRN_TEST_MERGE_STALL_MS");
  /* Tests only: a dirty limit small enough to reach. */
  const char *limit = getenv ("CAIRN_TEST_DIRTY_LIMIT_KB");
  b->dirty_limit = limit ? strtoull (limit, NULL, 10) << 10
    : DIRTY_LIMIT_BYTES;
  /* Tests only: a sealer slow enough to watch (see test-branch-heat). */
  unsigned idle_ms = env_ms ("CAIRN_TEST_SEALER_IDLE_MS");
  b->sealer_idle_ns = idle_ms ? idle_ms * 1000000LL : SEALER_IDLE_NS;
  /* Tests only: an entry bound small enough to pass. */
  const char *entries = getenv ("CAIRN_TEST_ENTRY_CACHE");
  b->entry_cache_max = entries ? strtoull (entries, NULL, 10)
    : ENTRY_CACHE_MAX;
  b->lock_fd = -1;
  b->bitmap_bytes = s->chunk_size / CAIRN_SECTOR / 8;
  pthread_mutex_init (&b->seal_mutex, NULL);
  pthread_mutex_init (&b->persist_mutex, NULL);
  pthread_mutex_init (&b->lock, NULL);
  pthread_mutex_init (&b->rmw_mutex, NULL);
  pthread_cond_init (&b->cond, NULL);
  pthread_cond_init (&b->sealer_cond, NULL);

  r = branch_known (s, name);
  if (r < 0)
    goto err;
  r = branch_lock (s, name, &b->lock_fd);
  if (r < 0)
    goto err;
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    goto err;
  r = cairn_branch_info_get (txn, name, &b->info);
  b->work_epoch = b->info.absorbed + 1;     /* load_record raises it */
  for (size_t i = 0; r == 0 && i < b->info.nvolumes; i++) {
    struct cairn_bvol *v;
    r = bvol_load (b, txn, &b->info.volumes[i], &v);
    if (r == 0 && (r = add_bvol (b, v)) < 0)
      bvol_free (v);
  }
  cairn_txn_abort (s, txn);
  if (r < 0)
    goto err;

  if (flags & CAIRN_BRANCH_SEALER) {
    r = -pthread_create (&b->sealer, NULL, sealer_main, b);
    if (r < 0)
      goto err;
    b->sealer_running = true;
  }
  *out = b;
  return 0;

 err:
  cairn_branch_close (b);
  return r;
}

void
cairn_branch_close (struct cairn_branch *b)
{
  if (!b)
    return;
  if (b->sealer_running) {
    pthread_mutex_lock (&b->lock);
    b->sealer_stop = true;
    pthread_cond_signal (&b->sealer_cond);
    pthread_cond_broadcast (&b->cond);   /* writers at the dirty limit */
    pthread_mutex_unlock (&b->lock);
    pthread_join (b->sealer, NULL);
  }
  for (size_t i = 0; i < b->nvols; i++)
    bvol_free (b->vols[i]);
  free (b->vols);
  cairn_branch_info_free (&b->info);
  branch_unlock (b->lock_fd);
  pthread_mutex_destroy (&b->seal_mutex);
  pthread_mutex_destroy (&b->persist_mutex);
  pthread_mutex_destroy (&b->lock);
  pthread_mutex_destroy (&b->rmw_mutex);
  pthread_cond_destroy (&b->cond);
  pthread_cond_destroy (&b->sealer_cond);
  free (b->name);
  free (b);
}

const char *
cairn_branch_name (const struct cairn_branch *b)
{
  return b->name;
}

void
cairn_branch_base (struct cairn_branch *b, struct cairn_id *base)
{
  pthread_mutex_lock (&b->lock);
  *base = b->info.base;
  pthread_mutex_unlock (&b->lock);
}

struct cairn_bvol *
cairn_branch_volume (struct cairn_branch *b, const char *name)
{
  struct cairn_bvol *found = NULL;

  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < b->nvols; i++)
    if (strcmp (b->vols[i]->name, name) == 0)
      found = b->vols[i];
  pthread_mutex_unlock (&b->lock);
  return found;
}

size_t
cairn_branch_nvolumes (struct cairn_branch *b)
{
  pthread_mutex_lock (&b->lock);
  size_t n = b->nvols;
  pthread_mutex_unlock (&b->lock);
  return n;
}

struct cairn_bvol *
cairn_branch_volume_at (struct cairn_branch *b, size_t i)
{
  pthread_mutex_lock (&b->lock);
  struct cairn_bvol *v = i < b->nvols ? b->vols[i] : NULL;
  pthread_mutex_unlock (&b->lock);
  return v;
}

const char *
cairn_bvol_name (const struct cairn_bvol *v)
{
  return v->name;
}

uint64_t
cairn_bvol_size (const struct cairn_bvol *v)
{
  return v->size;
}

/* Writes the branch record B->INFO with its volumes as they are now. */
static int
put_branch_record (struct cairn_txn *txn, struct cairn_branch *b,
                   struct cairn_branch_info *info)
{
  char key[CAIRN_NAME_MAX + 16];
  struct cairn_val cur;
  void *data;
  size_t len;
  int r;

  /* The record must be the one this handle last wrote: anything else is a
   * bug or a store edited behind the lock's back. */
  branch_ref_key (b->name, key, sizeof key);
  r = TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_REFS, key, strlen (key),
                              &cur);
  if (r < 0)
    return r == -ENOENT ? cairn_error (CAIRN_ENOREF, "branch '%s' was "
                                       "deleted", b->name) : r;
  struct cairn_branch_info now;
  r = branch_info_decode (cur.data, cur.len, &now);
  if (r < 0)
    return r;
  uint64_t seq = now.seq;
  cairn_branch_info_free (&now);
  if (seq != b->info.seq)
    return cairn_error (-EEXIST, "branch '%s' changed behind its writer",
                        b->name);
  info->seq = seq + 1;
  r = branch_info_encode (info, &data, &len);
  if (r < 0)
    return r;
  /* Compare and swap: refs change only so (see backend.h). */
  r = TOPS (txn)->record_cas (txn->bt, CAIRN_TABLE_REFS, key, strlen (key),
                              &cur, &(struct cairn_val) { data, len });
  free (data);
  if (r == -EEXIST)
    r = cairn_error (r, "branch '%s' changed behind its writer", b->name);
  return r;
}

int
cairn_branch_add_volume (struct cairn_branch *b, const char *name,
                         uint64_t size)
{
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  struct cairn_bvol *v;
  int r;

  if (!cairn_volume_name_valid (name))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid volume name "
                        "(use a-z, 0-9, '_' and '-')", name);
  if (size == 0 || size % CAIRN_SECTOR != 0)
    return cairn_error (-EINVAL, "size %llu is not a positive multiple of "
                        "%d bytes", (unsigned long long) size, CAIRN_SECTOR);
  if (cairn_branch_volume (b, name))
    return cairn_error (-EEXIST, "branch '%s' already has a volume '%s'",
                        b->name, name);

  pthread_mutex_lock (&b->persist_mutex);
  info = b->info;
  info.volumes = malloc ((info.nvolumes + 1) * sizeof *info.volumes);
  if (!info.volumes) {
    pthread_mutex_unlock (&b->persist_mutex);
    return -ENOMEM;
  }
  memcpy (info.volumes, b->info.volumes,
          info.nvolumes * sizeof *info.volumes);
  struct cairn_branch_volume *nv = &info.volumes[info.nvolumes++];
  memset (nv, 0, sizeof *nv);
  strcpy (nv->name, name);
  nv->size = size;
  nv->chunk_size = b->s->chunk_size;

  r = cairn_txn_begin (b->s, true, &txn);
  if (r == 0) {
    r = branch_new_wid (txn, &nv->wid);
    if (r == 0)
      r = put_branch_record (txn, b, &info);
    if (r == 0)
      r = bvol_load (b, txn, nv, &v);
    r = cairn_txn_end (b->s, txn, r);
  }
  if (r == 0) {
    pthread_mutex_lock (&b->lock);
    r = add_bvol (b, v);
    if (r == 0) {
      cairn_branch_info_free (&b->info);
      b->info = info;
      info.volumes = NULL;
    }
    pthread_mutex_unlock (&b->lock);
    if (r < 0)
      bvol_free (v);
  }
  free (info.volumes);
  pthread_mutex_unlock (&b->persist_mutex);
  return r;
}

/* ---- reading ------------------------------------------------------ */

/* The base chunk id at INDEX, from a root (and its tree's LEVELS) copied
 * under the lock.
 *
 * A lookup through the index costs a read transaction and a node read
 * per level, and the index pages it touches are unmapped again soon
 * (the plugin's memory bound): under random 4K reads of a served branch
 * that was an eighth of the plugin's time.  So the leaves read last are
 * kept, each with the root it came from: a tree's content never changes,
 * so a leaf is good as long as the root is the one asked for, and one
 * read from an older base simply misses. */
static int
base_lookup (struct cairn_bvol *v, const struct cairn_id *root,
             unsigned levels, uint64_t index, struct cairn_id *id)
{
  uint64_t no = index / TREE_FANOUT;
  unsigned at = index % TREE_FANOUT;
  struct cairn_txn *txn;
  struct leaf *l;

  if (cairn_id_is_zero (root)) {
    *id = cairn_zero_id;
    return 0;
  }
  pthread_mutex_lock (&v->leaf_lock);
  l = v->leaves ? &v->leaves[no % LEAF_CACHE_SLOTS] : NULL;
  if (l && l->no == no && cairn_id_equal (&l->root, root)) {
    *id = l->child[at];
    pthread_mutex_unlock (&v->leaf_lock);
    return 0;
  }
  pthread_mutex_unlock (&v->leaf_lock);

  struct cairn_id *child = malloc (TREE_FANOUT * sizeof *child);
  if (!child)
    return -ENOMEM;
  int r = cairn_txn_begin (v->b->s, false, &txn);
  if (r == 0) {
    r = tree_leaf (txn, root, levels, index, child);
    cairn_txn_abort (v->b->s, txn);
  }
  if (r == 0) {
    *id = child[at];
    pthread_mutex_lock (&v->leaf_lock);
    if (!v->leaves)
      v->leaves = calloc (LEAF_CACHE_SLOTS, sizeof *v->leaves);
    if (v->leaves) {
      l = &v->leaves[no % LEAF_CACHE_SLOTS];
      l->no = no;
      l->root = *root;
      memcpy (l->child, child, sizeof l->child);
    }
    pthread_mutex_unlock (&v->leaf_lock);
  }
  free (child);
  return r;
}

/* Reads [WITHIN, WITHIN+LEN) of a DIRTY chunk: sectors from SLOT where
 * BM has them, from the underlay elsewhere: a pending one (PEND_SLOT
 * where PEND_BM has them, see Commit) if PEND_BM, and UNDER. */
static int
read_dirty (struct cairn_bvol *v, uint32_t slot, const uint8_t *bm,
            uint32_t pend_slot, const uint8_t *pend_bm,
            const struct cairn_id *under, char *buf, size_t len,
            size_t within)
{
  size_t end = within + len;

  while (within < end) {
    unsigned sec = within / CAIRN_SECTOR;
    bool in_slot = bit_get (bm, sec);
    size_t run_end = (sec + 1) * CAIRN_SECTOR;
    while (run_end < end && bit_get (bm, run_end / CAIRN_SECTOR) == in_slot)
      run_end += CAIRN_SECTOR;
    run_end = CAIRN_MIN (run_end, end);
    size_t n = run_end - within;
    int r = in_slot
      ? cairn_pread_all (v->scratch_fd, buf, n, slot_offset (v, slot) + within)
      : pend_bm
      ? read_dirty (v, pend_slot, pend_bm, NO_SLOT, NULL, under, buf, n,
                    within)
      : cairn_chunk_read_part (v->b->s, under, buf, n, within);
    if (r < 0)
      return r;
    buf += n;
    within += n;
  }
  return 0;
}

/* Reads [WITHIN, WITHIN+LEN) of chunk INDEX into BUF if it is dirty;
 * else fills *PART with the sealed chunk to read and returns 1, for the
 * caller to read with others (cairn_chunk_read_parts). */
static int
read_chunk_part (struct cairn_bvol *v, uint64_t index, char *buf,
                 size_t len, size_t within, struct cairn_chunk_part *part)
{
  struct cairn_branch *b = v->b;
  uint8_t bm[CAIRN_MAX_CHUNK_SIZE / CAIRN_SECTOR / 8];
  uint8_t pend_bm[CAIRN_MAX_CHUNK_SIZE / CAIRN_SECTOR / 8];
  struct cairn_id id, root;
  uint32_t slot, pend_slot = NO_SLOT;
  int r;

  pthread_mutex_lock (&b->lock);
  struct entry *e;
  r = entry_get (v, index, &e);
  if (r < 0) {
    pthread_mutex_unlock (&b->lock);
    return r;
  }
  if (!e || e->state == ENTRY_SEALED) {
    if (e)
      id = e->id;
    root = v->root;
    unsigned levels = v->levels;
    pthread_mutex_unlock (&b->lock);
    if (!e)
      r = base_lookup (v, &root, levels, index, &id);
    *part = (struct cairn_chunk_part) { id, buf, len, within };
    return r < 0 ? r : 1;
  }
  slot = e->slot;
  slot_hold (v, slot);
  memcpy (bm, e->bitmap, b->bitmap_bytes);
  if (e->pend) {
    pend_slot = e->pend->slot;
    slot_hold (v, pend_slot);
    memcpy (pend_bm, e->pend->bitmap, b->bitmap_bytes);
  }
  id = e->id;
  pthread_mutex_unlock (&b->lock);

  r = read_dirty (v, slot, bm, pend_slot,
                  pend_slot != NO_SLOT ? pend_bm : NULL, &id, buf, len,
                  within);

  pthread_mutex_lock (&b->lock);
  slot_unhold (v, slot);
  slot_unhold (v, pend_slot);
  pthread_mutex_unlock (&b->lock);
  return r;
}

/* Sealed chunks cairn_bvol_read names, then reads together. */
#define READ_PARTS 64

int
cairn_bvol_read (struct cairn_bvol *v, void *buf, size_t len, uint64_t off)
{
  struct cairn_chunk_part parts[READ_PARTS];
  size_t nparts = 0;
  char *p = buf;
  int r = 0;

  if (off > v->size || len > v->size - off)
    return -EINVAL;
  while (len > 0 && r >= 0) {
    uint64_t index = off / v->cs;
    size_t within = off % v->cs, n = CAIRN_MIN (len, v->cs - within);
    r = read_chunk_part (v, index, p, n, within, &parts[nparts]);
    if (r == 1 && ++nparts == READ_PARTS) {
      r = cairn_chunk_read_parts (v->b->s, parts, nparts);
      nparts = 0;
    }
    p += n;
    off += n;
    len -= n;
  }
  if (r >= 0 && nparts > 0)
    r = cairn_chunk_read_parts (v->b->s, parts, nparts);
  return r < 0 ? r : 0;
}

/* ---- writing ------------------------------------------------------ */

/* Gives E (DIRTY, frozen, not yet captured) a fresh slot of its own,
 * leaving the old one to the commit (see Commit).  KEEP: a partial write
 * comes, and the frozen chunk becomes E's pending underlay; else all of
 * the chunk is about to be overwritten or zeroed.  Called and returns
 * with the lock held. */
static int detach_frozen (struct cairn_bvol *v, struct entry *e, bool keep);

/* Makes E writable: a DIRTY entry with a slot of its own.  Lock held. */
static int
prepare_dirty (struct cairn_bvol *v, struct entry *e, bool full)
{
  if (e->state == ENTRY_SEALED) {
    int r = slot_alloc (v, full, &e->slot);
    if (r < 0)
      return r;
    e->state = ENTRY_DIRTY;
    queue_remove (v, e, Q_SEAL);
    heat_update (v, e, cairn_mono_ns ());
    queue_push (v, e, Q_SEAL);
    memset (e->bitmap, 0, v->b->bitmap_bytes);
    /* e->id, the sealed content, becomes the underlay. */
    return 0;
  }
  if (e->frozen)
    return detach_frozen (v, e, !full);
  return 0;
}

/* Finds or makes the entry for INDEX, ready to take a write.  Lock held
 * on entry and return (dropped meanwhile for a base lookup). */
static int
entry_for_write (struct cairn_bvol *v, uint64_t index, bool full,
                 struct entry **out)
{
  struct cairn_branch *b = v->b;

  for (;;) {
    struct entry *e;
    int r = entry_get (v, index, &e);
    if (r < 0)
      return r;
    if (e && e->busy) {
      pthread_cond_wait (&b->cond, &b->lock);
      continue;
    }
    if ((!e || e->state == ENTRY_SEALED) && over_dirty_limit (v)) {
      b->throttled++;
      pthread_cond_wait (&b->cond, &b->lock);
      b->throttled--;
      continue;
    }
    if (e) {
      r = prepare_dirty (v, e, full);
      if (r < 0)
        return r;
      if (e->busy || entry_find (v, index) != e)
        continue;               /* the lock was dropped: look again */
      *out = e;
      return 0;
    }
    struct cairn_id under = cairn_zero_id, root = v->root;
    unsigned levels = v->levels;
    uint64_t base_gen = b->base_gen;
    if (!full && !cairn_id_is_zero (&root)) {
      pthread_mutex_unlock (&b->lock);
      r = base_lookup (v, &root, levels, index, &under);
      pthread_mutex_lock (&b->lock);
      if (r < 0)
        return r;
      if (base_gen != b->base_gen || entry_find (v, index))
        continue;               /* a commit or a writer came between */
    }
    e = entry_new (v, index);
    if (!e)
      return -ENOMEM;
    e->state = ENTRY_DIRTY;
    queue_push (v, e, Q_SEAL);
    e->id = under;
    r = slot_alloc (v, full, &e->slot);
    if (r < 0) {
      entry_remove (v, e);
      return r;
    }
    *out = e;
    return 0;
  }
}

/* Writes sector-aligned [WITHIN, WITHIN+LEN) of chunk INDEX. */
static int
write_sectors (struct cairn_bvol *v, uint64_t index, const char *buf,
               size_t len, size_t within)
{
  struct cairn_branch *b = v->b;
  bool full = within == 0 && len == v->cs;
  struct entry *e;
  int r;

  pthread_mutex_lock (&b->lock);
  r = entry_for_write (v, index, full, &e);
  if (r < 0) {
    pthread_mutex_unlock (&b->lock);
    return r;
  }
  /* Where the bytes go: see Slots and the page cache. */
  uint32_t slot = e->slot, target = slot, shadow = NO_SLOT;
  bool punch = false;
  if (!full)
    v->frag[slot] = true;
  else if (v->frag[slot] && e->writers == 0) {
    if (v->holds[slot] == 1 && bitmap_all (v, e->bitmap, 0))
      punch = true;
    else if (slot_alloc (v, true, &shadow) == 0) {
      target = shadow;
      punch = v->frag[shadow];
    }
    v->frag[target] = false;
  }
  e->writers++;
  e->gen++;
  slot_hold (v, slot);
  pthread_mutex_unlock (&b->lock);

  if (punch)
    slot_punch (v, target);
  r = cairn_pwrite_all (v->scratch_fd, buf, len,
                        slot_offset (v, target) + within);
  sleep_ms (b->test_write_stall_ms);

  pthread_mutex_lock (&b->lock);
  if (r < 0)
    v->frag[target] = true;
  if (shadow != NO_SLOT && r == 0 && !e->frozen && e->slot == slot) {
    slot_unhold (v, slot);      /* the entry's hold; the shadow's is its */
    e->slot = shadow;
  }
  else if (shadow != NO_SLOT) {
    /* A commit froze the entry meanwhile and will read the old slot
     * (which no writer moves while this one is in flight): the bytes go
     * there too, as any write in flight at a freeze does. */
    slot_unhold (v, shadow);
    if (r == 0) {
      uint32_t cur = e->slot;
      slot_hold (v, cur);
      pthread_mutex_unlock (&b->lock);
      r = cairn_pwrite_all (v->scratch_fd, buf, len,
                            slot_offset (v, cur) + within);
      pthread_mutex_lock (&b->lock);
      slot_unhold (v, cur);
    }
  }
  slot_unhold (v, slot);
  if (r == 0) {
    bits_set (e->bitmap, within / CAIRN_SECTOR, (within + len) / CAIRN_SECTOR);
    if (full || bitmap_full (v, e->bitmap)) {
      e->id = cairn_zero_id;    /* nothing of the underlay shows */
      pend_drop (v, e);
    }
    meta_dirty (v, e);
    e->last_write = cairn_mono_ns ();
    queue_push (v, e, Q_SEAL);  /* the most recently written now */
    v->scratch_unsynced = true;
  }
  if (--e->writers == 0)
    pthread_cond_broadcast (&b->cond);
  pthread_mutex_unlock (&b->lock);
  return r;
}

/* Read-modify-write of the sector around a write that does not cover it. */
static int
write_partial_sector (struct cairn_bvol *v, const char *buf, size_t len,
                      uint64_t off)
{
  char sector[CAIRN_SECTOR];
  uint64_t start = off - off % CAIRN_SECTOR;
  size_t n = CAIRN_MIN ((uint64_t) CAIRN_SECTOR, v->size - start);
  int r = cairn_bvol_read (v, sector, n, start);

  if (r < 0)
    return r;
  memcpy (sector + (off - start), buf, len);
  /* The volume size is a multiple of a sector for created volumes; an
   * imported odd-sized tail is padded with what was there. */
  if (n < CAIRN_SECTOR)
    memset (sector + n, 0, CAIRN_SECTOR - n);
  return write_sectors (v, start / v->cs, sector, CAIRN_SECTOR,
                        start % v->cs);
}

int
cairn_bvol_write (struct cairn_bvol *v, const void *buf, size_t len,
                  uint64_t off)
{
  struct cairn_branch *b = v->b;
  const char *p = buf;
  int r = 0;

  if (off > v->size || len > v->size - off)
    return -EINVAL;
  /* Unaligned head and tail: one sector each, read-modify-write. */
  if (len > 0 && (off % CAIRN_SECTOR || len < CAIRN_SECTOR)) {
    size_t n = CAIRN_MIN (len, CAIRN_SECTOR - off % CAIRN_SECTOR);
    pthread_mutex_lock (&b->rmw_mutex);
    r = write_partial_sector (v, p, n, off);
    pthread_mutex_unlock (&b->rmw_mutex);
    p += n;
    off += n;
    len -= n;
  }
  size_t aligned = len - len % CAIRN_SECTOR;
  while (r == 0 && aligned > 0) {
    uint64_t index = off / v->cs;
    size_t within = off % v->cs, n = CAIRN_MIN (aligned, v->cs - within);
    r = write_sectors (v, index, p, n, within);
    p += n;
    off += n;
    len -= n;
    aligned -= n;
  }
  if (r == 0 && len > 0) {
    pthread_mutex_lock (&b->rmw_mutex);
    r = write_partial_sector (v, p, len, off);
    pthread_mutex_unlock (&b->rmw_mutex);
  }
  return r;
}

/* Makes chunk INDEX all zeros: SEALED(zero), releasing any slot. */
static int
zero_chunk (struct cairn_bvol *v, uint64_t index, bool base_nonzero)
{
  struct cairn_branch *b = v->b;
  struct entry *e;

  for (;;) {
    int r = entry_get (v, index, &e);
    if (r < 0)
      return r;
    if (!e || !e->busy)
      break;
    pthread_cond_wait (&b->cond, &b->lock);
  }
  if (!e) {
    if (!base_nonzero)
      return 0;                 /* already a hole */
    e = entry_new (v, index);
    if (!e)
      return -ENOMEM;
  }
  else if (e->state == ENTRY_DIRTY) {
    /* Not while a merge copies into its slot either. */
    while (e->writers > 0 || e->busy)
      pthread_cond_wait (&b->cond, &b->lock);
    if (e->frozen) {
      int r = detach_frozen (v, e, false);
      if (r < 0)
        return r;
    }
    pend_drop (v, e);
    slot_unhold (v, e->slot);
    e->slot = NO_SLOT;
  }
  e->state = ENTRY_SEALED;
  queue_remove (v, e, Q_SEAL);
  e->id = cairn_zero_id;
  e->gen++;
  meta_dirty (v, e);
  return 0;
}

struct zero_ctx {
  struct cairn_bvol *v;
  int r;
};

static int
zero_base_chunk (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct zero_ctx *z = arg;
  z->r = zero_chunk (z->v, index, true);
  return z->r;
}

int
cairn_bvol_zero (struct cairn_bvol *v, size_t len, uint64_t off)
{
  struct cairn_branch *b = v->b;
  int r = 0;

  if (off > v->size || len > v->size - off)
    return -EINVAL;
  /* Partial chunks at either end are written with zeros. */
  uint64_t first = (off + v->cs - 1) / v->cs;
  uint64_t end_full = (off + len) / v->cs;
  if (first >= end_full || (off + len) == v->size)
    end_full = CAIRN_MAX (first, (off + len) == v->size
                          ? (v->size + v->cs - 1) / v->cs : end_full);
  uint64_t head_end = CAIRN_MIN (off + len, first * v->cs);
  uint64_t tail_start = CAIRN_MAX (head_end, end_full * v->cs);
  static const char zeros[CAIRN_MAX_CHUNK_SIZE];

  if (head_end > off)
    r = cairn_bvol_write (v, zeros, head_end - off, off);
  if (r == 0 && off + len > tail_start)
    r = cairn_bvol_write (v, zeros, off + len - tail_start, tail_start);
  if (r < 0 || end_full <= first)
    return r;

  /* Whole chunks: every entry in range, and every base chunk with data,
   * becomes SEALED(zero); cost grows with the data there, not the range. */
  pthread_mutex_lock (&b->lock);
  struct cairn_id root = v->root;
  uint64_t *indexes = NULL;
  size_t n = 0, cap = 0;
  FOR_EACH_ENTRY (v, e) {
    if (e->index < first || e->index >= end_full)
      continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      uint64_t *p = realloc (indexes, cap * sizeof *p);
      if (!p) {
        free (indexes);
        pthread_mutex_unlock (&b->lock);
        return -ENOMEM;
      }
      indexes = p;
    }
    indexes[n++] = e->index;
  }
  /* Evicted entries in range (read under the lock: no commit can take
   * their records from under it). */
  struct sealed_list evicted = { 0 };
  if (v->evicted > 0)
    r = work_scan_sealed (v, NULL, first, end_full - 1, &evicted);
  for (size_t i = 0; r == 0 && i < n; i++)
    r = zero_chunk (v, indexes[i], false);
  for (size_t i = 0; r == 0 && i < evicted.n; i++)
    r = zero_chunk (v, evicted.rec[i].index, false);
  sealed_list_free (&evicted);
  free (indexes);
  if (r == 0 && !cairn_id_is_zero (&root)) {
    struct cairn_txn *txn;
    r = cairn_txn_begin (b->s, false, &txn);
    if (r == 0) {
      struct zero_ctx z = { v, 0 };
      r = cairn_tree_walk (txn, &root, v->levels, first, end_full - 1,
                           zero_base_chunk, &z);
      cairn_txn_abort (b->s, txn);
    }
  }
  pthread_mutex_unlock (&b->lock);
  return r;
}

/* ---- extents ------------------------------------------------------ */

struct ext_entry {
  uint64_t index;
  bool hole;
};

static int
ext_entry_cmp (const void *a, const void *b)
{
  uint64_t x = ((const struct ext_entry *) a)->index;
  uint64_t y = ((const struct ext_entry *) b)->index;
  return x < y ? -1 : x > y;
}

struct ext_merge {
  struct cairn_bvol *v;
  uint64_t start, end;          /* bytes */
  uint64_t pos;                 /* emitted up to */
  struct ext_entry *ov;         /* overlay entries in range, sorted */
  size_t nov, at;
  uint64_t run_off, run_len;
  bool run_hole;
  cairn_extent_fn fn;
  void *arg;
};

static int
ext_emit (struct ext_merge *m, uint64_t off, uint64_t len, bool hole)
{
  if (len == 0)
    return 0;
  if (m->run_len && m->run_hole == hole && m->run_off + m->run_len == off) {
    m->run_len += len;
    return 0;
  }
  if (m->run_len) {
    int r = m->fn (m->run_off, m->run_len, m->run_hole, m->arg);
    if (r)
      return r;
  }
  m->run_off = off;
  m->run_len = len;
  m->run_hole = hole;
  return 0;
}

/* Emits chunk INDEX as HOLE or data, after the gap before it. */
static int
ext_chunk (struct ext_merge *m, uint64_t index, bool hole)
{
  uint64_t lo = CAIRN_MAX (index * m->v->cs, m->start);
  uint64_t hi = CAIRN_MIN ((index + 1) * m->v->cs, m->end);
  int r = ext_emit (m, m->pos, lo - m->pos, true);
  if (r == 0)
    r = ext_emit (m, lo, hi - lo, hole);
  m->pos = hi;
  return r;
}

/* Overlay entries before INDEX go first; an entry at INDEX overrides the
 * base chunk there. */
static int
ext_base (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct ext_merge *m = arg;
  int r = 0;

  while (r == 0 && m->at < m->nov && m->ov[m->at].index < index) {
    r = ext_chunk (m, m->ov[m->at].index, m->ov[m->at].hole);
    m->at++;
  }
  if (r)
    return r;
  if (m->at < m->nov && m->ov[m->at].index == index) {
    r = ext_chunk (m, index, m->ov[m->at].hole);
    m->at++;
    return r;
  }
  return ext_chunk (m, index, false);
}

/* Adds overlay chunk INDEX to M's list. */
static int
ext_add (struct ext_merge *m, size_t *cap, uint64_t index, bool hole)
{
  if (m->nov == *cap) {
    size_t n = *cap ? 2 * *cap : 64;
    struct ext_entry *p = realloc (m->ov, n * sizeof *p);
    if (!p)
      return -ENOMEM;
    m->ov = p;
    *cap = n;
  }
  m->ov[m->nov].index = index;
  m->ov[m->nov++].hole = hole;
  return 0;
}

int
cairn_bvol_extents (struct cairn_bvol *v, uint64_t off, uint64_t len,
                    cairn_extent_fn fn, void *arg)
{
  struct cairn_branch *b = v->b;
  struct ext_merge m = { .v = v, .start = off, .end = off + len, .pos = off,
                         .fn = fn, .arg = arg };
  size_t cap = 0;
  int r = 0;

  if (off > v->size || len > v->size - off)
    return -EINVAL;
  if (len == 0)
    return 0;
  uint64_t first = off / v->cs, last = (off + len - 1) / v->cs;

  pthread_mutex_lock (&b->lock);
  struct cairn_id root = v->root;
  if (last - first < 64) {
    for (uint64_t i = first; r == 0 && i <= last; i++) {
      struct entry *e = entry_find (v, i);
      if (e)
        r = ext_add (&m, &cap, i, e->state == ENTRY_SEALED
                     && cairn_id_is_zero (&e->id));
    }
  }
  else {
    FOR_EACH_ENTRY (v, e) {
      if (r < 0)
        break;
      if (e->index >= first && e->index <= last)
        r = ext_add (&m, &cap, e->index, e->state == ENTRY_SEALED
                     && cairn_id_is_zero (&e->id));
    }
  }
  /* Evicted entries in range, read under the lock: no commit can take
   * their records from under it. */
  if (r == 0 && v->evicted > 0) {
    struct sealed_list evicted = { 0 };
    r = work_scan_sealed (v, NULL, first, last, &evicted);
    for (size_t i = 0; r == 0 && i < evicted.n; i++)
      if (!entry_find (v, evicted.rec[i].index))
        r = ext_add (&m, &cap, evicted.rec[i].index,
                     cairn_id_is_zero (&evicted.rec[i].id));
    sealed_list_free (&evicted);
  }
  pthread_mutex_unlock (&b->lock);
  if (r < 0)
    goto out;
  if (m.nov > 1)                /* m.ov is NULL when nothing is in range */
    qsort (m.ov, m.nov, sizeof *m.ov, ext_entry_cmp);

  if (!cairn_id_is_zero (&root)) {
    struct cairn_txn *txn;
    r = cairn_txn_begin (b->s, false, &txn);
    if (r < 0)
      goto out;
    r = cairn_tree_walk (txn, &root, v->levels, first, last, ext_base, &m);
    cairn_txn_abort (b->s, txn);
  }
  while (r == 0 && m.at < m.nov) {
    r = ext_chunk (&m, m.ov[m.at].index, m.ov[m.at].hole);
    m.at++;
  }
  if (r == 0)
    r = ext_emit (&m, m.pos, m.end - m.pos, true);
  if (r == 0 && m.run_len)
    r = fn (m.run_off, m.run_len, m.run_hole, arg);
 out:
  free (m.ov);
  return r < 0 ? r : 0;
}

/* ---- flush -------------------------------------------------------- */

/* An entry whose record a flush writes; the records themselves lie one
 * after the other in one buffer, each as long as it is: room for the
 * largest chunk's bitmap in every item made a flush of 30000 entries
 * take 10 MiB, against 3 MiB for 64 KiB chunks. */
struct persist_item {
  struct cairn_bvol *v;
  struct entry *e;
  uint32_t slot;                /* slot the record names */
  uint32_t len;                 /* the record: LEN bytes at OFF */
  size_t off;
};

static atomic_size_t batch_max;

size_t
cairn_txn_batch_max (void)
{
  return atomic_exchange (&batch_max, 0);
}

/* Volume, then chunk index: within a volume, the order of its work
 * records' keys (volumes in no particular order). */
static int
chunk_order (const struct cairn_bvol *va, uint64_t ia,
             const struct cairn_bvol *vb, uint64_t ib)
{
  if (va != vb)
    return va < vb ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

static int
persist_item_cmp (const void *a, const void *b)
{
  const struct persist_item *x = a, *y = b;
  return chunk_order (x->v, x->e->index, y->v, y->e->index);
}

/* For cairn_txn_batch_max: a transaction of N puts or deletes is about
 * to be made. */
static void
note_batch (size_t n)
{
  size_t max = atomic_load (&batch_max);

  while (n > max && !atomic_compare_exchange_weak (&batch_max, &max, n))
    ;
}

int
cairn_branch_flush (struct cairn_branch *b)
{
  struct persist_item *items = NULL;
  uint8_t *recs = NULL;
  size_t n = 0, cap = 0, recs_len = 0, recs_cap = 0;  /* caps in bytes */
  const size_t max_rec = WORK_FIXED + b->bitmap_bytes + 8;
  int r = 0;

  pthread_mutex_lock (&b->persist_mutex);

  /* 1. Snapshot the records to write.  Data written after this is not
   *    promised by this flush, so its bits must not be persisted before
   *    its bytes are synced.  A record names one slot: pending underlays
   *    are merged first (see Commit). */
  pthread_mutex_lock (&b->lock);
  r = pend_merge_all (b);
  if (r < 0)
    cairn_error (r, "flush of branch '%s': %s", b->name, strerror (-r));
  bool *sync = calloc (b->nvols ? b->nvols : 1, sizeof *sync);
  if (!sync)
    r = -ENOMEM;
  for (size_t i = 0; r == 0 && i < b->nvols; i++) {
    struct cairn_bvol *v = b->vols[i];
    sync[i] = v->scratch_unsynced;
    v->scratch_unsynced = false;
    for (struct entry *e, *next = v->queues[Q_META][0].head; (e = next);) {
      next = e->q[Q_META].next;
      queue_remove (v, e, Q_META);
      if (!e->dirty_meta)
        continue;
      if (cairn_reserve (&items, &cap, (n + 1) * sizeof *items,
                         64 * sizeof *items) < 0
          || cairn_reserve (&recs, &recs_cap, recs_len + max_rec,
                            64 * max_rec) < 0) {
        queue_push (v, e, Q_META);
        r = -ENOMEM;
        break;
      }
      struct persist_item *it = &items[n++];
      it->v = v;
      it->e = e;
      it->off = recs_len;
      it->len = work_encode_entry (v, e, recs + recs_len);
      recs_len += it->len;
      it->slot = e->state == ENTRY_DIRTY ? e->slot : NO_SLOT;
      slot_hold (v, it->slot);  /* kept until the record is written */
      e->dirty_meta = false;
    }
  }
  pthread_mutex_unlock (&b->lock);

  /* 2. The bytes, then the records that name them. */
  for (size_t i = 0; r == 0 && i < b->nvols; i++)
    if (sync[i] && fdatasync (b->vols[i]->scratch_fd) == -1)
      r = cairn_error (-errno, "flush of branch '%s': %m", b->name);

  /* A batch of records at a time: each names bytes synced already, and
   * stands alone; a crash in between loses only writes this flush had
   * not promised yet.  In key order: a batch then rewrites a few leaves
   * of the table, not one a record (random writes come in any order). */
  if (n > 1)
    qsort (items, n, sizeof *items, persist_item_cmp);
  size_t done = 0;              /* items whose transaction committed */
  while (r == 0 && done < n) {
    size_t end = CAIRN_MIN (n, done + FLUSH_BATCH_RECORDS);
    struct cairn_txn *txn = NULL;
    note_batch (end - done);
    r = cairn_txn_begin (b->s, true, &txn);
    for (size_t i = done; r == 0 && i < end; i++) {
      uint8_t key[16];
      work_key (items[i].v->wid, items[i].e->index, key);
      r = TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_WORK, key, sizeof key,
                                  recs + items[i].off, items[i].len);
    }
    r = cairn_txn_end (b->s, txn, r);
    if (r == 0)
      done = end;
  }

  /* 3. Account for what was written, or put it back to be retried. */
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < n; i++) {
    struct persist_item *it = &items[i];
    if (i < done) {
      it->e->persisted = true;
      it->e->persist_seq++;
      entry_set_rec_slot (it->v, it->e, it->slot);
    }
    else
      meta_dirty (it->v, it->e);
    slot_unhold (it->v, it->slot);
  }
  if (r < 0)
    for (size_t i = 0; i < b->nvols; i++)
      if (sync && sync[i])
        b->vols[i]->scratch_unsynced = true;
  pthread_mutex_unlock (&b->lock);

  pthread_mutex_unlock (&b->persist_mutex);
  free (items);
  free (recs);
  free (sync);
  return r;
}

/* ---- sealing ------------------------------------------------------ */

/* One chunk being sealed: what it was when captured, what it became. */
struct seal_job {
  struct cairn_bvol *v;
  struct entry *e;              /* NULL once the entry is gone */
  uint64_t index;
  uint64_t gen;
  uint32_t slot;                /* held while the job reads it */
  uint8_t *bitmap;              /* b->bitmap_bytes, the caller's */
  struct cairn_id under;
  void *raw;                    /* the merged chunk, kept if known */
  struct cairn_sealed sealed;
  struct frozen *frozen;        /* commit capture */
  bool stale;                   /* written since captured: not persisted */
};

/* The two halves of sealing the chunk JOB describes (slot already
 * held): the bytes out of the slot, then the sealing of that copy
 * (seal_jobs), which needs the slot no more. */
static int
seal_job_read (struct seal_job *job)
{
  struct cairn_bvol *v = job->v;

  job->raw = malloc (v->cs);
  if (!job->raw)
    return -ENOMEM;
  return read_dirty (v, job->slot, job->bitmap, NO_SLOT, NULL, &job->under,
                     job->raw, v->cs, 0);
}

/* Seals the copies the N (<= SEAL_GROUP) jobs JOBS read, hashing them
 * together (cairn_chunk_seal_many). */
static int
seal_jobs (struct cairn_store *s, struct seal_job *const *jobs, size_t n)
{
  const void *raw[SEAL_GROUP] = { 0 };
  struct cairn_sealed sealed[SEAL_GROUP];
  int r;

  for (size_t i = 0; i < n; i++)
    raw[i] = jobs[i]->raw;
  r = cairn_chunk_seal_many (s, raw, n, sealed);
  for (size_t i = 0; i < n; i++) {
    jobs[i]->sealed = sealed[i];
    if (r == 0 && !sealed[i].known) {
      free (jobs[i]->raw);      /* the compressed copy is enough */
      jobs[i]->raw = NULL;
    }
  }
  return r;
}

static void
seal_job_free (struct seal_job *job)
{
  free (job->raw);
  cairn_sealed_free (&job->sealed);
}

/* One pass of the sealer: evicts entries past the bound, seals up to MAX
 * quiet DIRTY chunks, idle for IDLE_NS or more, and persists them.
 * Returns how many it sealed. */
static int
seal_pass (struct cairn_branch *b, int64_t idle_ns, size_t max)
{
  struct seal_job *jobs = NULL;
  uint8_t *maps = NULL;
  size_t n = 0;
  bool pressed = false;
  int64_t now = cairn_mono_ns ();
  int r = 0;

  /* What the last pass sealed need not stay in memory. */
  branch_evict (b);
  jobs = calloc (max, sizeof *jobs);
  maps = calloc (max, b->bitmap_bytes);
  if (!jobs || !maps) {
    free (jobs);
    free (maps);
    return -ENOMEM;
  }
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < b->nvols * HEAT_LEVELS && n < max; i++) {
    struct cairn_bvol *v = b->vols[i / HEAT_LEVELS];
    unsigned h = i % HEAT_LEVELS;
    bool vol_pressed = dirty_pressed (v);
    pressed |= vol_pressed;
    int64_t idle = vol_pressed ? idle_ns : heat_idle (idle_ns, h);
    for (struct entry *e, *next = v->queues[Q_SEAL][h].head;
         n < max && (e = next);) {
      next = e->q[Q_SEAL].next;
      if (e->state != ENTRY_DIRTY) {
        queue_remove (v, e, Q_SEAL);
        continue;
      }
      if (now - e->last_write < idle)
        break;                  /* and so is every entry after it */
      if (e->frozen || e->busy || e->writers || e->pend)
        continue;               /* pend: a merge failed, see Commit */
      struct seal_job *job = &jobs[n];
      job->bitmap = maps + n++ * b->bitmap_bytes;
      job->v = v;
      job->e = e;
      job->index = e->index;
      job->gen = e->gen;
      job->slot = e->slot;
      slot_hold (v, e->slot);
      memcpy (job->bitmap, e->bitmap, b->bitmap_bytes);
      job->under = e->id;
    }
  }
  pthread_mutex_unlock (&b->lock);
  if (n == 0) {
    free (jobs);
    free (maps);
    return 0;
  }
  /* Writers waiting on the dirty limit wait for this pass: it computes
   * at the sealer's nice then, not at SCHED_IDLE. */
  cairn_compute_idle_until (pressed ? 0 : INT64_MAX);

  for (size_t i = 0; r == 0 && i < n; i += SEAL_GROUP) {
    struct seal_job *group[SEAL_GROUP];
    size_t m = CAIRN_MIN (n - i, (size_t) SEAL_GROUP);
    for (size_t k = 0; r == 0 && k < m; k++) {
      group[k] = &jobs[i + k];
      r = seal_job_read (group[k]);
    }
    if (r == 0)
      r = seal_jobs (b->s, group, m);
  }

  pthread_mutex_lock (&b->persist_mutex);
  /* A chunk written since its capture may have had the newer bytes
   * persisted by a flush already: a SEALED record of the older content
   * would take them back.  Leave it dirty; a later pass seals it.  (No
   * flush can run before this transaction ends: it needs persist_mutex.) */
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < n; i++)
    jobs[i].stale = jobs[i].e->gen != jobs[i].gen;
  pthread_mutex_unlock (&b->lock);
  struct cairn_txn *txn = NULL;
  if (r == 0)
    r = cairn_txn_begin (b->s, true, &txn);
  for (size_t i = 0; r == 0 && i < n; i++) {
    struct seal_job *job = &jobs[i];
    uint8_t key[16], rec[WORK_FIXED + 8];
    if (job->stale)
      continue;
    r = chunk_put_or_reseal (txn, job->raw, &job->sealed, NULL);
    /* The epoch: no commit freezes while a pass runs (seal_mutex). */
    size_t len = work_encode (job->v, &job->sealed.id, NO_SLOT, NULL, rec);
    work_key (job->v->wid, job->index, key);
    if (r == 0)
      r = TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_WORK, key, sizeof key,
                                  rec, len);
  }
  r = cairn_txn_end (b->s, txn, r);

  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < n; i++) {
    struct seal_job *job = &jobs[i];
    struct entry *e = job->e;
    if (r == 0 && !job->stale) {
      /* The record says SEALED now, whatever happened meanwhile. */
      e->persisted = true;
      e->persist_seq++;
      entry_set_rec_slot (job->v, e, NO_SLOT);
      if (e->gen == job->gen && e->state == ENTRY_DIRTY && !e->frozen) {
        slot_unhold (job->v, e->slot);
        e->slot = NO_SLOT;
        e->state = ENTRY_SEALED;
        queue_remove (job->v, e, Q_SEAL);
        e->sealed_at = cairn_mono_ns ();
        e->id = job->sealed.id;
        e->dirty_meta = false;
      }
      else {
        meta_dirty (job->v, e); /* newer writes still to persist */
        /* Still dirty over the underlay the job read: the record now
         * names the sealed chunk instead, so that becomes the underlay
         * (the slot keeps every sector the job merged, and more).  Else
         * the old underlay would live on in memory only, where gc cannot
         * see it. */
        if (e->state == ENTRY_DIRTY && !e->frozen
            && cairn_id_equal (&e->id, &job->under))
          e->id = job->sealed.id;
      }
    }
    slot_unhold (job->v, job->slot);
  }
  pthread_mutex_unlock (&b->lock);
  pthread_mutex_unlock (&b->persist_mutex);
  /* The index's checkpoint, if one is coming due, is the sealer's to
   * take: a commit or a flush would otherwise wait for it.  If it fails,
   * the write txn that needs it tries again and reports. */
  if (r == 0)
    (void) store_housekeep (b->s);

  for (size_t i = 0; i < n; i++)
    seal_job_free (&jobs[i]);
  free (jobs);
  free (maps);
  return r < 0 ? r : (int) n;
}

int
cairn_branch_seal (struct cairn_branch *b)
{
  int r;

  pthread_mutex_lock (&b->seal_mutex);
  do
    r = seal_pass (b, 0, SEALER_BATCH);
  while (r > 0);
  pthread_mutex_unlock (&b->seal_mutex);
  return r;
}

/* Stale records to delete, a batch at a time. */
struct stale_keys {
  uint64_t absorbed;
  uint8_t (*keys)[16];
  size_t n, max;
};

static int
collect_stale (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct stale_keys *sk = arg;

  if (key.len != 16)
    return -EBADMSG;
  if (work_record_epoch (value.data, value.len) > sk->absorbed)
    return 0;
  if (sk->n == sk->max)
    return 1;
  memcpy (sk->keys[sk->n++], key.data, 16);
  return 0;
}

/* Deletes up to STALE_BATCH stale records in one transaction; clears
 * stale_records once none is left.  seal_mutex held. */
static int
stale_sweep (struct cairn_branch *b)
{
  struct stale_keys sk = { .max = STALE_BATCH };
  uint64_t *wids = NULL;
  size_t nwids = 0;
  struct cairn_txn *txn = NULL;
  int r = 0;

  pthread_mutex_lock (&b->persist_mutex);
  if (!b->stale_records)
    goto out;
  sk.absorbed = b->info.absorbed;
  sk.keys = malloc (sk.max * sizeof *sk.keys);
  pthread_mutex_lock (&b->lock);
  wids = malloc ((b->nvols ? b->nvols : 1) * sizeof *wids);
  for (size_t i = 0; wids && i < b->nvols; i++)
    wids[nwids++] = b->vols[i]->wid;
  pthread_mutex_unlock (&b->lock);
  if (!sk.keys || !wids) {
    r = -ENOMEM;
    goto out;
  }
  r = cairn_txn_begin (b->s, true, &txn);
  for (size_t i = 0; r == 0 && i < nwids && sk.n < sk.max; i++) {
    uint8_t prefix[8];
    cairn_put_be64 (prefix, wids[i]);
    r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_WORK, prefix,
                                 sizeof prefix, NULL, 0, collect_stale, &sk);
    r = r < 0 ? r : 0;
  }
  note_batch (sk.n);
  for (size_t i = 0; r == 0 && i < sk.n; i++)
    r = TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_WORK, sk.keys[i], 16);
  r = cairn_txn_end (b->s, txn, r);
  if (r == 0 && sk.n < sk.max)
    b->stale_records = false;
 out:
  pthread_mutex_unlock (&b->persist_mutex);
  free (sk.keys);
  free (wids);
  return r < 0 ? r : (int) sk.n;
}

static void *
sealer_main (void *arg)
{
  struct cairn_branch *b = arg;

  cairn_thread_background (SEALER_NICE, &b->commits_waiting);
  atomic_store (&b->sealer_tid, cairn_thread_id ());

  pthread_mutex_lock (&b->lock);
  while (!b->sealer_stop) {
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += SEALER_PERIOD_MS * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait (&b->sealer_cond, &b->lock, &deadline);
    if (b->sealer_stop)
      break;
    pthread_mutex_unlock (&b->lock);
    pthread_mutex_lock (&b->seal_mutex);
    int r;
    /* Passes go on while they find full batches, but not past a commit
     * waiting for seal_mutex: under steady writes they would never end. */
    do
      r = seal_pass (b, b->sealer_idle_ns, SEALER_BATCH);
    while (r == (int) SEALER_BATCH && !b->sealer_stop
           && atomic_load (&b->commits_waiting) == 0);
    if (r >= 0)
      stale_sweep (b);
    pthread_mutex_unlock (&b->seal_mutex);
    pthread_mutex_lock (&b->lock);
  }
  pthread_mutex_unlock (&b->lock);
  return NULL;
}

/* ---- commit ------------------------------------------------------- */

/* A DIRTY entry as the commit froze it. */
struct frozen {
  struct seal_job job;
  bool detached;                /* the slot is the commit's alone */
};

/* Everything a commit froze of one entry. */
struct snap {
  struct cairn_bvol *v;
  struct entry *e;
  uint64_t index;
  uint64_t gen;
  uint64_t persist_seq;
  bool persisted;
  struct cairn_id id;           /* the content committed */
  struct frozen *frozen;        /* NULL: it was SEALED */
};

static int
detach_frozen (struct cairn_bvol *v, struct entry *e, bool keep)
{
  struct cairn_branch *b = v->b;
  struct frozen *fr = e->frozen;
  struct pending *p = NULL;
  uint32_t old = e->slot, fresh;
  int r;

  while (e->writers > 0 || e->busy)
    pthread_cond_wait (&b->cond, &b->lock);
  if (e->frozen != fr || !fr)
    return 0;                   /* captured meanwhile */
  if (keep && !(p = malloc (sizeof *p + b->bitmap_bytes)))
    return -ENOMEM;
  r = slot_alloc (v, !keep, &fresh);
  if (r < 0) {
    free (p);
    return r;
  }
  /* The writes in flight at the freeze have landed since: the commit
   * takes them, as it would capturing the slot itself, so that what it
   * stores is exactly the pending underlay. */
  memcpy (fr->job.bitmap, e->bitmap, b->bitmap_bytes);
  fr->job.under = e->id;
  fr->detached = true;
  e->frozen = NULL;
  e->slot = fresh;
  if (!p) {
    slot_unhold (v, old);       /* the commit holds it still */
    return 0;
  }
  /* The entry's hold on OLD passes to its pending underlay, which keeps
   * it past the commit's own if a merge needs it then. */
  p->slot = old;
  memcpy (p->bitmap, e->bitmap, b->bitmap_bytes);
  memset (e->bitmap, 0, b->bitmap_bytes);
  e->pend = p;
  b->npend++;
  return 0;
}

/* Reads frozen chunk FR while no writer can touch its slot. */
static int
capture_frozen (struct cairn_branch *b, struct frozen *fr)
{
  struct seal_job *job = &fr->job;
  struct entry *e = job->e;
  bool blocked = false;

  pthread_mutex_lock (&b->lock);
  if (!fr->detached) {
    while (e->writers > 0 || e->busy)
      pthread_cond_wait (&b->cond, &b->lock);
    if (!fr->detached) {
      e->busy = true;
      blocked = true;
      /* A write in flight at the freeze had counted itself in the gen
       * the freeze noted but set its bits only now: take them, or the
       * chunk would be committed without it and the entry then dropped
       * as fully committed, losing an acknowledged write. */
      memcpy (job->bitmap, e->bitmap, b->bitmap_bytes);
      job->under = e->id;
    }
  }
  pthread_mutex_unlock (&b->lock);

  /* Writers of the chunk wait only while its bytes are copied out, not
   * while the copy is hashed and compressed (capture_all, at the
   * sealer's nice). */
  int r = seal_job_read (job);

  if (blocked) {
    pthread_mutex_lock (&b->lock);
    e->busy = false;
    e->frozen = NULL;
    pthread_cond_broadcast (&b->cond);
    pthread_mutex_unlock (&b->lock);
  }
  return r;
}

/* Stores the sealed chunks of N captured frozen entries in one
 * transaction and lets go of their bytes: from now on they are known. */
static int
store_frozen (struct cairn_branch *b, struct frozen *fr, size_t n)
{
  struct cairn_txn *txn = NULL;
  int r = cairn_txn_begin (b->s, true, &txn);

  note_batch (n);
  for (size_t i = 0; r == 0 && i < n; i++)
    r = chunk_put_or_reseal (txn, fr[i].job.raw, &fr[i].job.sealed, NULL);
  if (r < 0) {
    if (txn)
      cairn_txn_abort (b->s, txn);
    return r;
  }
  r = cairn_txn_commit (b->s, txn);
  for (size_t i = 0; r == 0 && i < n; i++) {
    seal_job_free (&fr[i].job);
    fr[i].job.raw = NULL;
    fr[i].job.sealed.known = true;
  }
  return r;
}

/* Step 2 of a commit: capture, seal and store its frozen chunks. */
struct capture {
  struct cairn_branch *b;
  struct frozen *frozen;
  size_t n;
  int64_t asked;                /* cairn_mono_ns when the commit was */
  int r;                        /* in: an earlier error; out: the first */
  char message[512];            /* capture_niced: the error's sentence */
};

static void *
capture_all (void *arg)
{
  struct capture *c = arg;

  /* Every frozen chunk is captured, also after an error: that is what
   * lets its writers go on.  They are sealed SEAL_GROUP at a time,
   * which hashes them together. */
  for (size_t i = 0, batch = 0, bytes = 0; i < c->n;) {
    struct seal_job *group[SEAL_GROUP];
    size_t m = CAIRN_MIN (c->n - i, (size_t) SEAL_GROUP);
    for (size_t k = 0; k < m; k++) {
      int rr = capture_frozen (c->b, &c->frozen[i + k]);
      if (rr < 0 && c->r == 0)
        c->r = rr;
      group[k] = &c->frozen[i + k].job;
    }
    if (c->r == 0)
      c->r = seal_jobs (c->b->s, group, m);
    for (size_t k = 0; k < m; k++)
      bytes += group[k]->sealed.len + (group[k]->raw ? group[k]->v->cs : 0);
    i += m;
    if (c->r == 0 && (bytes >= COMMIT_BATCH_BYTES
                      || i - batch >= COMMIT_BATCH_CHUNKS || i == c->n)) {
      c->r = store_frozen (c->b, &c->frozen[batch], i - batch);
      batch = i;
      bytes = 0;
    }
  }
  return NULL;
}

/* capture_all at the sealer's priority, in a thread of its own: the
 * hashing and compressing a commit of a served branch does then yields
 * the CPU to the threads serving the writes, as the sealer's does, and
 * their latency does not follow the commits (the committer waits). */
static void *
capture_niced (void *arg)
{
  struct capture *c = arg;

  cairn_thread_background (SEALER_NICE, NULL);
  cairn_compute_idle_fed (c->asked + COMMIT_IDLE_NS, COMMIT_IDLE_PCT);
  capture_all (c);
  /* cairn_last_error is per thread: hand it to the committer's. */
  if (c->r < 0)
    snprintf (c->message, sizeof c->message, "%s", cairn_last_error ());
  return NULL;
}

/* Whether SN's entry had a record at the freeze that no flush has
 * rewritten since: the commit absorbs it. */
static bool
record_absorbed (const struct snap *sn)
{
  return sn->persisted && sn->e->persist_seq == sn->persist_seq;
}

static int
snap_cmp (const void *a, const void *b)
{
  const struct snap *x = a, *y = b;
  return chunk_order (x->v, x->index, y->v, y->index);
}

static int
snap_ptr_cmp (const void *a, const void *b)
{
  return snap_cmp (*(struct snap *const *) a, *(struct snap *const *) b);
}

static const struct cairn_volume *
find_set_volume (const struct cairn_commit_options *o, const char *name)
{
  for (size_t i = 0; o && i < o->nset_volumes; i++)
    if (strcmp (o->set_volumes[i].name, name) == 0)
      return &o->set_volumes[i];
  return NULL;
}

/* The records of the entries evicted at a commit's freeze, as tree
 * changes in a file: they are read out of a read transaction opened at
 * the freeze, which is closed at once (held across the commit, it kept
 * LMDB from reusing the pages the commit's checkpoints freed, and the
 * index grew by hundreds of MiB), and read back COMMIT_TREE_BATCH at a
 * time, so memory does not grow with them either. */
struct spill {
  int fd;
  size_t *first, *count;        /* per volume, in records */
};

static void
spill_close (struct spill *sp)
{
  if (sp->fd >= 0)
    close (sp->fd);
  free (sp->first);
  free (sp->count);
}

/* Writes the live sealed records of the volumes of VOLS that SCAN marks
 * into SP, from SNAP. */
static int
spill_write (struct cairn_branch *b, struct cairn_txn *snap,
             struct cairn_bvol **vols, size_t nvols, const bool *scan,
             struct spill *sp)
{
  char path[4096], *slash;
  struct sealed_list l = { .max = COMMIT_TREE_BATCH };
  size_t total = 0;
  int r = scratch_path (b, "spill", path, sizeof path, true);

  sp->first = calloc (nvols ? nvols : 1, sizeof *sp->first);
  sp->count = calloc (nvols ? nvols : 1, sizeof *sp->count);
  if (r == 0 && (!sp->first || !sp->count))
    r = -ENOMEM;
  if (r == 0) {
    slash = strrchr (path, '/');
    *slash = '\0';
    sp->fd = open (path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (sp->fd < 0)
      r = cairn_error (-errno, "%s: %m", path);
  }
  for (size_t k = 0; r == 0 && k < nvols; k++) {
    if (!scan[k])
      continue;
    sp->first[k] = total;
    uint64_t from = 0;
    do {
      r = work_scan_sealed (vols[k], snap, from, UINT64_MAX, &l);
      if (r == 0 && l.n > 0
          && (r = cairn_pwrite_all (sp->fd, l.rec, l.n * sizeof *l.rec,
                                    total * sizeof *l.rec)) < 0)
        r = cairn_error (r, "writing the commit's list of evicted chunks: "
                         "%s", strerror (-r));
      total += l.n;
      sp->count[k] += l.n;
      from = l.next;
    } while (r == 0 && l.more);
  }
  sealed_list_free (&l);
  return r;
}

/* V's new root in *ROOT: its base with the M changes of CH (sorted by
 * index), and, with SP, the records of its entries evicted at the freeze
 * (K: V's place) that are not among them. */
static int
volume_tree (struct cairn_txn *txn, const struct spill *sp, size_t k,
             struct cairn_bvol *v, const struct tree_change *ch, size_t m,
             struct cairn_id *root)
{
  if (!sp || sp->count[k] == 0)
    return tree_update (txn, &v->root, v->levels, ch, m, root);

  struct tree_change *batch = malloc (COMMIT_TREE_BATCH * sizeof *batch);
  struct tree_change *recs = malloc (COMMIT_TREE_BATCH * sizeof *recs);
  struct cairn_id cur = v->root;
  size_t si = 0, ri = 0, nr = 0, read = 0;
  int r = batch && recs ? 0 : -ENOMEM;

  while (r == 0) {
    size_t nb = 0;
    while (r == 0 && nb < COMMIT_TREE_BATCH) {
      if (ri == nr && read < sp->count[k]) {
        nr = CAIRN_MIN ((size_t) COMMIT_TREE_BATCH, sp->count[k] - read);
        ssize_t got = pread (sp->fd, recs, nr * sizeof *recs,
                             (sp->first[k] + read) * sizeof *recs);
        if (got != (ssize_t) (nr * sizeof *recs))
          r = cairn_error (got < 0 ? -errno : -EIO, "reading the commit's "
                           "list of evicted chunks back: %m");
        read += nr;
        ri = 0;
        continue;
      }
      bool have_r = ri < nr, have_s = si < m;
      if (!have_r && !have_s)
        break;
      if (have_s && (!have_r || ch[si].index <= recs[ri].index)) {
        if (have_r && ch[si].index == recs[ri].index)
          ri++;                 /* in memory at the freeze: that wins */
        batch[nb++] = ch[si++];
      }
      else
        batch[nb++] = recs[ri++];
    }
    if (r < 0 || nb == 0)
      break;
    struct cairn_id next;
    r = tree_update (txn, &cur, v->levels, batch, nb, &next);
    cur = next;
  }
  if (r == 0)
    *root = cur;
  free (batch);
  free (recs);
  return r;
}

/* Builds the commit and new branch record in TXN.  NEW_INFO gets the
 * record, with ABSORBED; ROOTS the new root of each volume in b->vols
 * order.  SP: see volume_tree. */
static int
commit_txn (struct cairn_branch *b, struct cairn_txn *txn,
            struct snap *snaps, size_t n, struct cairn_bvol **vols,
            size_t nvols, const struct spill *sp, uint64_t absorbed,
            const struct cairn_commit_options *o,
            struct cairn_branch_info *new_info, struct cairn_id *roots,
            struct cairn_id *id)
{
  struct cairn_commit c = { 0 };
  struct tree_change *changes = NULL;
  int r = 0;

  /* The frozen chunks are stored already (store_frozen), under the
   * commit's pin: putting them again would only dirty index pages. */

  changes = malloc ((n ? n : 1) * sizeof *changes);
  size_t nvol_out = nvols + (o ? o->nset_volumes : 0);
  c.volumes = calloc (nvol_out ? nvol_out : 1, sizeof *c.volumes);
  new_info->volumes = calloc (nvol_out ? nvol_out : 1,
                              sizeof *new_info->volumes);
  if (!changes || !c.volumes || !new_info->volumes)
    r = -ENOMEM;

  size_t at = 0;
  for (size_t k = 0; r == 0 && k < nvols; k++) {
    struct cairn_bvol *v = vols[k];
    size_t m = 0;
    for (; at < n && snaps[at].v == v; at++) {
      changes[m].index = snaps[at].index;
      changes[m].id = snaps[at].id;
      m++;
    }
    const struct cairn_volume *set = find_set_volume (o, v->name);
    struct cairn_volume *cv = &c.volumes[c.nvolumes++];
    strcpy (cv->name, v->name);
    cv->chunk_size = v->cs;
    if (set) {
      cv->size = set->size;
      cv->root = set->root;
    }
    else {
      cv->size = v->size;
      r = volume_tree (txn, sp, k, v, changes, m, &cv->root);
    }
    roots[k] = cv->root;
    struct cairn_branch_volume *bv = &new_info->volumes[new_info->nvolumes++];
    strcpy (bv->name, v->name);
    bv->wid = v->wid;
    bv->size = cv->size;
    bv->chunk_size = v->cs;
    bv->root = cv->root;
  }
  /* Volumes set by the caller that the branch did not have yet. */
  for (size_t i = 0; r == 0 && o && i < o->nset_volumes; i++) {
    const struct cairn_volume *set = &o->set_volumes[i];
    bool have = false;
    for (size_t k = 0; k < nvols; k++)
      have |= strcmp (vols[k]->name, set->name) == 0;
    if (have)
      continue;
    if (!cairn_volume_name_valid (set->name) || set->size == 0
        || set->chunk_size != b->s->chunk_size) {
      r = cairn_error (-EINVAL, "volume '%s' cannot be committed: bad name "
                       "or size", set->name);
      break;
    }
    c.volumes[c.nvolumes++] = *set;
    struct cairn_branch_volume *bv = &new_info->volumes[new_info->nvolumes++];
    strcpy (bv->name, set->name);
    bv->size = set->size;
    bv->chunk_size = set->chunk_size;
    bv->root = set->root;
    r = branch_new_wid (txn, &bv->wid);
  }

  /* The commit. */
  size_t nextra = o ? o->nextra_parents : 0;
  c.parents = malloc ((nextra + 1) * sizeof *c.parents);
  if (r == 0 && !c.parents)
    r = -ENOMEM;
  if (r == 0) {
    if (!cairn_id_is_zero (&b->info.base))
      c.parents[c.nparents++] = b->info.base;
    for (size_t i = 0; i < nextra; i++)
      c.parents[c.nparents++] = o->extra_parents[i];
    c.time = o && o->time ? o->time : cairn_time_now ();
    c.vm = o ? (char *) o->vm : NULL;
    c.message = o && o->message ? (char *) o->message : "";
    for (size_t i = 0; o && o->labels && o->labels[i]; i++)
      c.nlabels++;
    c.labels = o ? (char **) o->labels : NULL;
    r = commit_store (txn, &c, id);
    if (r == -EINVAL)
      r = cairn_error (r, "a label must be KEY=VALUE (KEY of letters, "
                       "digits, '_', '.', '-'), and the vm line one line");
  }

  /* The branch record: every work record written before the freeze is
   * stale from now on (see Stale records). */
  if (r == 0) {
    new_info->base = *id;
    new_info->created = b->info.created;
    new_info->absorbed = absorbed;
    r = put_branch_record (txn, b, new_info);
  }
  /* The records of entries in memory go now, if there are no more than
   * the sealer deletes in one transaction; those of evicted ones, or all
   * if more, are left stale for the sealer.  Entries stay in memory until
   * sealed, and fio's random writes flat out over a 1 TiB branch left
   * 180000: deleting their records here dirtied 19 MiB of pages, which
   * LMDB then kept. */
  size_t persisted = 0;
  for (size_t i = 0; i < n; i++)
    persisted += record_absorbed (&snaps[i]);
  bool now = persisted <= STALE_BATCH;
  if (now)
    note_batch (persisted);
  else
    b->stale_records = true;    /* persist_mutex held */
  for (size_t i = 0; r == 0 && now && i < n; i++) {
    struct snap *sn = &snaps[i];
    if (!record_absorbed (sn))
      continue;
    uint8_t key[16];
    work_key (sn->v->wid, sn->index, key);
    r = TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_WORK, key,
                                   sizeof key);
    if (r == -ENOENT)
      r = 0;
  }
  free (changes);
  free (c.volumes);
  free (c.parents);
  return r;
}

int
cairn_branch_commit (struct cairn_branch *b,
                     const struct cairn_commit_options *o,
                     struct cairn_id *id)
{
  struct snap *snaps = NULL;
  struct snap **dirty = NULL;   /* the snaps to freeze, in block order */
  struct frozen *frozen = NULL;
  uint8_t *maps = NULL;         /* the frozen entries' bitmaps */
  struct cairn_bvol **vols = NULL;
  struct cairn_id *roots = NULL;
  struct cairn_branch_info new_info = { 0 };
  struct cairn_pin *pin = NULL;
  struct cairn_txn *snap = NULL;  /* the records as of the freeze */
  bool *scan = NULL;              /* per volume: had evicted entries */
  struct spill spill = { .fd = -1 };
  size_t n = 0, nfrozen = 0, ndirty_snaps = 0, nvols;
  uint64_t frozen_epoch = 0;
  int64_t asked = cairn_mono_ns ();
  int r = 0;

  atomic_fetch_add (&b->commits_waiting, 1);
  /* A sealer pass holds seal_mutex: it must not compute at SCHED_IDLE
   * while a commit waits for it. */
  int sealer = atomic_load (&b->sealer_tid);
  if (sealer > 0)
    cairn_thread_hurry (sealer);
  pthread_mutex_lock (&b->seal_mutex);
  atomic_fetch_sub (&b->commits_waiting, 1);
  /* Pending underlays left by a failed commit whose merge failed too. */
  pthread_mutex_lock (&b->lock);
  r = pend_merge_all (b);
  pthread_mutex_unlock (&b->lock);
  if (r < 0) {
    cairn_error (r, "commit of branch '%s': %s", b->name, strerror (-r));
    goto out;
  }

  /* 1. Freeze: the entries in memory, and the records of those evicted
   *    (none is evicted while the commit holds seal_mutex) as a read
   *    transaction, copied to the spill file right after: an evicted
   *    entry read back and rewritten meanwhile must still be committed
   *    as it was.  Records written from here on get the next epoch. */
  pthread_mutex_lock (&b->lock);
  nvols = b->nvols;
  frozen_epoch = b->work_epoch++;
  scan = calloc (nvols ? nvols : 1, sizeof *scan);
  bool any_scan = false;
  for (size_t i = 0; scan && i < nvols; i++)
    any_scan |= scan[i] = b->vols[i]->evicted > 0;
  if (!scan)
    r = -ENOMEM;
  else if (any_scan)
    r = cairn_txn_begin (b->s, false, &snap);
  if (r < 0) {
    pthread_mutex_unlock (&b->lock);
    goto out;
  }
  size_t total = 0, ndirty = 0;
  for (size_t i = 0; i < nvols; i++) {
    total += b->vols[i]->count;
    FOR_EACH_ENTRY (b->vols[i], e)
      ndirty += e->state == ENTRY_DIRTY;
  }
  snaps = calloc (total ? total : 1, sizeof *snaps);
  dirty = malloc ((ndirty ? ndirty : 1) * sizeof *dirty);
  frozen = calloc (ndirty ? ndirty : 1, sizeof *frozen);
  maps = calloc (ndirty ? ndirty : 1, b->bitmap_bytes);
  vols = malloc ((nvols ? nvols : 1) * sizeof *vols);
  roots = calloc (nvols ? nvols : 1, sizeof *roots);
  if (!snaps || !dirty || !frozen || !maps || !vols || !roots) {
    pthread_mutex_unlock (&b->lock);
    r = -ENOMEM;
    goto out;
  }
  memcpy (vols, b->vols, nvols * sizeof *vols);
  for (size_t i = 0; i < nvols; i++) {
    struct cairn_bvol *v = b->vols[i];
    FOR_EACH_ENTRY (v, e) {
      struct snap *sn = &snaps[n++];
      sn->v = v;
      sn->e = e;
      sn->index = e->index;
      sn->gen = e->gen;
      sn->persist_seq = e->persist_seq;
      sn->persisted = e->persisted;
      sn->id = e->id;
    }
  }
  /* The dirty ones in block order, so that the chunks of a region of the
   * volume land together in the packs: reads of the commit stay
   * sequential, and what later commits overwrite dies together, which
   * compaction likes.  Only they are sorted under the lock: every write
   * waits for it, and the others (up to ENTRY_CACHE_MAX sealed ones a
   * volume) took milliseconds, a write's latency at every commit. */
  for (size_t i = 0; i < n; i++)
    if (snaps[i].e->state == ENTRY_DIRTY
        && !find_set_volume (o, snaps[i].v->name))
      dirty[ndirty_snaps++] = &snaps[i];
  qsort (dirty, ndirty_snaps, sizeof *dirty, snap_ptr_cmp);
  for (size_t i = 0; i < ndirty_snaps; i++) {
    struct snap *sn = dirty[i];
    struct entry *e = sn->e;
    struct frozen *fr = &frozen[nfrozen];
    fr->job.bitmap = maps + nfrozen++ * b->bitmap_bytes;
    fr->job.v = sn->v;
    fr->job.e = e;
    fr->job.index = e->index;
    fr->job.gen = e->gen;
    fr->job.slot = e->slot;
    slot_hold (sn->v, e->slot);
    memcpy (fr->job.bitmap, e->bitmap, b->bitmap_bytes);
    fr->job.under = e->id;
    e->frozen = fr;
    sn->frozen = fr;
  }
  pthread_mutex_unlock (&b->lock);
  qsort (snaps, n, sizeof *snaps, snap_cmp);
  if (snap) {
    r = spill_write (b, snap, vols, nvols, scan, &spill);
    cairn_txn_abort (b->s, snap);
    snap = NULL;
  }

  /* 2. Capture and seal the frozen chunks, and store them a batch at a
   *    time under a pin (gc keeps them until the commit names them):
   *    memory stays one batch, not the whole working state, and the
   *    commit's own transaction only names them. */
  if (r == 0 && (nfrozen > 0 || n > COMMIT_CHECKPOINT_NODES || spill.fd >= 0))
    r = cairn_pin_begin (b->s, &pin);
  if (nfrozen > 0) {
    struct capture cap = { b, frozen, nfrozen, asked, r, "" };
    pthread_t helper;
    sleep_ms (b->test_capture_stall_ms);
    if (nfrozen > COMMIT_NICE_CHUNKS
        && pthread_create (&helper, NULL, capture_niced, &cap) == 0) {
      pthread_join (helper, NULL);
      if (cap.r < 0 && cap.message[0])
        cairn_error (cap.r, "%s", cap.message);
    }
    else
      capture_all (&cap);
    r = cap.r;
  }
  for (size_t i = 0; r == 0 && i < n; i++)
    if (snaps[i].frozen)
      snaps[i].id = snaps[i].frozen->job.sealed.id;

  /* 3. One transaction. */
  pthread_mutex_lock (&b->persist_mutex);
  if (r == 0) {
    struct cairn_txn *txn;
    r = cairn_txn_begin (b->s, true, &txn);
    if (r == 0) {
      /* The pin keeps gc off the nodes of parts committed before the
       * commit that names them. */
      if (pin)
        txn->checkpoint_nodes = COMMIT_CHECKPOINT_NODES;
      r = commit_txn (b, txn, snaps, n, vols, nvols,
                      spill.fd >= 0 ? &spill : NULL, frozen_epoch, o,
                      &new_info, roots, id);
      r = cairn_txn_end (b->s, txn, r);
    }
  }

  /* 4. Fold what the commit absorbed into the base. */
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < n; i++) {
    struct snap *sn = &snaps[i];
    struct entry *e = sn->e;
    if (e->frozen == sn->frozen && sn->frozen)
      e->frozen = NULL;         /* failed before capture */
    if (r < 0)
      continue;
    bool absorbed = record_absorbed (sn);
    /* Rewritten by a flush meanwhile: from before the freeze (stale,
     * left for the sealer) or after it (live). */
    b->stale_records |= sn->persisted && !absorbed;
    if (absorbed) {
      e->persisted = false;
      entry_set_rec_slot (sn->v, e, NO_SLOT);
    }
    if (e->gen == sn->gen && !e->busy && e->writers == 0) {
      if (e->state == ENTRY_DIRTY)
        slot_unhold (sn->v, e->slot);
      slot_unhold (sn->v, e->rec_slot);
      entry_remove (sn->v, e);
      continue;
    }
    /* Written after the freeze: its underlay is now what was committed
     * (which a pending underlay is, if it has one). */
    if (e->state == ENTRY_DIRTY) {
      e->id = sn->id;
      pend_drop (sn->v, e);
    }
    if (absorbed)
      meta_dirty (sn->v, e);
  }
  if (r == 0) {
    for (size_t k = 0; k < nvols; k++) {
      vols[k]->root = roots[k];
      vols[k]->size = new_info.volumes[k].size;
      vols[k]->levels = cairn_tree_levels (vols[k]->size, vols[k]->cs);
      /* Their records are stale now; one read back since and written
       * again is in memory (no eviction ran), and its record is new. */
      vols[k]->evicted = 0;
      vols[k]->evict_gen++;
    }
    /* Stale records left: those of evicted entries (and see above). */
    b->stale_records |= spill.fd >= 0;
    for (size_t k = nvols; k < new_info.nvolumes; k++) {
      struct cairn_bvol *v = bvol_new (b);
      if (!v)
        continue;
      strcpy (v->name, new_info.volumes[k].name);
      v->wid = new_info.volumes[k].wid;
      v->size = new_info.volumes[k].size;
      v->cs = new_info.volumes[k].chunk_size;
      v->root = new_info.volumes[k].root;
      v->levels = cairn_tree_levels (v->size, v->cs);
      char path[4096];
      if (scratch_path (b, v->name, path, sizeof path, true) == 0)
        v->scratch_fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                              0644);
      if (v->scratch_fd < 0 || add_bvol (b, v) < 0)
        bvol_free (v);
    }
    new_info.seq = b->info.seq + 1;
    cairn_branch_info_free (&b->info);
    uint64_t was = b->info.absorbed;
    b->info = new_info;
    b->info.absorbed = was;     /* lookups read it without the lock */
    __atomic_store_n (&b->info.absorbed, frozen_epoch, __ATOMIC_RELEASE);
    new_info.volumes = NULL;
    b->base_gen++;
  }
  /* Failed: the pending underlays are nothing stored; their entries
   * copy them in (a merge that fails leaves them to the next commit, and
   * the next flush). */
  if (r < 0)
    (void) pend_merge_all (b);
  for (size_t i = 0; i < nfrozen; i++)
    slot_unhold (frozen[i].job.v, frozen[i].job.slot);
  pthread_mutex_unlock (&b->lock);
  pthread_mutex_unlock (&b->persist_mutex);

 out:
  for (size_t i = 0; i < nfrozen; i++)
    seal_job_free (&frozen[i].job);
  free (new_info.volumes);
  free (snaps);
  free (dirty);
  free (frozen);
  free (maps);
  free (vols);
  free (roots);
  free (scan);
  cairn_txn_abort (b->s, snap);
  spill_close (&spill);
  cairn_pin_end (pin);
  /* No sealer to delete the records left stale: do it now. */
  while (r == 0 && !b->sealer_running && stale_sweep (b) == (int) STALE_BATCH)
    ;
  pthread_mutex_unlock (&b->seal_mutex);
  return r;
}

void
cairn_branch_stats (struct cairn_branch *b, struct cairn_branch_stats *st)
{
  memset (st, 0, sizeof *st);
  pthread_mutex_lock (&b->lock);
  for (size_t i = 0; i < b->nvols; i++) {
    struct cairn_bvol *v = b->vols[i];
    st->entries += v->count;
    st->evicted += v->evicted;
    st->scratch_slots += v->nslots;
    FOR_EACH_ENTRY (v, e) {
      st->unsealed += e->state == ENTRY_DIRTY;
      st->frozen += e->frozen != NULL;
    }
  }
  st->pending = b->npend;
  pthread_mutex_unlock (&b->lock);
}
