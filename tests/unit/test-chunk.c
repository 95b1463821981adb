/* test-chunk: chunks (store/chunk.c) through the store API, on real
 * stores.
 *
 * A sealed chunk's id is the SHA-256 of its raw bytes (OpenSSL's, not
 * libcairn's); it is stored as one zstd frame made at the store's level,
 * raw if zstd cannot shrink it, and raw always in a store made with
 * "compress none".  The all-zero chunk is a hole that is never stored.
 * A chunk sealed or put twice is stored once; one that gc deleted between
 * its seal and its put is sealed again.  Reads give the raw bytes back,
 * at the smallest and the largest chunk size too.  A chunk whose bytes
 * changed on disk (payload, record header, a truncated pack) or that is
 * missing fails to read with -EBADMSG and a message naming it.
 *
 * The stores cache no chunk, so that every read comes from the packs.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <zstd.h>

#include "store/internal.h"
#include "store/pack.h"
#include "file-bytes.h"
#include "scratch-store.h"
#include "tap.h"

enum { CS = 16384 };            /* chunk size of the stores below */

struct scratch {
  char dir[64];
  struct cairn_store *s;
};

static struct scratch level1;   /* zstd level 1: most of the checks */

/* A store of chunk size CHUNK_SIZE compressed at LEVEL (-1: none) that
 * caches no chunk. */
static struct cairn_store *
store_make (struct scratch *st, uint32_t chunk_size, int level)
{
  struct cairn_store_options o = { .chunk_size = chunk_size,
                                   .compress_level = level };

  snprintf (st->dir, sizeof st->dir, "/tmp/cairn-test-chunk.XXXXXX");
  scratch_store_open (st->dir, &o, &st->s);
  cairn_store_set_cache_size (st->s, 0);
  return st->s;
}

static void
store_remove (struct scratch *st)
{
  cairn_store_close (st->s);
  cairn_remove_tree (st->dir);
}

/* Words and numbers from SEED: zstd shrinks them, and level 19 finds
 * more than level 1 does. */
static void
text (void *buf, size_t len, uint32_t seed)
{
  static const char *const words[] = {
    "commit ", "branch ", "volume ", "chunk ", "store ", "pack ", "tree ",
    "restore ", "snapshot ", "guest ", "memory ", "disk ",
  };
  uint32_t x = seed * 2654435761u + 1;
  char *p = buf;
  size_t at = 0;

  while (at < len) {
    char word[32];
    x = x * 1103515245u + 12345u;
    int n = (x >> 16) % 5 == 0
      ? snprintf (word, sizeof word, "%u ", (x >> 8) % 100000)
      : snprintf (word, sizeof word, "%s", words[(x >> 16) % 12]);
    for (int i = 0; i < n && at < len; i++)
      p[at++] = word[i];
  }
}

/* LEN bytes that no compressor shrinks: SHA-256 in counter mode. */
static void
noise (void *buf, size_t len, uint32_t seed)
{
  uint8_t block[8], digest[SHA256_DIGEST_LENGTH];

  for (size_t at = 0; at < len; at += sizeof digest) {
    uint32_t i = at / sizeof digest;
    memcpy (block, &seed, 4);
    memcpy (block + 4, &i, 4);
    SHA256 (block, sizeof block, digest);
    memcpy ((uint8_t *) buf + at, digest, CAIRN_MIN (sizeof digest, len - at));
  }
}

static struct cairn_id
sha256_of (const void *data, size_t len)
{
  struct cairn_id id;
  SHA256 (data, len, id.bytes);
  return id;
}

/* Seals CHUNK in S, or bails out. */
static struct cairn_sealed
seal (struct cairn_store *s, const void *chunk)
{
  struct cairn_sealed c;
  int r = cairn_chunk_seal (s, chunk, &c);

  if (r < 0) {
    printf ("Bail out! seal: %s\n", cairn_strerror (r));
    exit (1);
  }
  return c;
}

/* Puts the N sealed chunks C in one transaction of S. */
static int
put (struct cairn_store *s, const struct cairn_sealed *c, size_t n)
{
  struct cairn_txn *txn = NULL;
  int r = cairn_txn_begin (s, true, &txn);

  for (size_t i = 0; i < n && r == 0; i++)
    r = cairn_chunk_put (txn, &c[i]);
  return cairn_txn_end (s, txn, r);
}

