/* redo.h: the index's redo log and checkpoints (internal to the local
 * backend).
 *
 * LMDB makes a transaction durable with two flushes of scattered pages:
 * the pages the transaction wrote, then the meta page.  A commit touches
 * about ten pages, so that cost most of a durable commit's latency.  The
 * local backend instead runs LMDB with MDB_NOSYNC and makes each write
 * transaction durable with one append to this log: the transaction's
 * changes (every put and delete it made, as a redo record), written
 * before mdb_txn_commit and fdatasynced after it: the disk writes the
 * record (sync_file_range) while LMDB writes its pages, and the commit
 * returns once the flush is done.  Others may see a state whose record
 * is not durable yet, for that long; any write txn after it logs after
 * it, so its own flush covers the record too, and whatever acts outside
 * the index on what it reads (unlinking a pack) flushes the log first.
 * A failed flush fails that commit and every write after it in the
 * process (the log's state on the disk is then unknown); the next open
 * recovers as after a kill.  A checkpoint flushes LMDB's file
 * (mdb_env_sync) and starts the log again from its beginning.  A write
 * txn takes one first when the log is long; a branch's sealer takes it
 * sooner (the backend's housekeep op: after 24 records, or three quarters
 * of the other limits), so that the milliseconds of flushing seldom fall
 * on a commit, and LMDB reuses the pages it frees soon.
 *
 * What this has to survive:
 *
 *  - A process killed (kill -9): the page cache holds every committed
 *    transaction and every record written, so LMDB is consistent.  At
 *    most one record was logged whose mdb_txn_commit never ran; nobody
 *    saw its state and nobody was told it committed, so the next
 *    writable open voids it (and flushes the void): what readers saw
 *    after the kill stays true.
 *
 *  - The machine losing power: LMDB's file on disk holds the checkpoint's
 *    pages plus any later page the kernel happened to write back, perhaps
 *    a newer meta page whose tree never reached the disk.  So a
 *    checkpoint keeps a copy of the two meta pages, and a writable open
 *    in a later boot (boot_id changed) writes them back before LMDB reads
 *    them, then applies the log from its start.  For that to be sound,
 *    the checkpoint's pages must not be overwritten before the next
 *    checkpoint: every process that writes holds a read transaction open
 *    on the checkpoint's snapshot (its "pin"), which stops LMDB from
 *    reusing them.  A process writes only while it pins the current
 *    checkpoint; one that does not, checkpoints first.
 *
 * Files, in STORE/index/:
 *
 *   redo        the log: records from offset 0, each at the offset where
 *               the previous one ended; past the last, garbage or older
 *               records (a lower lsn).  Kept allocated (zero-filled ahead)
 *               so that appends are overwrites, not file growth.
 *   redo.ckpt   the checkpoint: two slots written in turn, the valid one
 *               with the higher sequence number wins.
 *
 * Redo record (little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  magic "crd1"
 *        4     4  payload length n
 *        8     8  lsn: the index's log sequence number after this record
 *       16     4  CRC-32C of bytes 0..15 and of the payload
 *       20     4  zero
 *       24     n  payload: operations, applied in order
 *
 * Operation:
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     1  1 put, 2 delete, 3 delete every key with this prefix
 *        1     1  database: 0-2 objects by type, 3 and up tables
 *        2     2  zero
 *        4     4  key length k
 *        8     4  value length v (0 unless put)
 *       12     k  key
 *     12+k     v  value
 *
 * Checkpoint slot (slot i at offset i * REDO_SLOT_SIZE):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  magic "cck1"
 *        4     4  CRC-32C of bytes 8 .. 207
 *        8     8  sequence number
 *       16     8  lsn of the index the checkpoint flushed
 *       24     8  LMDB transaction id of that state
 *       32     4  LMDB page size p
 *       36     4  CRC-32C of the meta pages (bytes 208 .. 208 + 2p - 1)
 *       40    40  boot id of the machine (/proc/sys/kernel/random/boot_id)
 *       80   128  the transaction ids of the last 16 checkpoints, newest
 *                 first: the pins any process may still hold, which gc
 *                 does not wait for
 *      208    2p  LMDB's meta pages 0 and 1 as the checkpoint left them
 *
 * The index's "meta" table holds "lsn" and "redo-at" (backend.h).  The
 * next record goes at redo-at, or at 0 if the index's lsn is the
 * checkpoint's (nothing logged since it).
 */
