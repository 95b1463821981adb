/* vmstore.c: a VM's files and buffers as volumes of the store, and back.
 *
 * Reading back goes through cairn_chunk_read, which decompresses and
 * re-hashes every chunk: a restore that has written a file from a volume
 * has verified every byte of it.  The RAM file is written on every core:
 * decompressing and hashing is the cost (about 1 GB/s per core here), and
 * each distinct chunk is read once however many times the guest's memory
 * repeats it.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

#define MAX_THREADS 8

/* ------------------------------------------------------------------ */
/* Into the store                                                      */

struct fd_source {
  int fd;
};

static int
fd_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct fd_source *f = arg;
  return cairn_pread_all (f->fd, buf, len, off);
}

int
vm_store_file (struct cairn_store *s, const char *path, const char *name,
               struct cairn_volume *out, struct cairn_import_stats *st)
{
  struct fd_source f;
  struct stat sb;
  int r;

  f.fd = open (path, O_RDONLY | O_CLOEXEC);
  if (f.fd < 0 || fstat (f.fd, &sb) < 0) {
    r = cairn_error (-errno, "%s: %m", path);
    if (f.fd >= 0)
      close (f.fd);
    return r;
  }
  if (sb.st_size == 0) {
    close (f.fd);
    return cairn_error (-EINVAL, "%s is empty", path);
  }
  struct cairn_import_source src = {
    .size = sb.st_size, .read = fd_read, .arg = &f,
  };
  r = cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, out, st);
  close (f.fd);
  if (r == 0)
    snprintf (out->name, sizeof out->name, "%s", name);
  return r;
}

struct buf_source {
  const uint8_t *data;
};

static int
buf_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct buf_source *b = arg;
  memcpy (buf, b->data + off, len);
  return 0;
}

int
vm_store_buffer (struct cairn_store *s, const void *data, size_t len,
                 const char *name, struct cairn_volume *out,
                 struct cairn_import_stats *st)
{
  struct buf_source b = { data };
  struct cairn_import_source src = {
    .size = len, .read = buf_read, .arg = &b,
  };
  int r = cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, out, st);

  if (r == 0)
    snprintf (out->name, sizeof out->name, "%s", name);
  return r;
}

/* ------------------------------------------------------------------ */
/* Out of the store                                                    */

static int
collect_chunk (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct vm_chunk_list *l = arg;

  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1024;
    struct vm_chunk_ref *v = realloc (l->v, cap * sizeof *v);
    if (!v)
      return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n].index = index;
  l->v[l->n].id = *id;
  l->n++;
  return 0;
}

int
vm_volume_chunks (struct cairn_store *s, const struct cairn_volume *v,
                  struct vm_chunk_list *l)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  memset (l, 0, sizeof *l);
  if (r < 0)
    return r;
  r = cairn_tree_walk (txn, &v->root, cairn_tree_levels (v->size,
                                                         v->chunk_size),
                       0, (v->size - 1) / v->chunk_size, collect_chunk, l);
  cairn_txn_abort (s, txn);
  if (r < 0) {
    free (l->v);
    l->v = NULL;
  }
  return r;
}

/* Writes the chunks of L into FD or BUF (whichever is set), in order. */
static int
write_chunks (struct cairn_store *s, const struct cairn_volume *v,
              const struct vm_chunk_list *l, int fd, uint8_t *buf)
{
  uint32_t cs = v->chunk_size;
  uint8_t *chunks = malloc ((size_t) CAIRN_HASH_BATCH * cs);
  struct cairn_id ids[CAIRN_HASH_BATCH];
  void *bufs[CAIRN_HASH_BATCH];
  int r = 0;

  if (!chunks)
    return -ENOMEM;
  for (size_t i = 0; i < l->n && r == 0; i += CAIRN_HASH_BATCH) {
    size_t m = CAIRN_MIN (l->n - i, (size_t) CAIRN_HASH_BATCH);
    for (size_t k = 0; k < m; k++) {
      ids[k] = l->v[i + k].id;
      bufs[k] = chunks + k * cs;
    }
    r = cairn_chunk_read_many (s, ids, m, bufs);
    for (size_t k = 0; k < m && r == 0; k++) {
      uint64_t off = l->v[i + k].index * cs;
      size_t len = CAIRN_MIN ((uint64_t) cs, v->size - off);
      if (buf)
        memcpy (buf + off, bufs[k], len);
      else
        r = cairn_pwrite_all (fd, bufs[k], len, off);
    }
  }
  free (chunks);
  return r;
}

