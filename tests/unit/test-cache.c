/* test-cache: the LRU cache of decompressed, verified chunks
 * (store/cache.c), on its own and under a real store's reads.
 *
 * On its own, with ids made to land in chosen shards (the first byte of
 * an id picks one of sixteen): a hit copies the part asked for, a miss
 * leaves the buffer alone, a second insert of an id keeps the first
 * bytes; a shard holds its share of the byte budget and evicts its least
 * recently used chunk, a get counting as a use; the whole cache never
 * holds more chunks than the budget allows, also a budget of 0 or of less
 * than a chunk per shard; a shrink evicts down to the new budget and a
 * growth keeps what is there; an evicted buffer serves the next miss.
 * Four threads inserting, reading and resizing at once only ever read the
 * bytes of the chunk they asked for.
 *
 * Under a store: a chunk read once reads again after the index forgot it
 * (a hit), and fails once the cache is emptied; of two chunks of one
 * shard in a one-chunk-per-shard cache only the last read stays; four
 * threads reading parts of 64 chunks through a small cache read their
 * bytes.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "scratch-store.h"
#include "tap.h"
#include "xorshift.h"

#define CS 4096                 /* chunk size */
#define SHARDS 16               /* cache.c's */
#define THREADS 4

/* ---- the cache on its own ----------------------------------------- */

/* The id of chunk N of shard SHARD (seed_of gives its bytes' seed). */
static struct cairn_id
id_of (unsigned shard, uint64_t n)
{
  struct cairn_id id = { .bytes = { (uint8_t) shard } };

  memcpy (id.bytes + 8, &n, sizeof n);
  memcpy (id.bytes + 24, &n, sizeof n);
  return id;
}

/* True if GOT holds bytes [OFF, OFF + LEN) of the chunk of SEED. */
static bool
part_of (const void *got, uint64_t seed, size_t off, size_t len)
{
  uint8_t want[CS];

  xorshift_fill (want, CS, seed);
  return memcmp (got, want + off, len) == 0;
}

static uint64_t
seed_of (unsigned shard, uint64_t n)
{
  return n * SHARDS + shard + 1;
}

static void
insert (struct chunk_cache *c, unsigned shard, uint64_t n)
{
  struct cairn_id id = id_of (shard, n);
  void *data = chunk_cache_buffer (c);

  xorshift_fill (data, CS, seed_of (shard, n));
  chunk_cache_insert (c, &id, data);
}

/* True if chunk N of SHARD is cached with its bytes; counts as a use. */
static bool
cached (struct chunk_cache *c, unsigned shard, uint64_t n)
{
  struct cairn_id id = id_of (shard, n);
  uint8_t got[CS];

  return chunk_cache_get (c, &id, got, 0, CS)
    && part_of (got, seed_of (shard, n), 0, CS);
}

/* How many of chunks [FIRST, END) of every shard are cached, each looked
 * up in order (so that their order in each LRU list stays as it was). */
static unsigned
count_cached (struct chunk_cache *c, uint64_t first, uint64_t end)
{
  unsigned n = 0;

  for (unsigned shard = 0; shard < SHARDS; shard++)
    for (uint64_t i = first; i < end; i++)
      n += cached (c, shard, i);
  return n;
}

static void
hits_and_misses (void)
{
  struct chunk_cache *c = chunk_cache_new (SHARDS * 4 * CS, CS);
  struct cairn_id a = id_of (3, 1);
  uint8_t buf[CS], want[CS];

  memset (buf, 0xaa, sizeof buf);
  ok (!chunk_cache_get (c, &a, buf, 0, CS) && buf[0] == 0xaa
      && buf[CS - 1] == 0xaa, "a miss, and the buffer is left alone");
  insert (c, 3, 1);
  ok (cached (c, 3, 1), "inserted: a hit with the chunk's bytes");
  xorshift_fill (want, CS, seed_of (3, 1));
  memset (buf, 0, sizeof buf);
  ok (chunk_cache_get (c, &a, buf + 5, 1001, 77)
      && memcmp (buf + 5, want + 1001, 77) == 0 && buf[4] == 0 && buf[82] == 0,
      "a part of it: exactly those 77 bytes at 1001");
  void *other = chunk_cache_buffer (c);
  memset (other, 0x55, CS);
  chunk_cache_insert (c, &a, other);
  ok (cached (c, 3, 1), "an id inserted again keeps its first bytes");
  struct cairn_id b = id_of (4, 1);
  ok (!chunk_cache_get (c, &b, buf, 0, CS),
      "an id of the same number in another shard is a miss");
  chunk_cache_free (c);
}

