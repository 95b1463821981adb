/* bench-fusefs-tool: what bench-fusefs-read.sh needs done fast, through
 * libcairn:
 *
 *   bench-fusefs-tool commits STORE BRANCH N
 *       N commits on BRANCH.
 *   bench-fusefs-tool read STORE REF seq|rand THREADS SECONDS
 *       Reads volume disk of REF in this process, as fast as THREADS
 *       threads can: seq, one pass in 1 MiB reads, each thread a slice,
 *       prints MiB/s; rand, 4 KiB reads at random 4K-aligned offsets for
 *       SECONDS, prints reads/s.  This is what any adapter of the store
 *       (cairnfs, the nbdkit plugin) could at best deliver on this
 *       machine: the store's own read path, with no protocol in between.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define MIB (1 << 20)

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
fail (int r, const char *what)
{
  const char *why = cairn_last_error ();
  fprintf (stderr, "bench-fusefs-tool: %s: %s\n", what,
           *why ? why : cairn_strerror (r));
  return 1;
}

static uint64_t
xorshift (uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static int
make_commits (struct cairn_store *s, const char *branch, long n)
{
  struct cairn_branch *b;
  struct cairn_id id;
  int r = cairn_branch_open (s, branch, CAIRN_BRANCH_WRITE, &b);

  for (long i = 0; r == 0 && i < n; i++)
    r = cairn_branch_commit (b, NULL, &id);
  if (r == 0)
    cairn_branch_close (b);
  return r < 0 ? fail (r, "commit") : 0;
}

struct reader {
  pthread_t thread;
  struct cairn_view view;
  bool random;
  uint64_t from, to;            /* seq: the slice */
  double until;                 /* rand: the end time */
  uint64_t done;                /* bytes (seq) or reads (rand) */
  int error;
};

static void *
read_loop (void *arg)
{
  struct reader *rd = arg;
  uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uintptr_t) rd;
  uint64_t blocks = rd->view.vol.size / 4096;
  char *buf = malloc (MIB);

  if (!buf) {
    rd->error = -ENOMEM;
    return NULL;
  }
  if (!rd->random)
    for (uint64_t off = rd->from; off < rd->to && !rd->error; off += MIB) {
      size_t n = CAIRN_MIN (MIB, rd->to - off);
      rd->error = cairn_view_read (&rd->view, buf, n, off);
      rd->done += n;
    }
  else
    while (!rd->error && now () < rd->until)
      for (int k = 0; k < 64 && !rd->error; k++) {
        rd->error = cairn_view_read (&rd->view, buf, 4096,
                                     xorshift (&seed) % blocks * 4096);
        rd->done++;
      }
  free (buf);
  return NULL;
}

static int
read_bench (struct cairn_store *s, const char *spec, bool random,
            int threads, double seconds)
{
  struct reader *rd = calloc (threads, sizeof *rd);
  struct cairn_txn *txn;
  struct cairn_ref ref;
  struct cairn_view view;
  uint64_t done = 0;
  int r = cairn_txn_begin (s, false, &txn);

  if (r == 0) {
    r = cairn_resolve (txn, spec, &ref);
    if (r == 0)
      r = cairn_view_open (s, txn, &ref.commit, "disk", &view);
    cairn_txn_abort (s, txn);
  }
  if (r < 0 || !rd)
    return fail (r, spec);
  uint64_t slice = (view.vol.size / threads + MIB - 1) / MIB * MIB;
  double start = now ();
  for (int i = 0; i < threads; i++) {
    rd[i].view = view;
    rd[i].random = random;
    rd[i].from = CAIRN_MIN (i * slice, view.vol.size);
    rd[i].to = CAIRN_MIN ((i + 1) * slice, view.vol.size);
    rd[i].until = start + seconds;
    pthread_create (&rd[i].thread, NULL, read_loop, &rd[i]);
  }
  for (int i = 0; i < threads; i++) {
    pthread_join (rd[i].thread, NULL);
    done += rd[i].done;
    if (rd[i].error)
      r = rd[i].error;
  }
  double elapsed = now () - start;
  free (rd);
  if (r < 0)
    return fail (r, "read");
  printf ("%.1f\n", random ? done / elapsed : done / elapsed / MIB);
  return 0;
}

int
main (int argc, char **argv)
{
  struct cairn_store *s;
  int status;

  if (argc < 3) {
    fprintf (stderr, "usage: bench-fusefs-tool commits|read STORE ...\n");
    return 2;
  }
  int r = cairn_store_open (argv[2], strcmp (argv[1], "read") == 0
                            ? CAIRN_OPEN_READONLY : 0, &s);
  if (r < 0)
    return fail (r, argv[2]);
  if (argc == 5 && strcmp (argv[1], "commits") == 0)
    status = make_commits (s, argv[3], atol (argv[4]));
  else if (argc == 7 && strcmp (argv[1], "read") == 0)
    status = read_bench (s, argv[3], strcmp (argv[4], "rand") == 0,
                         atoi (argv[5]), atof (argv[6]));
  else {
    fprintf (stderr, "bench-fusefs-tool: bad arguments\n");
    status = 2;
  }
  cairn_store_close (s);
  return status;
}
