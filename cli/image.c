/* image.c: disk image files through the filesystem or qemu-nbd. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libnbd.h>

#include "cli/image.h"

extern char **environ;

struct image {
  int fd;                       /* raw */
  struct nbd_handle *nbd;       /* anything else */
  int log;                      /* what qemu-nbd or qemu-img said, or -1 */
  uint64_t size;
  char *path;
  bool write;
  bool to_stdout;
  bool fill_holes;              /* holes must be written as zeros */
};

/* The last line qemu-nbd or qemu-img wrote to IMG's log, into BUF;
 * false if it said nothing. */
static bool
last_said (const struct image *img, char *buf, size_t size)
{
  struct stat st;

  if (img->log < 0 || fstat (img->log, &st) == -1 || st.st_size == 0)
    return false;
  off_t from = st.st_size > (off_t) size - 1 ? st.st_size - (size - 1) : 0;
  ssize_t n = pread (img->log, buf, size - 1, from);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  while (n > 0 && buf[n - 1] == '\n')
    buf[--n] = '\0';
  char *line = strrchr (buf, '\n');
  if (line)
    memmove (buf, line + 1, strlen (line + 1) + 1);
  return *buf != '\0';
}

/* The error of a failed libnbd call on IMG: what qemu said, if it said
 * anything, for it knows why (a damaged image, an unknown format). */
static int
nbd_fail (const struct image *img)
{
  char said[512];
  int e = nbd_get_errno ();

  if (last_said (img, said, sizeof said))
    return cairn_error (e ? -e : -EIO, "%s: %s", img->path, said);
  return cairn_error (e ? -e : -EIO, "%s: %s", img->path, nbd_get_error ());
}

/* IMG's log, made the first time a child needs it (raw images have no
 * child); -1 if it cannot be made (the child then writes to stderr). */
static int
log_fd (struct image *img)
{
  if (img->log < 0)
    img->log = memfd_create ("qemu-stderr", MFD_CLOEXEC);
  return img->log;
}

/* Runs CONNECT (a libnbd call that starts a child) with the child's
 * stderr going to IMG's log instead of cairn's, so that cairn's error
 * stays one line. */
static int
with_log (struct image *img, int (*connect) (struct nbd_handle *, char **),
          char **argv)
{
  int saved, r;

  if (log_fd (img) < 0 || (saved = fcntl (2, F_DUPFD_CLOEXEC, 3)) == -1)
    return connect (img->nbd, argv);
  dup2 (img->log, 2);
  r = connect (img->nbd, argv);
  dup2 (saved, 2);
  close (saved);
  return r;
}