static void
lru_eviction (void)
{
  struct chunk_cache *c = chunk_cache_new (SHARDS * 4 * CS, CS);

  insert (c, 3, 100);
  for (uint64_t n = 1; n <= 4; n++)
    insert (c, 5, n);
  ok (cached (c, 5, 1) && cached (c, 5, 2) && cached (c, 5, 3)
      && cached (c, 5, 4), "a shard holds its 4 chunks of the budget");
  /* LRU order now 4 3 2 1 (most recent first). */
  insert (c, 5, 5);
  ok (!cached (c, 5, 1), "a fifth evicts the least recently used");
  /* 5 4 3 2 */
  ok (cached (c, 5, 2), "a get counts as a use: chunk 2 read again");
  /* 2 5 4 3 */
  insert (c, 5, 6);
  ok (!cached (c, 5, 3) && cached (c, 5, 2) && cached (c, 5, 4)
      && cached (c, 5, 5) && cached (c, 5, 6),
      "the next insert evicts 3, the least recently used, not 2");
  ok (cached (c, 3, 100), "another shard lost nothing");
  chunk_cache_free (c);
}

static void
budget (void)
{
  struct chunk_cache *c = chunk_cache_new (SHARDS * 4 * CS, CS);

  for (uint64_t n = 0; n < 100; n++)
    for (unsigned shard = 0; shard < SHARDS; shard++)
      insert (c, shard, n);
  is_int (count_cached (c, 0, 100), SHARDS * 4,
          "1600 chunks into a budget of 64: 64 are cached");
  is_int (count_cached (c, 96, 100), SHARDS * 4,
          "the 4 most recent of each shard");

  chunk_cache_set_capacity (c, SHARDS * 2 * CS);
  is_int (count_cached (c, 0, 100), SHARDS * 2,
          "shrunk to 32 chunks: 32 stay");
  is_int (count_cached (c, 98, 100), SHARDS * 2,
          "the 2 most recent of each shard");

  chunk_cache_set_capacity (c, SHARDS * 200 * CS);
  is_int (count_cached (c, 98, 100), SHARDS * 2,
          "grown to 3200 chunks: the 32 are still found");
  for (uint64_t n = 100; n < 300; n++)
    for (unsigned shard = 0; shard < SHARDS; shard++)
      insert (c, shard, n);
  is_int (count_cached (c, 100, 300), SHARDS * 200,
          "3200 more are all cached");
  is_int (count_cached (c, 98, 100), 0, "and evicted the 32 older ones");

  chunk_cache_set_capacity (c, 0);
  is_int (count_cached (c, 0, 300), 0, "a budget of 0 empties it");
  chunk_cache_free (c);
}

/* Chunks cached after 20 are inserted into every shard of a cache of
 * CAPACITY bytes. */
static unsigned
holds_after_filling (uint64_t capacity)
{
  struct chunk_cache *c = chunk_cache_new (capacity, CS);
  unsigned n;

  for (uint64_t i = 0; i < 20; i++)
    for (unsigned shard = 0; shard < SHARDS; shard++)
      insert (c, shard, i);
  n = count_cached (c, 0, 20);
  chunk_cache_free (c);
  return n;
}

static void
tiny_budgets (void)
{
  unsigned n;

  is_int (holds_after_filling (0), 0, "a budget of 0 caches nothing");
  is_int (holds_after_filling (CS - 1), 0,
          "a budget under one chunk caches nothing");
  n = holds_after_filling (15 * CS);
  ok (n <= 15, "a budget of 15 chunks holds at most 15 (holds %u)", n);
  is_int (holds_after_filling (SHARDS * CS), SHARDS,
          "a budget of one chunk per shard holds 16");

  struct chunk_cache *c = chunk_cache_new (SHARDS * CS, CS);
  insert (c, 7, 1);
  insert (c, 7, 2);
  ok (!cached (c, 7, 1) && cached (c, 7, 2),
      "with one per shard, the second chunk of a shard replaces the first");
  chunk_cache_free (c);
}

