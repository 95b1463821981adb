/* backend-local.c: the local backend, an LMDB index beside pack files.
 *
 * Record formats and the databases of STORE/index: see backend.h.
 *
 * Locking: LMDB allows one write transaction at a time across processes;
 * that lock also guards this process's pack writer, which is only touched
 * inside a write transaction.  The environment is opened with MDB_NOTLS so
 * that read transactions are not tied to threads.  It must be opened after
 * any fork (nbdkit's .after_fork).
 *
 * Durability: a write transaction that appended chunks fdatasyncs the pack
 * first, so a record is durable before the index names it.  LMDB runs with
 * MDB_NOSYNC: the transaction's changes are appended to the redo log and
 * fdatasynced before mdb_txn_commit (one flush, where LMDB's own commit
 * takes two of scattered pages), so a commit is durable on return.
 * Checkpoints flush LMDB's file and restart the log; redo.h has the rules
 * that keep that sound through a kill -9 or a power loss.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>
#include <lmdb.h>

#include "store/backend.h"
#include "store/error.h"
#include "store/pack.h"
#include "store/redo.h"
#include "store/util.h"

#define DEFAULT_MAP_SIZE (32ULL << 30)
/* Less space than this left on the index's file system: a short write of
 * it is the full disk (more than any one transaction's pages). */
#define FULL_DISK_BYTES (4ULL << 20)

static const char *const object_db_names[CAIRN_OBJECT_TYPES] = {
  [CAIRN_OBJECT_CHUNK] = "chunks",
  [CAIRN_OBJECT_NODE] = "nodes",
  [CAIRN_OBJECT_COMMIT] = "commits",
};

static const char *const table_db_names[CAIRN_TABLES] = {
  [CAIRN_TABLE_META] = "meta",
  [CAIRN_TABLE_REFS] = "refs",
  [CAIRN_TABLE_WORK] = "work",
  [CAIRN_TABLE_TOMBSTONES] = "tombstones",
  [CAIRN_TABLE_RETENTION] = "retention",
  [CAIRN_TABLE_SESSIONS] = "sessions",
  [CAIRN_TABLE_VMS] = "vms",
};

#define CHUNK_ENTRY_SIZE 32
#define INLINE_HEADER_SIZE 8
/* How a process keeps the index pages it maps in check (touch_index):
 * it looks every so long, or every so many accesses (a commit's scans
 * read the whole index in less); lets them be this much more than at
 * open; and unmaps the map in this many slices. */
#define MAP_RELEASE_NS (50 * 1000000LL)
#define MAP_RELEASE_ACCESSES 128
#define MAP_BUDGET (8ULL << 20)
#define MAP_RELEASE_SLICES 16

struct local_backend {
  struct cairn_backend base;
  MDB_env *env;
  MDB_dbi objects[CAIRN_OBJECT_TYPES];
  MDB_dbi tables[CAIRN_TABLES];
  bool readonly;
  bool nosync;                  /* benchmarks only: no fsync at all */
  char *packs_dir;
  uint64_t pack_limit;
  struct pack_writer writer;    /* guarded by LMDB's write lock */
  struct pack_readers readers;
  _Atomic int64_t map_released; /* CLOCK_MONOTONIC ns */
  _Atomic uint64_t accesses;    /* to the index, counted by touch_index */
  _Atomic unsigned map_slice;   /* the next release_map unmaps */
  uint64_t file_rss;            /* file pages mapped at open, bytes */
  _Atomic uint64_t map_ticks;   /* ticks outside sweeps (touch_index) */
  _Atomic unsigned sweep_left;  /* slices the sweep under way has left */
  char *map;                    /* LMDB's map, NULL if not found */
  size_t map_len;
  int map_uffd;                 /* see no_fault_around, or -1 */
  /* The redo log (redo.h); writable environments only. */
  bool wal;
  struct redo_log redo;
  MDB_txn *pin;                 /* read txn on the checkpoint we pin */
  /* Atomic: local_housekeep reads these and the next two without the
   * write lock, to see whether it has anything to do. */
  _Atomic uint64_t pin_lsn;
  _Atomic uint64_t pin_pages;   /* LMDB's last page when pinned */
  bool force_ckpt;              /* next write txn checkpoints first */
  bool wrote;                   /* logged a record since opening */
  _Atomic uint64_t logged_lsn;  /* the lsn of the last record it logged */
  _Atomic uint64_t logged_end;  /* where in the log that record ended */
  long kill_at_record;          /* tests: SIGKILL after this many records */
  long fail_flush_at_record;    /* tests: its flush fails (EIO) */
  long records;
};

struct cairn_btxn {
  struct local_backend *lb;
  MDB_txn *txn;
  bool write;
  bool appended;                /* chunks appended to a pack */
  bool log_durable;             /* log_durable was called in it */
  bool have_epoch;
  uint64_t epoch;
  void **bufs;                  /* chunk reads, freed at the end */
  size_t nbufs, capbufs;
  struct redo_buf redo;         /* this txn's changes, for the log */
  uint64_t lsn;                 /* the lsn its record will carry */
  uint64_t redo_off;            /* where its record goes */
};

static int
mdb_errno (int rc)
{
  switch (rc) {
  case MDB_SUCCESS: return 0;
  case MDB_NOTFOUND: return -ENOENT;
  case MDB_KEYEXIST: return -EEXIST;
  case MDB_MAP_FULL: return -ENOSPC;
  case MDB_BAD_VALSIZE: return -EINVAL;  /* a key empty or too long */
  case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
    return -EBADMSG;
  case MDB_READERS_FULL: case MDB_TXN_FULL: return -EAGAIN;
  case MDB_VERSION_MISMATCH: return -EPROTO;
  default: return rc > 0 ? -rc : -EIO;
  }
}

static struct local_backend *
local (struct cairn_backend *b)
{
  return (struct local_backend *) b;
}

/* Where this process maps FD: LMDB does not say (mdb_env_info's
 * me_mapaddr is the MDB_FIXEDMAP address, NULL otherwise). */
static int
find_map (int fd, char **start, size_t *len)
{
  struct stat st;
  char line[4096];
  FILE *maps;
  int r = -ENOENT;

  if (fstat (fd, &st) == -1)
    return -errno;
  maps = fopen ("/proc/self/maps", "re");
  if (!maps)
    return -errno;
  while (r == -ENOENT && fgets (line, sizeof line, maps)) {
    unsigned long from, to, ino;
    unsigned major, minor;
    if (sscanf (line, "%lx-%lx %*s %*s %x:%x %lu", &from, &to, &major, &minor,
                &ino) == 5
        && ino == st.st_ino && major == major (st.st_dev)
        && minor == minor (st.st_dev)) {
      *start = (char *) from;
      *len = to - from;
      r = 0;
    }
  }
  fclose (maps);
  return r;
}

/* Turns off the kernel's fault-around for LMDB's map.  A fault on a page
 * of a file's page cache maps up to 16 pages around it, or the whole
 * folio it lies in (many pages, for what LMDB wrote in runs): a reader
 * that looks up one random page then holds tens of pages in its RSS, and
 * pays for mapping them.  The kernel maps one page a fault in a range
 * registered with a userfaultfd for write-protection; asynchronous mode
 * (Linux 6.7) allows it for any memory and needs no handler, and the map
 * is never written (no MDB_WRITEMAP), so nothing else changes.  Best
 * effort: without it (an older kernel, a read-only file) all works as
 * before, only with more of the index mapped.  Measured: 100 random reads
 * of a cached file took 1.6 us each and mapped 100 pages, against 4 us
 * each and 30 MB. */
static void
no_fault_around (struct local_backend *lb)
{
#if defined(__linux__) && defined(SYS_userfaultfd)
  /* Not in the headers of every distribution that has the kernel. */
  const uint64_t wp_async = 1 << 15;    /* UFFD_FEATURE_WP_ASYNC */
  const int user_mode_only = 1;         /* UFFD_USER_MODE_ONLY */
  int fd = syscall (SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | user_mode_only);
  struct uffdio_api api = { .api = UFFD_API, .features = wp_async };
  struct uffdio_register reg = {
    .range = { (uintptr_t) lb->map, lb->map_len },
    .mode = UFFDIO_REGISTER_MODE_WP,
  };

  if (fd < 0)
    return;
  if (ioctl (fd, UFFDIO_API, &api) == 0 && (api.features & wp_async)
      && ioctl (fd, UFFDIO_REGISTER, &reg) == 0)
    lb->map_uffd = fd;
  else
    close (fd);
#endif
}

