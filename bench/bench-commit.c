/* bench-commit: commit and branch latency of libcairn, in-process.
 *
 * For an 8 GiB and a 1 TiB sparse volume: write 1 MiB at a random place,
 * then commit; repeat N times (default 1000) and report p50 and p99 of the
 * commit alone:
 *
 *   durable       the 1 MiB was sealed first (what the background sealer
 *                 does while a VM runs, and with it any checkpoint of the
 *                 index coming due), the commit is metadata plus the
 *                 fsyncs that make it durable when it returns;
 *   metadata      the same with every fsync off (the cost apart from the
 *                 disk's flush latency);
 *   with seal     the commit also hashes and compresses the 1 MiB itself
 *                 (no background sealer caught up).
 *
 * Each volume has a store and a process of its own, and starts on an
 * idle disk (sync), so that the two meet indexes of the same size and
 * neither measures what the other left behind.
 *
 * Then branch creation from a commit, N times, right after the commits;
 * when durable, N times more on an idle disk (sync first, as each volume
 * starts): the commits leave LMDB's pages for the kernel to write back,
 * and a branch creation's one flush waits for the writes in flight, which
 * put its p50 10 to 20 us higher in some runs.  The peers measured in the
 * same run are the durability floors of this disk: write 1 MiB to a raw
 * file and fdatasync it, and overwrite 4 KiB of a written file and
 * fdatasync it (one device flush, the least any durable operation costs).
 * The last line puts each durable p50 in units of that flush.  Beside
 * each figure, the page faults an operation took (a fault costs about
 * 2 us here): the index pages it read that were not mapped.  The same
 * flush is also timed right after each commit of one more durable run
 * per volume: the device as the commits find it, busy with the seal's
 * pack and LMDB's pages.  That run is apart because the flush slows the
 * commits after it (by about 40 us p50 here): its commits are shown on
 * their own line, not as the durable figure.
 *
 * Usage: bench-commit DIR [N]
 */
#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return x < y ? -1 : x > y;
}

struct stats {
  double p50, p99;
  double faults;                /* page faults an operation, mean */
};

/* Page faults of this process so far: reading an index page the map
 * budget unmapped, or one LMDB just wrote, faults (about 2 us here). */
static long
page_faults (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_minflt + ru.ru_majflt;
}

static struct stats
percentiles (int64_t *ns, int n)
{
  qsort (ns, n, sizeof *ns, cmp_i64);
  return (struct stats) { ns[n / 2] / 1000.0, ns[(n * 99) / 100] / 1000.0,
                          0 };
}

static void
fill_random (char *buf, size_t len, unsigned *seed)
{
  for (size_t i = 0; i < len; i += 4) {
    *seed = *seed * 1103515245 + 12345;
    memcpy (buf + i, seed, 4);
  }
}

enum mode { DURABLE, METADATA, WITH_SEAL };

static int64_t overwrite_sync (int fd, const char *buf, size_t len, int i);

/* Creates N branches named BRANCH-WHAT-I from commit ID; NS gets each
 * one's time. */
static struct stats
run_branches (struct cairn_store *s, const char *branch, const char *what,
              const struct cairn_id *id, int n, int64_t *ns)
{
  char name[64];
  long faults = 0;

  for (int i = 0; i < n; i++) {
    snprintf (name, sizeof name, "%s-%s-%d", branch, what, i);
    long f0 = page_faults ();
    int64_t t0 = now_ns ();
    if (cairn_branch_create_from (s, name, id) < 0) {
      fprintf (stderr, "branch: %s\n", cairn_last_error ());
      exit (1);
    }
    ns[i] = now_ns () - t0;
    faults += page_faults () - f0;
  }
  struct stats st = percentiles (ns, n);
  st.faults = (double) faults / n;
  return st;
}

/* Commits N times in MODE; with BRANCH_STATS, then creates N branches
 * from the last commit: [0] gets their figures, and in DURABLE mode [1]
 * those of N more on an idle disk. */