/* Seals CHUNK and puts it, or bails out; its id. */
static struct cairn_id
store_chunk (struct cairn_store *s, const void *chunk)
{
  struct cairn_sealed c = seal (s, chunk);
  struct cairn_id id = c.id;

  if (put (s, &c, 1) < 0) {
    printf ("Bail out! put: %s\n", cairn_last_error ());
    exit (1);
  }
  cairn_sealed_free (&c);
  return id;
}

static uint64_t
pack_bytes (struct cairn_store *s)
{
  uint64_t bytes = 0, packs;
  BOPS (s)->space (BE (s), &bytes, &packs);
  return bytes;
}

/* Whether chunk ID of S reads back as RAW (into a buffer of other
 * bytes). */
static bool
reads_as (struct cairn_store *s, const struct cairn_id *id, const void *raw)
{
  uint8_t *buf = malloc (cairn_store_chunk_size (s));
  bool same = buf && (memset (buf, 0xa5, cairn_store_chunk_size (s)),
                      cairn_chunk_read (s, id, buf) == 0)
    && memcmp (buf, raw, cairn_store_chunk_size (s)) == 0;

  free (buf);
  return same;
}

/* Whether R is -EBADMSG with a last error that names chunk ID. */
static bool
names_chunk (int r, const struct cairn_id *id)
{
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_id_to_hex (id, hex);
  if (r == -EBADMSG && strstr (cairn_last_error (), hex))
    return true;
  diag ("  got %d, \"%s\"", r, cairn_last_error ());
  return false;
}

/* Where chunk ID of S is stored: its pack's path and its index entry. */
static void
locate (struct cairn_store *s, const struct cairn_id *id, char *path,
        size_t len, struct cairn_object_info *info)
{
  char packs[4096];
  struct cairn_txn *txn;

  memset (info, 0, sizeof *info);
  if (cairn_txn_begin (s, false, &txn) == 0) {
    TOPS (txn)->object_stat (txn->bt, CAIRN_OBJECT_CHUNK, id, info);
    cairn_txn_abort (s, txn);
  }
  snprintf (packs, sizeof packs, "%s/packs", cairn_store_path (s));
  pack_path (packs, info->pack, path, len);
}

/* The frame zstd itself makes of CHUNK at LEVEL, into BUF. */
static size_t
zstd_frame (const void *chunk, int level, void *buf, size_t cap)
{
  size_t n = ZSTD_compress (buf, cap, chunk, CS, level);
  return ZSTD_isError (n) ? 0 : n;
}

static bool
sealed_is (const struct cairn_sealed *c, const void *data, size_t len)
{
  return c->data && c->len == len && memcmp (c->data, data, len) == 0;
}

