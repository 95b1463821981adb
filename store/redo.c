/* redo.c: the index's redo log and checkpoint files (see redo.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/redo.h"
#include "store/util.h"

#define RECORD_MAGIC "crd1"
#define SLOT_MAGIC "cck1"
/* How far ahead of the last record the log is kept zero-filled. */
#define LOG_HEADROOM (1ULL << 20)

/* CRC-32C (Castagnoli), with the SSE 4.2 instruction where there is one. */
static uint32_t crc_table[256];

static void
crc_table_init (void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = c & 1 ? (c >> 1) ^ 0x82F63B78 : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t
crc32c_soft (uint32_t crc, const uint8_t *p, size_t len)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once (&once, crc_table_init);
  while (len--)
    crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__ ((target ("sse4.2")))
static uint32_t
crc32c_hw (uint32_t crc, const uint8_t *p, size_t len)
{
  uint64_t c = crc;
  for (; len >= 8; p += 8, len -= 8) {
    uint64_t v;
    memcpy (&v, p, 8);
    c = __builtin_ia32_crc32di (c, v);
  }
  crc = (uint32_t) c;
  while (len--)
    crc = __builtin_ia32_crc32qi (crc, *p++);
  return crc;
}
#endif

static uint32_t
crc32c (uint32_t crc, const void *data, size_t len)
{
  crc = ~crc;
#if defined(__x86_64__)
  if (__builtin_cpu_supports ("sse4.2"))
    return ~crc32c_hw (crc, data, len);
#endif
  return ~crc32c_soft (crc, data, len);
}

int
redo_buf_add (struct redo_buf *b, enum redo_op op, unsigned db,
              const void *key, size_t klen, const void *val, size_t vlen)
{
  size_t need = REDO_OP_HEADER + klen + vlen;

  if (cairn_reserve (&b->p, &b->cap, b->len + need, 4096) < 0)
    return -ENOMEM;
  uint8_t *o = b->p + b->len;
  o[0] = op;
  o[1] = db;
  o[2] = o[3] = 0;
  cairn_put_le32 (o + 4, klen);
  cairn_put_le32 (o + 8, vlen);
  memcpy (o + REDO_OP_HEADER, key, klen);
  if (vlen)
    memcpy (o + REDO_OP_HEADER + klen, val, vlen);
  b->len += need;
  return 0;
}

void
redo_buf_free (struct redo_buf *b)
{
  free (b->p);
  *b = (struct redo_buf) { 0 };
}

int
redo_open (struct redo_log *l, const char *index_dir, bool create)
{
  char path[4096];
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  struct stat st;

  l->fd = l->ckpt_fd = -1;
  l->err = 0;
  snprintf (path, sizeof path, "%s/redo", index_dir);
  l->fd = open (path, flags, 0644);
  if (l->fd == -1)
    return -errno;
  snprintf (path, sizeof path, "%s/redo.ckpt", index_dir);
  l->ckpt_fd = open (path, flags, 0644);
  if (l->ckpt_fd == -1 || fstat (l->fd, &st) == -1) {
    int r = -errno;
    redo_close (l);
    return r;
  }
  l->allocated = st.st_size;
  return 0;
}

void
redo_close (struct redo_log *l)
{
  if (l->fd >= 0)
    close (l->fd);
  if (l->ckpt_fd >= 0)
    close (l->ckpt_fd);
  l->fd = l->ckpt_fd = -1;
}

/* Zero-fills the log up to past END, so that records overwrite written
 * blocks: an fdatasync then flushes data only, no allocation.  On a disk
 * too full for that, records are appended as they come (and the write of
 * one reports the full disk). */
static void
ensure_allocated (struct redo_log *l, uint64_t end)
{
  static const uint8_t zeros[1 << 16];

  if (end <= l->allocated)
    return;
  uint64_t off, to = end + LOG_HEADROOM;
  for (off = l->allocated; off < to; off += sizeof zeros)
    if (cairn_pwrite_all (l->fd, zeros, sizeof zeros, off) < 0)
      break;
  if (fdatasync (l->fd) == 0)
    l->allocated = off;
}

int
redo_append (struct redo_log *l, uint64_t off, uint64_t lsn,
             const struct redo_buf *b)
{
  uint8_t h[REDO_RECORD_HEADER] = { 0 };
  uint64_t e = off + REDO_RECORD_HEADER + b->len;

  memcpy (h, RECORD_MAGIC, 4);
  cairn_put_le32 (h + 4, b->len);
  cairn_put_le64 (h + 8, lsn);
  cairn_put_le32 (h + 16, crc32c (crc32c (0, h, 16), b->p, b->len));
  ensure_allocated (l, e);
  struct iovec iov[2] = { { h, sizeof h }, { b->p, b->len } };
  ssize_t n = pwritev (l->fd, iov, 2, off);
  if (n != (ssize_t) (e - off))
    return n < 0 ? -errno : -EIO;
#ifdef SYNC_FILE_RANGE_WRITE
  /* The disk writes the record while LMDB commits; the flush then waits
   * for less.  Best effort: the flush writes what this did not. */
  sync_file_range (l->fd, off, e - off, SYNC_FILE_RANGE_WRITE);
#endif
  return 0;
}

int
redo_flush (struct redo_log *l)
{
  if (l->err == 0 && fdatasync (l->fd) == -1)
    l->err = -errno;
  return l->err;
}

int
redo_flush_error (const struct redo_log *l)
{
  return l->err;
}

int
redo_void (struct redo_log *l, uint64_t off)
{
  static const uint8_t zero[4];
  int r = cairn_pwrite_all (l->fd, zero, sizeof zero, off);
  return r < 0 ? r : fdatasync (l->fd) == -1 ? -errno : 0;
}

int
redo_replay (struct redo_log *l, uint64_t *off, uint64_t *lsn,
             redo_apply_fn fn, void *arg)
{
  int applied = 0;
  uint8_t *payload = NULL;

  for (;;) {
    uint8_t h[REDO_RECORD_HEADER];
    if (cairn_pread_all (l->fd, h, sizeof h, *off) < 0
        || memcmp (h, RECORD_MAGIC, 4) != 0 || cairn_le64 (h + 8) != *lsn + 1)
      break;
    uint32_t n = cairn_le32 (h + 4);
    uint8_t *p = realloc (payload, n ? n : 1);
    if (!p) {
      free (payload);
      return -ENOMEM;
    }
    payload = p;
    if (cairn_pread_all (l->fd, payload, n, *off + sizeof h) < 0
        || crc32c (crc32c (0, h, 16), payload, n) != cairn_le32 (h + 16))
      break;
    for (uint32_t at = 0; at < n;) {
      if (n - at < REDO_OP_HEADER)
        goto bad;
      const uint8_t *o = payload + at;
      uint32_t klen = cairn_le32 (o + 4), vlen = cairn_le32 (o + 8);
      if ((uint64_t) klen + vlen > n - at - REDO_OP_HEADER)
        goto bad;
      int r = fn (arg, o[0], o[1], o + REDO_OP_HEADER, klen,
                  o + REDO_OP_HEADER + klen, vlen);
      if (r < 0) {
        free (payload);
        return r;
      }
      at += REDO_OP_HEADER + klen + vlen;
    }
    *off += sizeof h + n;
    *lsn += 1;
    applied++;
  }
  free (payload);
  return applied;

 bad:                           /* a checksummed record that does not parse */
  free (payload);
  return -EBADMSG;
}

static int
slot_read (struct redo_log *l, int i, struct redo_ckpt *c, bool metas)
{
  uint8_t h[REDO_SLOT_HEADER];
  uint64_t at = (uint64_t) i * REDO_SLOT_SIZE;

  if (cairn_pread_all (l->ckpt_fd, h, sizeof h, at) < 0
      || memcmp (h, SLOT_MAGIC, 4) != 0
      || crc32c (0, h + 8, sizeof h - 8) != cairn_le32 (h + 4))
    return -ENOENT;
  uint32_t psize = cairn_le32 (h + 32);
  if (psize < 512 || REDO_SLOT_HEADER + 2ULL * psize > REDO_SLOT_SIZE)
    return -ENOENT;
  c->metas = NULL;
  if (metas) {
    c->metas = malloc (2 * psize);
    if (!c->metas)
      return -ENOMEM;
    if (cairn_pread_all (l->ckpt_fd, c->metas, 2 * psize, at + sizeof h) < 0
        || crc32c (0, c->metas, 2 * psize) != cairn_le32 (h + 36)) {
      redo_ckpt_free (c);
      return -ENOENT;
    }
  }
  c->seq = cairn_le64 (h + 8);
  c->lsn = cairn_le64 (h + 16);
  c->txnid = cairn_le64 (h + 24);
  c->psize = psize;
  memcpy (c->boot_id, h + 40, REDO_BOOT_ID_SIZE);
  c->boot_id[REDO_BOOT_ID_SIZE - 1] = '\0';
  for (int k = 0; k < REDO_PINS; k++)
    c->pins[k] = cairn_le64 (h + 80 + 8 * k);
  return 0;
}

int
redo_ckpt_read (struct redo_log *l, struct redo_ckpt *c, bool metas)
{
  struct redo_ckpt s[2] = { 0 };
  int r0 = slot_read (l, 0, &s[0], metas);
  int r1 = slot_read (l, 1, &s[1], metas);

  if (r0 == -ENOMEM || r1 == -ENOMEM) {
    redo_ckpt_free (&s[0]);
    redo_ckpt_free (&s[1]);
    return -ENOMEM;
  }
  if (r0 < 0 && r1 < 0)
    return -ENOENT;
  int w = r0 < 0 ? 1 : r1 < 0 ? 0 : s[1].seq > s[0].seq;
  *c = s[w];
  redo_ckpt_free (&s[!w]);
  return 0;
}

int
redo_ckpt_write (struct redo_log *l, struct redo_ckpt *c)
{
  uint8_t *slot = calloc (1, REDO_SLOT_HEADER + 2 * c->psize);
  int r;

  if (!slot)
    return -ENOMEM;
  memcpy (slot, SLOT_MAGIC, 4);
  cairn_put_le64 (slot + 8, c->seq);
  cairn_put_le64 (slot + 16, c->lsn);
  cairn_put_le64 (slot + 24, c->txnid);
  cairn_put_le32 (slot + 32, c->psize);
  memcpy (slot + 40, c->boot_id, REDO_BOOT_ID_SIZE);
  for (int k = 0; k < REDO_PINS; k++)
    cairn_put_le64 (slot + 80 + 8 * k, c->pins[k]);
  memcpy (slot + REDO_SLOT_HEADER, c->metas, 2 * c->psize);
  cairn_put_le32 (slot + 36, crc32c (0, c->metas, 2 * c->psize));
  cairn_put_le32 (slot + 4, crc32c (0, slot + 8, REDO_SLOT_HEADER - 8));
  r = cairn_pwrite_all (l->ckpt_fd, slot, REDO_SLOT_HEADER + 2 * c->psize,
                        (c->seq & 1) * (uint64_t) REDO_SLOT_SIZE);
  free (slot);
  if (r == 0 && fdatasync (l->ckpt_fd) == -1)
    r = -errno;
  return r;
}

void
redo_ckpt_free (struct redo_ckpt *c)
{
  free (c->metas);
  c->metas = NULL;
}

void
redo_boot_id (char out[REDO_BOOT_ID_SIZE])
{
  const char *test = getenv ("CAIRN_TEST_BOOT_ID");
  char *data = NULL;
  size_t len = 0;

  memset (out, 0, REDO_BOOT_ID_SIZE);
  if (test)
    snprintf (out, REDO_BOOT_ID_SIZE, "%s", test);
  else if (cairn_read_file ("/proc/sys/kernel/random/boot_id", &data,
                            &len) == 0) {
    snprintf (out, REDO_BOOT_ID_SIZE, "%.*s", (int) strcspn (data, "\n"),
              data);
    free (data);
  }
}
