/* internal.h: what libcairn's modules share and adapters do not see. */
#ifndef CAIRN_INTERNAL_H
#define CAIRN_INTERNAL_H

#include <pthread.h>

#include "store/store.h"

struct chunk_cache;

struct cairn_store {
  char *path;
  struct cairn_backend *backend;
  uint32_t chunk_size;
  int compress_level;           /* -1: none */
  bool readonly;
  struct chunk_cache *cache;
};

/* A store transaction: the backend's, and the store it belongs to. */
struct cairn_txn {
  struct cairn_store *s;
  struct cairn_btxn *bt;
  bool write;
  /* Tree updates only (0: never): after this many node puts, the tree
   * code commits what it has put and goes on in a new transaction, so
   * that the pages a big update dirties stay bounded.  Only for a writer
   * whose new nodes a pin keeps from gc until its last part commits. */
  unsigned checkpoint_nodes;
  unsigned nodes_put;
};

/* Commits what TXN holds and goes on in a new write transaction of the
 * same store (TXN stays valid; pointers into the old one do not). */
int txn_checkpoint (struct cairn_txn *txn);

/* The backend's housekeeping (its housekeep op), if it has any: for
 * callers with time to spare, such as a branch's sealer. */
int store_housekeep (struct cairn_store *s);

/* cairn_txn_begin, also for writing on a read-only store: only for the
 * session records of pins and leases (pin.c). */
int txn_begin_session (struct cairn_store *s, bool write,
                       struct cairn_txn **txn);

/* Backend shorthands. */
#define BE(s) ((s)->backend)
#define BOPS(s) ((s)->backend->ops)
#define TOPS(txn) ((txn)->s->backend->ops)

/* cache.c: decompressed, verified chunks by id, LRU, sharded. */
struct chunk_cache *chunk_cache_new (uint64_t capacity, uint32_t chunk_size);
void chunk_cache_free (struct chunk_cache *c);
void chunk_cache_set_capacity (struct chunk_cache *c, uint64_t capacity);
/* Copies LEN bytes at OFF of chunk ID into BUF if cached. */
bool chunk_cache_get (struct chunk_cache *c, const struct cairn_id *id,
                      void *buf, size_t off, size_t len);
/* Inserts chunk ID; takes ownership of DATA (from chunk_cache_buffer). */
void chunk_cache_insert (struct chunk_cache *c, const struct cairn_id *id,
                         void *data);
/* A chunk-size buffer, recycled if one is spare; chunk_cache_release
 * gives one back. */
void *chunk_cache_buffer (struct chunk_cache *c);
void chunk_cache_release (struct chunk_cache *c, void *data);

/* tree.c */
#define TREE_FANOUT_BITS 6
#define TREE_FANOUT (1 << TREE_FANOUT_BITS)
_Static_assert (TREE_FANOUT == CAIRN_TREE_FANOUT, "store.h's fan-out");
#define TREE_MAX_LEVELS CAIRN_TREE_MAX_LEVELS   /* 66 bits of chunk index */
/* The chunk id at INDEX of tree ROOT. */
int tree_lookup (struct cairn_txn *txn, const struct cairn_id *root,
                 unsigned levels, uint64_t index, struct cairn_id *id);
/* The TREE_FANOUT chunk ids of tree ROOT's leaf that holds INDEX (the
 * one at INDEX & (TREE_FANOUT - 1) is INDEX's; holes are zero). */
int tree_leaf (struct cairn_txn *txn, const struct cairn_id *root,
               unsigned levels, uint64_t index,
               struct cairn_id child[TREE_FANOUT]);
struct tree_change {
  uint64_t index;
  struct cairn_id id;
};
/* Applies CHANGES (sorted by index, unique) to ROOT; writes O(changes x
 * height) new nodes and shares every other node with ROOT. */
int tree_update (struct cairn_txn *txn, const struct cairn_id *root,
                 unsigned levels, const struct tree_change *changes,
                 size_t n, struct cairn_id *new_root);

/* commit.c: a commit object from parts, stored in TXN. */
int commit_store (struct cairn_txn *txn, const struct cairn_commit *c,
                  struct cairn_id *id);

/* ref.c: branch records (format in store.h, Refs). */
int branch_info_decode (const void *data, size_t len,
                        struct cairn_branch_info *info);
int branch_info_encode (const struct cairn_branch_info *info, void **data,
                        size_t *len);
void branch_ref_key (const char *name, char *key, size_t len);
/* A fresh working id for a branch volume (bumps meta next-wid). */
int branch_new_wid (struct cairn_txn *txn, uint64_t *wid);
/* Escapes a branch name for use as one file name ('/' -> "%2F"). */
void branch_file_name (const char *name, char *buf, size_t len);
/* 0 if branch NAME exists, else CAIRN_ENOREF (with its message) or an
 * error: what refuses an unknown name before branch_lock makes its lock
 * file. */
int branch_known (struct cairn_store *s, const char *name);
/* Takes the writer lock of branch NAME: CAIRN_EHELD (naming the holder's
 * pid) if another process has it. */
int branch_lock (struct cairn_store *s, const char *name, int *fd);
void branch_unlock (int fd);
/* Deletes the working-state records of a branch volume. */
int work_delete_all (struct cairn_txn *txn, uint64_t wid);
/* Working-state records (the "work" table; format in store.h): the
 * flag in byte 1 of those that end in their 8-byte epoch, and that
 * epoch (1 for a record without one).  A record whose epoch is at most
 * its branch's absorbed epoch is stale: a commit holds its content. */
#define WORK_HAS_EPOCH 1
uint64_t work_record_epoch (const void *value, size_t len);

/* Reads any store-wide META u64 counter (0 if absent). */
int meta_get_u64 (struct cairn_txn *txn, const char *name, uint64_t *v);
int meta_put_u64 (struct cairn_txn *txn, const char *name, uint64_t v);

/* chunk.c: puts sealed chunk C; if it was known but gc deleted it since,
 * compresses RAW again and puts that (-ENOENT if RAW is NULL).  *ADDED
 * (if not NULL): whether the store did not have it before. */
int chunk_put_or_reseal (struct cairn_txn *txn, const void *raw,
                         struct cairn_sealed *c, bool *added);

#endif /* CAIRN_INTERNAL_H */
