/* readahead.c: reading ahead of sequential readers.
 *
 * The kernel reads ahead on its own: its readahead reaches cairnfs as
 * larger, asynchronous read requests.  But each request then fetches,
 * decompresses and hashes its chunks one after another in one thread, and
 * a reader that waits for it leaves the other cores idle.  When a file is
 * read sequentially, cairnfs also queues the chunks of the next window
 * (-o readahead=SIZE) to worker threads that read them into the store's
 * chunk cache: the decompression of the chunks ahead overlaps the copying
 * of the chunks at hand, on every core, and the requests for them find
 * them cached.
 *
 * There is no second cache: the workers fill the store's bounded LRU cache
 * of verified chunks (-o cache=SIZE), where reads look first.  cairnfs
 * keeps the window at most a quarter of the cache so that chunks read
 * ahead are not evicted before they are used.
 *
 * A stream is a run of reads each starting near where the run has got to
 * (the kernel's asynchronous requests arrive slightly out of order); a
 * read anywhere else starts a new stream, with no readahead until it goes
 * on.  The queue is bounded and a job that does not fit is dropped:
 * readahead is advice.  A job carries a copy of the volume description, so
 * it does not depend on the file staying open; a chunk it cannot read is
 * not logged, as the read that needs it fails and logs.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>

#include "fusefs/cairnfs.h"

/* Chunks per job: a few, so that several workers share a window. */
#define JOB_CHUNKS 4
#define QUEUE_JOBS 256
/* How far from the end of a stream a read still continues it. */
#define STREAM_SLACK (2ULL << 20)

struct job {
  struct cairn_volume vol;
  uint64_t first, last;         /* chunk indexes */
};

struct readahead {
  struct cairn_store *s;
  pthread_mutex_t lock;         /* guards the queue and stop */
  pthread_cond_t work;          /* a job was queued, or stop */
  struct job queue[QUEUE_JOBS];
  size_t head, count;
  bool stop;
  unsigned nthreads;
  pthread_t threads[];
};

static void
run_job (struct cairn_store *s, const struct job *j)
{
  struct cairn_view view;
  struct cairn_id ids[JOB_CHUNKS];
  struct cairn_txn *txn;
  size_t n = j->last - j->first + 1;
  char none;

  cairn_view_init (s, &j->vol, &view);
  if (cairn_txn_begin (s, false, &txn) < 0)
    return;
  for (size_t i = 0; i < n; i++)
    if (cairn_view_chunk (&view, txn, j->first + i, &ids[i]) < 0)
      n = i;
  cairn_txn_abort (s, txn);
  /* Reading no bytes of a chunk still fetches, verifies and caches it;
   * a cached one costs a lookup. */
  for (size_t i = 0; i < n; i++)
    if (!cairn_id_is_zero (&ids[i]))
      cairn_chunk_read_part (s, &ids[i], &none, 0, 0);
}

static void *
worker (void *arg)
{
  struct readahead *ra = arg;

  pthread_mutex_lock (&ra->lock);
  for (;;) {
    while (ra->count == 0 && !ra->stop)
      pthread_cond_wait (&ra->work, &ra->lock);
    if (ra->stop)
      break;
    struct job j = ra->queue[ra->head];
    ra->head = (ra->head + 1) % QUEUE_JOBS;
    ra->count--;
    pthread_mutex_unlock (&ra->lock);
    run_job (ra->s, &j);
    pthread_mutex_lock (&ra->lock);
  }
  pthread_mutex_unlock (&ra->lock);
  return NULL;
}

int
readahead_start (struct cairn_store *s, unsigned threads,
                 struct readahead **out)
{
  struct readahead *ra = calloc (1, sizeof *ra + threads * sizeof (pthread_t));
  int r = 0;

  if (!ra)
    return -ENOMEM;
  ra->s = s;
  pthread_mutex_init (&ra->lock, NULL);
  pthread_cond_init (&ra->work, NULL);
  for (; ra->nthreads < threads; ra->nthreads++) {
    r = -pthread_create (&ra->threads[ra->nthreads], NULL, worker, ra);
    if (r < 0)
      break;
  }
  if (r < 0) {
    readahead_stop (ra);
    return r;
  }
  *out = ra;
  return 0;
}

void
readahead_stop (struct readahead *ra)
{
  if (!ra)
    return;
  pthread_mutex_lock (&ra->lock);
  ra->stop = true;
  pthread_cond_broadcast (&ra->work);
  pthread_mutex_unlock (&ra->lock);
  for (unsigned i = 0; i < ra->nthreads; i++)
    pthread_join (ra->threads[i], NULL);
  pthread_cond_destroy (&ra->work);
  pthread_mutex_destroy (&ra->lock);
  free (ra);
}

void
readahead_queue (struct readahead *ra, const struct cairn_volume *v,
                 uint64_t first, uint64_t last)
{
  pthread_mutex_lock (&ra->lock);
  for (uint64_t i = first; i <= last && ra->count < QUEUE_JOBS;
       i += JOB_CHUNKS) {
    struct job *j = &ra->queue[(ra->head + ra->count) % QUEUE_JOBS];
    j->vol = *v;
    j->first = i;
    j->last = CAIRN_MIN (last, i + JOB_CHUNKS - 1);
    ra->count++;
    /* One worker per job: waking them all costs switches for nothing. */
    pthread_cond_signal (&ra->work);
  }
  pthread_mutex_unlock (&ra->lock);
}

void
read_stream_init (struct read_stream *rs)
{
  pthread_mutex_init (&rs->lock, NULL);
  rs->next = rs->ahead = 0;
}

void
read_stream_destroy (struct read_stream *rs)
{
  pthread_mutex_destroy (&rs->lock);
}

void
read_stream_note (struct read_stream *rs, struct readahead *ra,
                  const struct cairn_volume *v, uint64_t off, uint64_t len,
                  uint64_t window)
{
  uint64_t end = off + len, from, to;

  if (!ra || window == 0 || len == 0)
    return;
  pthread_mutex_lock (&rs->lock);
  if (off > rs->next + STREAM_SLACK || end + STREAM_SLACK < rs->next) {
    /* Somewhere else: a new stream begins here. */
    rs->next = rs->ahead = end;
    pthread_mutex_unlock (&rs->lock);
    return;
  }
  rs->next = CAIRN_MAX (rs->next, end);
  from = CAIRN_MAX (rs->ahead, rs->next);
  to = CAIRN_MIN (rs->next + window, v->size);
  /* In batches of a quarter window, not a few chunks per read: fewer
   * wake-ups, and the workers get a run of jobs each time. */
  bool queue = to > from && (to - from >= window / 4 || to == v->size);
  if (queue)
    rs->ahead = to;
  pthread_mutex_unlock (&rs->lock);
  if (queue)
    readahead_queue (ra, v, from / v->chunk_size, (to - 1) / v->chunk_size);
}
