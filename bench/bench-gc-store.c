/* bench-gc-store: prune and gc on a store with a long history.
 *
 *   bench-gc-store STORE FRESH CAIRN
 *
 * Builds in STORE the history of one branch: commit 0 imports a whole
 * volume (CAIRN_BENCH_VOLUME, default 8 GiB), then every following commit
 * (CAIRN_BENCH_COMMITS in all, default 1000) rewrites CAIRN_BENCH_CHANGE
 * of it (default 1%) - in 1 MiB runs at random places of a hot region of
 * twice that size, the way a database or a log rewrites its own blocks,
 * so that pruning really frees data - through the store API
 * (cairn_volume_store with the changed chunks only, then a commit of the
 * branch), six minutes apart.  Chunk contents are made to compress about
 * 8:1 (an 8 KiB random head, the rest a repeated record), so that the
 * packs hold what a real disk's data would need and the run fits the disk.
 *
 * Then it measures:
 *  - mark: a dry gc at a quarter, half and all of the history: the mark
 *    must grow with the distinct tree nodes, not with commits x volume;
 *  - commit latency of another, live branch (writes, sealer on, commit
 *    every 20 ms) without gc, and while `CAIRN gc` runs after the prune;
 *  - prune to keep-hourly N (10% of the commits) and the gc after it;
 *  - the store's size after that against FRESH, a store holding only the
 *    kept commits' objects (copied from STORE: the same compressed chunks,
 *    the same nodes).
 *
 * It prints a table with the ratios the issue asks for.  Nothing here
 * asserts a time.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "gc/gc.h"
#include "retention/prune.h"
#include "store/idset.h"
#include "store/store.h"

#define CHUNK 65536
#define RUN 16                          /* chunks per rewritten run */
#define HEAD 8192                       /* random bytes at a chunk's start */
#define SPACING_NS (360LL * 1000000000) /* six minutes between commits */
#define LIVE_VOLUME (1ULL << 30)
#define LIVE_WRITES 16                  /* 64 KiB writes per live commit */
#define LIVE_PERIOD_NS (20 * 1000000)

extern char **environ;

static uint64_t volume, nchunks, hot_start, hot_chunks;
static int commits;
static double change;

static int64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
die (const char *what, int r)
{
  fprintf (stderr, "bench-gc-store: %s: %s\n", what,
           *cairn_last_error () ? cairn_last_error () : cairn_strerror (r));
  exit (1);
}

/* ---- contents ---------------------------------------------------------- */

/* Chunk INDEX as commit VERSION wrote it: 8 KiB from a xorshift seeded by
 * both, then a 64-byte record naming them, repeated. */
static void
make_chunk (char *buf, uint64_t version, uint64_t index)
{
  uint64_t x = (version * 0x9e3779b97f4a7c15ULL)
    ^ (index * 0xc2b2ae3d27d4eb4fULL) ^ 0x5bd1e995;
  for (size_t i = 0; i < HEAD; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy (buf + i, &x, 8);
  }
  char rec[64];
  memset (rec, ' ', sizeof rec);
  int n = snprintf (rec, sizeof rec, "version %" PRIu64 " chunk %" PRIu64
                    " of a cairn gc benchmark", version, index);
  rec[n < 63 ? n : 63] = '\n';
  for (size_t i = HEAD; i < CHUNK; i += sizeof rec)
    memcpy (buf + i, rec, sizeof rec);
}

struct source {
  uint64_t version;
};

static int
source_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct source *src = arg;
  char chunk[CHUNK];

  while (len > 0) {
    uint64_t index = off / CHUNK;
    size_t within = off % CHUNK, n = CHUNK - within < len ? CHUNK - within
      : len;
    make_chunk (chunk, src->version, index);
    memcpy (buf, chunk + within, n);
    buf = (char *) buf + n;
    off += n;
    len -= n;
  }
  return 0;
}

/* ---- building the history ---------------------------------------------- */

static uint64_t rng = 88172645463325252ULL;