int
vm_volume_to_file (struct cairn_store *s, const struct cairn_volume *v,
                   const char *path)
{
  struct vm_chunk_list l;
  int fd, r = vm_volume_chunks (s, v, &l);

  if (r < 0)
    return r;
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    free (l.v);
    return cairn_error (-errno, "%s: %m", path);
  }
  r = ftruncate (fd, v->size) < 0 ? -errno : 0;
  if (r == 0)
    r = write_chunks (s, v, &l, fd, NULL);
  if (close (fd) < 0 && r == 0)
    r = -errno;
  free (l.v);
  if (r < 0)
    unlink (path);
  return r;
}

int
vm_volume_to_buffer (struct cairn_store *s, const struct cairn_volume *v,
                     void **out)
{
  struct vm_chunk_list l;
  uint8_t *buf;
  int r;

  if (v->size > (256ULL << 20))
    return cairn_error (-EFBIG, "volume %s is too large to hold in memory",
                        v->name);
  buf = calloc (1, v->size ? v->size : 1);
  if (!buf)
    return -ENOMEM;
  r = vm_volume_chunks (s, v, &l);
  if (r == 0)
    r = write_chunks (s, v, &l, -1, buf);
  free (l.v);
  if (r < 0) {
    free (buf);
    return r;
  }
  *out = buf;
  return 0;
}

/* ------------------------------------------------------------------ */
/* RAM, in parallel                                                    */

struct ram_job {
  struct cairn_store *s;
  const struct cairn_volume *v;
  const struct vm_chunk_ref *refs;
  size_t first, last;           /* [first, last) of the sorted list */
  int fd;
  uint64_t bytes;
  int error;
  char message[512];            /* cairn_last_error is per thread */
};

static int
by_id (const void *a, const void *b)
{
  const struct vm_chunk_ref *x = a, *y = b;
  int c = memcmp (x->id.bytes, y->id.bytes, CAIRN_ID_SIZE);
  if (c)
    return c;
  return x->index < y->index ? -1 : x->index > y->index;
}

static void *
ram_worker (void *arg)
{
  struct ram_job *job = arg;
  uint32_t cs = job->v->chunk_size;
  uint8_t *chunks = malloc ((size_t) CAIRN_HASH_BATCH * cs);
  struct cairn_id ids[CAIRN_HASH_BATCH];
  void *bufs[CAIRN_HASH_BATCH];
  size_t first[CAIRN_HASH_BATCH + 1];

  if (!chunks) {
    job->error = -ENOMEM;
    return NULL;
  }
  for (size_t i = job->first; i < job->last && job->error == 0;) {
    /* The list is sorted by id: read each distinct chunk once.  FIRST[k]
     * is the first of the refs that read chunk K. */
    size_t m = 0, j = i;
    for (; j < job->last; j++)
      if (j == i || !cairn_id_equal (&job->refs[j].id, &job->refs[j - 1].id)) {
        if (m == CAIRN_HASH_BATCH)
          break;
        ids[m] = job->refs[j].id;
        bufs[m] = chunks + m * cs;
        first[m++] = j;
      }
    first[m] = j;
    job->error = cairn_chunk_read_many (job->s, ids, m, bufs);
    if (job->error) {
      snprintf (job->message, sizeof job->message, "%s",
                cairn_last_error ());
      break;
    }
    for (size_t k = 0; k < m && job->error == 0; k++)
      for (size_t x = first[k]; x < first[k + 1] && job->error == 0; x++) {
        uint64_t off = job->refs[x].index * cs;
        size_t len = CAIRN_MIN ((uint64_t) cs, job->v->size - off);
        job->error = cairn_pwrite_all (job->fd, bufs[k], len, off);
        job->bytes += len;
      }
    i = j;
  }
  free (chunks);
  return NULL;
}

