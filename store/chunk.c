/* chunk.c: sealing chunks (hash, dedup check, compress) and reading them
 * back (fetch, decompress, verify, cache).
 *
 * A chunk is always exactly the store's chunk size: the tail of a volume
 * whose size is not a multiple is zero-padded, so every chunk of every
 * volume deduplicates against every other.  The all-zero chunk is never
 * stored; its id is the reserved zero id.
 *
 * Identity is SHA-256 because a guest chooses the bytes it writes: a
 * weaker hash would let one VM craft a collision with another's data.
 * Every read re-hashes what it decompressed and fails with -EBADMSG,
 * naming the chunk, rather than return bytes that are not the chunk's.
 * Verified chunks are cached (cache.c), so the check costs once per
 * chunk while it stays hot.
 *
 * Compression contexts are per thread (zstd contexts are not thread-safe
 * and cost ~100 KiB-1 MiB to create).  A chunk that zstd cannot shrink is
 * stored raw.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "store/internal.h"

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void
free_cctx (void *p)
{
  ZSTD_freeCCtx (p);
}

static void
free_dctx (void *p)
{
  ZSTD_freeDCtx (p);
}

static void
make_keys (void)
{
  pthread_key_create (&cctx_key, free_cctx);
  pthread_key_create (&dctx_key, free_dctx);
}

static ZSTD_CCtx *
thread_cctx (void)
{
  pthread_once (&keys_once, make_keys);
  ZSTD_CCtx *c = pthread_getspecific (cctx_key);
  if (!c) {
    c = ZSTD_createCCtx ();
    pthread_setspecific (cctx_key, c);
  }
  return c;
}

static ZSTD_DCtx *
thread_dctx (void)
{
  pthread_once (&keys_once, make_keys);
  ZSTD_DCtx *d = pthread_getspecific (dctx_key);
  if (!d) {
    d = ZSTD_createDCtx ();
    pthread_setspecific (dctx_key, d);
  }
  return d;
}

/* Compresses CHUNK into OUT (whose id is set). */
static int
compress_chunk (struct cairn_store *s, const void *chunk,
                struct cairn_sealed *out)
{
  size_t cs = s->chunk_size;

  if (s->compress_level >= 0) {
    size_t bound = ZSTD_compressBound (cs);
    void *buf = malloc (bound);
    ZSTD_CCtx *cctx = thread_cctx ();
    if (!buf || !cctx) {
      free (buf);
      return -ENOMEM;
    }
    cairn_compute_begin ();
    size_t n = ZSTD_compressCCtx (cctx, buf, bound, chunk, cs,
                                  s->compress_level);
    cairn_compute_end ();
    if (!ZSTD_isError (n) && n < cs) {
      /* Keep what it compressed to, not the worst case: a commit holds
       * thousands of these between sealing and storing them, and a 4K
       * write in a chunk of zeros compresses to a few KiB. */
      void *fit = n < bound / 2 ? malloc (n) : NULL;
      if (fit) {
        memcpy (fit, buf, n);
        free (buf);
        buf = fit;
      }
      out->data = buf;
      out->len = n;
      out->flags = CAIRN_OBJECT_ZSTD;
      return 0;
    }
    free (buf);
  }
  out->data = malloc (cs);
  if (!out->data)
    return -ENOMEM;
  memcpy (out->data, chunk, cs);
  out->len = cs;
  out->flags = 0;
  return 0;
}

/* cairn_chunk_seal_many for at most CAIRN_HASH_BATCH chunks, OUT
 * zeroed. */
static int
seal_group (struct cairn_store *s, const void *const *chunks, size_t n,
            struct cairn_sealed *out)
{
  const void *data[CAIRN_HASH_BATCH];
  struct cairn_id ids[CAIRN_HASH_BATCH];
  size_t which[CAIRN_HASH_BATCH], m = 0;
  struct cairn_txn *txn;
  int r = 0;

  for (size_t i = 0; i < n; i++) {
    if (cairn_is_zero (chunks[i], s->chunk_size))
      out[i].known = true;
    else {
      data[m] = chunks[i];
      which[m++] = i;
    }
  }
  if (m == 0)
    return 0;
  cairn_compute_begin ();
  cairn_sha256_many (data, m, s->chunk_size, ids);
  cairn_compute_end ();
  for (size_t k = 0; k < m; k++)
    out[which[k]].id = ids[k];
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    return r;
  for (size_t k = 0; k < m && r == 0; k++) {
    r = TOPS (txn)->object_stat (txn->bt, CAIRN_OBJECT_CHUNK, &ids[k], NULL);
    if (r == 0)
      out[which[k]].known = true;
    else if (r == -ENOENT)
      r = 0;
  }
  cairn_txn_abort (s, txn);
  for (size_t k = 0; k < m && r == 0; k++)
    if (!out[which[k]].known)
      r = compress_chunk (s, data[k], &out[which[k]]);
  return r;
}