static uint64_t
next_random (void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Marks in CHANGED the runs commit K rewrites: CHANGE of the volume, in
 * runs of RUN chunks, at random run slots of the hot region. */
static void
pick_changes (uint8_t *changed)
{
  uint64_t slots = hot_chunks / RUN, want = (uint64_t) (nchunks * change) / RUN;
  memset (changed, 0, (nchunks + 7) / 8);
  if (want > slots)
    want = slots;
  for (uint64_t picked = 0; picked < want;) {
    uint64_t first = hot_start + (next_random () % slots) * RUN;
    if (changed[first / 8] & (1u << (first % 8)))
      continue;
    for (uint64_t i = first; i < first + RUN; i++)
      changed[i / 8] |= 1u << (i % 8);
    picked++;
  }
}

static int64_t
commit_time (int k)
{
  int64_t t0;
  cairn_time_parse ("2026-11-01T00:00:30Z", &t0);
  return t0 + k * SPACING_NS;
}

/* One dry gc: its mark cost. */
struct mark_point {
  int commits;
  uint64_t nodes, chunks, refs;
  int64_t mark_ns;
};

static void
measure_mark (struct cairn_store *s, int k, struct mark_point *m)
{
  struct cairn_gc_report g;
  int r = cairn_gc (s, &(struct cairn_gc_options) { .dry_run = true }, &g);
  if (r < 0)
    die ("gc --dry-run", r);
  m->commits = k;
  m->nodes = g.nodes_marked;
  m->chunks = g.chunks_marked;
  m->refs = g.chunk_refs;
  m->mark_ns = g.mark_ns;
  fprintf (stderr, "  mark at %d commits: %.3f s, %" PRIu64 " nodes\n", k,
           g.mark_ns / 1e9, g.nodes_marked);
}

static int64_t
build (struct cairn_store *s, struct mark_point *marks, int *nmarks)
{
  struct cairn_volume vol;
  struct cairn_branch *b;
  struct source src = { 0 };
  struct cairn_import_source is = { .size = volume, .read = source_read,
                                    .arg = &src };
  struct cairn_commit_options o = { .message = "bench" };
  uint8_t *changed = malloc ((nchunks + 7) / 8);
  struct cairn_id id;
  int64_t t0 = now_ns ();
  int r;

  o.time = commit_time (0);
  r = cairn_import (s, "main", "disk", &is, &o, NULL, NULL, &id, NULL);
  if (r < 0)
    die ("import", r);
  r = cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b);
  if (r < 0)
    die ("open main", r);
  struct cairn_txn *txn;
  struct cairn_view view;
  if ((r = cairn_txn_begin (s, false, &txn)) < 0)
    die ("txn", r);
  r = cairn_view_open (s, txn, &id, "disk", &view);
  cairn_txn_abort (s, txn);
  if (r < 0)
    die ("the imported volume", r);
  vol = view.vol;
  for (int k = 1; k < commits; k++) {
    struct cairn_pin *pin;
    pick_changes (changed);
    src.version = k;
    struct cairn_volume next;
    r = cairn_pin_begin (s, &pin);
    if (r == 0)
      r = cairn_volume_store (s, &is, &vol, changed, NULL, NULL, &next,
                              NULL);
    vol = next;
    strcpy (vol.name, "disk");
    o.time = commit_time (k);
    o.set_volumes = &vol;
    o.nset_volumes = 1;
    if (r == 0)
      r = cairn_branch_commit (b, &o, &id);
    cairn_pin_end (pin);
    if (r < 0)
      die ("commit", r);
    if (k % 50 == 0)
      fprintf (stderr, "  %d commits, %.0f s\n", k + 1,
               (now_ns () - t0) / 1e9);
    if (k + 1 == commits / 4 || k + 1 == commits / 2)
      measure_mark (s, k + 1, &marks[(*nmarks)++]);
  }
  cairn_branch_close (b);
  free (changed);
  int64_t took = now_ns () - t0;
  measure_mark (s, commits, &marks[(*nmarks)++]);
  return took;
}

/* ---- the live branch: commit latency ------------------------------------ */

struct live {
  struct cairn_branch *b;
  struct cairn_bvol *v;
  uint64_t seed;
  int64_t *lat, *when;          /* latency, and start time of each */
  size_t n, cap;
};

static void
live_commit (struct live *l)
{
  char buf[CHUNK];
  struct cairn_id id;

  for (int i = 0; i < LIVE_WRITES; i++) {
    uint64_t index = next_random () % (LIVE_VOLUME / CHUNK);
    make_chunk (buf, 1000000 + l->seed++, index);
    if (cairn_bvol_write (l->v, buf, CHUNK, index * CHUNK) < 0)
      die ("live write", -EIO);
  }
  int64_t t0 = now_ns ();
  int r = cairn_branch_commit (l->b, NULL, &id);
  int64_t took = now_ns () - t0;
  if (r < 0)
    die ("live commit", r);
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 1024;
    l->lat = realloc (l->lat, l->cap * sizeof *l->lat);
    l->when = realloc (l->when, l->cap * sizeof *l->when);
  }
  l->when[l->n] = t0;
  l->lat[l->n++] = took;
  struct timespec pause = { 0, LIVE_PERIOD_NS };
  nanosleep (&pause, NULL);
}

