/* wal.h: the index's write-ahead log, STORE/index/wal.
 *
 * Why it exists: LMDB makes a write transaction durable with two device
 * flushes in a row, its pages and then its meta page, so every commit and
 * branch paid two flush latencies.  With the log, LMDB runs with
 * MDB_NOMETASYNC (pages flushed, then the meta page written but not
 * flushed: a crash may undo the last transaction, it never corrupts the
 * index), and the transaction's changes are also written to this file and
 * flushed by a helper thread while LMDB flushes its pages.  A transaction
 * returns when both flushes are done: one flush latency.  Opening the
 * store replays a record whose transaction LMDB lost.
 *
 * The file is a ring of records at 4096-byte aligned offsets, at most
 * WAL_RING_SIZE bytes ($CAIRN_TEST_WAL_RING in tests); a record that would
 * not fit before that goes to offset 0.  The index's "meta" table says where replay starts: "wal-seq"
 * (8 bytes) is the sequence number of the last record applied, "wal-off"
 * (8 bytes) the offset of the next record.  Replay applies the record with
 * sequence wal-seq + 1 found at wal-off, or else at 0, and repeats.  A
 * record older than the last one may be overwritten: its transaction's
 * meta page was flushed by the next transaction's page flush.
 *
 * Record (little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     8  magic "cairnwal"
 *        8     8  sequence number
 *       16     4  n, length of the operations
 *       20     4  reserved, 0
 *       24    32  SHA-256 of bytes 0..23 and of the operations
 *       56     n  operations, in the order the transaction made them
 *
 * Operation:
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     1  kind: 1 put, 2 delete
 *        1     1  database: WAL_DB_OBJECT + object type, or
 *                 WAL_DB_TABLE + table (backend.h)
 *        2     2  k, key length
 *        4     4  v, value length (0 for a delete)
 *        8     k  key
 *      8+k     v  value
 *
 * A transaction whose record exceeds a quarter of the ring (so that it can
 * never overwrite the record before it) is not logged: it commits with
 * both of LMDB's flushes, as before the log existed.
 */
#ifndef CAIRN_WAL_H
#define CAIRN_WAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_RING_SIZE (16ULL << 20)
#define WAL_RECORD_MAX (4U << 20)
#define WAL_HEADER_SIZE 56
#define WAL_OP_HEADER_SIZE 8

enum { WAL_PUT = 1, WAL_DELETE = 2 };
enum { WAL_DB_OBJECT = 0, WAL_DB_TABLE = 16 };

/* One transaction's operations, as they are made. */
struct wal_log {
  uint8_t *buf;                 /* WAL_HEADER_SIZE bytes kept free first */
  size_t len, cap;              /* operations' bytes */
  bool overflow;                /* too big or out of memory: not logged */
};

void wal_log_free (struct wal_log *l);
void wal_log_op (struct wal_log *l, int kind, int db, const void *key,
                 size_t klen, const void *value, size_t vlen);

/* A record's size in the file, for LEN bytes of operations: header and
 * operations, 4096-aligned. */
uint64_t wal_record_size (size_t len);

/* Walks a record's operations; FN returning non-zero stops the walk. */
typedef int (*wal_op_fn) (int kind, int db, const void *key, size_t klen,
                          const void *value, size_t vlen, void *arg);
int wal_ops_walk (const uint8_t *ops, size_t len, wal_op_fn fn, void *arg);

/* A record handed to the helper thread, owned by the caller. */
struct wal_job {
  const struct wal_log *log;
  uint64_t seq, off;
  bool done;                    /* guarded by the wal's lock */
  int result;
};

/* The file, and the helper thread that writes and flushes records, one
 * at a time: the next job waits for the one in flight. */
struct wal {
  int fd;                       /* -1: no log, commits flush twice */
  uint64_t ring;                /* the file's size limit */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
  bool started, stop;
  struct wal_job *job;          /* guarded by lock: in flight or waiting */
};

int wal_open (struct wal *w, const char *index_dir, bool readonly);
void wal_close (struct wal *w);

/* Where a record of SIZE bytes goes when the last one ended at END. */
uint64_t wal_place (const struct wal *w, uint64_t end, uint64_t size);

/* Makes sure [OFF, OFF+SIZE) exists as written blocks, so that flushing a
 * record there is a data flush and no allocation.  Only inside the write
 * transaction: the file grows under LMDB's writer lock. */
int wal_prepare (struct wal *w, uint64_t off, uint64_t size);

/* Hands JOB to the helper thread, which checksums, writes and flushes its
 * record; wal_write_wait returns its result.  JOB and its log must stay
 * unchanged until then. */
int wal_write_start (struct wal *w, struct wal_job *job);
int wal_write_wait (struct wal *w, struct wal_job *job);

/* Overwrites the record header at OFF with zeros, durably. */
int wal_invalidate (struct wal *w, uint64_t off);

/* Reads the record at OFF if it is whole and has sequence SEQ: returns 1
 * and its operations in *OPS (malloc'd) and *LEN; 0 if there is none. */
int wal_read (struct wal *w, uint64_t off, uint64_t seq, uint8_t **ops,
              size_t *len);

#endif