static void
ids_and_compression (void)
{
  static uint8_t raw[CS], frame1[CS * 2], frame19[CS * 2];
  struct scratch level19, uncompressed;
  size_t n1, n19;

  store_make (&level19, CS, 19);
  store_make (&uncompressed, CS, -1);

  text (raw, CS, 1);
  n1 = zstd_frame (raw, 1, frame1, sizeof frame1);
  n19 = zstd_frame (raw, 19, frame19, sizeof frame19);
  struct cairn_id want = sha256_of (raw, CS);

  struct cairn_sealed c = seal (level1.s, raw);
  ok (cairn_id_equal (&c.id, &want) && !c.known,
      "a sealed chunk's id is the SHA-256 of its raw bytes");
  ok (c.flags == CAIRN_OBJECT_ZSTD && c.len < CS && sealed_is (&c, frame1, n1),
      "a compressible chunk: one zstd frame, made at the store's level 1");
  struct cairn_sealed c19 = seal (level19.s, raw);
  ok (c19.flags == CAIRN_OBJECT_ZSTD && sealed_is (&c19, frame19, n19)
      && !sealed_is (&c19, frame1, n1),
      "in a store of level 19: the frame of level 19, not of level 1");
  cairn_sealed_free (&c19);

  ok (put (level1.s, &c, 1) == 0, "put: 0");
  struct cairn_object_info info;
  struct cairn_txn *txn;
  struct cairn_val v = { NULL, 0 };
  cairn_txn_begin (level1.s, false, &txn);
  ok (cairn_object_get (txn, CAIRN_OBJECT_CHUNK, &want, &v) == 0
      && v.len == c.len && memcmp (v.data, c.data, c.len) == 0
      && TOPS (txn)->object_stat (txn->bt, CAIRN_OBJECT_CHUNK, &want,
                                  &info) == 0
      && info.flags == CAIRN_OBJECT_ZSTD && info.raw_len == CS,
      "stored as sealed: the frame, flagged zstd, raw length the chunk size");
  cairn_txn_abort (level1.s, txn);
  cairn_sealed_free (&c);

  uint8_t part[3000];
  ok (reads_as (level1.s, &want, raw)
      && cairn_chunk_read_part (level1.s, &want, part, sizeof part, 1000) == 0
      && memcmp (part, raw + 1000, sizeof part) == 0,
      "read back: the raw bytes, whole and in part");

  noise (raw, CS, 2);
  want = sha256_of (raw, CS);
  c = seal (level1.s, raw);
  ok (cairn_id_equal (&c.id, &want) && c.flags == 0
      && sealed_is (&c, raw, CS),
      "a chunk zstd cannot shrink is stored raw");
  ok (put (level1.s, &c, 1) == 0 && reads_as (level1.s, &want, raw),
      "and reads back");
  cairn_sealed_free (&c);

  text (raw, CS, 3);
  want = sha256_of (raw, CS);
  c = seal (uncompressed.s, raw);
  ok (cairn_store_compress_level (uncompressed.s) == -1
      && cairn_id_equal (&c.id, &want) && c.flags == 0
      && sealed_is (&c, raw, CS),
      "compress none: a compressible chunk is stored raw");
  ok (put (uncompressed.s, &c, 1) == 0
      && reads_as (uncompressed.s, &want, raw), "and reads back");
  cairn_sealed_free (&c);
  store_remove (&uncompressed);
  store_remove (&level19);
}

static void
holes (void)
{
  static uint8_t zeros[CS], raw[CS], buf[CS];
  uint64_t before = pack_bytes (level1.s);
  struct cairn_txn *txn;

  struct cairn_sealed c = seal (level1.s, zeros);
  ok (cairn_id_is_zero (&c.id) && c.known && !c.data,
      "the all-zero chunk seals to the zero id, nothing to store");
  ok (put (level1.s, &c, 1) == 0 && pack_bytes (level1.s) == before,
      "putting it writes nothing to a pack");
  cairn_txn_begin (level1.s, false, &txn);
  is_int (TOPS (txn)->object_stat (txn->bt, CAIRN_OBJECT_CHUNK, &c.id, NULL),
          -ENOENT, "and the index has no entry for it");
  cairn_txn_abort (level1.s, txn);

  void *bufs[1] = { buf };
  memset (buf, 0xa5, CS);
  ok (reads_as (level1.s, &c.id, zeros)
      && cairn_chunk_read_many (level1.s, &c.id, 1, bufs) == 0
      && memcmp (buf, zeros, CS) == 0, "the zero id reads as zeros");

  raw[CS - 1] = 1;
  struct cairn_id want = sha256_of (raw, CS);
  c = seal (level1.s, raw);
  ok (cairn_id_equal (&c.id, &want) && !c.known && c.data
      && put (level1.s, &c, 1) == 0 && pack_bytes (level1.s) > before
      && reads_as (level1.s, &want, raw),
      "zeros but for the last byte: a chunk like any other");
  cairn_sealed_free (&c);
}

static void
dedup (void)
{
  static uint8_t raw[CS];
  uint64_t before, after;

  noise (raw, CS, 20);
  before = pack_bytes (level1.s);
  struct cairn_id id = store_chunk (level1.s, raw);
  after = pack_bytes (level1.s);
  ok (after == before + PACK_RECORD_HEADER_SIZE + CS,
      "a new chunk: one record in a pack");
  struct cairn_sealed c = seal (level1.s, raw);
  ok (c.known && !c.data && cairn_id_equal (&c.id, &id),
      "sealed again: known to the store, nothing compressed");
  ok (put (level1.s, &c, 1) == 0 && pack_bytes (level1.s) == after,
      "put again: the pack does not grow");

  /* Neither copy is known when they are sealed together. */
  struct cairn_sealed two[2];
  const void *same[2] = { raw, raw };
  noise (raw, CS, 21);
  before = pack_bytes (level1.s);
  ok (cairn_chunk_seal_many (level1.s, same, 2, two) == 0
      && !two[0].known && !two[1].known
      && cairn_id_equal (&two[0].id, &two[1].id)
      && put (level1.s, two, 2) == 0
      && pack_bytes (level1.s) == before + PACK_RECORD_HEADER_SIZE + CS,
      "the same new chunk twice in one transaction: stored once");
  cairn_sealed_free (&two[0]);
  cairn_sealed_free (&two[1]);
}