/* Unmaps from this process the index pages it has read in the next of
 * MAP_RELEASE_SLICES slices of the map.  LMDB maps the whole index, and
 * every page a reader touches stays in the process's RSS until the kernel
 * needs the memory.  The map is read-only (no MDB_WRITEMAP): dropping its
 * pages leaves them in the page cache, and a read of one faults it back,
 * also one in a transaction under way.  A slice at a time, so that no
 * one access pays for unmapping (and faulting back) everything: a commit
 * that did took twice as long as the others. */
static int
release_map (struct local_backend *lb)
{
  MDB_envinfo info;
  MDB_stat st;

  if (!lb->map)
    return -ENOENT;
  if (mdb_env_info (lb->env, &info) != 0 || mdb_env_stat (lb->env, &st) != 0)
    return -EIO;
  size_t pages = CAIRN_MIN (info.me_last_pgno + 1, lb->map_len / st.ms_psize);
  unsigned slice = atomic_fetch_add (&lb->map_slice, 1) % MAP_RELEASE_SLICES;
  size_t from = pages * slice / MAP_RELEASE_SLICES;
  size_t to = pages * (slice + 1) / MAP_RELEASE_SLICES;
  if (to > from
      && madvise (lb->map + from * st.ms_psize, (to - from) * st.ms_psize,
                  MADV_DONTNEED) == -1)
    return -errno;
  return 0;
}

/* The file pages this process maps, in bytes (statm's third field): the
 * index's pages it has read, and the text of its program and libraries.
 * 0 if unknown. */