/* Starts qemu-nbd on PATH in FORMAT and connects to it. */
static int
open_nbd (struct image *img, const char *format, bool readonly)
{
  char *argv[] = { (char *) QEMU_NBD_PATH, (char *) (readonly ? "-r" : "-n"),
                   (char *) "-f", (char *) format, img->path, NULL };
  if (!readonly)
    argv[1] = (char *) "--cache=writeback";
  img->nbd = nbd_create ();
  if (!img->nbd)
    return nbd_fail (img);
  if (readonly)
    nbd_add_meta_context (img->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (with_log (img, nbd_connect_systemd_socket_activation, argv) == -1)
    return nbd_fail (img);
  int64_t size = nbd_get_size (img->nbd);
  if (size < 0)
    return nbd_fail (img);
  img->size = size;
  return 0;
}

static struct image *
image_new (const char *path)
{
  struct image *img = calloc (1, sizeof *img);

  if (!img)
    return NULL;
  img->fd = img->log = -1;
  img->path = strdup (path);
  if (!img->path) {
    free (img);
    return NULL;
  }
  return img;
}

static void
image_free (struct image *img)
{
  if (img->nbd)
    nbd_close (img->nbd);
  if (img->fd >= 0 && !img->to_stdout)
    close (img->fd);
  if (img->log >= 0)
    close (img->log);
  free (img->path);
  free (img);
}

int
image_open_read (const char *path, const char *format, struct image **out)
{
  struct image *img = image_new (path);
  struct stat st;
  int r = 0;

  if (!img)
    return -ENOMEM;
  img->fd = open (path, O_RDONLY | O_CLOEXEC);
  if (img->fd == -1 || fstat (img->fd, &st) == -1) {
    r = cairn_error (-errno, "%s: %m", path);
    goto err;
  }
  if (S_ISDIR (st.st_mode)) {
    r = cairn_error (-EISDIR, "%s is a directory", path);
    goto err;
  }
  if (!format) {
    unsigned char magic[4] = { 0 };
    if (pread (img->fd, magic, 4, 0) == 4
        && memcmp (magic, "QFI\xfb", 4) == 0)
      format = "qcow2";
    else
      format = "raw";
  }
  if (strcmp (format, "raw") == 0) {
    img->size = S_ISBLK (st.st_mode) ? (uint64_t) lseek (img->fd, 0, SEEK_END)
      : (uint64_t) st.st_size;
    if (img->size == 0) {
      r = cairn_error (-EINVAL, "%s is empty", path);
      goto err;
    }
  }
  else {
    close (img->fd);
    img->fd = -1;
    if ((r = open_nbd (img, format, true)) < 0)
      goto err;
  }
  *out = img;
  return 0;
 err:
  image_free (img);
  return r;
}

/* Runs ARGV with its stderr going to IMG's log. */
static int
run (struct image *img, char *const argv[])
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int status, r;

  posix_spawn_file_actions_init (&fa);
  if (log_fd (img) >= 0)
    posix_spawn_file_actions_adddup2 (&fa, img->log, 2);
  r = posix_spawn (&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  if (r != 0)
    return -r;
  if (waitpid (pid, &status, 0) < 0)
    return -errno;
  return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -EIO;
}

int
image_create (const char *path, const char *format, uint64_t size,
              struct image **out)
{
  struct image *img = image_new (path);
  int r = 0;

  if (!img)
    return -ENOMEM;
  img->write = true;
  img->size = size;
  if (strcmp (format, "raw") == 0) {
    if (strcmp (path, "-") == 0) {
      img->fd = 1;
      img->to_stdout = img->fill_holes = true;
    }
    else {
      struct stat st;
      img->fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (img->fd == -1 || fstat (img->fd, &st) == -1
          || (S_ISREG (st.st_mode) && ftruncate (img->fd, size) == -1)) {
        r = cairn_error (-errno, "%s: %m", path);
        goto err;
      }
      /* A device keeps what it held where the volume has holes. */
      img->fill_holes = !S_ISREG (st.st_mode);
      off_t end = S_ISBLK (st.st_mode) ? lseek (img->fd, 0, SEEK_END) : -1;
      if (end >= 0 && (uint64_t) end < size) {
        r = cairn_error (-ENOSPC, "%s holds %lld bytes, the volume %llu",
                         path, (long long) end, (unsigned long long) size);
        goto err;
      }
    }
  }
  else {
    char sz[32];
    snprintf (sz, sizeof sz, "%llu", (unsigned long long) size);
    char *argv[] = { (char *) QEMU_IMG_PATH, (char *) "create", (char *) "-q",
                     (char *) "-f", (char *) format, (char *) path, sz, NULL };
    if ((r = run (img, argv)) < 0) {
      char said[512];
      if (last_said (img, said, sizeof said))
        r = cairn_error (r, "%s", said);
      else
        r = cairn_error (r, "qemu-img could not create %s as %s", path,
                         format);
      goto err;
    }
    if ((r = open_nbd (img, format, false)) < 0)
      goto err;
  }
  *out = img;
  return 0;
 err:
  image_free (img);
  return r;
}

uint64_t
image_size (const struct image *img)
{
  return img->size;
}

bool
image_fills_holes (const struct image *img)
{
  return img->fill_holes;
}

static int
source_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct image *img = arg;

  if (img->nbd)
    return nbd_pread (img->nbd, buf, len, off, 0) == -1
      ? nbd_fail (img) : 0;
  int r = cairn_pread_all (img->fd, buf, len, off);
  return r < 0 ? cairn_error (r, "%s: %s", img->path, strerror (-r)) : 0;
}