/* A probe beside the live commits, to tell what they wait for: every
 * 20 ms, how long the index's write lock takes to get (then it is let go
 * at once), and how long a 4 KiB write and fdatasync of a file in the
 * store's directory take. */
struct probe {
  struct cairn_store *s;
  int fd;
  atomic_bool stop;
  pthread_t thread;
  int64_t *lock, *sync;
  size_t n, cap;
};

static void *
probe_main (void *arg)
{
  struct probe *p = arg;
  char block[4096];

  memset (block, 0x5a, sizeof block);
  while (!atomic_load (&p->stop)) {
    struct cairn_txn *txn;
    int64_t t0 = now_ns ();
    if (cairn_txn_begin (p->s, true, &txn) == 0)
      cairn_txn_abort (p->s, txn);
    int64_t t1 = now_ns ();
    if (pwrite (p->fd, block, sizeof block, 0) < 0 || fdatasync (p->fd) < 0)
      break;
    int64_t t2 = now_ns ();
    if (p->n == p->cap) {
      p->cap = p->cap ? 2 * p->cap : 1024;
      p->lock = realloc (p->lock, p->cap * sizeof *p->lock);
      p->sync = realloc (p->sync, p->cap * sizeof *p->sync);
    }
    p->lock[p->n] = t1 - t0;
    p->sync[p->n++] = t2 - t1;
    struct timespec pause = { 0, LIVE_PERIOD_NS };
    nanosleep (&pause, NULL);
  }
  return NULL;
}

static void
probe_start (struct probe *p, struct cairn_store *s, const char *dir)
{
  char path[4096];
  snprintf (path, sizeof path, "%s/probe", dir);
  p->s = s;
  p->n = 0;
  p->fd = open (path, O_RDWR | O_CREAT, 0644);
  atomic_store (&p->stop, false);
  pthread_create (&p->thread, NULL, probe_main, p);
}

static void
probe_stop (struct probe *p)
{
  atomic_store (&p->stop, true);
  pthread_join (p->thread, NULL);
  close (p->fd);
}

static int
cmp_i64 (const void *a, const void *b)
{
  int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
  return x < y ? -1 : x > y;
}

static double
percentile (int64_t *v, size_t n, double p)
{
  if (n == 0)
    return 0;
  qsort (v, n, sizeof *v, cmp_i64);
  size_t i = (size_t) (p * (n - 1) + 0.5);
  return v[i] / 1e6;
}

/* ---- sizes -------------------------------------------------------------- */

static uint64_t tree_bytes, pack_bytes, index_bytes;

static int
add_size (const char *path, const struct stat *st, int flag, struct FTW *f)
{
  if (flag != FTW_F || strstr (path, "/run/"))
    return 0;
  tree_bytes += st->st_size;
  if (strstr (path, "/packs/"))
    pack_bytes += st->st_size;
  else if (strstr (path, "/index/"))
    index_bytes += st->st_size;
  return 0;
}

static void
store_size (const char *path, uint64_t *total, uint64_t *packs,
            uint64_t *index)
{
  tree_bytes = pack_bytes = index_bytes = 0;
  nftw (path, add_size, 16, FTW_PHYS);
  *total = tree_bytes;
  *packs = pack_bytes;
  *index = index_bytes;
}

/* ---- the fresh store: only the kept commits' objects -------------------- */

struct copy {
  struct cairn_store *from, *to;
  struct cairn_txn *rtxn, *wtxn;
  struct idset nodes, chunks;
  size_t in_txn;
  uint64_t chunks_copied;
};

static void
copy_flush (struct copy *c, bool reopen)
{
  int r = cairn_txn_commit (c->to, c->wtxn);
  if (r < 0)
    die ("fresh store commit", r);
  c->in_txn = 0;
  if (reopen && (r = cairn_txn_begin (c->to, true, &c->wtxn)) < 0)
    die ("fresh store txn", r);
}

