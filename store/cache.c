/* cache.c: an LRU cache of decompressed, verified chunks.
 *
 * Reads of committed data go through here so that a chunk is decompressed
 * and hash-checked once while it stays hot, not on every 4 KiB read of
 * it.  Sixteen shards, chosen by the first byte of the id (uniform: ids
 * are hashes), each with its own mutex, hash table and LRU list, keep
 * parallel readers from contending.  A reader copies the bytes it needs
 * while holding the shard's lock, so an entry never has to be pinned.
 * Capacity is a byte budget split evenly over the shards.
 *
 * Chunk buffers are recycled: an evicted one serves the next miss.  A
 * malloc and a free per miss, from many threads' arenas, fragmented the
 * heap of a busy plugin to several times the cache's budget.
 */
#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define SHARDS 16
#define SPARE_MAX 32            /* buffers kept for the next misses */

struct entry {
  struct cairn_id id;
  void *data;
  struct entry *hnext;          /* hash chain */
  struct entry *prev, *next;    /* LRU list, most recent first */
};

struct shard {
  pthread_mutex_t lock;         /* guards everything in the shard */
  struct entry **buckets;
  size_t nbuckets;              /* power of two */
  size_t count, max_count;
  struct entry lru;             /* list head */
};

struct chunk_cache {
  uint32_t chunk_size;
  struct shard shards[SHARDS];
  pthread_mutex_t spare_lock;
  void *spare[SPARE_MAX];
  size_t nspare;
};

void *
chunk_cache_buffer (struct chunk_cache *c)
{
  void *data = NULL;

  pthread_mutex_lock (&c->spare_lock);
  if (c->nspare > 0)
    data = c->spare[--c->nspare];
  pthread_mutex_unlock (&c->spare_lock);
  return data ? data : malloc (c->chunk_size);
}

void
chunk_cache_release (struct chunk_cache *c, void *data)
{
  pthread_mutex_lock (&c->spare_lock);
  if (c->nspare < SPARE_MAX) {
    c->spare[c->nspare++] = data;
    data = NULL;
  }
  pthread_mutex_unlock (&c->spare_lock);
  free (data);
}

static struct shard *
shard_of (struct chunk_cache *c, const struct cairn_id *id)
{
  return &c->shards[id->bytes[0] % SHARDS];
}

static size_t
bucket_of (const struct shard *sh, const struct cairn_id *id)
{
  uint64_t h;
  memcpy (&h, id->bytes + 8, sizeof h);
  return h & (sh->nbuckets - 1);
}

static void
lru_unlink (struct entry *e)
{
  e->prev->next = e->next;
  e->next->prev = e->prev;
}

static void
lru_push_front (struct shard *sh, struct entry *e)
{
  e->next = sh->lru.next;
  e->prev = &sh->lru;
  sh->lru.next->prev = e;
  sh->lru.next = e;
}

static void
evict_one (struct chunk_cache *c, struct shard *sh)
{
  struct entry *e = sh->lru.prev;
  struct entry **pp = &sh->buckets[bucket_of (sh, &e->id)];

  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  lru_unlink (e);
  chunk_cache_release (c, e->data);
  free (e);
  sh->count--;
}

static void
shard_set_capacity (struct chunk_cache *c, struct shard *sh,
                    size_t max_count)
{
  size_t nb = 64;

  while (nb < max_count * 2)
    nb *= 2;
  pthread_mutex_lock (&sh->lock);
  sh->max_count = max_count;
  while (sh->count > max_count)
    evict_one (c, sh);
  if (nb > sh->nbuckets) {
    struct entry **b = calloc (nb, sizeof *b);
    if (b) {
      /* Rehash every entry into the bigger table. */
      for (size_t i = 0; i < sh->nbuckets; i++) {
        struct entry *e = sh->buckets[i], *next;
        for (; e; e = next) {
          next = e->hnext;
          size_t at;
          uint64_t h;
          memcpy (&h, e->id.bytes + 8, sizeof h);
          at = h & (nb - 1);
          e->hnext = b[at];
          b[at] = e;
        }
      }
      free (sh->buckets);
      sh->buckets = b;
      sh->nbuckets = nb;
    }
  }
  pthread_mutex_unlock (&sh->lock);
}

struct chunk_cache *
chunk_cache_new (uint64_t capacity, uint32_t chunk_size)
{
  struct chunk_cache *c = calloc (1, sizeof *c);

  if (!c)
    return NULL;
  c->chunk_size = chunk_size;
  pthread_mutex_init (&c->spare_lock, NULL);
  for (int i = 0; i < SHARDS; i++) {
    struct shard *sh = &c->shards[i];
    pthread_mutex_init (&sh->lock, NULL);
    sh->lru.next = sh->lru.prev = &sh->lru;
  }
  chunk_cache_set_capacity (c, capacity);
  return c;
}

void
chunk_cache_set_capacity (struct chunk_cache *c, uint64_t capacity)
{
  size_t per_shard = capacity / c->chunk_size / SHARDS;

  for (int i = 0; i < SHARDS; i++)
    shard_set_capacity (c, &c->shards[i], per_shard);
}

void
chunk_cache_free (struct chunk_cache *c)
{
  if (!c)
    return;
  for (int i = 0; i < SHARDS; i++) {
    struct shard *sh = &c->shards[i];
    while (sh->count > 0)
      evict_one (c, sh);
    free (sh->buckets);
    pthread_mutex_destroy (&sh->lock);
  }
  while (c->nspare > 0)
    free (c->spare[--c->nspare]);
  pthread_mutex_destroy (&c->spare_lock);
  free (c);
}

bool
chunk_cache_get (struct chunk_cache *c, const struct cairn_id *id,
                 void *buf, size_t off, size_t len)
{
  struct shard *sh = shard_of (c, id);
  bool hit = false;

  pthread_mutex_lock (&sh->lock);
  if (sh->nbuckets > 0) {
    for (struct entry *e = sh->buckets[bucket_of (sh, id)]; e; e = e->hnext)
      if (cairn_id_equal (&e->id, id)) {
        memcpy (buf, (char *) e->data + off, len);
        lru_unlink (e);
        lru_push_front (sh, e);
        hit = true;
        break;
      }
  }
  pthread_mutex_unlock (&sh->lock);
  return hit;
}

void
chunk_cache_insert (struct chunk_cache *c, const struct cairn_id *id,
                    void *data)
{
  struct shard *sh = shard_of (c, id);

  pthread_mutex_lock (&sh->lock);
  if (sh->max_count == 0 || sh->nbuckets == 0)
    goto drop;
  size_t at = bucket_of (sh, id);
  for (struct entry *e = sh->buckets[at]; e; e = e->hnext)
    if (cairn_id_equal (&e->id, id))
      goto drop;
  struct entry *e = malloc (sizeof *e);
  if (!e)
    goto drop;
  e->id = *id;
  e->data = data;
  e->hnext = sh->buckets[at];
  sh->buckets[at] = e;
  lru_push_front (sh, e);
  if (++sh->count > sh->max_count)
    evict_one (c, sh);
  pthread_mutex_unlock (&sh->lock);
  return;

 drop:
  pthread_mutex_unlock (&sh->lock);
  chunk_cache_release (c, data);
}