static void *volatile decoy;

static void
buffers_recycled (void)
{
  struct chunk_cache *c = chunk_cache_new (SHARDS * CS, CS);
  struct cairn_id id = id_of (2, 1);
  void *first = chunk_cache_buffer (c);

  xorshift_fill (first, CS, 1);
  chunk_cache_insert (c, &id, first);
  insert (c, 2, 2);
  /* A buffer freed would be malloc's next one of its size: take that
   * (through a volatile, so that the compiler keeps the malloc). */
  decoy = malloc (CS);
  void *next = chunk_cache_buffer (c);
  ok (next == first && part_of (next, 1, 0, CS),
      "the buffer of an evicted chunk serves the next miss, as it was");
  chunk_cache_release (c, first);
  ok (chunk_cache_buffer (c) == first, "so does a buffer given back");
  chunk_cache_release (c, first);
  free (decoy);
  chunk_cache_free (c);
}

/* Threads that read random parts of chunks at once, each through READ:
 * 1 if it read the part of chunk K into GOT (then *SEED is the chunk's),
 * 0 if it did not have it, or an error. */
struct hammer {
  int (*read) (struct hammer *h, unsigned k, void *got, size_t off,
               size_t len, uint64_t *seed);
  unsigned nchunks;             /* K is below it */
  unsigned rounds;
  unsigned thread;
  struct chunk_cache *c;        /* a cache on its own, or */
  const struct cairn_id *ids;   /* chunks of the store, and */
  const uint64_t *seeds;        /* their bytes' seeds */
  unsigned reads, misses, errors, wrong;
};

static void *
hammer_run (void *arg)
{
  struct hammer *h = arg;
  uint64_t x = 0x9e3779b97f4a7c15ULL * (h->thread + 1);
  uint8_t got[CS];

  for (unsigned i = 0; i < h->rounds; i++) {
    uint64_t r = xorshift64 (&x), seed;
    size_t off = (r >> 16) % CS;
    size_t len = 1 + (r >> 32) % (CS - off);
    int read = h->read (h, r % h->nchunks, got, off, len, &seed);
    h->reads += read == 1;
    h->misses += read == 0;
    h->errors += read < 0;
    h->wrong += read == 1 && !part_of (got, seed, off, len);
  }
  return NULL;
}

/* Runs THREADS copies of H at once; their sums into *H. */
static void
hammer (struct hammer *h)
{
  struct hammer each[THREADS];
  pthread_t th[THREADS];

  for (unsigned t = 0; t < THREADS; t++) {
    each[t] = *h;
    each[t].thread = t;
    pthread_create (&th[t], NULL, hammer_run, &each[t]);
  }
  for (unsigned t = 0; t < THREADS; t++) {
    pthread_join (th[t], NULL);
    h->reads += each[t].reads;
    h->misses += each[t].misses;
    h->errors += each[t].errors;
    h->wrong += each[t].wrong;
  }
}

/* A get, or an insert after a miss; thread 0 resizes the cache now and
 * then. */
static int
read_cache (struct hammer *h, unsigned k, void *got, size_t off, size_t len,
            uint64_t *seed)
{
  unsigned shard = k % SHARDS, n = k / SHARDS;
  struct cairn_id id = id_of (shard, n);

  if (h->thread == 0 && (h->reads + h->misses) % 500 == 0)
    chunk_cache_set_capacity (h->c, SHARDS * CS * (k % 2 ? 1 : 8));
  *seed = seed_of (shard, n);
  if (chunk_cache_get (h->c, &id, got, off, len))
    return 1;
  insert (h->c, shard, n);
  return 0;
}

static void
concurrent (void)
{
  struct hammer h = { .read = read_cache, .nchunks = SHARDS * 24,
                      .rounds = 20000,
                      .c = chunk_cache_new (SHARDS * 8 * CS, CS) };

  hammer (&h);
  ok (h.reads > 0 && h.misses > 0,
      "4 threads share the cache: %u hits, %u misses", h.reads, h.misses);
  is_int (h.wrong, 0, "every hit copied the bytes of the chunk asked for");
  chunk_cache_free (h.c);
}