int
vm_volume_to_ram (struct cairn_store *s, const struct cairn_volume *v,
                  const char *path, uint64_t *bytes)
{
  struct ram_job jobs[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  int nthreads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : ncpu;
  int started = 0, fd, r;
  struct vm_chunk_list l;

  r = vm_volume_chunks (s, v, &l);
  if (r < 0)
    return r;
  qsort (l.v, l.n, sizeof *l.v, by_id);
  /* Each chunk is read once: caching it would only cost fresh memory
   * (page faults) for every chunk of RAM. */
  cairn_store_set_cache_size (s, 0);
  fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    free (l.v);
    return cairn_error (-errno, "%s: %m", path);
  }
  if (ftruncate (fd, v->size) < 0) {
    r = cairn_error (-errno, "%s: %m", path);
    goto out;
  }

  /* Split at id boundaries so that no two threads read the same chunk. */
  size_t start = 0;
  for (int t = 0; t < nthreads; t++) {
    size_t end = t == nthreads - 1 ? l.n : l.n * (t + 1) / nthreads;
    while (end > start && end < l.n
           && cairn_id_equal (&l.v[end].id, &l.v[end - 1].id))
      end++;
    if (end < start)
      end = start;
    jobs[t] = (struct ram_job) { .s = s, .v = v, .refs = l.v, .fd = fd,
                                 .first = start, .last = end };
    start = end;
  }
  for (int t = 1; t < nthreads; t++) {
    if (pthread_create (&th[t], NULL, ram_worker, &jobs[t]) != 0)
      break;
    started = t;
  }
  ram_worker (&jobs[0]);
  for (int t = started + 1; t < nthreads; t++)
    ram_worker (&jobs[t]);
  for (int t = 1; t <= started; t++)
    pthread_join (th[t], NULL);
  *bytes = 0;
  for (int t = 0; t < nthreads; t++) {
    if (jobs[t].error && r == 0) {
      r = jobs[t].error;
      if (jobs[t].message[0])
        cairn_error (r, "%s", jobs[t].message);
    }
    *bytes += jobs[t].bytes;
  }

 out:
  close (fd);
  free (l.v);
  if (r < 0)
    unlink (path);
  return r;
}

/* Copies up to LEN bytes at OFF from IN to OUT (where copy_file_range
 * cannot, e.g. across file systems); returns how many, or -1. */
static ssize_t
copy_by_hand (int in, int out, off_t off, off_t len)
{
  static __thread char buf[1 << 16];
  ssize_t n = pread (in, buf, CAIRN_MIN ((off_t) sizeof buf, len), off);

  if (n > 0 && cairn_pwrite_all (out, buf, n, off) < 0)
    return -1;
  return n;
}

int
vm_copy_sparse (const char *from, const char *to)
{
  int in = open (from, O_RDONLY | O_CLOEXEC), out = -1, r = 0;
  struct stat st;
  off_t data, hole;

  if (in < 0 || fstat (in, &st) < 0) {
    r = cairn_error (-errno, "%s: %m", from);
    goto out;
  }
  out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0 || ftruncate (out, st.st_size) < 0) {
    r = cairn_error (-errno, "%s: %m", to);
    goto out;
  }
  for (data = 0; data < st.st_size; data = hole) {
    data = lseek (in, data, SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO)
        r = cairn_error (-errno, "%s: %m", from);
      break;
    }
    hole = lseek (in, data, SEEK_HOLE);
    if (hole < 0) {
      r = cairn_error (-errno, "%s: %m", from);
      break;
    }
    for (off_t off = data; off < hole;) {
      loff_t ioff = off, ooff = off;
      ssize_t n = copy_file_range (in, &ioff, out, &ooff, hole - off, 0);
      if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS))
        n = copy_by_hand (in, out, off, hole - off);
      if (n <= 0) {
        r = cairn_error (n < 0 ? -errno : -EIO, "copying %s: %m", from);
        goto out;
      }
      off += n;
    }
  }
 out:
  if (in >= 0)
    close (in);
  if (out >= 0 && close (out) < 0 && r == 0)
    r = cairn_error (-errno, "%s: %m", to);
  if (r < 0)
    unlink (to);
  return r;
}