/* More chunks than one hashing batch, some of them holes. */
static void
many (void)
{
  enum { N = 2 * CAIRN_HASH_BATCH + 5 };
  uint8_t *raw = calloc (N, CS), *back = malloc ((size_t) N * CS);
  struct cairn_sealed c[N];
  struct cairn_id ids[N];
  const void *chunks[N];
  void *bufs[N];
  bool right = true;

  for (size_t i = 0; i < N; i++) {
    if (i % 3)
      text (raw + i * CS, CS, 100 + i);
    chunks[i] = raw + i * CS;
    bufs[i] = back + i * CS;
  }
  ok (cairn_chunk_seal_many (level1.s, chunks, N, c) == 0,
      "seal_many of %d chunks: 0", N);
  for (size_t i = 0; i < N; i++) {
    struct cairn_id want = i % 3 ? sha256_of (chunks[i], CS) : cairn_zero_id;
    ids[i] = c[i].id;
    if (!cairn_id_equal (&c[i].id, &want) || c[i].known != !(i % 3)) {
      diag ("  chunk %zu: wrong id or known", i);
      right = false;
    }
  }
  ok (right, "each its SHA-256, or the zero id for a hole");
  ok (put (level1.s, c, N) == 0
      && cairn_chunk_read_many (level1.s, ids, N, bufs) == 0
      && memcmp (raw, back, (size_t) N * CS) == 0,
      "put, read_many gives every one back");
  for (size_t i = 0; i < N; i++)
    cairn_sealed_free (&c[i]);
  free (raw);
  free (back);
}

/* chunk_put_or_reseal (internal.h): gc may reclaim a chunk between the
 * seal that found it known and the put. */
static void
reseal (void)
{
  static uint8_t raw[CS];
  struct cairn_txn *txn;

  text (raw, CS, 30);
  struct cairn_id id = store_chunk (level1.s, raw);
  struct cairn_sealed c = seal (level1.s, raw);
  cairn_txn_begin (level1.s, true, &txn);
  TOPS (txn)->object_delete (txn->bt, CAIRN_OBJECT_CHUNK, &id);
  cairn_txn_commit (level1.s, txn);

  cairn_txn_begin (level1.s, true, &txn);
  bool was_known = c.known;
  int known = cairn_chunk_put (txn, &c);
  bool added = true, added_again = true;
  int without_raw = chunk_put_or_reseal (txn, NULL, &c, NULL);
  int with_raw = chunk_put_or_reseal (txn, raw, &c, &added);
  int again = chunk_put_or_reseal (txn, raw, &c, &added_again);
  int committed = cairn_txn_end (level1.s, txn, with_raw);
  ok (was_known && known == -ENOENT, "putting a known chunk gc deleted "
      "since its seal: -ENOENT");
  ok (without_raw == -ENOENT, "put_or_reseal without the raw bytes: -ENOENT");
  ok (with_raw == 0 && !c.known && c.flags == CAIRN_OBJECT_ZSTD
      && committed == 0 && reads_as (level1.s, &id, raw),
      "with them: compressed again, stored, and reads back");
  ok (added && again == 0 && !added_again,
      "it says it added the chunk, and the next put that it had it");
  cairn_sealed_free (&c);
}

/* A read of chunk ID that fails, each way there is, after its bytes were
 * damaged: true if each fails naming it. */
static bool
every_read_names (struct cairn_store *s, const struct cairn_id *id,
                  const struct cairn_id *good)
{
  static uint8_t a[CS], b[CS];
  struct cairn_id ids[2] = { *good, *id };
  void *bufs[2] = { a, b };
  struct cairn_chunk_part parts[2] = {
    { .id = *good, .buf = a, .len = 100, .within = 0 },
    { .id = *id, .buf = b, .len = 100, .within = 200 },
  };
  bool named = true;

  cairn_clear_error ();
  named &= names_chunk (cairn_chunk_read (s, id, a), id);
  cairn_clear_error ();
  named &= names_chunk (cairn_chunk_read_part (s, id, a, 10, 5), id);
  cairn_clear_error ();
  named &= names_chunk (cairn_chunk_read_many (s, ids, 2, bufs), id);
  cairn_clear_error ();
  named &= names_chunk (cairn_chunk_read_parts (s, parts, 2), id);
  cairn_clear_error ();
  named &= names_chunk (cairn_chunk_verify (s, id), id);
  return named;
}

