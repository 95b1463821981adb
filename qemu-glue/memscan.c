/* memscan.c: finding the RAM chunks a guest changed since its last
 * commit, by content, and storing only those.
 *
 * Why by content.  The host kernels cairn runs on report no soft-dirty
 * bits for QEMU's shared RAM mapping (checked: /proc/PID/clear_refs then
 * pagemap bit 55 stays 0 after writes), cairn cannot register userfaultfd
 * write protection in QEMU's address space, and QEMU's own dirty bitmap
 * is not reachable through QMP while x-ignore-shared leaves RAM out of
 * the migration.  So the change is found in the bytes.
 *
 * What was measured (120 MiB of a 256 MiB guest's RAM holding data, one
 * core of this 2-core host, load 4):
 *
 *   hash every data chunk with SHA-256 (what a plain store does)   73 ms
 *   pread each chunk and memcmp it with a reference copy           36 ms
 *   memcmp the RAM mapping with a mapped reference copy            13 ms
 *
 * so a commit keeps a reference copy, ram.ref, on tmpfs beside the RAM
 * file: exactly the bytes of the memory volume of the VM's last commit.
 * memcmp against it is exact, unlike a table of cheap per-chunk
 * fingerprints (a guest chooses its RAM's bytes and could collide a weak
 * fingerprint; only SHA-256 may decide identity in cairn), and it is the
 * fastest thing measured.  It costs tmpfs space equal to the guest's
 * resident RAM.  A chunk found changed is copied into the reference at
 * once, which is also what lets it be hashed and compressed while the
 * guest runs on: the reference is private to cairn and stable.
 *
 * The commit (vmcommit.c) runs a pass while the guest runs, stores what
 * it found, and runs a second pass while the guest is stopped; only the
 * second pass and the few chunks it finds are in the pause.  A chunk the
 * guest changes while the first pass copies it may be torn in the
 * reference; the paused pass compares it again with the final RAM and
 * copies it again, so what is committed is always the RAM at the pause.
 *
 * Holes.  A guest page never touched is a hole in the RAM file.  Reading
 * a hole through a shared mapping of a tmpfs file *allocates* the page
 * (a read fault on shmem), so chunks that are all data are compared
 * through the mapping, chunks with holes through pread (which returns
 * zeros without allocating), and chunks that are all hole not read at
 * all.  The data map comes from SEEK_DATA / SEEK_HOLE at every pass.  The
 * reference file only ever holds whole chunks (written whole, or punched
 * out whole), so REF_DATA says per chunk whether it holds bytes.
 *
 * Threads: a pass splits the chunks among one thread per core; each
 * chunk belongs to one thread, so the reference and the per-chunk arrays
 * need no lock.  Nothing else touches a memscan during a pass.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

#define MAX_THREADS 8

struct memscan {
  struct cairn_store *s;
  uint32_t cs;
  uint64_t size, nchunks;
  int ram_fd, ref_fd;
  const uint8_t *ram;           /* RAM, mapped read-only */
  uint8_t *ref;                 /* the reference copy, mapped */
  uint32_t *ram_data;           /* per chunk: bytes of data in RAM (pass) */
  int64_t ram_blocks;           /* the RAM file's st_blocks when mapped;
                                   -1: not mapped yet */
  uint8_t *ref_data;            /* per chunk: the reference holds bytes */
  uint8_t *changed;             /* per chunk: changed since the last store */
  uint8_t *ever_changed;        /* per chunk: changed by any pass */
  uint8_t *pass_changed;        /* per chunk: found by the current pass */
};

static int
map_file (int fd, uint64_t size, int prot, void **p)
{
  *p = mmap (NULL, size, prot, MAP_SHARED, fd, 0);
  return *p == MAP_FAILED ? -errno : 0;
}