static uint64_t
file_rss (void)
{
  char buf[128];
  unsigned long size, resident, shared;
  int fd = open ("/proc/self/statm", O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  if (sscanf (buf, "%lu %lu %lu", &size, &resident, &shared) != 3)
    return 0;
  return (uint64_t) shared * sysconf (_SC_PAGESIZE);
}

/* Every 1/MAP_RELEASE_SLICES of MAP_RELEASE_NS of use or of
 * MAP_RELEASE_ACCESSES accesses is a tick.  Every MAP_RELEASE_SLICES
 * ticks, an access to the index looks at how many file pages this
 * process maps, and once that is MAP_BUDGET more than at open, starts a
 * sweep: the next MAP_RELEASE_SLICES ticks unmap a slice of the map each.
 * Random I/O all over a big volume, and a commit's tree update and scans,
 * read index pages all over the map, and each would stay in the RSS once
 * read.  Unmapping costs little, but faulting the hot pages back costs
 * the next accesses, a commit most (tens of us): so the map is unmapped
 * only when that much of it is mapped, and a slice at a time. */
static void
touch_index (struct local_backend *lb)
{
  const uint64_t every = MAP_RELEASE_ACCESSES / MAP_RELEASE_SLICES;
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  int64_t now = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
  int64_t last = atomic_load (&lb->map_released);
  bool many = atomic_fetch_add (&lb->accesses, 1) % every == every - 1;

  if (!(many || now - last >= MAP_RELEASE_NS / MAP_RELEASE_SLICES)
      || !atomic_compare_exchange_strong (&lb->map_released, &last, now))
    return;
  if (atomic_load (&lb->sweep_left) == 0
      && atomic_fetch_add (&lb->map_ticks, 1) % MAP_RELEASE_SLICES == 0) {
    uint64_t mapped = file_rss ();  /* 0: unknown, sweep all the same */
    if (mapped == 0 || mapped > lb->file_rss + MAP_BUDGET)
      atomic_store (&lb->sweep_left, MAP_RELEASE_SLICES);
  }
  if (atomic_load (&lb->sweep_left) > 0) {
    atomic_fetch_sub (&lb->sweep_left, 1);
    release_map (lb);
  }
}

static void
txn_free (struct cairn_btxn *t)
{
  for (size_t i = 0; i < t->nbufs; i++)
    free (t->bufs[i]);
  free (t->bufs);
  redo_buf_free (&t->redo);
  free (t);
}

/* ---- The redo log (redo.h) ---------------------------------------- */

/* A write txn checkpoints first once this many records or this much log
 * are past the checkpoint: that bounds the replay after a crash and the
 * pages LMDB cannot reuse meanwhile (the pin holds them).  Records of a
 * few pages each (a branch created, a tag) go round pages freed two
 * intervals ago (see HOUSEKEEP_RECORDS): at 256 records, branch creation
 * in a loop, with no sealer to checkpoint sooner, cycled 11 MiB, more
 * than MAP_BUDGET, and faulted 6.6 pages back in each (17 us of CPU);
 * at 128, 0.55.  Fewer records than this would put a checkpoint (about
 * 1.5 ms) in more than 1% of such txns. */
#define CKPT_RECORDS 128
#define CKPT_LOG_BYTES (4ULL << 20)
/* ... or once LMDB's file has grown by this many pages since: random
 * index updates (sealing chunks all over a big volume) dirty tens of
 * pages a record, and with none of them reused the file would grow by
 * that much per record. */
#define CKPT_GROWTH_PAGES 2048
/* Housekeeping (local_housekeep) checkpoints once three quarters of the
 * log's bytes or of that growth is reached, so that a write txn seldom
 * has to, and after far fewer records.  The pages LMDB frees between two
 * checkpoints are reused only after the second (the pin holds them till
 * then): each interval writes its txns to the pages the one before
 * freed.  Short intervals keep those few enough to stay mapped within
 * MAP_BUDGET.  At 192 records, a sweep came every few dozen commits and
 * unmapped them, and a commit faulted 17 of them back in: 35 us of its
 * p50 and 50 of its p99 here (bench-commit, 8 GiB).  The checkpoints
 * then come more often but flush less each, in the background. */
#define HOUSEKEEP_RECORDS 24
#define CKPT_EARLY(limit) ((limit) / 4 * 3)

/* LIMIT, or three quarters of it if EARLY. */
static uint64_t
ckpt_limit (uint64_t limit, bool early)
{
  return early ? CKPT_EARLY (limit) : limit;
}

/* Whether RECORDS records and BYTES of log since the pinned checkpoint,
 * and LMDB's growth since, call for a checkpoint (EARLY: housekeeping's
 * limits).  LMDB is asked only if the log does not. */
static bool
ckpt_due (struct local_backend *lb, uint64_t records, uint64_t bytes,
          bool early)
{
  MDB_envinfo info;

  if (records >= (early ? HOUSEKEEP_RECORDS : CKPT_RECORDS)
      || bytes >= ckpt_limit (CKPT_LOG_BYTES, early))
    return true;
  return mdb_env_info (lb->env, &info) == 0
    && info.me_last_pgno >= lb->pin_pages
       + ckpt_limit (CKPT_GROWTH_PAGES, early);
}

/* Databases by number, as the log names them. */
#define DB_TABLE(table) (CAIRN_OBJECT_TYPES + (table))
#define DB_COUNT (CAIRN_OBJECT_TYPES + CAIRN_TABLES)

static MDB_dbi
dbi_of (struct local_backend *lb, unsigned db)
{
  return db < CAIRN_OBJECT_TYPES ? lb->objects[db]
    : lb->tables[db - CAIRN_OBJECT_TYPES];
}

static int
meta_get_raw (struct local_backend *lb, MDB_txn *txn, const char *name,
              uint64_t *v)
{
  MDB_val k = { strlen (name), (void *) name }, d;
  int rc = mdb_get (txn, lb->tables[CAIRN_TABLE_META], &k, &d);
  if (rc == MDB_NOTFOUND) {
    *v = 0;
    return 0;
  }
  if (rc)
    return mdb_errno (rc);
  *v = d.mv_size == 4 ? cairn_le32 (d.mv_data)
    : d.mv_size == 8 ? cairn_le64 (d.mv_data) : 0;
  return 0;
}

/* For "lsn" and "redo-at", which the log does not carry. */
static int
meta_put_raw (struct local_backend *lb, MDB_txn *txn, const char *name,
              uint64_t v)
{
  uint8_t buf[8];
  cairn_put_le64 (buf, v);
  MDB_val k = { strlen (name), (void *) name }, d = { 8, buf };
  return mdb_errno (mdb_put (txn, lb->tables[CAIRN_TABLE_META], &k, &d, 0));
}

/* Where the index stands in the log, read in write txn TXN: *LSN, the
 * current checkpoint *C, and *AT where the next record goes - redo-at,
 * or 0 if nothing was logged since the checkpoint.  0, or -ENOENT if
 * there is no checkpoint yet (*AT is then redo-at), or an error. */
static int
log_position (struct local_backend *lb, MDB_txn *txn, uint64_t *lsn,
              uint64_t *at, struct redo_ckpt *c)
{
  int r = meta_get_raw (lb, txn, "lsn", lsn);

  if (r == 0)
    r = meta_get_raw (lb, txn, "redo-at", at);
  if (r == 0)
    r = redo_ckpt_read (&lb->redo, c, false);
  if (r == 0 && *lsn == c->lsn)
    *at = 0;
  return r;
}

static int
log_op (struct cairn_btxn *t, enum redo_op op, unsigned db,
        const MDB_val *k, const MDB_val *d)
{
  if (!t->lb->wal)
    return 0;
  return redo_buf_add (&t->redo, op, db, k->mv_data, k->mv_size,
                       d ? d->mv_data : NULL, d ? d->mv_size : 0);
}

/* mdb_put and mdb_del, logged: every change a write txn makes goes
 * through these (or delete_prefix below). */
static int
logged_put (struct cairn_btxn *t, unsigned db, MDB_val *k, MDB_val *d)
{
  int rc = mdb_put (t->txn, dbi_of (t->lb, db), k, d, 0);
  return rc ? mdb_errno (rc) : log_op (t, REDO_PUT, db, k, d);
}

static int
logged_del (struct cairn_btxn *t, unsigned db, MDB_val *k)
{
  int rc = mdb_del (t->txn, dbi_of (t->lb, db), k, NULL);
  return rc ? mdb_errno (rc) : log_op (t, REDO_DELETE, db, k, NULL);
}

static int
delete_prefix (MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen)
{
  MDB_cursor *c;
  MDB_val k = { plen, (void *) prefix }, d;
  int rc = mdb_cursor_open (txn, dbi, &c);

  if (rc)
    return mdb_errno (rc);
  rc = plen ? mdb_cursor_get (c, &k, &d, MDB_SET_RANGE)
    : mdb_cursor_get (c, &k, &d, MDB_FIRST);
  while (rc == 0 && k.mv_size >= plen
         && memcmp (k.mv_data, prefix, plen) == 0) {
    rc = mdb_cursor_del (c, 0);
    if (rc == 0)
      rc = mdb_cursor_get (c, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close (c);
  return rc == 0 || rc == MDB_NOTFOUND || rc == EINVAL ? 0 : mdb_errno (rc);
}

struct replay {
  struct local_backend *lb;
  MDB_txn *txn;
};

static int
replay_op (void *arg, enum redo_op op, unsigned db, const void *key,
           size_t klen, const void *val, size_t vlen)
{
  struct replay *rp = arg;
  MDB_val k = { klen, (void *) key }, d = { vlen, (void *) val };
  int rc;

  if (db >= DB_COUNT)
    return -EBADMSG;
  MDB_dbi dbi = dbi_of (rp->lb, db);
  switch (op) {
  case REDO_PUT:
    rc = mdb_put (rp->txn, dbi, &k, &d, 0);
    break;
  case REDO_DELETE:
    rc = mdb_del (rp->txn, dbi, &k, NULL);
    if (rc == MDB_NOTFOUND)
      rc = 0;
    break;
  case REDO_DELETE_PREFIX:
    return delete_prefix (rp->txn, dbi, key, klen);
  default:
    return -EBADMSG;
  }
  return mdb_errno (rc);
}

/* Opens a read txn on the latest state, whose lsn is LSN: the caller
 * holds the write lock, so that is the state it started from. */
static int
repin (struct local_backend *lb, uint64_t lsn)
{
  if (lb->pin)
    mdb_txn_abort (lb->pin);
  lb->pin = NULL;
  int rc = mdb_txn_begin (lb->env, NULL, MDB_RDONLY, &lb->pin);
  if (rc) {
    lb->pin = NULL;
    return mdb_errno (rc);
  }
  lb->pin_lsn = lsn;
  MDB_envinfo info;
  lb->pin_pages = mdb_env_info (lb->env, &info) == 0 ? info.me_last_pgno : 0;
  return 0;
}

/* Flushes LMDB's file and records the state write txn TXN started from
 * (lsn LSN) as the checkpoint, with its meta pages; then pins it.  PREV
 * is the checkpoint before, if any. */
static int
checkpoint (struct local_backend *lb, MDB_txn *txn, uint64_t lsn,
            const struct redo_ckpt *prev)
{
  struct redo_ckpt c = { .lsn = lsn, .txnid = mdb_txn_id (txn) - 1,
                        .seq = prev ? prev->seq + 1 : 1 };
  MDB_stat st;
  int fd, r;

  r = mdb_errno (mdb_env_sync (lb->env, 1));
  if (r == 0)
    r = mdb_errno (mdb_env_stat (lb->env, &st));
  if (r == 0)
    r = mdb_errno (mdb_env_get_fd (lb->env, &fd));
  if (r == 0) {
    c.psize = st.ms_psize;
    c.metas = malloc (2 * c.psize);
    r = c.metas ? cairn_pread_all (fd, c.metas, 2 * c.psize, 0) : -ENOMEM;
  }
  if (r == 0) {
    redo_boot_id (c.boot_id);
    c.pins[0] = c.txnid;
    if (prev)
      memcpy (c.pins + 1, prev->pins, (REDO_PINS - 1) * sizeof *c.pins);
    r = redo_ckpt_write (&lb->redo, &c);
  }
  redo_ckpt_free (&c);
  if (r < 0)
    return cairn_error (r, "checkpointing the index: %s", strerror (-r));
  lb->force_ckpt = false;
  return repin (lb, lsn);
}

/* At the start of write txn T: checkpoint if this process does not pin
 * the current checkpoint (and something was logged since it), or the log
 * is long (EARLY: housekeeping's limits, ckpt_due); then place T's record. */
static int
redo_begin (struct cairn_btxn *t, bool early)
{
  struct local_backend *lb = t->lb;
  struct redo_ckpt c;
  uint64_t lsn = 0, at = 0;
  int r;

  if (lb->nosync) {             /* no log, no checkpoints */
    if (lb->pin)                /* nor pages held for one */
      mdb_txn_abort (lb->pin);
    lb->pin = NULL;
    r = meta_get_raw (lb, t->txn, "lsn", &lsn);
    t->lsn = lsn + 1;
    return r;
  }
  int have = log_position (lb, t->txn, &lsn, &at, &c);
  if (have < 0 && have != -ENOENT)
    return have;
  if (have < 0
      || (lsn != c.lsn
          && (lb->force_ckpt || !lb->pin || lb->pin_lsn != c.lsn
              || ckpt_due (lb, lsn - c.lsn, at, early)))) {
    r = checkpoint (lb, t->txn, lsn, have < 0 ? NULL : &c);
    at = 0;
  }
  else
    r = !lb->pin || lb->pin_lsn != c.lsn ? repin (lb, lsn) : 0;
  t->lsn = lsn + 1;
  t->redo_off = at;
  return r;
}

/* A record's operation, read and not applied (see recover). */
static int
skip_op (void *arg, enum redo_op op, unsigned db, const void *key,
         size_t klen, const void *val, size_t vlen)
{
  (void) arg, (void) op, (void) key, (void) klen, (void) val, (void) vlen;
  return db < DB_COUNT ? 0 : -EBADMSG;
}

/* At a writable open, before anyone writes.  After a restart (REBOOTED:
 * the meta pages were put back), applies every record since the
 * checkpoint.  In the same boot LMDB holds every transaction that
 * committed, and a record past the index's lsn is one that a killed
 * process logged and never committed: nobody saw its state and nobody
 * was told it happened.  It is voided, not applied.  Applied, the commit
 * it made appeared at the next writable open, after `log` had shown the
 * branch without it: `cairn branch NEW main` then started NEW at a commit
 * its user never saw.  The void is flushed, so no later restart's replay
 * applies the record either.  Then checkpoints if anything was applied
 * or there is no checkpoint yet. */
static int
recover (struct local_backend *lb, bool rebooted)
{
  struct redo_ckpt c;
  MDB_txn *txn;
  uint64_t lsn, off;
  int r = mdb_errno (mdb_txn_begin (lb->env, NULL, 0, &txn));

  if (r < 0)
    return r;
  int have = log_position (lb, txn, &lsn, &off, &c);
  if (have < 0 && have != -ENOENT) {
    mdb_txn_abort (txn);
    return have;
  }
  uint64_t now = lsn;
  struct replay rp = { lb, txn };
  int applied;
  if (rebooted)
    applied = redo_replay (&lb->redo, &off, &now, replay_op, &rp);
  else {
    uint64_t end = off, end_lsn = lsn;
    applied = redo_replay (&lb->redo, &end, &end_lsn, skip_op, NULL);
    if (applied > 0) {
      r = redo_void (&lb->redo, off);
      applied = 0;
    }
    if (r < 0) {
      mdb_txn_abort (txn);
      return cairn_error (r, "voiding the record of a killed process in "
                          "the index's redo log: %s", strerror (-r));
    }
  }
  if (applied > 0) {
    r = meta_put_raw (lb, txn, "lsn", now);
    if (r == 0)
      r = meta_put_raw (lb, txn, "redo-at", off);
    if (r == 0)
      r = mdb_errno (mdb_txn_commit (txn));
    else
      mdb_txn_abort (txn);
    if (r == 0)
      r = mdb_errno (mdb_txn_begin (lb->env, NULL, 0, &txn));
    if (r < 0)
      return cairn_error (r, "applying the index's redo log: %s",
                          strerror (-r));
  }
  else if (applied < 0) {
    mdb_txn_abort (txn);
    return cairn_error (applied, "reading the index's redo log: %s",
                        strerror (-applied));
  }
  if (applied > 0 || have < 0 || rebooted)
    r = checkpoint (lb, txn, now, have < 0 ? NULL : &c);
  mdb_txn_abort (txn);
  return r;
}

/* ---- Transactions ------------------------------------------------- */

/* The error of mdb_txn_commit's RC.  LMDB takes a short write of its file
 * for EIO; it comes from a disk that filled as the file grew, which the
 * space left tells apart from a failing disk. */
static int
commit_errno (struct local_backend *lb, int rc)
{
  struct statvfs sv;
  int r = mdb_errno (rc), fd;

  if (r == -EIO && mdb_env_get_fd (lb->env, &fd) == 0
      && fstatvfs (fd, &sv) == 0
      && (uint64_t) sv.f_bavail * sv.f_frsize < FULL_DISK_BYTES)
    r = -ENOSPC;
  return r;
}

static int
txn_begin (struct local_backend *lb, bool write, bool early,
           struct cairn_btxn **out)
{
  if (write && lb->readonly)
    return -EROFS;
  touch_index (lb);
  struct cairn_btxn *t = calloc (1, sizeof *t);
  if (!t)
    return -ENOMEM;
  t->lb = lb;
  t->write = write;
  int rc = mdb_txn_begin (lb->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
  if (rc) {
    free (t);
    return mdb_errno (rc);
  }
  if (write) {
    int r = lb->wal ? redo_flush_error (&lb->redo) : 0;
    if (r < 0)
      r = cairn_error (r, "the index's redo log could not be flushed "
                       "(%s): open the store again", strerror (-r));
    else if (lb->wal)
      r = redo_begin (t, early);
    if (r < 0) {
      mdb_txn_abort (t->txn);
      txn_free (t);
      return r;
    }
  }
  *out = t;
  return 0;
}

static int
local_txn_begin (struct cairn_backend *b, bool write, struct cairn_btxn **out)
{
  return txn_begin (local (b), write, false, out);
}

/* The packs first (a record must be durable before the index names it),
 * then the txn's redo record, written, then LMDB's commit, which does not
 * flush, and then the flush of the record: the disk writes the record
 * while LMDB writes its pages (measured: 316 us p50 for a durable commit
 * with the record flushed first, 245 so).  The commit returns once the
 * record is durable, but others may see its state a little earlier.
 * That is safe: a txn of anyone after it logs after it, so its own flush
 * covers this record too; and what acts outside the index on what it
 * reads (cairn_pack_unlink, cairn_pack_shrink) flushes the log first.  A
 * flush that fails fails this commit and every write txn after it
 * (txn_begin): the state it left in the index may not survive a crash. */
static int
local_txn_commit (struct cairn_btxn *t)
{
  struct local_backend *lb = t->lb;
  bool logged = false;
  int r = 0;

  if (t->appended && !lb->nosync
      && (r = pack_writer_sync (&lb->writer)) < 0)
    r = cairn_error (r, "syncing the packs written: %s", strerror (-r));
  if (r == 0 && t->redo.len > 0) {
    /* nosync: no record, but the lsn still names the state. */
    r = meta_put_raw (lb, t->txn, "lsn", t->lsn);
    if (r == 0 && !lb->nosync) {
      r = meta_put_raw (lb, t->txn, "redo-at", t->redo_off
                        + REDO_RECORD_HEADER + t->redo.len);
      if (r == 0 && (r = redo_append (&lb->redo, t->redo_off, t->lsn,
                                      &t->redo)) < 0)
        r = cairn_error (r, "writing the index's redo log: %s",
                         strerror (-r));
      logged = r == 0;
      if (logged && ++lb->records == lb->kill_at_record)
        raise (SIGKILL);        /* logged, not committed: tests only */
      if (logged && lb->records == lb->fail_flush_at_record)
        lb->redo.err = -EIO;    /* as if the disk failed: tests only */
    }
  }
  if (r < 0)
    mdb_txn_abort (t->txn);
  else
    r = commit_errno (lb, mdb_txn_commit (t->txn));
  int flushed = logged && r == 0 ? redo_flush (&lb->redo) : 0;
  if (r < 0 && logged)
    redo_void (&lb->redo, t->redo_off);
  else if (flushed < 0)
    r = cairn_error (flushed, "flushing the index's redo log: %s",
                     strerror (-flushed));
  else if (logged) {
    lb->wrote = true;
    lb->logged_lsn = t->lsn;
    lb->logged_end = t->redo_off + REDO_RECORD_HEADER + t->redo.len;
  }
  txn_free (t);
  return r;
}

static void
local_txn_abort (struct cairn_btxn *t)
{
  mdb_txn_abort (t->txn);
  txn_free (t);
}

/* Checkpoints if a write txn of this process will have to soon: one that
 * begins early (redo_begin), and ends with nothing written.  What this
 * process logged tells, without a txn, whether that can be so. */
static int
local_housekeep (struct cairn_backend *b)
{
  struct local_backend *lb = local (b);
  struct cairn_btxn *t;

  if (!lb->wal || lb->nosync || lb->logged_lsn <= lb->pin_lsn
      || !ckpt_due (lb, lb->logged_lsn - lb->pin_lsn, lb->logged_end, true))
    return 0;
  int r = txn_begin (lb, true, true, &t);
  if (r == 0)
    local_txn_abort (t);
  return r;
}

static int
meta_get_u64 (struct cairn_btxn *t, const char *name, uint64_t *v)
{
  return meta_get_raw (t->lb, t->txn, name, v);
}

static int
meta_put_u32 (struct cairn_btxn *t, const char *name, uint32_t v)
{
  uint8_t buf[4];
  cairn_put_le32 (buf, v);
  MDB_val k = { strlen (name), (void *) name }, d = { 4, buf };
  return logged_put (t, DB_TABLE (CAIRN_TABLE_META), &k, &d);
}

static int
txn_epoch (struct cairn_btxn *t, uint64_t *epoch)
{
  if (!t->have_epoch) {
    int r = meta_get_u64 (t, "epoch", &t->epoch);
    if (r < 0)
      return r;
    t->have_epoch = true;
  }
  *epoch = t->epoch;
  return 0;
}

/* Gives this process a pack to append to: the one it has, a pack nobody
 * holds that has room, or a new one.  Called inside the write txn. */
static int
ensure_pack (struct cairn_btxn *t, size_t need)
{
  struct local_backend *lb = t->lb;
  struct pack_writer *w = &lb->writer;
  uint64_t next;
  int r;

  if (w->fd >= 0 && w->size + need <= lb->pack_limit)
    return 0;
  if (w->fd >= 0)
    pack_writer_retire (w);
  r = meta_get_u64 (t, "next-pack", &next);
  if (r < 0)
    return r;

  /* Reuse the newest pack with room, if nobody holds it. */
  DIR *d = opendir (lb->packs_dir);
  if (d) {
    struct dirent *e;
    uint32_t best = 0;
    bool found = false;
    while ((e = readdir (d)) != NULL) {
      uint32_t n;
      if (pack_parse_name (e->d_name, &n) == 0 && (!found || n > best)) {
        best = n;
        found = true;
      }
    }
    closedir (d);
    if (found && pack_writer_adopt (w, lb->packs_dir, best) == 0) {
      if (w->size + need <= lb->pack_limit)
        goto have_pack;
      pack_writer_retire (w);
    }
  }

  /* A number at or above next-pack may exist if a transaction that
   * created it aborted: skip such files. */
  for (;; next++) {
    if (next >= UINT32_MAX)
      return -ENOSPC;
    r = pack_writer_create (w, lb->packs_dir, (uint32_t) next);
    if (r == 0)
      break;
    if (r != -EEXIST)
      return r;
  }

 have_pack:
  /* Numbers handed out are never handed out again, even after gc deletes
   * the pack: next-pack stays above every pack an index entry names. */
  r = meta_get_u64 (t, "next-pack", &next);
  if (r == 0 && next <= w->number)
    r = meta_put_u32 (t, "next-pack", w->number + 1);
  return r;
}

static void
chunk_entry_decode (const MDB_val *d, struct cairn_object_info *info)
{
  const uint8_t *p = d->mv_data;

  info->pack = cairn_le32 (p);
  info->flags = cairn_le32 (p + 4);
  info->offset = cairn_le64 (p + 8);
  info->stored_len = cairn_le32 (p + 16);
  info->raw_len = cairn_le32 (p + 20);
  info->epoch = cairn_le64 (p + 24);
}

static void
chunk_entry_encode (uint8_t *p, const struct cairn_object_info *info)
{
  cairn_put_le32 (p, info->pack);
  cairn_put_le32 (p + 4, info->flags);
  cairn_put_le64 (p + 8, info->offset);
  cairn_put_le32 (p + 16, info->stored_len);
  cairn_put_le32 (p + 20, info->raw_len);
  cairn_put_le64 (p + 24, info->epoch);
}

static int
decode_object (enum cairn_object_type type, const MDB_val *d,
               struct cairn_object_info *info)
{
  memset (info, 0, sizeof *info);
  if (type == CAIRN_OBJECT_CHUNK) {
    if (d->mv_size != CHUNK_ENTRY_SIZE)
      return -EBADMSG;
    chunk_entry_decode (d, info);
  }
  else {
    if (d->mv_size < INLINE_HEADER_SIZE)
      return -EBADMSG;
    info->epoch = cairn_le64 (d->mv_data);
    info->stored_len = info->raw_len = d->mv_size - INLINE_HEADER_SIZE;
  }
  return 0;
}

static int
local_object_stat (struct cairn_btxn *t, enum cairn_object_type type,
                   const struct cairn_id *id, struct cairn_object_info *info)
{
  MDB_val k = { CAIRN_ID_SIZE, (void *) id->bytes }, d;
  touch_index (t->lb);
  int rc = mdb_get (t->txn, t->lb->objects[type], &k, &d);
  if (rc)
    return mdb_errno (rc);
  struct cairn_object_info tmp;
  return decode_object (type, &d, info ? info : &tmp);
}

/* Re-puts an existing object's entry with the current epoch. */
static int
freshen (struct cairn_btxn *t, enum cairn_object_type type, MDB_val *k,
         MDB_val *d, uint64_t epoch)
{
  size_t at = type == CAIRN_OBJECT_CHUNK ? 24 : 0;
  if (d->mv_size < at + 8)
    return -EBADMSG;
  if (cairn_le64 ((uint8_t *) d->mv_data + at) >= epoch)
    return 0;
  /* The old value lives in a page the put may free: copy it first. */
  void *copy = malloc (d->mv_size);
  if (!copy)
    return -ENOMEM;
  memcpy (copy, d->mv_data, d->mv_size);
  cairn_put_le64 ((uint8_t *) copy + at, epoch);
  MDB_val nd = { d->mv_size, copy };
  int r = logged_put (t, type, k, &nd);
  free (copy);
  return r;
}

static int
local_object_put (struct cairn_btxn *t, enum cairn_object_type type,
                  const struct cairn_id *id, const void *data, size_t len,
                  uint32_t raw_len, uint32_t flags)
{
  struct local_backend *lb = t->lb;
  MDB_val k = { CAIRN_ID_SIZE, (void *) id->bytes }, d;
  uint64_t epoch;
  int r, rc;

  if (!t->write)
    return -EROFS;
  touch_index (lb);
  r = txn_epoch (t, &epoch);
  if (r < 0)
    return r;
  if (type != CAIRN_OBJECT_CHUNK && data) {
    /* One search, not two: reserves the entry if the object is new (a
     * tree node or a commit nearly always is), else shows the old one
     * without touching its page. */
    d.mv_size = INLINE_HEADER_SIZE + len;
    rc = mdb_put (t->txn, lb->objects[type], &k, &d,
                  MDB_NOOVERWRITE | MDB_RESERVE);
    if (rc == MDB_KEYEXIST) {
      r = freshen (t, type, &k, &d, epoch);
      return r < 0 ? r : 1;
    }
    if (rc)
      return mdb_errno (rc);
    cairn_put_le64 (d.mv_data, epoch);
    memcpy ((uint8_t *) d.mv_data + INLINE_HEADER_SIZE, data, len);
    return log_op (t, REDO_PUT, type, &k, &d);
  }
  rc = mdb_get (t->txn, lb->objects[type], &k, &d);
  if (rc == 0) {
    r = freshen (t, type, &k, &d, epoch);
    return r < 0 ? r : 1;
  }
  if (rc != MDB_NOTFOUND)
    return mdb_errno (rc);
  if (!data)
    return -ENOENT;

  /* A chunk: its bytes go to the pack only if it is new. */
  struct cairn_object_info info = {
    .flags = flags, .stored_len = len, .raw_len = raw_len, .epoch = epoch,
  };
  uint8_t entry[CHUNK_ENTRY_SIZE];

  r = ensure_pack (t, PACK_RECORD_HEADER_SIZE + len);
  if (r < 0)
    return r;
  r = pack_writer_append (&lb->writer, id->bytes, flags, data, len,
                          raw_len, &info.offset);
  if (r < 0)
    return cairn_error (r, "writing a chunk to pack %08x: %s",
                        lb->writer.number, strerror (-r));
  t->appended = true;
  info.pack = lb->writer.number;
  chunk_entry_encode (entry, &info);
  d.mv_size = sizeof entry;
  d.mv_data = entry;
  return logged_put (t, type, &k, &d);
}

static int
local_object_get (struct cairn_btxn *t, enum cairn_object_type type,
                  const struct cairn_id *id, struct cairn_val *out,
                  struct cairn_object_info *info)
{
  struct cairn_object_info tmp;
  MDB_val k = { CAIRN_ID_SIZE, (void *) id->bytes }, d;
  int r, rc;

  if (!info)
    info = &tmp;
  touch_index (t->lb);
  rc = mdb_get (t->txn, t->lb->objects[type], &k, &d);
  if (rc)
    return mdb_errno (rc);
  r = decode_object (type, &d, info);
  if (r < 0)
    return r;
  if (type != CAIRN_OBJECT_CHUNK) {
    out->data = (uint8_t *) d.mv_data + INLINE_HEADER_SIZE;
    out->len = info->stored_len;
    return 0;
  }

  if (t->nbufs == t->capbufs) {
    size_t n = t->capbufs ? 2 * t->capbufs : 4;
    void **bufs = realloc (t->bufs, n * sizeof *bufs);
    if (!bufs)
      return -ENOMEM;
    t->bufs = bufs;
    t->capbufs = n;
  }
  uint8_t *buf = malloc (PACK_RECORD_HEADER_SIZE + info->stored_len);
  if (!buf)
    return -ENOMEM;
  t->bufs[t->nbufs++] = buf;
  r = pack_read_record (&t->lb->readers, info->pack, info->offset,
                        id->bytes, info->stored_len, info->raw_len, buf);
  if (r < 0)
    return r;
  out->data = buf + PACK_RECORD_HEADER_SIZE;
  out->len = info->stored_len;
  return 0;
}

static int
local_object_delete (struct cairn_btxn *t, enum cairn_object_type type,
                     const struct cairn_id *id)
{
  MDB_val k = { CAIRN_ID_SIZE, (void *) id->bytes };
  if (!t->write)
    return -EROFS;
  return logged_del (t, type, &k);
}

/* Calls EACH with every key and value of DBI in order, from the first key
 * not below START (SLEN bytes; 0: from the first key), until EACH returns
 * non-zero: then returns that, except SCAN_DONE, which ends the scan with
 * 0.  Returns 0 at the end of DBI. */
#define SCAN_DONE INT_MAX
static int
cursor_scan (struct cairn_btxn *t, MDB_dbi dbi, const void *start,
             size_t slen, int (*each) (MDB_val *k, MDB_val *d, void *arg),
             void *arg)
{
  MDB_cursor *c;
  MDB_val k = { slen, (void *) start }, d;
  int rc, r = 0;

  rc = mdb_cursor_open (t->txn, dbi, &c);
  if (rc)
    return mdb_errno (rc);
  rc = mdb_cursor_get (c, &k, &d, slen > 0 ? MDB_SET_RANGE : MDB_FIRST);
  while (rc == 0 && (r = each (&k, &d, arg)) == 0) {
    touch_index (t->lb);
    rc = mdb_cursor_get (c, &k, &d, MDB_NEXT);
  }
  mdb_cursor_close (c);
  if (r != 0)
    return r == SCAN_DONE ? 0 : r;
  return rc == MDB_NOTFOUND ? 0 : mdb_errno (rc);
}

struct object_scan {
  enum cairn_object_type type;
  cairn_object_scan_fn fn;
  void *arg;
};

static int
object_scan_each (MDB_val *k, MDB_val *d, void *arg)
{
  struct object_scan *os = arg;
  struct cairn_id id;
  struct cairn_object_info info;

  if (k->mv_size != CAIRN_ID_SIZE)
    return -EBADMSG;
  memcpy (id.bytes, k->mv_data, CAIRN_ID_SIZE);
  int r = decode_object (os->type, d, &info);
  return r < 0 ? r : os->fn (&id, &info, os->arg);
}

static int
local_object_scan (struct cairn_btxn *t, enum cairn_object_type type,
                   const struct cairn_id *start, cairn_object_scan_fn fn,
                   void *arg)
{
  struct object_scan os = { type, fn, arg };

  return cursor_scan (t, t->lb->objects[type], start ? start->bytes : NULL,
                      start ? CAIRN_ID_SIZE : 0, object_scan_each, &os);
}

static int
local_record_get (struct cairn_btxn *t, enum cairn_table table,
                  const void *key, size_t klen, struct cairn_val *value)
{
  MDB_val k = { klen, (void *) key }, d;
  touch_index (t->lb);
  int rc = mdb_get (t->txn, t->lb->tables[table], &k, &d);
  if (rc)
    return mdb_errno (rc);
  value->data = d.mv_data;
  value->len = d.mv_size;
  return 0;
}

static int
local_record_put (struct cairn_btxn *t, enum cairn_table table,
                  const void *key, size_t klen, const void *value,
                  size_t vlen)
{
  MDB_val k = { klen, (void *) key }, d = { vlen, (void *) value };
  if (!t->write)
    return -EROFS;
  touch_index (t->lb);
  return logged_put (t, DB_TABLE (table), &k, &d);
}

static int
local_record_delete (struct cairn_btxn *t, enum cairn_table table,
                     const void *key, size_t klen)
{
  MDB_val k = { klen, (void *) key };
  if (!t->write)
    return -EROFS;
  return logged_del (t, DB_TABLE (table), &k);
}

static int
local_record_delete_prefix (struct cairn_btxn *t, enum cairn_table table,
                            const void *prefix, size_t plen)
{
  MDB_val k = { plen, (void *) prefix };

  if (!t->write)
    return -EROFS;
  int r = delete_prefix (t->txn, t->lb->tables[table], prefix, plen);
  return r < 0 ? r : log_op (t, REDO_DELETE_PREFIX, DB_TABLE (table), &k,
                             NULL);
}

static int
local_record_cas (struct cairn_btxn *t, enum cairn_table table,
                  const void *key, size_t klen,
                  const struct cairn_val *expect,
                  const struct cairn_val *new_value)
{
  struct cairn_val cur = { NULL, 0 };
  int r = local_record_get (t, table, key, klen, &cur);

  if (r < 0 && r != -ENOENT)
    return r;
  if (r == -ENOENT ? expect != NULL
      : !expect || expect->len != cur.len
        || memcmp (expect->data, cur.data, cur.len) != 0)
    return -EEXIST;
  if (!new_value)
    return r == -ENOENT ? 0 : local_record_delete (t, table, key, klen);
  return local_record_put (t, table, key, klen, new_value->data,
                           new_value->len);
}

struct record_scan {
  const void *prefix;
  size_t plen;
  cairn_record_scan_fn fn;
  void *arg;
};

static int
record_scan_each (MDB_val *k, MDB_val *d, void *arg)
{
  struct record_scan *rs = arg;

  if (k->mv_size < rs->plen || memcmp (k->mv_data, rs->prefix, rs->plen))
    return SCAN_DONE;
  return rs->fn ((struct cairn_val) { k->mv_data, k->mv_size },
                 (struct cairn_val) { d->mv_data, d->mv_size }, rs->arg);
}

static int
local_record_scan (struct cairn_btxn *t, enum cairn_table table,
                   const void *prefix, size_t plen, const void *start,
                   size_t slen, cairn_record_scan_fn fn, void *arg)
{
  struct record_scan rs = { prefix, plen, fn, arg };

  if (!start) {
    start = prefix;
    slen = plen;
  }
  return cursor_scan (t, t->lb->tables[table], start, slen, record_scan_each,
                      &rs);
}

static int
local_space (struct cairn_backend *b, uint64_t *pack_bytes, uint64_t *packs)
{
  struct local_backend *lb = local (b);
  DIR *d = opendir (lb->packs_dir);
  struct dirent *e;

  if (!d)
    return -errno;
  *pack_bytes = *packs = 0;
  while ((e = readdir (d)) != NULL) {
    uint32_t n;
    struct stat st;
    if (pack_parse_name (e->d_name, &n) < 0
        || fstatat (dirfd (d), e->d_name, &st, 0) == -1)
      continue;
    *pack_bytes += st.st_size;
    (*packs)++;
  }
  closedir (d);
  return 0;
}

void
cairn_backend_local_set_nosync (struct cairn_backend *b, bool nosync)
{
  struct local_backend *lb = local (b);
  /* Leaving it, the state has changes the log never saw. */
  if (lb->nosync && !nosync)
    lb->force_ckpt = true;
  lb->nosync = nosync;
  if (!lb->wal)
    mdb_env_set_flags (lb->env, MDB_NOSYNC, nosync);
}

static void
local_close (struct cairn_backend *b)
{
  struct local_backend *lb = local (b);
  MDB_txn *txn;

  /* Leave a checkpoint of what this process logged: a clean exit leaves
   * LMDB's file complete on its own. */
  if (lb->wal && lb->wrote && !lb->nosync
      && mdb_txn_begin (lb->env, NULL, 0, &txn) == 0) {
    struct redo_ckpt c;
    uint64_t lsn, at;
    if (log_position (lb, txn, &lsn, &at, &c) == 0 && c.lsn != lsn)
      checkpoint (lb, txn, lsn, &c);
    mdb_txn_abort (txn);
  }
  if (lb->pin)
    mdb_txn_abort (lb->pin);
  redo_close (&lb->redo);
  pack_writer_close (&lb->writer);
  pack_readers_free (&lb->readers);
  mdb_env_close (lb->env);
  if (lb->map_uffd >= 0)
    close (lb->map_uffd);
  free (lb->packs_dir);
  free (lb);
}

static const struct cairn_backend_ops local_ops = {
  .name = "local",
  .close = local_close,
  .txn_begin = local_txn_begin,
  .txn_commit = local_txn_commit,
  .txn_abort = local_txn_abort,
  .housekeep = local_housekeep,
  .object_put = local_object_put,
  .object_get = local_object_get,
  .object_stat = local_object_stat,
  .object_delete = local_object_delete,
  .object_scan = local_object_scan,
  .record_get = local_record_get,
  .record_put = local_record_put,
  .record_delete = local_record_delete,
  .record_delete_prefix = local_record_delete_prefix,
  .record_cas = local_record_cas,
  .record_scan = local_record_scan,
  .space = local_space,
};

static int
open_databases (struct local_backend *lb)
{
  MDB_txn *txn;
  unsigned flags = lb->readonly ? 0 : MDB_CREATE;
  int rc = mdb_txn_begin (lb->env, NULL, lb->readonly ? MDB_RDONLY : 0, &txn);

  if (rc)
    return mdb_errno (rc);
  for (int i = 0; i < CAIRN_OBJECT_TYPES && rc == 0; i++)
    rc = mdb_dbi_open (txn, object_db_names[i], flags, &lb->objects[i]);
  for (int i = 0; i < CAIRN_TABLES && rc == 0; i++)
    rc = mdb_dbi_open (txn, table_db_names[i], flags, &lb->tables[i]);
  if (rc) {
    mdb_txn_abort (txn);
    return mdb_errno (rc);
  }
  return mdb_errno (mdb_txn_commit (txn));
}

/* Whether the checkpoint in INDEX_DIR was made in an earlier boot: then
 * LMDB's file may hold pages written after it, and its meta pages must be
 * put back.  1 yes, 0 no (or no checkpoint), or an error. */
static int
checkpoint_from_earlier_boot (struct redo_log *l, struct redo_ckpt *c,
                              bool metas)
{
  char boot[REDO_BOOT_ID_SIZE];
  int r = redo_ckpt_read (l, c, metas);

  if (r == -ENOENT)
    return 0;
  if (r < 0)
    return r;
  redo_boot_id (boot);
  if (strcmp (boot, c->boot_id) != 0)
    return 1;
  redo_ckpt_free (c);
  return 0;
}

static int
needs_restore (const char *index_dir)
{
  char path[4096 + 32];
  struct redo_log l = { .fd = -1 };
  struct redo_ckpt c;

  snprintf (path, sizeof path, "%s/redo.ckpt", index_dir);
  l.ckpt_fd = open (path, O_RDONLY | O_CLOEXEC);
  if (l.ckpt_fd == -1)
    return errno == ENOENT ? 0 : -errno;
  int r = checkpoint_from_earlier_boot (&l, &c, false);
  if (r > 0)
    redo_ckpt_free (&c);
  redo_close (&l);
  return r;
}

/* Before LMDB opens its file: after a restart, write the checkpoint's
 * meta pages back over whatever newer ones reached the disk.  The pages
 * they name are intact: the pins kept anyone from reusing them. */
static int
restore_metas (struct local_backend *lb, const char *index_dir,
               bool *rebooted)
{
  char path[4096 + 32];
  struct redo_ckpt c;
  int r = checkpoint_from_earlier_boot (&lb->redo, &c, true);

  *rebooted = r > 0;
  if (r <= 0)
    return r;
  snprintf (path, sizeof path, "%s/data.mdb", index_dir);
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  r = fd == -1 ? -errno : cairn_pwrite_all (fd, c.metas, 2 * c.psize, 0);
  if (r == 0 && fdatasync (fd) == -1)
    r = -errno;
  if (fd >= 0)
    close (fd);
  redo_ckpt_free (&c);
  return r;
}

int
cairn_backend_local_open (const char *store_path, bool readonly,
                          struct cairn_backend **out)
{
  char path[4096];
  struct local_backend *lb = calloc (1, sizeof *lb);
  uint64_t map_size = DEFAULT_MAP_SIZE;
  const char *env_map = getenv ("CAIRN_INDEX_MAP_SIZE");
  bool rebooted = false;
  int r;

  if (!lb)
    return -ENOMEM;
  lb->base.ops = &local_ops;
  lb->readonly = readonly;
  lb->pack_limit = PACK_DEFAULT_LIMIT;
  const char *env_limit = getenv ("CAIRN_PACK_LIMIT");
  if (env_limit)
    cairn_parse_size (env_limit, &lb->pack_limit);
  if (env_map)
    cairn_parse_size (env_map, &map_size);
  pack_writer_init (&lb->writer);
  snprintf (path, sizeof path, "%s/packs", store_path);
  lb->packs_dir = strdup (path);
  if (!lb->packs_dir || pack_readers_init (&lb->readers, path) < 0) {
    free (lb->packs_dir);
    free (lb);
    return -ENOMEM;
  }

  lb->redo.fd = lb->redo.ckpt_fd = lb->map_uffd = -1;
  snprintf (path, sizeof path, "%s/index", store_path);
  if (readonly) {
    /* A restart since the last checkpoint needs the recovery only a
     * writable open does: do one first. */
    r = needs_restore (path);
    if (r > 0) {
      struct cairn_backend *w;
      r = cairn_backend_local_open (store_path, false, &w);
      if (r < 0) {
        r = cairn_error (r, "the index needs recovery after a restart, "
                         "which needs write access: %s", strerror (-r));
        goto err;
      }
      local_close (w);
    }
  }
  else {
    const char *kill_at = getenv ("CAIRN_TEST_KILL_AT_RECORD");
    const char *fail_at = getenv ("CAIRN_TEST_FAIL_FLUSH_AT_RECORD");
    lb->kill_at_record = kill_at ? atol (kill_at) : 0;
    lb->fail_flush_at_record = fail_at ? atol (fail_at) : 0;
    lb->wal = true;
    r = redo_open (&lb->redo, path, true);
    if (r == 0 && flock (lb->redo.ckpt_fd, LOCK_EX) == -1)
      r = -errno;
    if (r == 0)
      r = restore_metas (lb, path, &rebooted);
    if (r < 0) {
      r = cairn_error (r, "opening the index's redo log: %s", strerror (-r));
      goto err;
    }
  }

  r = mdb_errno (mdb_env_create (&lb->env));
  if (r < 0)
    goto err;
  mdb_env_set_maxdbs (lb->env, CAIRN_OBJECT_TYPES + CAIRN_TABLES + 2);
  mdb_env_set_maxreaders (lb->env, 1022);
  mdb_env_set_mapsize (lb->env, map_size);
  r = mdb_errno (mdb_env_open (lb->env, path,
                               MDB_NOTLS | MDB_NORDAHEAD
                               | (readonly ? MDB_RDONLY : MDB_NOSYNC),
                               0644));
  if (r < 0)
    goto err_env;
  /* Reader slots of processes that died (kill -9) would otherwise pin old
   * pages forever. */
  int dead;
  mdb_reader_check (lb->env, &dead);
  /* Where LMDB maps the index, for release_map and no_fault_around: it
   * maps it once, here (the map is never resized). */
  int fd;
  if (mdb_env_get_fd (lb->env, &fd) == 0
      && find_map (fd, &lb->map, &lb->map_len) == 0)
    no_fault_around (lb);
  lb->file_rss = file_rss ();
  r = open_databases (lb);
  if (r == 0 && lb->wal)
    r = recover (lb, rebooted);
  if (r < 0)
    goto err_env;
  if (lb->wal)
    flock (lb->redo.ckpt_fd, LOCK_UN);
  *out = &lb->base;
  return 0;

 err_env:
  if (lb->pin)
    mdb_txn_abort (lb->pin);
  mdb_env_close (lb->env);
  if (lb->map_uffd >= 0)
    close (lb->map_uffd);
 err:
  redo_close (&lb->redo);
  pack_readers_free (&lb->readers);
  free (lb->packs_dir);
  free (lb);
  return r;
}

/* ---- Pack maintenance, for gc (see backend.h) --------------------- */

static int
local_only (struct cairn_backend *b)
{
  return b->ops == &local_ops ? 0 : -ENOTSUP;
}

/* The packs folder, to look through (only the local backend has one). */
static int
packs_dir_open (struct cairn_backend *b, DIR **d)
{
  int r = local_only (b);

  if (r < 0)
    return r;
  *d = opendir (local (b)->packs_dir);
  return *d ? 0 : -errno;
}

static int
pack_stat_cmp (const void *a, const void *b)
{
  uint32_t x = ((const struct cairn_pack_stat *) a)->pack;
  uint32_t y = ((const struct cairn_pack_stat *) b)->pack;
  return x < y ? -1 : x > y;
}

int
cairn_packs_list (struct cairn_backend *b, struct cairn_pack_stat **packs,
                  size_t *n)
{
  struct cairn_pack_stat *list = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  DIR *d;
  int r = packs_dir_open (b, &d);

  if (r < 0)
    return r;
  while ((e = readdir (d)) != NULL) {
    uint32_t number;
    struct stat st;
    if (pack_parse_name (e->d_name, &number) < 0)
      continue;
    int fd = openat (dirfd (d), e->d_name, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
      continue;                 /* unlinked meanwhile */
    if (fstat (fd, &st) == -1) {
      close (fd);
      continue;
    }
    if (count == cap) {
      cap = cap ? 2 * cap : 64;
      struct cairn_pack_stat *p = realloc (list, cap * sizeof *p);
      if (!p) {
        close (fd);
        r = -ENOMEM;
        break;
      }
      list = p;
    }
    list[count].pack = number;
    list[count].size = st.st_size;
    list[count].writable = flock (fd, LOCK_EX | LOCK_NB) == 0;
    count++;
    close (fd);
  }
  closedir (d);
  if (r < 0) {
    free (list);
    return r;
  }
  if (count > 1)
    qsort (list, count, sizeof *list, pack_stat_cmp);
  *packs = list;
  *n = count;
  return 0;
}

int
cairn_pack_hold (struct cairn_backend *b, uint32_t number, int *fd)
{
  char path[4096];
  int r = local_only (b);

  if (r < 0)
    return r;
  pack_path (local (b)->packs_dir, number, path, sizeof path);
  int f = open (path, O_RDONLY | O_CLOEXEC);
  if (f == -1)
    return -errno;
  if (flock (f, LOCK_EX | LOCK_NB) == -1) {
    r = errno == EWOULDBLOCK ? -EAGAIN : -errno;
    close (f);
    return r;
  }
  *fd = f;
  return 0;
}

struct cairn_pack_out {
  struct pack_writer w;
  uint64_t written_behind;      /* bytes known to be on disk */
};

int
cairn_pack_out_reserve (struct cairn_btxn *t, uint32_t *number)
{
  char path[4096];
  uint64_t next;
  int r;

  if (!t->write)
    return -EROFS;
  r = meta_get_u64 (t, "next-pack", &next);
  if (r < 0)
    return r;
  /* As in ensure_pack: a number at or above next-pack may exist if the
   * transaction that took it aborted. */
  for (;; next++) {
    if (next >= UINT32_MAX)
      return -ENOSPC;
    pack_path (t->lb->packs_dir, (uint32_t) next, path, sizeof path);
    if (access (path, F_OK) == -1 && errno == ENOENT)
      break;
  }
  r = meta_put_u32 (t, "next-pack", (uint32_t) next + 1);
  if (r == 0)
    *number = next;
  return r;
}

int
cairn_pack_out_create (struct cairn_backend *b, uint32_t number,
                       struct cairn_pack_out **out)
{
  struct local_backend *lb;
  struct cairn_pack_out *po;
  char tmp[4096], path[4096], name[32];
  int r = local_only (b);

  if (r < 0)
    return r;
  lb = local (b);
  if (lb->readonly)
    return -EROFS;
  po = calloc (1, sizeof *po);
  if (!po)
    return -ENOMEM;
  pack_writer_init (&po->w);
  /* Made under a name no writer looks at, locked, then renamed: a writer
   * never sees it unlocked (pack_writer_create makes a file, locks it,
   * writes its header and syncs it and the directory). */
  snprintf (name, sizeof name, "gc-%08" PRIx32 ".tmp", number);
  r = pack_writer_create_named (&po->w, lb->packs_dir, name, number);
  if (r == 0) {
    snprintf (tmp, sizeof tmp, "%s/%s", lb->packs_dir, name);
    pack_path (lb->packs_dir, number, path, sizeof path);
    if (link (tmp, path) == -1)
      r = -errno;
    unlink (tmp);
    if (r == 0)
      r = cairn_fsync_dir (lb->packs_dir);
  }
  if (r < 0) {
    pack_writer_close (&po->w);
    free (po);
    return r;
  }
  *out = po;
  return 0;
}

int
cairn_pack_out_remove_stale (struct cairn_backend *b)
{
  struct dirent *e;
  DIR *d;
  int r = packs_dir_open (b, &d);

  if (r < 0)
    return r;
  while ((e = readdir (d)) != NULL) {
    unsigned n;
    int used = 0;
    if (sscanf (e->d_name, "gc-%8x.tmp%n", &n, &used) == 1
        && e->d_name[used] == '\0')
      unlinkat (dirfd (d), e->d_name, 0);
  }
  closedir (d);
  return 0;
}

int
cairn_pack_out_copy (struct cairn_pack_out *out, int src_fd,
                     const struct cairn_id *id,
                     const struct cairn_object_info *info, uint64_t *offset)
{
  size_t len = PACK_RECORD_HEADER_SIZE + (size_t) info->stored_len;
  uint8_t *buf = malloc (len);
  int r;

  if (!buf)
    return -ENOMEM;
  r = cairn_pread_all (src_fd, buf, len, info->offset);
  if (r == -EIO)
    r = -EBADMSG;               /* the pack is shorter than the record */
  if (r == 0 && (memcmp (buf, PACK_RECORD_MAGIC, 4) != 0
                 || cairn_le32 (buf + 4) != info->flags
                 || cairn_le32 (buf + 8) != info->stored_len
                 || cairn_le32 (buf + 12) != info->raw_len
                 || memcmp (buf + 16, id->bytes, CAIRN_ID_SIZE) != 0))
    r = -EBADMSG;
  if (r == 0)
    r = pack_writer_append (&out->w, id->bytes, info->flags,
                            buf + PACK_RECORD_HEADER_SIZE, info->stored_len,
                            info->raw_len, offset);
  free (buf);
  return r;
}

uint64_t
cairn_pack_limit (struct cairn_backend *b)
{
  return local_only (b) < 0 ? PACK_DEFAULT_LIMIT : local (b)->pack_limit;
}

uint32_t
cairn_pack_out_number (const struct cairn_pack_out *out)
{
  return out->w.number;
}

uint64_t
cairn_pack_out_size (const struct cairn_pack_out *out)
{
  return out->w.size;
}

int
cairn_pack_out_sync (struct cairn_pack_out *out)
{
  return pack_writer_sync (&out->w);
}

int
cairn_pack_out_write_behind (struct cairn_pack_out *out)
{
  uint64_t from = out->written_behind, to = out->w.size;

  if (to <= from)
    return 0;
  if (sync_file_range (out->w.fd, from, to - from,
                       SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE
                       | SYNC_FILE_RANGE_WAIT_AFTER) == -1)
    return -errno;
  out->written_behind = to;
  return 0;
}

int
cairn_pack_out_close (struct cairn_pack_out *out)
{
  if (!out)
    return 0;
  int r = pack_writer_sync (&out->w);
  pack_writer_close (&out->w);
  free (out);
  return r;
}

int
cairn_chunk_relocate (struct cairn_btxn *t, const struct cairn_id *id,
                      uint32_t from_pack, uint64_t from_offset,
                      uint32_t to_pack, uint64_t to_offset)
{
  MDB_val k = { CAIRN_ID_SIZE, (void *) id->bytes }, d;
  struct cairn_object_info info;
  uint8_t entry[CHUNK_ENTRY_SIZE];
  int rc;

  if (!t->write)
    return -EROFS;
  rc = mdb_get (t->txn, t->lb->objects[CAIRN_OBJECT_CHUNK], &k, &d);
  if (rc == MDB_NOTFOUND)
    return 1;
  if (rc)
    return mdb_errno (rc);
  if (d.mv_size != CHUNK_ENTRY_SIZE)
    return -EBADMSG;
  chunk_entry_decode (&d, &info);
  if (info.pack != from_pack || info.offset != from_offset)
    return 1;
  info.pack = to_pack;
  info.offset = to_offset;
  chunk_entry_encode (entry, &info);
  d.mv_size = sizeof entry;
  d.mv_data = entry;
  return logged_put (t, CAIRN_OBJECT_CHUNK, &k, &d);
}

/* Makes what the log holds durable, whoever wrote it: a txn of another
 * process may have committed without its record flushed yet (see
 * local_txn_commit), and a pack must not go on the word of a state a
 * crash could undo. */
static int
log_durable (struct local_backend *lb)
{
  return lb->wal && !lb->nosync ? redo_flush (&lb->redo) : 0;
}

int
cairn_pack_unlink (struct cairn_btxn *t, uint32_t number)
{
  char path[4096];

  if (!t->write)
    return -EROFS;
  int r = t->log_durable ? 0 : log_durable (t->lb);
  if (r < 0)
    return r;
  t->log_durable = true;        /* the write txn keeps others out */
  pack_path (t->lb->packs_dir, number, path, sizeof path);
  if (unlink (path) == -1 && errno != ENOENT)
    return -errno;
  pack_readers_forget (&t->lb->readers, number);
  return 0;
}

int
cairn_pack_shrink (struct cairn_backend *b, uint32_t number, int hold_fd,
                   uint64_t size)
{
  char path[4096];
  int r = local_only (b);

  if (r == 0)
    r = log_durable (local (b));
  if (r < 0)
    return r;
  pack_path (local (b)->packs_dir, number, path, sizeof path);
  if (truncate (path, size) == -1 || fdatasync (hold_fd) == -1)
    return -errno;
  return 0;
}

int
cairn_packs_sync_dir (struct cairn_backend *b)
{
  int r = local_only (b);
  return r < 0 ? r : cairn_fsync_dir (local (b)->packs_dir);
}

uint64_t
cairn_btxn_snapshot (struct cairn_btxn *t)
{
  return mdb_txn_id (t->txn);
}

/* mdb_reader_list() prints "pid thread txnid" rows, txnid "-" for a slot
 * with no transaction.  Pins (redo.h) read nothing: they are left out.
 * A reader that happens to be on a pinned snapshot is no worse off: one
 * that finds a pack gone retries with a fresh snapshot (store/chunk.c). */
struct oldest {
  uint64_t snapshot;
  uint64_t pins[REDO_PINS];
};

static int
oldest_reader_row (const char *msg, void *arg)
{
  struct oldest *o = arg;
  unsigned long long txnid;
  int pid;
  char thread[32];

  if (sscanf (msg, "%d %31s %llu", &pid, thread, &txnid) != 3)
    return 0;
  for (int i = 0; i < REDO_PINS; i++)
    if (o->pins[i] == txnid)
      return 0;
  if (txnid < o->snapshot)
    o->snapshot = txnid;
  return 0;
}

int
cairn_index_oldest_reader (struct cairn_backend *b, uint64_t *snapshot)
{
  struct local_backend *lb = local (b);
  struct oldest o = { .snapshot = UINT64_MAX };
  struct redo_ckpt c;
  int dead, r = local_only (b);

  if (r < 0)
    return r;
  if (lb->wal && redo_ckpt_read (&lb->redo, &c, false) == 0)
    memcpy (o.pins, c.pins, sizeof o.pins);
  mdb_reader_check (lb->env, &dead);
  r = mdb_reader_list (lb->env, oldest_reader_row, &o) < 0 ? -EIO : 0;
  *snapshot = o.snapshot;
  return r;
}
/* ---- end of pack maintenance, for gc ------------------------------ */