static void
copy_object (struct copy *c, enum cairn_object_type type,
             const struct cairn_id *id)
{
  const struct cairn_backend_ops *rops = cairn_store_backend (c->from)->ops;
  const struct cairn_backend_ops *wops = cairn_store_backend (c->to)->ops;
  struct cairn_object_info info;
  struct cairn_val v;
  int r = rops->object_get (cairn_txn_backend (c->rtxn), type, id, &v, &info);
  if (r < 0)
    die ("read an object", r);
  r = wops->object_put (cairn_txn_backend (c->wtxn), type, id, v.data, v.len,
                        info.raw_len, info.flags);
  if (r < 0)
    die ("copy an object", r);
  if (++c->in_txn == 2048)
    copy_flush (c, true);
}

static void
copy_tree (struct copy *c, const struct cairn_id *id, unsigned level)
{
  struct cairn_id *children = malloc (CAIRN_TREE_FANOUT * sizeof *children);
  unsigned got;
  bool added;

  if (cairn_id_is_zero (id) || !idset_add (&c->nodes, id, &added) || !added) {
    free (children);
    return;
  }
  if (cairn_tree_node_read (c->rtxn, id, &got, children) < 0)
    die ("read a node", -EIO);
  copy_object (c, CAIRN_OBJECT_NODE, id);
  for (int i = 0; i < CAIRN_TREE_FANOUT; i++) {
    if (cairn_id_is_zero (&children[i]))
      continue;
    if (level > 0)
      copy_tree (c, &children[i], level - 1);
    else if (idset_add (&c->chunks, &children[i], &added) && added) {
      copy_object (c, CAIRN_OBJECT_CHUNK, &children[i]);
      c->chunks_copied++;
    }
  }
  free (children);
}

static void
build_fresh (struct cairn_store *s, const char *path)
{
  struct cairn_prune_result res;
  struct copy c = { .from = s };
  struct cairn_id newest = cairn_zero_id;
  int r;

  if ((r = cairn_store_init (path, NULL)) < 0
      || (r = cairn_store_open (path, 0, &c.to)) < 0)
    die ("fresh store", r);
  /* The kept commits: what a dry prune of main would keep now. */
  r = cairn_prune (s, &(struct cairn_prune_options) { .branch = "main",
                                                      .dry_run = true }, &res);
  if (r < 0)
    die ("list kept commits", r);
  idset_init (&c.nodes);
  idset_init (&c.chunks);
  cairn_txn_begin (s, false, &c.rtxn);
  cairn_txn_begin (c.to, true, &c.wtxn);
  for (size_t i = res.verdicts->n_decisions; i-- > 0;) {
    struct cairn_commit *cm;
    const struct cairn_id *id = &res.verdicts->decisions[i].id;
    if (cairn_commit_read (c.rtxn, id, &cm) < 0)
      die ("read a commit", -EIO);
    for (size_t v = 0; v < cm->nvolumes; v++)
      copy_tree (&c, &cm->volumes[v].root,
                 cairn_tree_levels (cm->volumes[v].size,
                                    cm->volumes[v].chunk_size) - 1);
    cairn_commit_free (cm);
    copy_object (&c, CAIRN_OBJECT_COMMIT, id);
    newest = *id;
  }
  copy_flush (&c, false);
  cairn_txn_abort (s, c.rtxn);
  if ((r = cairn_branch_create_from (c.to, "main", &newest)) < 0)
    die ("fresh branch", r);
  fprintf (stderr, "  fresh store: %zu commits, %" PRIu64 " chunks\n",
           res.verdicts->n_decisions, c.chunks_copied);
  cairn_prune_result_free (&res);
  idset_free (&c.nodes);
  idset_free (&c.chunks);
  cairn_store_close (c.to);
}

/* ---- gc in another process, as a user runs it --------------------------- */

static pid_t
spawn_gc (const char *cairn, const char *store, const char *out)
{
  posix_spawn_file_actions_t fa;
  pid_t pid;
  const char *extra = getenv ("CAIRN_BENCH_GC_ARGS");
  char *argv[] = { (char *) cairn, "-S", (char *) store, "gc", "--json",
                   extra && *extra ? (char *) extra : NULL, NULL };

  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
                                    0644);
  int r = posix_spawn (&pid, cairn, &fa, NULL, argv, environ);
  if (r != 0) {
    fprintf (stderr, "bench-gc-store: %s: %s\n", cairn, strerror (r));
    exit (1);
  }
  posix_spawn_file_actions_destroy (&fa);
  return pid;
}