/* Marks in REF_DATA the chunks of the reference that hold bytes. */
static int
ref_data_map (struct memscan *ms)
{
  off_t pos = 0;

  while ((uint64_t) pos < ms->size) {
    off_t data = lseek (ms->ref_fd, pos, SEEK_DATA);
    if (data < 0)
      return errno == ENXIO ? 0 : -errno;
    off_t hole = lseek (ms->ref_fd, data, SEEK_HOLE);
    if (hole < 0)
      return -errno;
    for (uint64_t i = data / ms->cs; i * ms->cs < (uint64_t) hole; i++)
      ms->ref_data[i] = 1;
    pos = hole;
  }
  return 0;
}

int
memscan_open (struct cairn_store *s, const char *ram, const char *ref,
              uint64_t size, bool ref_valid, struct memscan **out)
{
  struct memscan *ms = calloc (1, sizeof *ms);
  struct stat st;
  void *p;
  int r;

  if (!ms)
    return -ENOMEM;
  ms->s = s;
  ms->cs = cairn_store_chunk_size (s);
  ms->size = size;
  ms->nchunks = (size + ms->cs - 1) / ms->cs;
  ms->ram_fd = ms->ref_fd = -1;
  ms->ram_blocks = -1;
  ms->ram = MAP_FAILED;
  ms->ref = MAP_FAILED;
  ms->ram_data = calloc (ms->nchunks, sizeof *ms->ram_data);
  ms->ref_data = calloc (ms->nchunks, 1);
  ms->changed = calloc (ms->nchunks, 1);
  ms->pass_changed = calloc (ms->nchunks, 1);
  ms->ever_changed = calloc (ms->nchunks, 1);
  if (!ms->ram_data || !ms->ref_data || !ms->changed || !ms->pass_changed
      || !ms->ever_changed) {
    r = -ENOMEM;
    goto err;
  }

  ms->ram_fd = open (ram, O_RDONLY | O_CLOEXEC);
  if (ms->ram_fd < 0 || fstat (ms->ram_fd, &st) < 0) {
    r = cairn_error (-errno, "%s: %m", ram);
    goto err;
  }
  if ((uint64_t) st.st_size != size) {
    r = cairn_error (-EINVAL, "%s holds %llu bytes, not the VM's %llu", ram,
                     (unsigned long long) st.st_size,
                     (unsigned long long) size);
    goto err;
  }
  /* An invalid reference starts empty: every chunk of RAM is then new. */
  ms->ref_fd = open (ref, O_RDWR | O_CREAT | O_CLOEXEC
                     | (ref_valid ? 0 : O_TRUNC), 0600);
  if (ms->ref_fd < 0 || ftruncate (ms->ref_fd, size) < 0) {
    r = cairn_error (-errno, "%s: %m", ref);
    goto err;
  }
  if ((r = map_file (ms->ram_fd, size, PROT_READ, &p)) < 0) {
    r = cairn_error (r, "mmap %s: %s", ram, strerror (-r));
    goto err;
  }
  ms->ram = p;
  if ((r = map_file (ms->ref_fd, size, PROT_READ | PROT_WRITE, &p)) < 0) {
    r = cairn_error (r, "mmap %s: %s", ref, strerror (-r));
    goto err;
  }
  ms->ref = p;
  if ((r = ref_data_map (ms)) < 0) {
    r = cairn_error (r, "%s: %s", ref, strerror (-r));
    goto err;
  }
  *out = ms;
  return 0;

 err:
  memscan_close (ms);
  return r;
}

void
memscan_close (struct memscan *ms)
{
  if (!ms)
    return;
  if (ms->ram != MAP_FAILED)
    munmap ((void *) ms->ram, ms->size);
  if (ms->ref != MAP_FAILED)
    munmap (ms->ref, ms->size);
  if (ms->ram_fd >= 0)
    close (ms->ram_fd);
  if (ms->ref_fd >= 0)
    close (ms->ref_fd);
  free (ms->ram_data);
  free (ms->ref_data);
  free (ms->changed);
  free (ms->pass_changed);
  free (ms->ever_changed);
  free (ms);
}

