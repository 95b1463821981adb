/* backend.h: where libcairn keeps its bytes.
 *
 * Everything above this interface (trees, commits, branches, gc) speaks in
 * immutable objects named by their SHA-256 and in small mutable records
 * (refs, branch working state, policies).  A backend stores both and gives
 * them transactions.  The local backend (backend-local.c) is an LMDB index
 * beside append-only pack files; a distributed one (Ceph RADOS) can replace
 * it without touching callers, provided it keeps these promises:
 *
 *  - object_put is idempotent: putting an id that exists keeps the old
 *    bytes and only refreshes the object's epoch.
 *  - A write transaction is atomic: on commit every put, record change and
 *    compare-and-swap in it becomes visible and durable together, and the
 *    bytes of every object it names are durable before the names are.
 *    (A RADOS backend would write objects first and publish refs last.)
 *  - A read transaction sees one consistent snapshot and never blocks, or
 *    is blocked by, a writer.
 *  - Epochs: each object carries the gc epoch current when it was last put.
 *    gc bumps the epoch when it starts and deletes only objects that are
 *    unreachable *and* older than that, so an object written or reused
 *    after gc started is never lost (see gc/).
 *
 * Errors: 0 on success or a negative errno.  -ENOENT: no such object or
 * record.  -EEXIST: a compare-and-swap found a different value.  -EBADMSG:
 * stored bytes are corrupt.  -ENOSPC: the disk is full (nothing changed).
 */
#ifndef CAIRN_BACKEND_H
#define CAIRN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/util.h"

enum cairn_object_type {
  CAIRN_OBJECT_CHUNK,           /* volume data, compressed */
  CAIRN_OBJECT_NODE,            /* block-map tree node */
  CAIRN_OBJECT_COMMIT,          /* commit text */
  CAIRN_OBJECT_TYPES
};

/* Mutable records, each table its own key space. */
enum cairn_table {
  CAIRN_TABLE_META,             /* store-wide counters: epoch, next pack, ... */
  CAIRN_TABLE_REFS,             /* heads/NAME, tags/NAME */
  CAIRN_TABLE_WORK,             /* branch working state */
  CAIRN_TABLE_TOMBSTONES,       /* pruned commits (commit id -> time) */
  CAIRN_TABLE_RETENTION,        /* per-branch retention policies */
  CAIRN_TABLE_SESSIONS,         /* live pins and leases (gc) */
  CAIRN_TABLE_VMS,              /* VM records of qemu-glue */
  CAIRN_TABLES
};

/* Flags of a stored object. */
#define CAIRN_OBJECT_ZSTD 1     /* stored bytes are one zstd frame */

struct cairn_object_info {
  uint32_t stored_len;          /* bytes as stored */
  uint32_t raw_len;             /* bytes after decompression */
  uint32_t flags;               /* CAIRN_OBJECT_* */
  uint64_t epoch;               /* gc epoch of the last put */
  uint32_t pack;                /* local backend: pack number of a chunk */
  uint64_t offset;              /* local backend: record offset in it */
};

/* A borrowed byte string, valid until its transaction ends. */
struct cairn_val {
  const void *data;
  size_t len;
};

struct cairn_backend;
struct cairn_btxn;              /* a transaction of one backend */

/* Called for each object or record a scan visits.  Return 0 to go on, a
 * positive value to stop the scan (returned by the scan), or a negative
 * errno to abort it. */
typedef int (*cairn_object_scan_fn) (const struct cairn_id *id,
                                     const struct cairn_object_info *info,
                                     void *arg);
typedef int (*cairn_record_scan_fn) (struct cairn_val key,
                                     struct cairn_val value, void *arg);

struct cairn_backend_ops {
  const char *name;
  void (*close) (struct cairn_backend *b);