#ifndef CAIRN_REDO_H
#define CAIRN_REDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDO_RECORD_HEADER 24
#define REDO_OP_HEADER 12
#define REDO_SLOT_SIZE (64 * 1024)
#define REDO_SLOT_HEADER 208
#define REDO_PINS 16
#define REDO_BOOT_ID_SIZE 40

enum redo_op { REDO_PUT = 1, REDO_DELETE = 2, REDO_DELETE_PREFIX = 3 };

/* A transaction's operations, as its record's payload. */
struct redo_buf {
  uint8_t *p;
  size_t len, cap;
};

int redo_buf_add (struct redo_buf *b, enum redo_op op, unsigned db,
                  const void *key, size_t klen, const void *val, size_t vlen);
void redo_buf_free (struct redo_buf *b);

struct redo_ckpt {
  uint64_t seq;
  uint64_t lsn;
  uint64_t txnid;
  uint32_t psize;
  char boot_id[REDO_BOOT_ID_SIZE];
  uint64_t pins[REDO_PINS];
  uint8_t *metas;               /* 2 * psize bytes, owned */
};

struct redo_log {
  int fd;                       /* the log */
  int ckpt_fd;                  /* the checkpoint file */
  uint64_t allocated;           /* zero-filled bytes of the log */
  _Atomic int err;              /* of a flush that failed, for ever */
};

/* Opens (creating if asked) INDEX_DIR/redo and redo.ckpt. */
int redo_open (struct redo_log *l, const char *index_dir, bool create);
void redo_close (struct redo_log *l);

/* Writes the record for LSN with B's operations at OFF (it ends
 * REDO_RECORD_HEADER + b->len later) and starts writing it to the disk;
 * redo_flush makes it durable. */
int redo_append (struct redo_log *l, uint64_t off, uint64_t lsn,
                 const struct redo_buf *b);
/* Flushes what the log holds (fdatasync).  Once a flush has failed, what
 * the log holds is not known to be on the disk: that and every later
 * flush fail with its error. */
int redo_flush (struct redo_log *l);
/* The error of a flush that failed, or 0. */
int redo_flush_error (const struct redo_log *l);
/* Makes the record at OFF unreadable (its transaction did not commit). */
int redo_void (struct redo_log *l, uint64_t off);

/* Called for each operation of a replayed record. */
typedef int (*redo_apply_fn) (void *arg, enum redo_op op, unsigned db,
                              const void *key, size_t klen,
                              const void *val, size_t vlen);
/* Applies the records from OFF on whose lsns run on from *LSN + 1, and
 * stops at the first that does not (or is torn).  *LSN and *OFF are left
 * after the last applied.  Returns the number applied. */
int redo_replay (struct redo_log *l, uint64_t *off, uint64_t *lsn,
                 redo_apply_fn fn, void *arg);

/* The current checkpoint: 0, -ENOENT if none was ever written, or an
 * error.  With METAS false, c->metas is left NULL. */
int redo_ckpt_read (struct redo_log *l, struct redo_ckpt *c, bool metas);
/* Writes C to slot c->seq & 1 and fdatasyncs it.  c->seq must be one past
 * the current checkpoint's (1 for the first): the slot written is then
 * never the current one. */
int redo_ckpt_write (struct redo_log *l, struct redo_ckpt *c);
void redo_ckpt_free (struct redo_ckpt *c);

/* This boot's id (CAIRN_TEST_BOOT_ID overrides it, for tests). */
void redo_boot_id (char out[REDO_BOOT_ID_SIZE]);

#endif