/* Fills RAM_DATA: how many bytes of each chunk of RAM are data.  QEMU
 * never gives pages of this file back (cairn's machine has no balloon or
 * virtio-mem): the map only grows, so an unchanged block count means an
 * unchanged map, and the paused pass need not walk the file again. */
static int
ram_data_map (struct memscan *ms)
{
  struct stat st;
  off_t pos = 0;

  if (fstat (ms->ram_fd, &st) < 0)
    return -errno;
  if (st.st_blocks == ms->ram_blocks)
    return 0;
  ms->ram_blocks = st.st_blocks;
  memset (ms->ram_data, 0, ms->nchunks * sizeof *ms->ram_data);
  while ((uint64_t) pos < ms->size) {
    off_t data = lseek (ms->ram_fd, pos, SEEK_DATA);
    if (data < 0)
      return errno == ENXIO ? 0 : -errno;
    off_t hole = lseek (ms->ram_fd, data, SEEK_HOLE);
    if (hole < 0)
      return -errno;
    for (uint64_t off = data; off < (uint64_t) hole;) {
      uint64_t i = off / ms->cs;
      uint64_t end = CAIRN_MIN ((i + 1) * ms->cs, (uint64_t) hole);
      ms->ram_data[i] += end - off;
      off = end;
    }
    pos = hole;
  }
  return 0;
}

struct pass_job {
  struct memscan *ms;
  uint64_t first, last;         /* chunk range [first, last) */
  uint64_t changed, data;
  int error;
};

/* Compares chunk I of RAM with the reference; copies it if they differ. */
static int
scan_chunk (struct memscan *ms, uint64_t i, uint8_t *buf, bool *changed)
{
  uint64_t off = i * ms->cs;
  size_t len = CAIRN_MIN ((uint64_t) ms->cs, ms->size - off);
  uint8_t *ref = ms->ref + off;
  const uint8_t *cur;

  *changed = false;
  if (ms->ram_data[i] == 0) {
    /* All hole: reads as zeros.  The reference must too. */
    if (!ms->ref_data[i])
      return 0;
    if (fallocate (ms->ref_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   off, len) < 0)
      return -errno;
    ms->ref_data[i] = 0;
    *changed = true;
    return 0;
  }
  if (ms->ram_data[i] >= len)
    cur = ms->ram + off;        /* all data: the mapping faults nothing in */
  else {
    ssize_t n = pread (ms->ram_fd, buf, len, off);
    if (n < 0)
      return -errno;
    if ((size_t) n != len)
      return -EIO;
    cur = buf;
  }
  if (ms->ref_data[i] ? memcmp (cur, ref, len) == 0 : cairn_is_zero (cur, len))
    return 0;
  memcpy (ref, cur, len);
  ms->ref_data[i] = 1;
  *changed = true;
  return 0;
}

static void *
pass_worker (void *arg)
{
  struct pass_job *job = arg;
  struct memscan *ms = job->ms;
  uint8_t *buf = malloc (ms->cs);

  if (!buf) {
    job->error = -ENOMEM;
    return NULL;
  }
  for (uint64_t i = job->first; i < job->last; i++) {
    bool changed;
    int r = scan_chunk (ms, i, buf, &changed);
    if (r < 0) {
      job->error = r;
      break;
    }
    job->data += ms->ram_data[i] > 0;
    if (changed) {
      ms->pass_changed[i] = 1;
      job->changed++;
    }
  }
  free (buf);
  return NULL;
}