  /* Transactions.  At most one write transaction runs at a time across
   * every process using the store; a thread holds at most one. */
  int (*txn_begin) (struct cairn_backend *b, bool write,
                    struct cairn_btxn **txn);
  int (*txn_commit) (struct cairn_btxn *txn);
  void (*txn_abort) (struct cairn_btxn *txn);
  /* Optional: does now the upkeep that a write transaction would soon
   * have to do first (the local backend's checkpoint), so that it falls
   * on a caller with time to spare, such as a branch's sealer, and not
   * on a commit or a flush that someone waits for.  0 if there was
   * nothing to do or it was done. */
  int (*housekeep) (struct cairn_backend *b);

  /* Immutable objects.  put returns 0 if it stored DATA, 1 if the object
   * existed (its epoch is refreshed), -ENOENT if DATA is NULL and the
   * object does not exist (put with no data only refreshes). */
  int (*object_put) (struct cairn_btxn *txn, enum cairn_object_type type,
                     const struct cairn_id *id, const void *data,
                     size_t len, uint32_t raw_len, uint32_t flags);
  /* The stored bytes, valid until TXN ends. */
  int (*object_get) (struct cairn_btxn *txn, enum cairn_object_type type,
                     const struct cairn_id *id, struct cairn_val *data,
                     struct cairn_object_info *info);
  int (*object_stat) (struct cairn_btxn *txn, enum cairn_object_type type,
                      const struct cairn_id *id,
                      struct cairn_object_info *info);
  int (*object_delete) (struct cairn_btxn *txn, enum cairn_object_type type,
                        const struct cairn_id *id);
  /* Visits objects in id order, from the first id >= START. */
  int (*object_scan) (struct cairn_btxn *txn, enum cairn_object_type type,
                      const struct cairn_id *start,
                      cairn_object_scan_fn fn, void *arg);

  /* Mutable records. */
  int (*record_get) (struct cairn_btxn *txn, enum cairn_table table,
                     const void *key, size_t klen, struct cairn_val *value);
  int (*record_put) (struct cairn_btxn *txn, enum cairn_table table,
                     const void *key, size_t klen,
                     const void *value, size_t vlen);
  int (*record_delete) (struct cairn_btxn *txn, enum cairn_table table,
                        const void *key, size_t klen);
  /* Sets KEY to NEW only if it now holds EXPECT (NULL: absent).  NEW NULL
   * deletes.  -EEXIST if the current value differs.  Refs (branches and
   * tags) change only through this, never record_put or record_delete:
   * a backend shared by hosts needs no other ordering of them. */
  int (*record_cas) (struct cairn_btxn *txn, enum cairn_table table,
                     const void *key, size_t klen,
                     const struct cairn_val *expect,
                     const struct cairn_val *new_value);
  /* Deletes every record whose key starts with PREFIX. */
  int (*record_delete_prefix) (struct cairn_btxn *txn, enum cairn_table table,
                               const void *prefix, size_t plen);
  /* Visits records whose key starts with PREFIX, in key order, from the
   * first key >= START (START NULL: from PREFIX). */
  int (*record_scan) (struct cairn_btxn *txn, enum cairn_table table,
                      const void *prefix, size_t plen,
                      const void *start, size_t slen,
                      cairn_record_scan_fn fn, void *arg);

  /* Store-wide statistics for du and gc: bytes in packs, number of packs. */
  int (*space) (struct cairn_backend *b, uint64_t *pack_bytes,
                uint64_t *packs);
};

struct cairn_backend {
  const struct cairn_backend_ops *ops;
};

