/* wal.c: the index's write-ahead log (see wal.h for why and the format). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/util.h"
#include "store/wal.h"

#define WAL_MAGIC "cairnwal"
#define WAL_ALIGN 4096
#define WAL_GROW_STEP (1ULL << 20)

void
wal_log_free (struct wal_log *l)
{
  free (l->buf);
  memset (l, 0, sizeof *l);
}

void
wal_log_op (struct wal_log *l, int kind, int db, const void *key,
            size_t klen, const void *value, size_t vlen)
{
  size_t need = WAL_OP_HEADER_SIZE + klen + vlen;

  if (l->overflow)
    return;
  if (klen > UINT16_MAX || l->len + need > WAL_RECORD_MAX) {
    wal_log_free (l);
    l->overflow = true;
    return;
  }
  if (WAL_HEADER_SIZE + l->len + need > l->cap) {
    size_t cap = l->cap ? l->cap : 16384;
    while (cap < WAL_HEADER_SIZE + l->len + need)
      cap *= 2;
    uint8_t *buf = realloc (l->buf, cap);
    if (!buf) {
      wal_log_free (l);
      l->overflow = true;
      return;
    }
    l->buf = buf;
    l->cap = cap;
  }
  uint8_t *p = l->buf + WAL_HEADER_SIZE + l->len;
  p[0] = kind;
  p[1] = db;
  p[2] = klen & 0xff;
  p[3] = klen >> 8;
  cairn_put_le32 (p + 4, vlen);
  memcpy (p + WAL_OP_HEADER_SIZE, key, klen);
  if (vlen)
    memcpy (p + WAL_OP_HEADER_SIZE + klen, value, vlen);
  l->len += need;
}

uint64_t
wal_record_size (size_t len)
{
  return (WAL_HEADER_SIZE + len + WAL_ALIGN - 1) / WAL_ALIGN * WAL_ALIGN;
}

int
wal_ops_walk (const uint8_t *ops, size_t len, wal_op_fn fn, void *arg)
{
  size_t at = 0;

  while (at < len) {
    if (len - at < WAL_OP_HEADER_SIZE)
      return -EBADMSG;
    const uint8_t *p = ops + at;
    size_t klen = p[2] | (size_t) p[3] << 8, vlen = cairn_le32 (p + 4);
    if (len - at - WAL_OP_HEADER_SIZE < klen + vlen
        || (p[0] != WAL_PUT && p[0] != WAL_DELETE))
      return -EBADMSG;
    int r = fn (p[0], p[1], p + WAL_OP_HEADER_SIZE, klen,
                p + WAL_OP_HEADER_SIZE + klen, vlen, arg);
    if (r != 0)
      return r;
    at += WAL_OP_HEADER_SIZE + klen + vlen;
  }
  return 0;
}

static void
checksum (const uint8_t *header, const uint8_t *ops, size_t len,
          uint8_t out[32])
{
  EVP_MD_CTX *c = EVP_MD_CTX_new ();

  /* Without memory for a context, a sum that matches nothing. */
  memset (out, 0, 32);
  if (c && EVP_DigestInit_ex (c, EVP_sha256 (), NULL)
      && EVP_DigestUpdate (c, header, 24) && EVP_DigestUpdate (c, ops, len))
    EVP_DigestFinal_ex (c, out, NULL);
  EVP_MD_CTX_free (c);
}

/* The helper thread's work: the record, written and flushed. */
static int
write_record (struct wal *w, const struct wal_job *job)
{
  const struct wal_log *l = job->log;
  uint8_t *h = l->buf;

  memcpy (h, WAL_MAGIC, 8);
  cairn_put_le64 (h + 8, job->seq);
  cairn_put_le32 (h + 16, l->len);
  cairn_put_le32 (h + 20, 0);
  checksum (h, h + WAL_HEADER_SIZE, l->len, h + 24);
  if (getenv ("CAIRN_TEST_WAL_TEAR") && l->len)
    h[WAL_HEADER_SIZE + l->len - 1] ^= 0xff; /* a torn write, for tests */
  int r = cairn_pwrite_all (w->fd, h, WAL_HEADER_SIZE + l->len, job->off);
  if (r < 0)
    return r;
  return fdatasync (w->fd) == -1 ? -errno : 0;
}