int
memscan_pass (struct memscan *ms, uint64_t *changed, uint64_t *data)
{
  struct pass_job jobs[MAX_THREADS];
  pthread_t th[MAX_THREADS];
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  int nthreads = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : ncpu;
  int started = 0, r;

  r = ram_data_map (ms);
  if (r < 0)
    return cairn_error (r, "the RAM file: %s", strerror (-r));
  memset (ms->pass_changed, 0, ms->nchunks);

  /* Split by data, not by address: RAM in use is not spread evenly. */
  uint64_t total = 0, share, acc = 0, start = 0;
  for (uint64_t i = 0; i < ms->nchunks; i++)
    total += ms->ram_data[i] > 0 || ms->ref_data[i];
  share = total / nthreads + 1;
  for (int t = 0; t < nthreads; t++) {
    uint64_t end = start;
    if (t == nthreads - 1)
      end = ms->nchunks;
    else
      for (acc = 0; end < ms->nchunks && acc < share; end++)
        acc += ms->ram_data[end] > 0 || ms->ref_data[end];
    jobs[t] = (struct pass_job) { .ms = ms, .first = start, .last = end };
    start = end;
  }
  for (int t = 1; t < nthreads; t++) {
    if (pthread_create (&th[t], NULL, pass_worker, &jobs[t]) != 0)
      break;
    started = t;
  }
  pass_worker (&jobs[0]);
  /* Threads that did not start: their ranges run here. */
  for (int t = started + 1; t < nthreads; t++)
    pass_worker (&jobs[t]);
  for (int t = 1; t <= started; t++)
    pthread_join (th[t], NULL);

  *changed = *data = 0;
  for (int t = 0; t < nthreads; t++) {
    if (jobs[t].error && r == 0)
      r = jobs[t].error;
    *changed += jobs[t].changed;
    *data += jobs[t].data;
  }
  for (uint64_t i = 0; i < ms->nchunks; i++) {
    ms->changed[i] |= ms->pass_changed[i];
    ms->ever_changed[i] |= ms->pass_changed[i];
  }
  if (r < 0)
    return cairn_error (r, "comparing RAM with its reference copy: %s",
                        strerror (-r));
  return 0;
}

uint64_t
memscan_changed_total (const struct memscan *ms)
{
  uint64_t n = 0;
  for (uint64_t i = 0; i < ms->nchunks; i++)
    n += ms->ever_changed[i];
  return n;
}

struct seal_job {
  struct memscan *ms;
  const uint64_t *index;
  struct cairn_sealed *sealed;
  size_t first, last;
  int error;
  char message[512];            /* cairn_last_error is per thread */
};

static void *
seal_worker (void *arg)
{
  struct seal_job *job = arg;
  struct memscan *ms = job->ms;
  uint8_t *buf = malloc ((size_t) CAIRN_HASH_BATCH * ms->cs);
  const void *group[CAIRN_HASH_BATCH];

  if (!buf) {
    job->error = -ENOMEM;
    return NULL;
  }
  for (size_t k = job->first; k < job->last && job->error == 0;) {
    size_t m = CAIRN_MIN (job->last - k, (size_t) CAIRN_HASH_BATCH);
    for (size_t i = 0; i < m && job->error == 0; i++) {
      uint64_t off = job->index[k + i] * ms->cs;
      size_t len = CAIRN_MIN ((uint64_t) ms->cs, ms->size - off);
      group[i] = buf + i * ms->cs;
      memset (buf + i * ms->cs, 0, ms->cs);
      job->error = cairn_pread_all (ms->ref_fd, buf + i * ms->cs, len, off);
    }
    if (job->error == 0)
      job->error = cairn_chunk_seal_many (ms->s, group, m, &job->sealed[k]);
    if (job->error)
      snprintf (job->message, sizeof job->message, "%s",
                cairn_last_error ());
    k += m;
  }
  free (buf);
  return NULL;
}

int
memscan_seal (struct memscan *ms, struct cairn_tree_change **changes,
              struct cairn_sealed **sealed, size_t *n)
{
  uint64_t *index;
  size_t count = 0;
  int r = 0;

