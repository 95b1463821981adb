/* pack.c: append-only pack files (format in pack.h). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "store/pack.h"
#include "store/util.h"

void
pack_path (const char *dir, uint32_t number, char *buf, size_t len)
{
  snprintf (buf, len, "%s/pack-%08" PRIx32 ".pack", dir, number);
}

int
pack_parse_name (const char *name, uint32_t *number)
{
  uint32_t v = 0;

  /* Exactly what pack_name writes: sscanf's %x would also take a sign,
   * spaces, "0x" or upper case, naming another pack's number. */
  if (strlen (name) != 18 || strncmp (name, "pack-", 5) != 0
      || strcmp (name + 13, ".pack") != 0)
    return -EINVAL;
  for (int i = 5; i < 13; i++) {
    char c = name[i];
    if (!(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f'))
      return -EINVAL;
    v = v << 4 | (uint32_t) (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  *number = v;
  return 0;
}

static void
writer_reset (struct pack_writer *w)
{
  w->fd = -1;
  w->number = 0;
  w->size = 0;
  w->unsynced = false;
}

void
pack_writer_init (struct pack_writer *w)
{
  writer_reset (w);
  w->retired_fd = -1;
}

int
pack_writer_adopt (struct pack_writer *w, const char *dir, uint32_t number)
{
  char path[4096];
  uint8_t header[PACK_HEADER_SIZE];
  struct stat st;

  pack_path (dir, number, path, sizeof path);
  int fd = open (path, O_RDWR | O_CLOEXEC);
  if (fd == -1)
    return -errno;
  if (flock (fd, LOCK_EX | LOCK_NB) == -1) {
    int r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    close (fd);
    return r;
  }
  if (fstat (fd, &st) == -1 || st.st_size < PACK_HEADER_SIZE
      || cairn_pread_all (fd, header, sizeof header, 0) < 0
      || memcmp (header, PACK_MAGIC, 8) != 0
      || cairn_le32 (header + 12) != number) {
    close (fd);
    return -EBADMSG;
  }
  w->fd = fd;
  w->number = number;
  w->size = st.st_size;
  return 0;
}

int
pack_writer_create (struct pack_writer *w, const char *dir, uint32_t number)
{
  char name[32];
  snprintf (name, sizeof name, "pack-%08" PRIx32 ".pack", number);
  return pack_writer_create_named (w, dir, name, number);
}

int
pack_writer_create_named (struct pack_writer *w, const char *dir,
                          const char *name, uint32_t number)
{
  char path[4096];
  uint8_t header[PACK_HEADER_SIZE];

  snprintf (path, sizeof path, "%s/%s", dir, name);
  int fd = open (path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd == -1)
    return -errno;
  memcpy (header, PACK_MAGIC, 8);
  cairn_put_le32 (header + 8, 1);
  cairn_put_le32 (header + 12, number);
  int r = flock (fd, LOCK_EX | LOCK_NB) == -1 ? -errno : 0;
  if (r == 0)
    r = cairn_pwrite_all (fd, header, sizeof header, 0);
  if (r < 0) {
    close (fd);
    unlink (path);
    return r;
  }
  /* The new file's directory entry must be durable before any record in
   * it is named: the index sync does not cover the directory. */
  r = fdatasync (fd) == -1 ? -errno : cairn_fsync_dir (dir);
  if (r < 0) {
    close (fd);
    unlink (path);
    return r;
  }
  w->fd = fd;
  w->number = number;
  w->size = PACK_HEADER_SIZE;
  w->unsynced = false;
  return 0;
}

int
pack_writer_append (struct pack_writer *w, const uint8_t id[32],
                    uint32_t flags, const void *payload, uint32_t stored_len,
                    uint32_t raw_len, uint64_t *offset)
{
  uint8_t header[PACK_RECORD_HEADER_SIZE];
  struct iovec iov[2] = {
    { header, sizeof header },
    { (void *) payload, stored_len },
  };
  size_t total = sizeof header + stored_len, done = 0;

  memcpy (header, PACK_RECORD_MAGIC, 4);
  cairn_put_le32 (header + 4, flags);
  cairn_put_le32 (header + 8, stored_len);
  cairn_put_le32 (header + 12, raw_len);
  memcpy (header + 16, id, 32);

  while (done < total) {
    ssize_t n = pwritev (w->fd, iov, 2, w->size + done);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      int r = -errno;
      /* Leave no partial record behind: the next append starts clean. */
      if (ftruncate (w->fd, w->size) == -1) { /* garbage tail is harmless */ }
      return r;
    }
    done += n;
    for (int i = 0; i < 2 && n > 0; i++) {
      size_t take = CAIRN_MIN ((size_t) n, iov[i].iov_len);
      iov[i].iov_base = (char *) iov[i].iov_base + take;
      iov[i].iov_len -= take;
      n -= take;
    }
  }
  *offset = w->size;
  w->size += total;
  w->unsynced = true;
  return 0;
}

int
pack_writer_sync (struct pack_writer *w)
{
  if (w->retired_fd >= 0) {
    if (fdatasync (w->retired_fd) == -1)
      return -errno;
    close (w->retired_fd);
    w->retired_fd = -1;
  }
  if (w->fd >= 0 && w->unsynced) {
    if (fdatasync (w->fd) == -1)
      return -errno;
    w->unsynced = false;
  }
  return 0;
}

void
pack_writer_retire (struct pack_writer *w)
{
  if (w->fd < 0)
    return;
  if (w->unsynced && w->retired_fd < 0)
    w->retired_fd = w->fd;   /* closed (and its lock dropped) after sync */
  else {
    if (w->unsynced)
      fdatasync (w->fd);
    close (w->fd);
  }
  writer_reset (w);
}

void
pack_writer_close (struct pack_writer *w)
{
  pack_writer_sync (w);
  if (w->retired_fd >= 0)
    close (w->retired_fd);
  if (w->fd >= 0)
    close (w->fd);
  pack_writer_init (w);
}

int
pack_readers_init (struct pack_readers *r, const char *dir)
{
  memset (r, 0, sizeof *r);
  r->dir = strdup (dir);
  if (!r->dir)
    return -ENOMEM;
  pthread_rwlock_init (&r->lock, NULL);
  return 0;
}

void
pack_readers_free (struct pack_readers *r)
{
  for (uint32_t i = 0; i < r->n; i++)
    if (r->fds[i] >= 0)
      close (r->fds[i]);
  free (r->fds);
  free (r->dir);
  pthread_rwlock_destroy (&r->lock);
}

/* Closes the cached descriptors of packs that gc unlinked.  Write lock
 * held. */
static void
forget_unlinked (struct pack_readers *r)
{
  for (uint32_t i = 0; i < r->n; i++) {
    struct stat st;
    if (r->fds[i] >= 0 && fstat (r->fds[i], &st) == 0 && st.st_nlink == 0) {
      close (r->fds[i]);
      r->fds[i] = -1;
    }
  }
}

/* The descriptor of pack NUMBER, returned with R->lock held (for reading
 * or writing): the caller reads, then unlocks.  Descriptors are closed
 * only under the write lock, so none goes away (or gets reused by another
 * file) under a read. */
static int
reader_fd_locked (struct pack_readers *r, uint32_t number)
{
  pthread_rwlock_rdlock (&r->lock);
  if (number < r->n && r->fds[number] >= 0)
    return r->fds[number];
  pthread_rwlock_unlock (&r->lock);

  char path[4096];
  pack_path (r->dir, number, path, sizeof path);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return -errno;

  pthread_rwlock_wrlock (&r->lock);
  /* A pack this process never read: gc may have compacted others into
   * it.  Let go of those it unlinked, or a process that runs for weeks
   * (nbdkit) would keep their space in use forever. */
  forget_unlinked (r);
  if (number >= r->n) {
    uint32_t n = CAIRN_MAX (number + 1, r->n * 2);
    int *fds = realloc (r->fds, n * sizeof *fds);
    if (!fds) {
      pthread_rwlock_unlock (&r->lock);
      close (fd);
      return -ENOMEM;
    }
    for (uint32_t i = r->n; i < n; i++)
      fds[i] = -1;
    r->fds = fds;
    r->n = n;
  }
  if (r->fds[number] >= 0) {    /* another thread won the race */
    close (fd);
    fd = r->fds[number];
  }
  else
    r->fds[number] = fd;
  return fd;
}

int
pack_read_record (struct pack_readers *r, uint32_t number, uint64_t offset,
                  const uint8_t id[32], uint32_t stored_len,
                  uint32_t raw_len, void *buf)
{
  int fd = reader_fd_locked (r, number);
  if (fd < 0)
    return fd;
  int ret = cairn_pread_all (fd, buf, PACK_RECORD_HEADER_SIZE + stored_len,
                             offset);
  pthread_rwlock_unlock (&r->lock);
  if (ret == -EIO)              /* short file: the record is not there */
    return -EBADMSG;
  if (ret < 0)
    return ret;
  const uint8_t *h = buf;
  if (memcmp (h, PACK_RECORD_MAGIC, 4) != 0
      || cairn_le32 (h + 8) != stored_len || cairn_le32 (h + 12) != raw_len
      || memcmp (h + 16, id, 32) != 0)
    return -EBADMSG;
  return 0;
}

void
pack_readers_forget (struct pack_readers *r, uint32_t number)
{
  pthread_rwlock_wrlock (&r->lock);
  if (number < r->n && r->fds[number] >= 0) {
    close (r->fds[number]);
    r->fds[number] = -1;
  }
  pthread_rwlock_unlock (&r->lock);
}