static void
corruption (void)
{
  static uint8_t good[CS], raw[CS], raw_r[CS];
  struct cairn_object_info info;
  char path[4096];

  text (good, CS, 40);
  struct cairn_id ok_id = store_chunk (level1.s, good);

  text (raw, CS, 41);
  struct cairn_id z = store_chunk (level1.s, raw);
  locate (level1.s, &z, path, sizeof path, &info);
  uint64_t at = info.offset + PACK_RECORD_HEADER_SIZE + info.stored_len / 2;
  ok (file_flip (path, at) && every_read_names (level1.s, &z, &ok_id),
      "a byte of a zstd chunk changed on disk: every read and verify fail "
      "with -EBADMSG naming the chunk");
  ok (file_flip (path, at) && reads_as (level1.s, &z, raw)
      && cairn_chunk_verify (level1.s, &z) == 0,
      "the byte put back: it reads and verifies again");

  noise (raw_r, CS, 42);
  struct cairn_id r = store_chunk (level1.s, raw_r);
  locate (level1.s, &r, path, sizeof path, &info);
  at = info.offset + PACK_RECORD_HEADER_SIZE + 12345;
  ok (info.flags == 0 && file_flip (path, at)
      && every_read_names (level1.s, &r, &ok_id)
      && strstr (cairn_last_error (), "hash"),
      "a byte of a raw chunk changed: its bytes do not hash to its id");
  file_flip (path, at);

  at = info.offset + 16;        /* the id in the record's header */
  ok (file_flip (path, at) && every_read_names (level1.s, &r, &ok_id),
      "its pack record's header damaged: -EBADMSG naming it");
  ok (file_flip (path, at) && reads_as (level1.s, &r, raw_r),
      "repaired: it reads again");

  /* The last record of its pack, cut short. */
  noise (raw, CS, 43);
  struct cairn_id t = store_chunk (level1.s, raw);
  locate (level1.s, &t, path, sizeof path, &info);
  ok (file_size (path) == (int64_t) (info.offset + PACK_RECORD_HEADER_SIZE
                                     + info.stored_len)
      && truncate (path, info.offset + PACK_RECORD_HEADER_SIZE + 10) == 0
      && every_read_names (level1.s, &t, &ok_id),
      "its pack truncated inside its record: -EBADMSG naming it");
  ok (reads_as (level1.s, &ok_id, good) && reads_as (level1.s, &r, raw_r),
      "the chunks before it still read");

  struct cairn_id missing = sha256_of ("never stored", 12);
  uint8_t buf[CS];
  cairn_clear_error ();
  ok (names_chunk (cairn_chunk_read (level1.s, &missing, buf), &missing),
      "a chunk the index does not have: -EBADMSG naming it");
}

/* The buffers are the chunk size: the smallest and largest work. */
static void
chunk_size_bounds (void)
{
  static const uint32_t sizes[] = { CAIRN_MIN_CHUNK_SIZE,
                                    CAIRN_MAX_CHUNK_SIZE };

  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (sizes); i++) {
    struct scratch st;
    struct cairn_store *s = store_make (&st, sizes[i], 3);
    uint8_t *raw = malloc (sizes[i]);
    text (raw, sizes[i], 50);
    struct cairn_id want = sha256_of (raw, sizes[i]);
    struct cairn_id id = store_chunk (s, raw);
    ok (cairn_id_equal (&id, &want) && reads_as (s, &id, raw),
        "chunk size %u: stored and read back", sizes[i]);
    free (raw);
    store_remove (&st);
  }
}

int
main (void)
{
  /* Up to three stores are open at once; under valgrind, three index
   * maps of the default 32 GiB do not fit (functions.sh does the same). */
  setenv ("CAIRN_INDEX_MAP_SIZE", "64M", 0);
  store_make (&level1, CS, 1);

  ids_and_compression ();
  holes ();
  dedup ();
  many ();
  reseal ();
  corruption ();
  chunk_size_bounds ();

  store_remove (&level1);
  return done_testing ();
}