struct extents_ctx {
  cairn_extent_fn fn;
  void *arg;
  uint64_t end;
  uint64_t covered;             /* reported up to here */
  int r;
};

static int
nbd_extent (void *user, const char *ctx, uint64_t off, uint32_t *entries,
            size_t n, int *error)
{
  struct extents_ctx *x = user;

  for (size_t i = 0; i + 1 < n && x->r == 0 && off < x->end; i += 2) {
    uint64_t len = CAIRN_MIN ((uint64_t) entries[i], x->end - off);
    x->r = x->fn (off, len, (entries[i + 1] & LIBNBD_STATE_ZERO) != 0, x->arg);
    off += len;
    x->covered = off;
  }
  return 0;
}

static int
source_extents (void *arg, uint64_t off, uint64_t len, cairn_extent_fn fn,
                void *fnarg)
{
  struct image *img = arg;
  uint64_t end = off + len;

  if (img->nbd) {
    struct extents_ctx x = { fn, fnarg, end, off, 0 };
    nbd_extent_callback cb = { .callback = nbd_extent, .user_data = &x };
    if (nbd_block_status (img->nbd, len, off, cb, 0) == -1)
      return -EIO;
    /* A server may describe less than asked: the rest is read as data,
     * which is always correct. */
    if (x.r == 0 && x.covered < end)
      x.r = fn (x.covered, end - x.covered, false, fnarg);
    return x.r;
  }
  while (off < end) {
    off_t data = lseek (img->fd, off, SEEK_DATA);
    if (data == -1 && errno == ENXIO)
      data = end;               /* a hole to the end of the file */
    else if (data == -1)
      return -errno;
    if ((uint64_t) data > end)
      data = end;
    if ((uint64_t) data > off) {
      int r = fn (off, data - off, true, fnarg);
      if (r)
        return r;
      off = data;
      if (off >= end)
        break;
    }
    off_t hole = lseek (img->fd, off, SEEK_HOLE);
    if (hole == -1)
      return -errno;
    uint64_t h = CAIRN_MIN ((uint64_t) hole, end);
    int r = fn (off, h - off, false, fnarg);
    if (r)
      return r;
    off = h;
  }
  return 0;
}

void
image_source (struct image *img, struct cairn_import_source *src)
{
  src->size = img->size;
  src->read = source_read;
  src->extents = source_extents;
  src->arg = img;
}

int
image_write (struct image *img, const void *buf, size_t len, uint64_t off)
{
  if (img->nbd)
    return nbd_pwrite (img->nbd, buf, len, off, 0) == -1
      ? nbd_fail (img) : 0;
  if (img->to_stdout) {
    /* A stream: the caller writes in order, holes as zeros. */
    const char *p = buf;
    while (len > 0) {
      ssize_t n = write (1, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return cairn_error (-errno, "stdout: %m");
      p += n;
      len -= n;
    }
    return 0;
  }
  int r = cairn_pwrite_all (img->fd, buf, len, off);
  return r < 0 ? cairn_error (r, "%s: %s", img->path, strerror (-r)) : 0;
}

int
image_close (struct image *img)
{
  int r = 0;

  if (img->write && img->nbd) {
    if (nbd_flush (img->nbd, 0) == -1 || nbd_shutdown (img->nbd, 0) == -1)
      r = nbd_fail (img);
  }
  /* EINVAL: a special file that has nothing to sync (/dev/null). */
  else if (img->write && !img->to_stdout && fsync (img->fd) == -1
           && errno != EINVAL)
    r = cairn_error (-errno, "%s: %m", img->path);
  image_free (img);
  return r;
}