int
cairn_chunk_seal_many (struct cairn_store *s, const void *const *chunks,
                       size_t n, struct cairn_sealed *out)
{
  int r = 0;

  memset (out, 0, n * sizeof *out);
  for (size_t i = 0; i < n && r == 0; i += CAIRN_HASH_BATCH)
    r = seal_group (s, chunks + i,
                    CAIRN_MIN (n - i, (size_t) CAIRN_HASH_BATCH), out + i);
  return r;
}

int
cairn_chunk_seal (struct cairn_store *s, const void *chunk,
                  struct cairn_sealed *out)
{
  return cairn_chunk_seal_many (s, &chunk, 1, out);
}

/* Puts C: 0 if it was added now, 1 if the store had it (or it is the
 * hole), or an error. */
static int
chunk_put (struct cairn_txn *txn, const struct cairn_sealed *c)
{
  if (cairn_id_is_zero (&c->id))
    return 1;
  return TOPS (txn)->object_put (txn->bt, CAIRN_OBJECT_CHUNK, &c->id,
                                 c->known ? NULL : c->data, c->len,
                                 txn->s->chunk_size, c->flags);
}

int
cairn_chunk_put (struct cairn_txn *txn, const struct cairn_sealed *c)
{
  int r = chunk_put (txn, c);
  return r < 0 ? r : 0;
}

int
chunk_put_or_reseal (struct cairn_txn *txn, const void *raw,
                     struct cairn_sealed *c, bool *added)
{
  int r = chunk_put (txn, c);

  if (r == -ENOENT && c->known && raw) {
    /* gc reclaimed it between the seal and this transaction. */
    r = compress_chunk (txn->s, raw, c);
    if (r < 0)
      return r;
    c->known = false;
    r = chunk_put (txn, c);
  }
  if (added)
    *added = r == 0;
  return r < 0 ? r : 0;
}

void
cairn_sealed_free (struct cairn_sealed *c)
{
  free (c->data);
  c->data = NULL;
}

/* Fetches and decompresses chunk ID into BUF (chunk size); the caller
 * verifies it (verified). */
static int
fetch_unverified (struct cairn_store *s, const struct cairn_id *id, void *buf)
{
  char hex[CAIRN_HEX_SIZE + 1];
  struct cairn_val data;
  struct cairn_object_info info;
  struct cairn_txn *txn;
  int r;

  cairn_id_to_hex (id, hex);
  /* A pack can vanish under an old snapshot when gc compacts it: the
   * index then names the chunk's new home, so look again. */
  for (int attempt = 0;; attempt++) {
    r = cairn_txn_begin (s, false, &txn);
    if (r < 0)
      return r;
    r = TOPS (txn)->object_get (txn->bt, CAIRN_OBJECT_CHUNK, id, &data,
                                &info);
    if (r != -ENOENT || attempt == 2)
      break;
    cairn_txn_abort (s, txn);
  }
  if (r == -ENOENT) {
    cairn_txn_abort (s, txn);
    return cairn_error (-EBADMSG, "chunk %s is missing from the store", hex);
  }
  if (r == -EBADMSG) {
    cairn_txn_abort (s, txn);
    return cairn_error (r, "chunk %s is corrupt: its pack record is damaged",
                        hex);
  }
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return cairn_error (r, "chunk %s: %s", hex, cairn_strerror (r));
  }

  if (info.raw_len != s->chunk_size)
    r = -EBADMSG;
  else if (info.flags & CAIRN_OBJECT_ZSTD) {
    ZSTD_DCtx *dctx = thread_dctx ();
    size_t n = dctx ? ZSTD_decompressDCtx (dctx, buf, s->chunk_size,
                                           data.data, data.len) : 0;
    if (!dctx)
      r = -ENOMEM;
    else if (ZSTD_isError (n) || n != s->chunk_size)
      r = -EBADMSG;
  }
  else if (data.len != s->chunk_size)
    r = -EBADMSG;
  else
    memcpy (buf, data.data, data.len);
  cairn_txn_abort (s, txn);
  if (r == -EBADMSG)
    return cairn_error (r, "chunk %s is corrupt: it does not decompress",
                        hex);
  return r;
}

