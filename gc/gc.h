/* gc.h: reclaiming what nothing reaches, and proving nothing is lost.
 *
 * cairn_gc() marks every object reachable from the store's roots, deletes
 * the chunks and tree nodes nothing reaches, and compacts packs that are
 * mostly garbage.  It runs while writers write and commit: it never
 * deletes an object written or reused after it started (epochs, see
 * gc.c), and it holds the index's write lock only in short transactions.
 * cairn_fsck() checks that every ref resolves and that every reachable
 * object is there and intact, and names what damage affects.
 *
 * Roots, the same for both:
 *   - every commit that is not a tombstone: its volumes' trees;
 *   - every branch: its base commit, the volume roots of its record, and
 *     the chunks its working state names (sealed chunks, and the underlay
 *     chunks of blocks being written);
 *   - every tag's commit and every live lease's commit (cairnfs), even if
 *     retention pruned it since: their data stays as long as it is there;
 *   - whatever an extra-roots hook adds (qemu-glue: commits VMs run from).
 *
 * Commit objects themselves are never deleted: a tombstone keeps its text
 * so that history stays walkable.
 *
 * Errors: 0 or a negative errno / CAIRN_E* code, with a sentence in
 * cairn_last_error().  Neither function prints.
 */
#ifndef CAIRN_GC_H
#define CAIRN_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Extra roots: commits that only another component knows must keep their
 * data (qemu-glue's VM records).  The hook calls ADD (with CTX) for each,
 * with a short reason ("vm web"), reading what it needs through TXN.  It
 * returns 0 or a negative errno; an error stops gc and fsck. */
typedef int (*cairn_add_commit_fn) (void *ctx, const struct cairn_id *commit,
                                    const char *why);
typedef int (*cairn_extra_roots_fn) (struct cairn_store *s,
                                     struct cairn_txn *txn,
                                     cairn_add_commit_fn add, void *ctx,
                                     void *arg);

/* Packs whose live fraction is below this are compacted by default. */
#define CAIRN_GC_COMPACT_BELOW 0.8
/* The longest write transaction a sweep or relocation holds, by default. */
#define CAIRN_GC_TXN_MS 2

struct cairn_gc_options {
  bool dry_run;                 /* change nothing; report what would go */
  /* Compact packs with less than this fraction of live bytes (0: the
   * default, CAIRN_GC_COMPACT_BELOW; negative: never compact). */
  double compact_below;
  unsigned txn_ms;              /* 0: CAIRN_GC_TXN_MS */
  /* At most this many objects deleted or moved per write transaction
   * (0: no limit but txn_ms).  Tests use it to make many small steps. */
  unsigned txn_objects;
  /* How long to wait for readers older than a compaction before unlinking
   * the old packs; past it the unlink waits for the next gc.  0: 2000. */
  unsigned reader_wait_ms;
  cairn_extra_roots_fn extra_roots;
  void *extra_roots_arg;
  /* Called after every step that changed the store durably (a committed
   * transaction, a pack created or unlinked), naming the phase: "epoch",
   * "sweep", "reserve" (a pack number), "pack", "relocate", "shrink" (a
   * compacted pack cut shorter), "unlink".  For progress, and for tests
   * that kill gc between any two steps. */
  void (*step) (void *arg, const char *phase);
  void *step_arg;
};

struct cairn_gc_report {
  bool dry_run;
  uint64_t epoch;               /* the epoch this run started */
  uint64_t sweep_below;         /* objects older than this could go */
  /* mark */
  uint64_t root_commits;        /* commits whose volumes were roots */
  uint64_t nodes_marked;        /* distinct tree nodes reachable */
  uint64_t chunks_marked;       /* distinct chunks reachable (about) */
  uint64_t chunk_refs;          /* chunk ids read in marked leaves */
  /* sweep */
  uint64_t nodes_swept, node_bytes_swept;
  uint64_t chunks_swept, chunk_bytes_swept;
  uint64_t young_kept;          /* unreachable but too new to delete */
  /* compaction */
  uint64_t packs_before, pack_bytes_before;
  uint64_t packs_after, pack_bytes_after;
  uint64_t packs_busy;          /* held by a writer: left alone */
  uint64_t packs_compacted;     /* rewritten */
  uint64_t packs_emptied;       /* unlinked with nothing live in them */
  uint64_t packs_deferred;      /* emptied, unlink left to the next gc */
  uint64_t bytes_copied;        /* live records copied to new packs */
  uint64_t packs_written;
  /* pack bytes this run gave back to the filesystem (what a dry run
   * would give back) and index bytes freed for reuse */
  uint64_t reclaimed_bytes;
  uint64_t index_bytes_freed;
  /* costs */
  uint64_t txns;                /* write transactions gc committed */
  int64_t longest_txn_ns;       /* the longest of them */
  const char *longest_txn_phase;  /* and its phase (a static string) */
  int64_t mark_ns, sweep_ns, compact_ns, total_ns;
};

/* Runs one gc.  Takes STORE/run/gc.lock: -EBUSY (with a message) if
 * another gc or an fsck runs.  O may be NULL for the defaults.  A store
 * in which a reachable tree node or commit is missing or corrupt is not
 * swept: -EBADMSG, with a message saying to run cairn fsck (nothing is
 * deleted on a guess).  REPORT is filled in as far as the run got. */
int cairn_gc (struct cairn_store *s, const struct cairn_gc_options *o,
              struct cairn_gc_report *report);

/* ---- fsck ------------------------------------------------------------ */

struct cairn_fsck_options {
  bool read_data;               /* read, decompress and re-hash chunks */
  cairn_extra_roots_fn extra_roots;
  void *extra_roots_arg;
  cairn_progress_fn progress;   /* read-data progress, in bytes */
  void *progress_arg;
};

struct cairn_fsck_report {
  /* what was checked */
  uint64_t checked_branches, checked_tags, checked_commits, tombstones;
  uint64_t nodes, chunks, chunk_bytes;   /* reachable, distinct */
  uint64_t chunks_read;                  /* re-hashed (read_data) */
  /* damage: one sentence per problem, and what it affects */
  size_t n_problems;
  char **problems;
  size_t n_commits;
  struct cairn_id *commits;              /* affected, newest first */
  size_t n_branches;
  char **branches;                       /* affected branch names */
  size_t n_tags;
  char **tags;                           /* affected tag names */
  /* information, not damage */
  size_t n_notes;
  char **notes;
  uint64_t unreachable_nodes, unreachable_node_bytes;
  uint64_t unreachable_chunks, unreachable_chunk_bytes;
  uint64_t packs, pack_bytes, pack_garbage_bytes, empty_packs;
};

/* Checks the store.  Returns 0 when the check ran, whatever it found
 * (REPORT->n_problems > 0 means damage), or an error when it could not
 * run.  Takes STORE/run/gc.lock like gc (-EBUSY if a gc runs). */
int cairn_fsck (struct cairn_store *s, const struct cairn_fsck_options *o,
                struct cairn_fsck_report *report);
void cairn_fsck_report_free (struct cairn_fsck_report *report);

#endif /* CAIRN_GC_H */