/* ---- The local backend (backend-local.c) --------------------------
 *
 * STORE/index is one LMDB environment with a named database per object
 * type and per record table, beside its redo log (redo.h).  Chunks live
 * in packs (STORE/packs, pack.h) and the index holds their location;
 * tree nodes and commits are small and live inline in the index.  Keys
 * sort as bytes (LMDB's default).  Where each database's records are
 * laid out:
 *
 *   DATABASE     KEY                        VALUE'S FORMAT
 *   chunks       chunk id (32 bytes)        below
 *   nodes        node id (32 bytes)         below; the node: store.h, Trees
 *   commits      commit id (32 bytes)       below; the text: store.h, Commits
 *   meta         a name (text)              below
 *   refs         heads/NAME, tags/NAME      store.h, Refs
 *   work         wid + chunk index (16)     store.h, Branches
 *   tombstones   commit id (32 bytes)       store.h, Commits
 *   retention    branch name (text)         retention/prune.h
 *   sessions     pin/..., lease/... (text)  store.h, Pins
 *   vms          VM name (text)             qemu-glue/vm.h
 *
 * Text keys carry no terminating NUL.  Integers are little-endian unless
 * a table says otherwise.
 *
 * "chunks"  key: chunk id, the SHA-256 of the raw chunk
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  pack number
 *        4     4  flags (CAIRN_OBJECT_ZSTD)
 *        8     8  offset of the record in the pack
 *       16     4  stored length
 *       20     4  raw length
 *       24     8  gc epoch of the last put
 *
 * "nodes", "commits"  key: object id, the SHA-256 of the object's bytes
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     8  gc epoch of the last put
 *        8     n  the object's bytes (n = value length - 8)
 *
 * "meta"  key: a name; value: one integer, by name (an absent name reads
 * as 0):
 *
 *   KEY           OFFSET  SIZE  DESCRIPTION
 *   "format"           0     4  index format version, 1 (cairn_store_init)
 *   "epoch"            0     8  current gc epoch (gc/ bumps it when a run
 *                               starts)
 *   "next-pack"        0     4  lowest pack number never handed out
 *   "next-wid"         0     8  the last branch-volume working id handed
 *                               out: the next one is this plus 1
 *   "lsn"              0     8  the lsn (redo.h) of the last transaction
 *                               logged or replayed into the index
 *   "redo-at"          0     8  the offset in the redo log where that
 *                               transaction's record ends
 */

/* The local backend over STORE/index (LMDB) and STORE/packs.  READONLY
 * opens without taking part in writes (no pack is opened). */
int cairn_backend_local_open (const char *store_path, bool readonly,
                              struct cairn_backend **b);

/* Turns every fsync off (NOSYNC), so that a benchmark can measure the
 * metadata cost of an operation apart from the disk's flush latency.
 * Never for real use: a crash may then lose or corrupt the store. */
void cairn_backend_local_set_nosync (struct cairn_backend *b, bool nosync);

/* ---- Pack maintenance, for gc ------------------------------------
 *
 * gc/ reclaims pack space through these functions, and nothing else should
 * call them.  They belong to the local backend (backend-local.c) and return
 * -ENOTSUP on any other.  The rules that keep compaction safe against
 * writers, readers and kill -9 (gc/compact.c tells why they suffice):
 *
 *  - gc touches a pack only while it holds it with cairn_pack_hold(), the
 *    flock a writer takes before it appends: nobody appends to a held pack,
 *    and a pack a writer holds is left alone;
 *  - a pack is unlinked only inside a write transaction, so no writer is
 *    between opening it and locking it (writers pick packs only inside
 *    write transactions), and only once the index names no record in it;
 *  - a compaction output gets a fresh number from next-pack: numbers are
 *    never reused, so a cached descriptor always means the same file.
 */
struct cairn_pack_stat {
  uint32_t pack;
  uint64_t size;                /* bytes in the file */
  bool writable;                /* no writer holds it right now */
};

/* Lists the pack files, by number, into *PACKS (malloc'd; the caller
 * frees it) and *N. */
int cairn_packs_list (struct cairn_backend *b, struct cairn_pack_stat **packs,
                      size_t *n);

/* Takes the writer lock of pack NUMBER without waiting: 0 and *FD, open
 * read-only, whose close lets go; -EAGAIN if a writer holds the pack;
 * -ENOENT if there is no such pack. */
int cairn_pack_hold (struct cairn_backend *b, uint32_t number, int *fd);

/* A pack that compaction writes. */
struct cairn_pack_out;

/* Writes out what OUT got since the last call and waits until it is on
 * disk, without a sync of metadata: so that a writer's fsync never finds
 * more than that much of gc's data dirty in the page cache. */