static void *
helper (void *arg)
{
  struct wal *w = arg;

  pthread_mutex_lock (&w->lock);
  for (;;) {
    while ((!w->job || w->job->done) && !w->stop)
      pthread_cond_wait (&w->cond, &w->lock);
    if (!w->job || w->job->done)
      break;
    struct wal_job *job = w->job;
    pthread_mutex_unlock (&w->lock);
    int r = write_record (w, job);
    pthread_mutex_lock (&w->lock);
    job->result = r;
    job->done = true;
    w->job = NULL;
    pthread_cond_broadcast (&w->cond);
  }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

int
wal_open (struct wal *w, const char *index_dir, bool readonly)
{
  char path[4096];

  memset (w, 0, sizeof *w);
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  w->ring = WAL_RING_SIZE;
  const char *ring = getenv ("CAIRN_TEST_WAL_RING");
  if (ring)
    cairn_parse_size (ring, &w->ring);
  snprintf (path, sizeof path, "%s/wal", index_dir);
  w->fd = open (path, (readonly ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC,
                0644);
  return w->fd < 0 ? -errno : 0;
}

void
wal_close (struct wal *w)
{
  if (w->started) {
    pthread_mutex_lock (&w->lock);
    w->stop = true;
    pthread_cond_broadcast (&w->cond);
    pthread_mutex_unlock (&w->lock);
    pthread_join (w->thread, NULL);
  }
  if (w->fd >= 0)
    close (w->fd);
  pthread_cond_destroy (&w->cond);
  pthread_mutex_destroy (&w->lock);
  w->fd = -1;
}

uint64_t
wal_place (const struct wal *w, uint64_t end, uint64_t size)
{
  return end + size > w->ring ? 0 : end;
}

int
wal_prepare (struct wal *w, uint64_t off, uint64_t size)
{
  static const char zeros[1 << 16];
  struct stat st;

  if (fstat (w->fd, &st) == -1)
    return -errno;
  if ((uint64_t) st.st_size >= off + size)
    return 0;
  uint64_t end = (off + size + WAL_GROW_STEP - 1) / WAL_GROW_STEP
    * WAL_GROW_STEP;
  end = CAIRN_MIN (end, CAIRN_MAX (w->ring, off + size));
  for (uint64_t at = st.st_size; at < end; at += sizeof zeros) {
    int r = cairn_pwrite_all (w->fd, zeros,
                              CAIRN_MIN (sizeof zeros, end - at), at);
    if (r < 0)
      return r;
  }
  return 0;
}

int
wal_write_start (struct wal *w, struct wal_job *job)
{
  pthread_mutex_lock (&w->lock);
  if (!w->started) {
    if (pthread_create (&w->thread, NULL, helper, w) != 0) {
      pthread_mutex_unlock (&w->lock);
      return -EAGAIN;
    }
    w->started = true;
  }
  /* Another thread's record may still be in flight. */
  while (w->job)
    pthread_cond_wait (&w->cond, &w->lock);
  job->done = false;
  w->job = job;
  pthread_cond_broadcast (&w->cond);
  pthread_mutex_unlock (&w->lock);
  return 0;
}

int
wal_write_wait (struct wal *w, struct wal_job *job)
{
  pthread_mutex_lock (&w->lock);
  while (!job->done)
    pthread_cond_wait (&w->cond, &w->lock);
  pthread_mutex_unlock (&w->lock);
  return job->result;
}

int
wal_invalidate (struct wal *w, uint64_t off)
{
  static const uint8_t zeros[WAL_HEADER_SIZE];

  int r = cairn_pwrite_all (w->fd, zeros, sizeof zeros, off);
  if (r < 0)
    return r;
  return fdatasync (w->fd) == -1 ? -errno : 0;
}

int
wal_read (struct wal *w, uint64_t off, uint64_t seq, uint8_t **ops,
          size_t *len)
{
  uint8_t h[WAL_HEADER_SIZE], sum[32];

  *ops = NULL;
  *len = 0;
  if (w->fd < 0 || pread (w->fd, h, sizeof h, off) != sizeof h
      || memcmp (h, WAL_MAGIC, 8) != 0 || cairn_le64 (h + 8) != seq)
    return 0;
  size_t n = cairn_le32 (h + 16);
  if (n > WAL_RECORD_MAX)
    return 0;
  uint8_t *buf = malloc (n ? n : 1);
  if (!buf)
    return -ENOMEM;
  if (pread (w->fd, buf, n, off + sizeof h) != (ssize_t) n) {
    free (buf);
    return 0;
  }
  checksum (h, buf, n, sum);
  if (memcmp (sum, h + 24, 32) != 0) {
    free (buf);
    return 0;
  }
  *ops = buf;
  *len = n;
  return 1;
}