static struct stats
run_commits (struct cairn_store *s, const char *branch, uint64_t size,
             enum mode mode, int n, struct stats *branch_stats,
             int flush_fd, struct stats *after)
{
  struct cairn_branch *b;
  struct cairn_id id;
  int64_t *ns = malloc (n * sizeof *ns);
  int64_t *fl = malloc (n * sizeof *fl);
  char *buf = malloc (1 << 20);
  /* Other bytes for each run: the same would be deduplicated against an
   * earlier run's chunks, and sealing them would cost only the hash. */
  unsigned seed = 42 + mode + 3 * (unsigned) (size >> 30);
  long faults = 0;

  if (cairn_branch_open (s, branch, CAIRN_BRANCH_WRITE, &b) < 0) {
    fprintf (stderr, "open: %s\n", cairn_last_error ());
    exit (1);
  }
  struct cairn_bvol *v = cairn_branch_volume (b, "disk");
  cairn_backend_local_set_nosync (cairn_store_backend (s), mode == METADATA);
  for (int i = 0; i < n; i++) {
    uint64_t off = ((uint64_t) rand () * 7919 % (size >> 20)) << 20;
    fill_random (buf, 1 << 20, &seed);
    if (cairn_bvol_write (v, buf, 1 << 20, off) < 0) {
      fprintf (stderr, "write: %s\n", cairn_last_error ());
      exit (1);
    }
    if (mode != WITH_SEAL && cairn_branch_seal (b) < 0) {
      fprintf (stderr, "seal: %s\n", cairn_last_error ());
      exit (1);
    }
    long f0 = page_faults ();
    int64_t t0 = now_ns ();
    if (cairn_branch_commit (b, NULL, &id) < 0) {
      fprintf (stderr, "commit: %s\n", cairn_last_error ());
      exit (1);
    }
    ns[i] = now_ns () - t0;
    faults += page_faults () - f0;
    if (after)
      fl[i] = overwrite_sync (flush_fd, buf, 4096, i);
  }
  cairn_branch_close (b);
  struct stats st = percentiles (ns, n);
  st.faults = (double) faults / n;
  if (after)
    *after = percentiles (fl, n);
  free (fl);

  if (branch_stats) {
    branch_stats[0] = run_branches (s, branch, "fork", &id, n, ns);
    if (mode == DURABLE) {
      /* Again on an idle disk: the commits left LMDB's pages to write
       * back, and a flush waits for the writes in flight. */
      sync ();
      usleep (500 * 1000);
      branch_stats[1] = run_branches (s, branch, "idle", &id, n, ns);
    }
  }
  cairn_backend_local_set_nosync (cairn_store_backend (s), false);
  free (ns);
  free (buf);
  return st;
}

/* A file of 64 blocks of LEN bytes for a peer: written, flushed, and
 * unlinked (the descriptor keeps it). */
