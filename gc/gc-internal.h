/* gc-internal.h: what gc.c, compact.c and fsck.c share. */
#ifndef CAIRN_GC_INTERNAL_H
#define CAIRN_GC_INTERNAL_H

#include "gc/gc.h"
#include "store/idset.h"

/* Sizes of the store's formats that gc counts with (store/store.h,
 * store/pack.h, store/backend.h). */
#define GC_MAX_LEVELS CAIRN_TREE_MAX_LEVELS
#define GC_FANOUT CAIRN_TREE_FANOUT
#define GC_PACK_HEADER 16       /* a pack file's header */
#define GC_RECORD_OVERHEAD 48   /* a chunk record's header in a pack */
#define GC_INLINE_OVERHEAD 8    /* an inline object's epoch in the index */
/* Least pause between two of gc's write transactions, so that writers
 * get the lock; gc also pauses as long as the transaction took, to hold
 * the lock (and its syncs) at most half the time. */
#define GC_PAUSE_NS (200 * 1000)

/* ---- markset.c: a set of chunk-id fingerprints ---------------------- */

/* The first 8 bytes of each id, in an open-addressed table: 8 bytes per
 * chunk instead of an exact set's 48.  Two ids may share a fingerprint;
 * then an unreachable chunk looks reachable and is kept, which only
 * wastes its bytes (SHA-256 makes it as rare as 1 in 2^64 per pair), so
 * this set may decide what to keep but never what a tree node reaches. */
struct markset {
  uint64_t *slots;              /* 0: empty */
  size_t cap;                   /* power of two */
  size_t count;
};

void markset_init (struct markset *m);
void markset_free (struct markset *m);
/* 0, or -ENOMEM. */
int markset_add (struct markset *m, const struct cairn_id *id);
bool markset_has (const struct markset *m, const struct cairn_id *id);

/* ---- roots.c: what the store's roots are ---------------------------- */

struct gc_root_commit {
  struct cairn_id id;
  bool pruned;                  /* a tombstone kept by a ref or a lease */
};

struct gc_branch {
  char name[CAIRN_NAME_MAX + 1];
  struct cairn_id base;
};

/* A volume root of a branch record. */
struct gc_root_tree {
  struct cairn_id root;
  unsigned levels;
  size_t branch;                /* index in branches */
};

/* A chunk a working-state record names. */
struct gc_root_chunk {
  struct cairn_id id;
  size_t branch;                /* SIZE_MAX: a record of no branch */
  bool underlay;                /* of a chunk being written, not sealed */
  uint64_t index;               /* the chunk's index in its volume */
};

struct gc_tag {
  char name[CAIRN_NAME_MAX + 1];
  struct cairn_id commit;
};

struct gc_extra {
  struct cairn_id commit;
  char why[64];
};

struct gc_roots {
  struct gc_root_commit *commits;
  size_t ncommits;
  uint64_t all_commits, tombstones;
  struct gc_branch *branches;
  size_t nbranches;
  struct gc_root_tree *trees;
  size_t ntrees;
  struct gc_root_chunk *chunks;
  size_t nchunks;
  struct gc_tag *tags;
  size_t ntags;
  struct cairn_id *leases;
  size_t nleases;
  struct gc_extra *extras;
  size_t nextras;
};

/* Loads the roots as TXN sees them (leases: as of now, which is after
 * TXN began, so that a lease taken since names a commit TXN shows). */
int gc_roots_load (struct cairn_store *s, struct cairn_txn *txn,
                   cairn_extra_roots_fn extra, void *extra_arg,
                   struct gc_roots *roots);
void gc_roots_free (struct gc_roots *roots);

/* ---- shared helpers (gc.c) ------------------------------------------ */

/* Takes STORE/run/gc.lock for WHAT ("gc", "fsck"): *FD, or -EBUSY. */
int gc_lock (struct cairn_store *s, const char *what, int *fd);
void gc_unlock (int fd);

void gc_sleep_ns (int64_t ns);

/* Visits every object of TYPE in TXN's snapshot. */
int gc_object_scan (struct cairn_store *s, struct cairn_txn *txn,
                    enum cairn_object_type type, cairn_object_scan_fn fn,
                    void *arg);

/* ---- compact.c ------------------------------------------------------ */

/* Compacts the packs of S whose live fraction is below BELOW (negative:
 * none; packs with nothing live are unlinked whatever BELOW is), filling
 * the pack fields of REPORT.  Dry (O->dry_run), it only plans, counting
 * as dead the chunks a sweep would delete: those neither in MARKED nor
 * at or above epoch CUTOFF. */
int gc_compact (struct cairn_store *s, const struct cairn_gc_options *o,
                double below, const struct markset *marked, uint64_t cutoff,
                struct cairn_gc_report *report);

/* Commits TXN, accounting for it in REPORT and telling O's step hook. */
int gc_txn_commit (struct cairn_store *s, struct cairn_txn *txn,
                   int64_t began_ns, const struct cairn_gc_options *o,
                   struct cairn_gc_report *report, const char *phase);
void gc_step (const struct cairn_gc_options *o, const char *phase);
/* Counts a write transaction that held the lock since BEGAN_NS. */
void gc_txn_account (struct cairn_gc_report *report, int64_t began_ns,
                     const char *phase);

#endif /* CAIRN_GC_INTERNAL_H */