  for (uint64_t i = 0; i < ms->nchunks; i++)
    count += ms->changed[i];
  index = malloc ((count ? count : 1) * sizeof *index);
  *changes = calloc (count ? count : 1, sizeof **changes);
  *sealed = calloc (count ? count : 1, sizeof **sealed);
  if (!index || !*changes || !*sealed) {
    free (index);
    free (*changes);
    free (*sealed);
    return -ENOMEM;
  }
  count = 0;
  for (uint64_t i = 0; i < ms->nchunks; i++)
    if (ms->changed[i])
      index[count++] = i;

  /* Two halves in parallel when there is enough to share. */
  struct seal_job jobs[2] = {
    { ms, index, *sealed, 0, count > 8 ? count / 2 : count, 0, "" },
    { ms, index, *sealed, count > 8 ? count / 2 : count, count, 0, "" },
  };
  pthread_t th;
  bool threaded = jobs[1].first < jobs[1].last
    && pthread_create (&th, NULL, seal_worker, &jobs[1]) == 0;
  seal_worker (&jobs[0]);
  if (threaded)
    pthread_join (th, NULL);
  else
    seal_worker (&jobs[1]);
  for (int t = 1; t >= 0; t--)
    if (jobs[t].error) {
      r = jobs[t].error;
      if (jobs[t].message[0])
        cairn_error (r, "%s", jobs[t].message);
    }
  for (size_t k = 0; k < count; k++) {
    (*changes)[k].index = index[k];
    (*changes)[k].id = (*sealed)[k].id;
  }
  free (index);
  if (r < 0) {
    for (size_t k = 0; k < count; k++)
      cairn_sealed_free (&(*sealed)[k]);
    free (*changes);
    free (*sealed);
    return r;
  }
  *n = count;
  return 0;
}

void
memscan_forget (struct memscan *ms)
{
  memset (ms->changed, 0, ms->nchunks);
}

/* The store's byte source: the reference copy, through pread so that its
 * holes read as zeros without being allocated. */
static int
ref_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct memscan *ms = arg;
  return cairn_pread_all (ms->ref_fd, buf, len, off);
}

static int
ref_extents (void *arg, uint64_t off, uint64_t len, cairn_extent_fn fn,
             void *fnarg)
{
  struct memscan *ms = arg;
  uint64_t end = off + len;
  int r = 0;

  while (off < end && r == 0) {
    uint64_t i = off / ms->cs;
    uint64_t next = CAIRN_MIN ((i + 1) * ms->cs, end);
    r = fn (off, next - off, !ms->ref_data[i], fnarg);
    off = next;
  }
  return r;
}

int
memscan_store (struct memscan *ms, const struct cairn_volume *base,
               struct cairn_volume *out, struct cairn_import_stats *st)
{
  struct cairn_import_source src = {
    .size = ms->size, .read = ref_read, .extents = ref_extents, .arg = ms,
  };
  uint8_t *bitmap = NULL;
  int r;

  if (base) {
    uint64_t n = 0;
    for (uint64_t i = 0; i < ms->nchunks; i++)
      n += ms->changed[i];
    if (n == 0) {               /* nothing to write: no transaction */
      *out = *base;
      strcpy (out->name, "memory");
      if (st)
        memset (st, 0, sizeof *st);
      return 0;
    }
    bitmap = calloc ((ms->nchunks + 7) / 8, 1);
    if (!bitmap)
      return -ENOMEM;
    for (uint64_t i = 0; i < ms->nchunks; i++)
      if (ms->changed[i])
        bitmap[i / 8] |= 1 << (i % 8);
  }
  /* OUT may be BASE: the store clears OUT before it reads BASE. */
  struct cairn_volume b = base ? *base : (struct cairn_volume) { 0 };
  r = cairn_volume_store (ms->s, &src, base ? &b : NULL, bitmap, NULL, NULL,
                          out, st);
  free (bitmap);
  if (r < 0)
    return r;
  strcpy (out->name, "memory");
  memset (ms->changed, 0, ms->nchunks);
  return 0;
}