/* ---- the cache under a store -------------------------------------- */

static struct cairn_store *s;

/* Stores a chunk of bytes from SEED into *ID. */
static int
put_chunk (uint64_t seed, struct cairn_id *id)
{
  uint8_t chunk[CS];
  struct cairn_sealed sealed;
  struct cairn_txn *txn;

  xorshift_fill (chunk, CS, seed);
  int r = cairn_chunk_seal (s, chunk, &sealed);
  if (r < 0)
    return r;
  *id = sealed.id;
  r = cairn_txn_begin (s, true, &txn);
  if (r == 0)
    r = cairn_txn_end (s, txn, cairn_chunk_put (txn, &sealed));
  cairn_sealed_free (&sealed);
  return r;
}

/* Removes chunk ID from the index: only the cache still has its bytes. */
static int
forget_chunk (const struct cairn_id *id)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  r = TOPS (txn)->object_delete (txn->bt, CAIRN_OBJECT_CHUNK, id);
  return cairn_txn_end (s, txn, r);
}

/* True if chunk ID reads as the bytes of SEED. */
static bool
reads_as (const struct cairn_id *id, uint64_t seed)
{
  uint8_t got[CS];

  return cairn_chunk_read (s, id, got) == 0 && part_of (got, seed, 0, CS);
}

static void
store_hits (void)
{
  struct cairn_id a;
  uint8_t buf[CS];

  ok (put_chunk (1, &a) == 0 && reads_as (&a, 1), "a stored chunk reads");
  ok (forget_chunk (&a) == 0 && reads_as (&a, 1),
      "after the index forgot it, it still reads: from the cache");
  cairn_store_set_cache_size (s, 0);
  is_int (cairn_chunk_read (s, &a, buf), -EBADMSG,
          "the cache emptied, the read fails: it was the cache's");
}

static void
store_eviction (void)
{
  struct cairn_id x, y;
  uint64_t seed_x = 1000, seed_y = 1001;

  /* Two chunks of one shard. */
  put_chunk (seed_x, &x);
  do
    put_chunk (++seed_y, &y);
  while (y.bytes[0] % SHARDS != x.bytes[0] % SHARDS);
  cairn_store_set_cache_size (s, SHARDS * CS);
  ok (reads_as (&x, seed_x) && reads_as (&y, seed_y),
      "two chunks of one shard read into a cache of one chunk per shard");
  ok (forget_chunk (&x) == 0 && forget_chunk (&y) == 0, "the index forgets both");
  ok (!reads_as (&x, seed_x) && reads_as (&y, seed_y),
      "only the last one read is still cached");
}

static int
read_store (struct hammer *h, unsigned k, void *got, size_t off, size_t len,
            uint64_t *seed)
{
  *seed = h->seeds[k];
  return cairn_chunk_read_part (s, &h->ids[k], got, len, off) < 0 ? -1 : 1;
}

static void
store_concurrent (void)
{
  struct cairn_id ids[64];
  uint64_t seeds[64];
  struct hammer h = { .read = read_store, .nchunks = 64, .rounds = 3000,
                      .ids = ids, .seeds = seeds };
  int put = 0;

  for (unsigned k = 0; k < 64; k++) {
    seeds[k] = 5000 + k;
    put |= put_chunk (seeds[k], &ids[k]);
  }
  ok (put == 0, "64 chunks stored");
  cairn_store_set_cache_size (s, SHARDS * 2 * CS);
  hammer (&h);
  is_int (h.errors, 0, "4 threads read parts of them through a 32-chunk cache");
  is_int (h.wrong, 0, "every part read is the chunk's");
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-cache.XXXXXX";
  struct cairn_store_options o = { .chunk_size = CS };

  hits_and_misses ();
  lru_eviction ();
  budget ();
  tiny_budgets ();
  buffers_recycled ();
  concurrent ();

  scratch_store_open (dir, &o, &s);
  store_hits ();
  store_eviction ();
  store_concurrent ();
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