int cairn_pack_out_write_behind (struct cairn_pack_out *out);
/* Takes the lowest free pack number at or above next-pack for a new
 * pack, in write transaction TXN (next-pack moves past it). */
int cairn_pack_out_reserve (struct cairn_btxn *txn, uint32_t *number);
/* Creates pack NUMBER (reserved), held by OUT, outside any transaction:
 * it is made under another name, locked, synced, then linked in place,
 * so no writer ever sees it unlocked.  -EEXIST if the number is taken. */
int cairn_pack_out_create (struct cairn_backend *b, uint32_t number,
                           struct cairn_pack_out **out);
/* Removes the temporary files of packs a killed gc was making (only gc,
 * holding its lock, may call this). */
int cairn_pack_out_remove_stale (struct cairn_backend *b);
/* Appends a copy of chunk ID's record, read from held pack SRC_FD at
 * INFO->offset, to OUT; *OFFSET gets its place in OUT.  -EBADMSG if the
 * source record does not match ID and INFO's lengths and flags. */
int cairn_pack_out_copy (struct cairn_pack_out *out, int src_fd,
                         const struct cairn_id *id,
                         const struct cairn_object_info *info,
                         uint64_t *offset);
/* Size at which a pack is full (CAIRN_PACK_LIMIT, else 256 MiB): an
 * output rolls over to a new pack there, as writers do. */
uint64_t cairn_pack_limit (struct cairn_backend *b);
uint32_t cairn_pack_out_number (const struct cairn_pack_out *out);
uint64_t cairn_pack_out_size (const struct cairn_pack_out *out);
/* fdatasync of every record copied so far: it must return before a
 * transaction names one of them. */
int cairn_pack_out_sync (struct cairn_pack_out *out);
/* Syncs and closes OUT, letting go of its lock. */
int cairn_pack_out_close (struct cairn_pack_out *out);

/* In write transaction TXN, points chunk ID's entry at (TO_PACK,
 * TO_OFFSET) if it still names (FROM_PACK, FROM_OFFSET), keeping its
 * epoch and lengths: 0 if it moved, 1 if the entry is gone or names
 * another place (then nothing changed). */
int cairn_chunk_relocate (struct cairn_btxn *txn, const struct cairn_id *id,
                          uint32_t from_pack, uint64_t from_offset,
                          uint32_t to_pack, uint64_t to_offset);

/* Cuts pack NUMBER down to SIZE bytes, and syncs it, so that its space
 * goes back in steps (a big unlink on a filesystem mounted with discard
 * stalls every other sync for a while).  Same rules as an unlink: the
 * caller holds it (HOLD_FD) and knows that the index names nothing in it;
 * no transaction is needed, since no writer can adopt a held pack. */
int cairn_pack_shrink (struct cairn_backend *b, uint32_t number, int hold_fd,
                       uint64_t size);

/* Unlinks pack NUMBER inside write transaction TXN and drops this
 * process's cached descriptor of it.  The caller holds the pack and knows
 * that the index names nothing in it.  The packs directory is not synced:
 * cairn_packs_sync_dir() does that once for many unlinks. */
int cairn_pack_unlink (struct cairn_btxn *txn, uint32_t number);
int cairn_packs_sync_dir (struct cairn_backend *b);

/* Snapshots of the index.  cairn_btxn_snapshot() is TXN's id: a write
 * transaction's changes are seen by every snapshot with an id at or above
 * its own.  cairn_index_oldest_reader() is the oldest snapshot that a live
 * read transaction of any process holds, UINT64_MAX if none (slots of dead
 * processes are cleared first). */
uint64_t cairn_btxn_snapshot (struct cairn_btxn *txn);
int cairn_index_oldest_reader (struct cairn_backend *b, uint64_t *snapshot);

/* The backend transaction under a store transaction (store.c). */
struct cairn_txn;
struct cairn_btxn *cairn_txn_backend (struct cairn_txn *txn);
/* ---- end of pack maintenance, for gc ------------------------------ */

#endif /* CAIRN_BACKEND_H */