static int
floor_file (const char *dir, size_t len)
{
  char path[4096];
  char *buf = malloc (len);
  unsigned seed = 7;

  snprintf (path, sizeof path, "%s/floor-%zu.raw", dir, len);
  int fd = open (path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  for (int i = 0; fd >= 0 && i < 64; i++) {
    fill_random (buf, len, &seed);
    if (pwrite (fd, buf, len, (uint64_t) i * len) < 0)
      exit (1);
  }
  if (fd < 0 || fdatasync (fd) < 0) {
    perror (path);
    exit (1);
  }
  unlink (path);
  free (buf);
  return fd;
}

/* The peers' unit: overwrites block I % 64 of FD with LEN bytes of BUF
 * and fdatasyncs; returns how long the fdatasync took. */
static int64_t
overwrite_sync (int fd, const char *buf, size_t len, int i)
{
  if (pwrite (fd, buf, len, (uint64_t) (i % 64) * len) != (ssize_t) len) {
    perror ("peer");
    exit (1);
  }
  int64_t t0 = now_ns ();
  if (fdatasync (fd) < 0) {
    perror ("peer");
    exit (1);
  }
  return now_ns () - t0;
}

/* N overwrites of blocks of LEN bytes of FD (floor_file), each with new
 * bytes. */
static struct stats
fsync_floor (int fd, int n, size_t len)
{
  int64_t *ns = malloc (n * sizeof *ns);
  char *buf = malloc (len);
  unsigned seed = 8;

  for (int i = 0; i < n; i++) {
    fill_random (buf, len, &seed);
    ns[i] = overwrite_sync (fd, buf, len, i);
  }
  free (buf);
  struct stats st = percentiles (ns, n);
  free (ns);
  return st;
}

static const struct {
  const char *name;
  uint64_t size;
} vols[] = {
  { "8 GiB", 8ULL << 30 }, { "1 TiB", 1ULL << 40 },
};

struct results {
  /* branch[v]: durable right after the commits, durable on an idle
   * disk, without fsync */
  struct stats commit[2][3], branch[2][3], probed[2], after[2];
};

/* Runs every measure of volume V (vols[V]), in a store of its own under
 * DIR (the 1 TiB volume's commits once came after the 8 GiB volume's
 * 3000, in one store, and met an index that much bigger). */
static void
measure_volume (const char *dir, int v, int n, int flush_fd,
                struct results *res)
{
  struct cairn_store *s;
  char path[4096], name[32];

  snprintf (path, sizeof path, "%s/store-%d", dir, v);
  if (cairn_store_init (path, NULL) < 0
      || cairn_store_open (path, 0, &s) < 0) {
    fprintf (stderr, "store: %s\n", cairn_last_error ());
    exit (1);
  }
  for (int m = 0; m < 3; m++) {
    snprintf (name, sizeof name, "v%d-m%d", v, m);
    cairn_branch_create_empty (s, name, "disk", vols[v].size);
    res->commit[v][m] = run_commits (s, name, vols[v].size, m, n,
                                     m == DURABLE ? &res->branch[v][0]
                                     : m == METADATA ? &res->branch[v][2]
                                     : NULL, flush_fd, NULL);
  }
  snprintf (name, sizeof name, "v%d-probed", v);
  cairn_branch_create_empty (s, name, "disk", vols[v].size);
  res->probed[v] = run_commits (s, name, vols[v].size, DURABLE, n, NULL,
                                flush_fd, &res->after[v]);
  cairn_store_close (s);
}

int
main (int argc, char **argv)
{
  int n = argc > 2 ? atoi (argv[2]) : 1000;
  static const char *const mode_names[] = {
    "durable (sealed in background)", "metadata only (no fsync)",
    "durable, sealing the 1 MiB too",
  };
  struct results *res = mmap (NULL, sizeof *res, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);

  if (argc < 2) {
    fprintf (stderr, "usage: bench-commit DIR [N]\n");
    return 2;
  }
  if (res == MAP_FAILED) {
    perror ("mmap");
    return 1;
  }
  int flush_fd = floor_file (argv[1], 4096);
  srand (1);
  /* Each volume in a process of its own, the disk idle at its start:
   * whichever volume came second was slower, by 10 us a branch creation
   * and up to 20 a commit (order swapped, the same), so the ratio of the
   * two measured the order. */
  for (int v = 0; v < 2; v++) {
    int status;
    sync ();
    pid_t pid = fork ();
    if (pid == 0) {
      measure_volume (argv[1], v, n, flush_fd, res);
      _exit (0);
    }
    if (pid < 0 || waitpid (pid, &status, 0) != pid
        || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
      fprintf (stderr, "bench-commit: measuring the %s volume failed\n",
               vols[v].name);
      return 1;
    }
  }
  sync ();
  int floor_fd = floor_file (argv[1], 1 << 20);
  struct stats floor = fsync_floor (floor_fd, n, 1 << 20);
  struct stats flush = fsync_floor (flush_fd, n, 4096);
  close (floor_fd);
  close (flush_fd);

  printf ("Commit of 1 MiB written since the last commit, %d commits each, "
          "64 KiB chunks, zstd:1\n\n", n);
  printf ("%-7s %-32s %9s %9s   %-19s %s\n", "volume", "commit", "p50 us",
          "p99 us", "vs goal 258/330 us", "faults");
  for (int m = 0; m < 3; m++)
    for (int v = 0; v < 2; v++)
      printf ("%-7s %-32s %9.0f %9.0f   %.2fx / %.2fx %9.1f\n",
              vols[v].name, mode_names[m], res->commit[v][m].p50,
              res->commit[v][m].p99, res->commit[v][m].p50 / 258,
              res->commit[v][m].p99 / 330, res->commit[v][m].faults);
  printf ("\n1 TiB / 8 GiB (goal <= 1.5): durable p50 %.2fx p99 %.2fx, "
          "metadata p50 %.2fx p99 %.2fx\n",
          res->commit[1][0].p50 / res->commit[0][0].p50,
          res->commit[1][0].p99 / res->commit[0][0].p99,
          res->commit[1][1].p50 / res->commit[0][1].p50,
          res->commit[1][1].p99 / res->commit[0][1].p99);
  printf ("\n%-7s %-32s %9s %9s   %-19s %s\n", "volume", "branch creation",
          "p50 us", "p99 us", "vs goal p50 100 us", "faults");
  static const char *const branch_names[] = {
    "from a commit, durable", "  the same, on an idle disk",
    "  the same without fsync",
  };
  for (int m = 0; m < 3; m++)
    for (int v = 0; v < 2; v++)
      printf ("%-7s %-32s %9.0f %9.0f   %.2fx %21.1f\n", vols[v].name,
              branch_names[m], res->branch[v][m].p50, res->branch[v][m].p99,
              res->branch[v][m].p50 / 100, res->branch[v][m].faults);
  printf ("\npeer, same run: write 1 MiB to a raw file + fdatasync: "
          "p50 %.0f us, p99 %.0f us\n", floor.p50, floor.p99);
  printf ("durable commit p50 / fsync floor p50: 8 GiB %.2fx, 1 TiB %.2fx\n",
          res->commit[0][0].p50 / floor.p50,
          res->commit[1][0].p50 / floor.p50);
  printf ("peer, same run: overwrite 4 KiB + fdatasync (one device flush): "
          "p50 %.0f us, p99 %.0f us\n", flush.p50, flush.p99);
  printf ("  the same flush right after each durable commit: 8 GiB p50 %.0f "
          "p99 %.0f us, 1 TiB p50 %.0f p99 %.0f us\n", res->after[0].p50,
          res->after[0].p99, res->after[1].p50, res->after[1].p99);
  printf ("  (those commits, slowed by the flush before each: 8 GiB p50 %.0f "
          "p99 %.0f us, 1 TiB p50 %.0f p99 %.0f us)\n", res->probed[0].p50,
          res->probed[0].p99, res->probed[1].p50, res->probed[1].p99);
  /* An LMDB write transaction flushes twice (its pages, then its meta
   * page): how far each durable figure is from that, and from one. */
  printf ("durable p50 in device flushes: commit 8 GiB %.2f, 1 TiB %.2f; "
          "branch creation 8 GiB %.2f, 1 TiB %.2f (idle disk %.2f, %.2f); "
          "the goal of 100 us is %.2f\n", res->commit[0][0].p50 / flush.p50,
          res->commit[1][0].p50 / flush.p50,
          res->branch[0][0].p50 / flush.p50,
          res->branch[1][0].p50 / flush.p50,
          res->branch[0][1].p50 / flush.p50,
          res->branch[1][1].p50 / flush.p50, 100 / flush.p50);
  return 0;
}
