/* test-wal: the index's write-ahead log file (store/wal.c): operations
 * round-trip, records are read back only whole and with the sequence
 * asked for, the ring wraps, and records handed to the helper thread by
 * several threads at once are all written (each waits for its own). */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/util.h"
#include "store/wal.h"
#include "tap.h"

#define THREADS 4
#define PER_THREAD 50

static char dir[] = "/tmp/cairn-test-wal-XXXXXX";

struct seen {
  int n, kinds[2], dbs;
  char last_key[16];
};

static int
count_op (int kind, int db, const void *key, size_t klen, const void *value,
          size_t vlen, void *arg)
{
  struct seen *s = arg;
  (void) value;
  s->n++;
  s->kinds[kind == WAL_PUT ? 0 : 1]++;
  s->dbs += db;
  snprintf (s->last_key, sizeof s->last_key, "%.*s", (int) klen,
            (const char *) key);
  return vlen > 100 ? -EINVAL : 0;
}

static void
test_ops (void)
{
  struct wal_log l = { 0 };
  struct seen s = { 0 };

  wal_log_op (&l, WAL_PUT, WAL_DB_TABLE + 1, "main", 4, "value", 5);
  wal_log_op (&l, WAL_DELETE, WAL_DB_OBJECT + 2, "gone", 4, NULL, 0);
  is_int (wal_ops_walk (l.buf + WAL_HEADER_SIZE, l.len, count_op, &s), 0,
          "two operations walk");
  ok (s.n == 2 && s.kinds[0] == 1 && s.kinds[1] == 1
      && s.dbs == WAL_DB_TABLE + 1 + WAL_DB_OBJECT + 2
      && strcmp (s.last_key, "gone") == 0,
      "a put and a delete come back in order, with their databases");
  is_int (wal_ops_walk (l.buf + WAL_HEADER_SIZE, l.len - 1, count_op, &s),
          -EBADMSG, "a cut operation is refused");
  is_int ((int) wal_record_size (l.len), 4096, "a small record takes 4 KiB");

  static char big[1 << 20];
  for (int i = 0; i < 5 && !l.overflow; i++)
    wal_log_op (&l, WAL_PUT, WAL_DB_TABLE, "k", 1, big, sizeof big);
  ok (l.overflow && l.len == 0 && !l.buf,
      "past WAL_RECORD_MAX the log gives up (the commit flushes twice)");
  wal_log_free (&l);
}

static void
test_records (struct wal *w)
{
  struct wal_log l = { 0 };
  uint8_t *ops;
  size_t len;

  wal_log_op (&l, WAL_PUT, WAL_DB_TABLE, "key", 3, "v1", 2);
  struct wal_job job = { .log = &l, .seq = 7, .off = 8192 };
  is_int (wal_prepare (w, 8192, wal_record_size (l.len)), 0, "prepare");
  is_int (wal_write_start (w, &job), 0, "start");
  is_int (wal_write_wait (w, &job), 0, "the record is written and flushed");
  is_int (wal_read (w, 8192, 7, &ops, &len), 1, "read back");
  ok (len == l.len && memcmp (ops, l.buf + WAL_HEADER_SIZE, len) == 0,
      "with the same operations");
  free (ops);
  is_int (wal_read (w, 8192, 8, &ops, &len), 0,
          "not when another sequence is asked for");
  is_int (wal_read (w, 4096, 7, &ops, &len), 0, "nor at another offset");

  /* A torn record: one byte of its operations differs on disk. */
  uint8_t b;
  ok (pread (w->fd, &b, 1, 8192 + WAL_HEADER_SIZE + 2) == 1, "read a byte");
  b ^= 1;
  ok (pwrite (w->fd, &b, 1, 8192 + WAL_HEADER_SIZE + 2) == 1, "flip it");
  is_int (wal_read (w, 8192, 7, &ops, &len), 0, "a torn record is not read");

  is_int (wal_invalidate (w, 8192), 0, "invalidate");
  is_int (wal_read (w, 8192, 7, &ops, &len), 0, "an invalidated one neither");
  wal_log_free (&l);

  ok (wal_place (w, 0, 4096) == 0 && wal_place (w, 4096, 8192) == 4096,
      "records go after the last one");
  ok (wal_place (w, w->ring - 4096, 8192) == 0,
      "a record that does not fit before the ring's end goes to 0");
}

struct writer {
  struct wal *w;
  int id;
  int failures;
};

/* Each thread writes its records at its own offsets, like transactions of
 * one process that commit one after another and wait at the same time. */
static void *
writer (void *arg)
{
  struct writer *wr = arg;

  for (int i = 0; i < PER_THREAD; i++) {
    struct wal_log l = { 0 };
    char key[32];
    int n = snprintf (key, sizeof key, "t%d-%d", wr->id, i);
    wal_log_op (&l, WAL_PUT, WAL_DB_TABLE, key, n, key, n);
    uint64_t slot = (uint64_t) wr->id * PER_THREAD + i;
    struct wal_job job = { .log = &l, .seq = 1000 + slot, .off = slot * 4096 };
    if (wal_write_start (wr->w, &job) < 0 || wal_write_wait (wr->w, &job) < 0)
      wr->failures++;
    wal_log_free (&l);
  }
  return NULL;
}

static void
test_threads (struct wal *w)
{
  pthread_t th[THREADS];
  struct writer wr[THREADS];
  int missing = 0, failures = 0;

  ok (wal_prepare (w, 0, THREADS * PER_THREAD * 4096) == 0, "prepare");
  for (int i = 0; i < THREADS; i++) {
    wr[i] = (struct writer) { w, i, 0 };
    pthread_create (&th[i], NULL, writer, &wr[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join (th[i], NULL);
    failures += wr[i].failures;
  }
  for (uint64_t slot = 0; slot < THREADS * PER_THREAD; slot++) {
    uint8_t *ops;
    size_t len;
    if (wal_read (w, slot * 4096, 1000 + slot, &ops, &len) != 1)
      missing++;
    free (ops);
  }
  is_int (failures, 0, "no thread saw its record fail");
  is_int (missing, 0, "every record of %d threads x %d is on disk",
          THREADS, PER_THREAD);
}

int
main (void)
{
  struct wal w;

  plan (23);
  if (!mkdtemp (dir))
    return 1;
  is_int (wal_open (&w, dir, false), 0, "open");
  test_ops ();
  test_records (&w);
  test_threads (&w);
  wal_close (&w);
  char cmd[256];
  snprintf (cmd, sizeof cmd, "rm -rf %s", dir);
  if (system (cmd) != 0)
    diag ("could not remove %s", dir);
  return tap_failed ? 1 : 0;
}