/* Whether chunk ID's bytes, read back, hashed to CHECK. */
static int
verified (const struct cairn_id *id, const struct cairn_id *check)
{
  char hex[CAIRN_HEX_SIZE + 1];

  if (cairn_id_equal (check, id))
    return 0;
  cairn_id_to_hex (id, hex);
  return cairn_error (-EBADMSG,
                      "chunk %s is corrupt: its bytes do not hash to its id",
                      hex);
}

/* Fetches, decompresses and verifies chunk ID into BUF (chunk size). */
static int
fetch_chunk (struct cairn_store *s, const struct cairn_id *id, void *buf)
{
  struct cairn_id check;
  int r = fetch_unverified (s, id, buf);

  if (r < 0)
    return r;
  cairn_sha256 (buf, s->chunk_size, &check);
  return verified (id, &check);
}

int
cairn_chunk_read_part (struct cairn_store *s, const struct cairn_id *id,
                       void *buf, size_t len, size_t off)
{
  if (cairn_id_is_zero (id)) {
    memset (buf, 0, len);
    return 0;
  }
  if (chunk_cache_get (s->cache, id, buf, off, len))
    return 0;
  void *chunk = chunk_cache_buffer (s->cache);
  if (!chunk)
    return -ENOMEM;
  int r = fetch_chunk (s, id, chunk);
  if (r < 0) {
    chunk_cache_release (s->cache, chunk);
    return r;
  }
  memcpy (buf, (char *) chunk + off, len);
  chunk_cache_insert (s->cache, id, chunk);
  return 0;
}

int
cairn_chunk_read (struct cairn_store *s, const struct cairn_id *id,
                  void *buf)
{
  return cairn_chunk_read_part (s, id, buf, s->chunk_size, 0);
}

int
cairn_chunk_read_parts (struct cairn_store *s,
                        const struct cairn_chunk_part *parts, size_t n)
{
  int r = 0;

  for (size_t i = 0; i < n && r == 0; i += CAIRN_HASH_BATCH) {
    struct cairn_id ids[CAIRN_HASH_BATCH];
    void *bufs[CAIRN_HASH_BATCH];
    size_t which[CAIRN_HASH_BATCH], m = 0;
    size_t end = CAIRN_MIN (n, i + CAIRN_HASH_BATCH);
    for (size_t k = i; k < end && r == 0; k++) {
      const struct cairn_chunk_part *p = &parts[k];
      if (cairn_id_is_zero (&p->id))
        memset (p->buf, 0, p->len);
      else if (!chunk_cache_get (s->cache, &p->id, p->buf, p->within,
                                 p->len)) {
        bufs[m] = chunk_cache_buffer (s->cache);
        if (!bufs[m])
          r = -ENOMEM;
        else {
          ids[m] = p->id;
          which[m++] = k;
        }
      }
    }
    if (r == 0)
      r = cairn_chunk_read_many (s, ids, m, bufs);
    for (size_t j = 0; j < m; j++) {
      const struct cairn_chunk_part *p = &parts[which[j]];
      if (r < 0) {
        chunk_cache_release (s->cache, bufs[j]);
        continue;
      }
      memcpy (p->buf, (char *) bufs[j] + p->within, p->len);
      chunk_cache_insert (s->cache, &ids[j], bufs[j]);
    }
  }
  return r;
}

int
cairn_chunk_read_many (struct cairn_store *s, const struct cairn_id *ids,
                       size_t n, void *const *bufs)
{
  const void *data[CAIRN_HASH_BATCH];
  struct cairn_id check[CAIRN_HASH_BATCH];
  size_t which[CAIRN_HASH_BATCH];
  int r = 0;

  for (size_t i = 0; i < n && r == 0; i += CAIRN_HASH_BATCH) {
    size_t g = CAIRN_MIN (n - i, (size_t) CAIRN_HASH_BATCH), m = 0;
    for (size_t k = i; k < i + g && r == 0; k++) {
      if (cairn_id_is_zero (&ids[k]))
        memset (bufs[k], 0, s->chunk_size);
      else if ((r = fetch_unverified (s, &ids[k], bufs[k])) == 0) {
        data[m] = bufs[k];
        which[m++] = k;
      }
    }
    if (r < 0)
      break;
    cairn_sha256_many (data, m, s->chunk_size, check);
    for (size_t k = 0; k < m && r == 0; k++)
      r = verified (&ids[which[k]], &check[k]);
  }
  return r;
}

int
cairn_chunk_verify (struct cairn_store *s, const struct cairn_id *id)
{
  void *chunk = malloc (s->chunk_size);
  if (!chunk)
    return -ENOMEM;
  int r = fetch_chunk (s, id, chunk);
  free (chunk);
  return r;
}