static double
json_num (struct json_object *o, const char *key)
{
  struct json_object *v;
  return json_object_object_get_ex (o, key, &v) ? json_object_get_double (v)
    : 0;
}

static uint64_t
env_size (const char *name, uint64_t dflt)
{
  const char *v = getenv (name);
  uint64_t n;
  return v && cairn_parse_size (v, &n) == 0 ? n : dflt;
}

int
main (int argc, char **argv)
{
  struct mark_point marks[3];
  int nmarks = 0, r;

  if (argc != 4) {
    fprintf (stderr, "usage: bench-gc-store STORE FRESH CAIRN\n");
    return 2;
  }
  const char *path = argv[1], *fresh = argv[2], *cairn = argv[3];
  volume = env_size ("CAIRN_BENCH_VOLUME", 8ULL << 30);
  commits = getenv ("CAIRN_BENCH_COMMITS")
    ? atoi (getenv ("CAIRN_BENCH_COMMITS")) : 1000;
  change = getenv ("CAIRN_BENCH_CHANGE") ? atof (getenv ("CAIRN_BENCH_CHANGE"))
    : 0.01;
  nchunks = volume / CHUNK;
  hot_chunks = (uint64_t) (nchunks * change * 2) / RUN * RUN;
  hot_start = nchunks / 3 / RUN * RUN;
  int keep = commits / 10;

  struct cairn_store *s;
  if ((r = cairn_store_init (path, NULL)) < 0
      || (r = cairn_store_open (path, 0, &s)) < 0)
    die ("store", r);

  fprintf (stderr, "building %d commits of a %.1f GiB volume, %.2f%% "
           "changed per commit...\n", commits, volume / 1073741824.0,
           change * 100);
  int64_t build_ns = build (s, marks, &nmarks);
  uint64_t size_full, packs_full, index_full;
  store_size (path, &size_full, &packs_full, &index_full);

  /* Commit latency of a live branch, without gc. */
  struct live live = { 0 };
  if ((r = cairn_branch_create_empty (s, "live", "disk", LIVE_VOLUME)) < 0
      || (r = cairn_branch_open (s, "live", CAIRN_BRANCH_WRITE
                                 | CAIRN_BRANCH_SEALER, &live.b)) < 0)
    die ("live branch", r);
  live.v = cairn_branch_volume (live.b, "disk");
  fprintf (stderr, "commit latency without gc...\n");
  struct probe probe = { 0 };
  char run_dir[4096];
  snprintf (run_dir, sizeof run_dir, "%s/run", path);
  probe_start (&probe, s, run_dir);
  for (int i = 0; i < 300; i++)
    live_commit (&live);
  probe_stop (&probe);
  double lock_base = percentile (probe.lock, probe.n, 0.99);
  double sync_base = percentile (probe.sync, probe.n, 0.99);
  size_t base_n = live.n;
  double p50_base = percentile (live.lat, live.n, 0.50);
  double p99_base = percentile (live.lat, live.n, 0.99);
  live.n = 0;

  /* Prune to 10%: one commit per hour of the 100 hours. */
  struct cairn_retention_policy policy = { 0 };
  char n[16];
  snprintf (n, sizeof n, "%d", keep);
  cairn_retention_policy_set (&policy, "keep-hourly", n);
  if ((r = cairn_retention_set (s, "main", &policy)) < 0)
    die ("retention set", r);
  struct cairn_prune_result res;
  int64_t t0 = now_ns ();
  r = cairn_prune (s, &(struct cairn_prune_options) { .branch = "main" },
                   &res);
  int64_t prune_ns = now_ns () - t0;
  if (r < 0)
    die ("prune", r);
  size_t kept = res.verdicts->n_keep, pruned = res.n_pruned;
  cairn_prune_result_free (&res);

  /* gc in its own process while the live branch commits. */
  char out[4096];
  snprintf (out, sizeof out, "%s.gc.json", path);
  fprintf (stderr, "gc, with commits running...\n");
  t0 = now_ns ();
  pid_t pid = spawn_gc (cairn, path, out);
  int status;
  probe_start (&probe, s, run_dir);
  while (waitpid (pid, &status, WNOHANG) == 0)
    live_commit (&live);
  int64_t gc_ns = now_ns () - t0;
  probe_stop (&probe);
  double lock_gc = percentile (probe.lock, probe.n, 0.99);
  double sync_gc = percentile (probe.sync, probe.n, 0.99);
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    die ("cairn gc", -EIO);
  size_t gc_n = live.n;
  /* Split by gc's phases: mark and sweep first, then compaction. */
  struct json_object *g = json_object_from_file (out);
  if (!g)
    die ("read gc's report", -EIO);
  int64_t split = t0 + (int64_t) ((json_num (g, "mark_seconds")
                                   + json_num (g, "sweep_seconds")) * 1e9);
  int64_t *early = malloc ((gc_n + 1) * sizeof *early);
  int64_t *late = malloc ((gc_n + 1) * sizeof *late);
  size_t nearly = 0, nlate = 0;
  for (size_t i = 0; i < gc_n; i++) {
    if (live.when[i] < split)
      early[nearly++] = live.lat[i];
    else
      late[nlate++] = live.lat[i];
  }
  double p99_sweep = percentile (early, nearly, 0.99);
  double p99_compact = percentile (late, nlate, 0.99);
  free (early);
  free (late);
  double p50_gc = percentile (live.lat, live.n, 0.50);
  double p99_gc = percentile (live.lat, live.n, 0.99);
  /* Without gc again: how much of a difference is the machine's noise. */
  live.n = 0;
  fprintf (stderr, "commit latency without gc, again...\n");
  for (int i = 0; i < 300; i++)
    live_commit (&live);
  double p50_after = percentile (live.lat, live.n, 0.50);
  double p99_after = percentile (live.lat, live.n, 0.99);
  cairn_branch_close (live.b);

  /* The live branch was only there to commit during gc: without it, the
   * store should hold what the fresh one does.  Its commits go the way a
   * deleted branch's do (prune of every branch, then gc), with this
   * process's store closed, so that no pack is held by a writer. */
  if ((r = cairn_branch_delete (s, "live")) < 0
      || (r = cairn_prune (s, &(struct cairn_prune_options) { 0 }, &res)) < 0)
    die ("drop the live branch", r);
  cairn_prune_result_free (&res);
  cairn_store_close (s);
  char out2[4096];
  snprintf (out2, sizeof out2, "%s.gc2.json", path);
  t0 = now_ns ();
  pid = spawn_gc (cairn, path, out2);
  waitpid (pid, &status, 0);
  int64_t gc2_ns = now_ns () - t0;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    die ("second cairn gc", -EIO);
  uint64_t size_gc, packs_gc, index_gc;
  store_size (path, &size_gc, &packs_gc, &index_gc);
  if ((r = cairn_store_open (path, CAIRN_OPEN_READONLY, &s)) < 0)
    die ("reopen the store", r);
  fprintf (stderr, "building the fresh store...\n");
  build_fresh (s, fresh);
  uint64_t size_fresh, packs_fresh, index_fresh;
  store_size (fresh, &size_fresh, &packs_fresh, &index_fresh);
  cairn_store_close (s);

  /* ---- the table ---- */
  const double GiB = 1073741824.0, MiB = 1048576.0;
  printf ("\ngc benchmark: %d commits of a %.1f GiB volume, %.2f%% of it "
          "rewritten per commit\n(in 1 MiB runs within a %.0f MiB hot "
          "region; chunks compress ~8:1), built in %.0f s\n\n", commits,
          volume / GiB, change * 100, hot_chunks * (double) CHUNK / MiB,
          build_ns / 1e9);
  printf ("%-44s %14s %14s %8s\n", "measure", "value", "peer", "ratio");
  printf ("%-44s %14s %14s %8s\n", "-------", "-----", "----", "-----");
  char what[96];
  snprintf (what, sizeof what, "prune (%zu of %d commits to tombstones)",
            pruned, commits);
  printf ("%-44s %12.2f s %14s %8s\n", what, prune_ns / 1e9, "", "");
  printf ("%-44s %12.2f s %14s %8s\n", "gc after prune, whole run", gc_ns / 1e9,
          "", "");
  printf ("%-44s %12.2f s %14s %8s\n", "  of which mark",
          json_num (g, "mark_seconds"), "", "");
  printf ("%-44s %12.2f s %14s %8s\n", "  of which sweep",
          json_num (g, "sweep_seconds"), "", "");
  printf ("%-44s %12.2f s %14s %8s\n", "  of which compaction",
          json_num (g, "compact_seconds"), "", "");
  printf ("%-44s %12.0f   %14s %8s\n", "  chunks swept",
          json_num (g, "chunks_swept"), "", "");
  printf ("%-44s %10.0f MiB %14s %8s\n", "  reclaimed (pack bytes)",
          json_num (g, "reclaimed_bytes") / MiB, "", "");
  struct json_object *phase;
  snprintf (what, sizeof what, "  longest write transaction (%s)",
            json_object_object_get_ex (g, "longest_txn_phase", &phase)
            && phase ? json_object_get_string (phase) : "-");
  printf ("%-44s %12.1f ms %14s %8s\n", what,
          json_num (g, "longest_txn_seconds") * 1e3, "", "");
  printf ("%-44s %12.2f s %14s %8s\n", "second gc (live branch dropped)",
          gc2_ns / 1e9, "", "");
  for (int i = 0; i < nmarks; i++) {
    snprintf (what, sizeof what, "mark at %d commits: ns per tree node",
              marks[i].commits);
    printf ("%-44s %12.0f   %14s %8s\n", what,
            (double) marks[i].mark_ns / (marks[i].nodes ? marks[i].nodes : 1),
            "", "");
    snprintf (what, sizeof what, "  nodes marked / commits x volume chunks");
    printf ("%-44s %14" PRIu64 " %14.0f %8.5f\n", what, marks[i].nodes,
            (double) marks[i].commits * nchunks,
            marks[i].nodes / ((double) marks[i].commits * nchunks));
    snprintf (what, sizeof what, "  mark time (s), chunk ids read %" PRIu64,
              marks[i].refs);
    printf ("%-44s %12.3f s %14s %8s\n", what, marks[i].mark_ns / 1e9, "",
            "");
  }
  if (nmarks == 3)
    printf ("%-44s %14.2f %14.2f %8.2f\n",
            "mark time growth 1/4 -> all vs node growth",
            (double) marks[2].mark_ns / marks[0].mark_ns,
            (double) marks[2].nodes / marks[0].nodes,
            ((double) marks[2].mark_ns / marks[0].mark_ns)
            / ((double) marks[2].nodes / marks[0].nodes));
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "commit p99, during gc vs without (<= 2)", p99_gc, p99_base,
          p99_gc / p99_base);
  snprintf (what, sizeof what, "  during mark+sweep (%zu) / compaction (%zu)",
            nearly, nlate);
  printf ("%-44s %11.1f ms %11.1f ms %8s\n", what, p99_sweep, p99_compact,
          "");
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "commit p50, during gc vs without", p50_gc, p50_base,
          p50_gc / p50_base);
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "commit p99 without gc: after vs before it", p99_after, p99_base,
          p99_after / p99_base);
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "  write-lock wait p99, during gc vs without", lock_gc, lock_base,
          lock_gc / (lock_base > 0 ? lock_base : 1));
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "  4K write+fdatasync p99, during gc vs without", sync_gc, sync_base,
          sync_gc / (sync_base > 0 ? sync_base : 1));
  printf ("%-44s %11.1f ms %11.1f ms %8.2f\n",
          "commit p50 without gc: after vs before it", p50_after, p50_base,
          p50_after / p50_base);
  printf ("%-44s %14zu %14zu %8s\n", "  commits measured (during, without)",
          gc_n, base_n, "");
  printf ("%-44s %10.2f GiB %10.2f GiB %8.2f\n",
          "store before prune vs after prune + gc", size_full / GiB,
          size_gc / GiB, (double) size_full / size_gc);
  printf ("%-44s %10.2f GiB %10.2f GiB %8.3f\n",
          "store after gc vs fresh store (<= 1.10)", size_gc / GiB,
          size_fresh / GiB, (double) size_gc / size_fresh);
  printf ("%-44s %10.2f GiB %10.2f GiB %8.3f\n", "  packs", packs_gc / GiB,
          packs_fresh / GiB, (double) packs_gc / packs_fresh);
  printf ("%-44s %10.2f GiB %10.2f GiB %8.3f\n", "  index (LMDB file)",
          index_gc / GiB, index_fresh / GiB, (double) index_gc / index_fresh);
  printf ("%-44s %14zu %14d %8s\n", "commits kept / pruned", kept, (int) pruned,
          "");
  json_object_put (g);
  free (live.lat);
  free (live.when);
  free (probe.lock);
  free (probe.sync);
  return 0;
}
