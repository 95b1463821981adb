/* store.h: libcairn, the store every cairn component is built on.
 *
 * A store keeps volumes (disks, guest memory, device state) as
 * content-addressed chunks, Merkle block-map trees over them, immutable
 * commits naming a tree per volume, and refs: branches (writable) and
 * tags.  See ../shared/DESIGN.md for the object model.
 *
 * On-disk formats: the index's databases and entries in backend.h, pack
 * files in pack.h, the redo log in redo.h; the formats of the modules
 * this header declares are below, each in its module's section: the
 * config file (Stores), commit text and tombstones (Commits), refs and
 * branch records (Refs), working-state records (Branches), tree nodes
 * (Trees), sessions (Pins).
 *
 * Threads: a struct cairn_store may be used from many threads at once.
 * A struct cairn_branch too (nbdkit's PARALLEL model serves one branch to
 * many connections).  Processes: any number may open a store; a branch
 * has at most one writer at a time (a lock in STORE/run).
 *
 * Errors: every function returns 0 or a negative errno / CAIRN_E* code
 * (error.h) and may leave a sentence in cairn_last_error().
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/backend.h"
#include "store/error.h"
#include "store/util.h"

/* Longest branch or tag name, and longest volume name. */
#define CAIRN_NAME_MAX 128
#define CAIRN_VOLUME_NAME_MAX 32
/* Sector size of the working state's dirty tracking: the smallest write
 * that needs no read-modify-write. */
#define CAIRN_SECTOR 512
#define CAIRN_MIN_CHUNK_SIZE 4096
#define CAIRN_MAX_CHUNK_SIZE (1 << 20)
#define CAIRN_DEFAULT_CHUNK_SIZE 65536
#define CAIRN_DEFAULT_ZSTD_LEVEL 1
#define CAIRN_DEFAULT_CACHE_SIZE (64ULL << 20)

struct cairn_store;
struct cairn_txn;

/* ------------------------------------------------------------------ */
/* Stores                                                              */

/* A store is a directory: index/ (backend.h), packs/ (pack.h),
 * branches/ (the scratch files of open branches), run/ (locks, sockets)
 * and config, which cairn_store_init writes once, last.  The config file
 * is text, one "KEY VALUE" line each, ending in "\n", in this order:
 *
 *   LINE                  DESCRIPTION
 *   cairn-store 2         format version of the whole store (1: tree
 *                         fan-out 256, no redo log; refused by open)
 *   chunk-size N          bytes per chunk, decimal, a power of two from
 *                         4096 to 1048576
 *   compress zstd:L       zstd level L, 1..19; or "compress none"
 *   created TIME          UTC, 9 fraction digits:
 *                         2026-11-21T10:00:00.000000000Z (informational)
 *
 * Open needs the cairn-store and chunk-size lines, in any order; it
 * ignores unknown keys, and no compress line means none. */

struct cairn_store_options {
  uint32_t chunk_size;          /* power of two, 4 KiB..1 MiB; 0: default */
  int compress_level;           /* zstd level 1..19; 0: default; -1: none */
};

/* Creates a new, empty store at PATH (created if missing, or an empty
 * directory).  -EEXIST if PATH already holds a store or other files. */
int cairn_store_init (const char *path,
                      const struct cairn_store_options *opts);

#define CAIRN_OPEN_READONLY 1   /* never writes (cairnfs, read-only NBD) */
/* With CAIRN_OPEN_READONLY: a reader that still records its leases (see
 * cairn_lease_begin), so the index is opened for writing; every other
 * write transaction still fails with -EROFS.  On a store the process may not write (read-only media,
 * another user's store), open fails with -EACCES or -EROFS: open again
 * without this flag, and without leases. */
#define CAIRN_OPEN_LEASES 2

/* Opens the store at PATH.  CAIRN_ENOTSTORE if it is not one. */
int cairn_store_open (const char *path, unsigned flags,
                      struct cairn_store **s);
void cairn_store_close (struct cairn_store *s);

const char *cairn_store_path (const struct cairn_store *s);
uint32_t cairn_store_chunk_size (const struct cairn_store *s);
/* Compression level in the store's config; -1 means none. */
int cairn_store_compress_level (const struct cairn_store *s);
struct cairn_backend *cairn_store_backend (struct cairn_store *s);

/* Resizes the cache of decompressed, verified chunks (bytes). */
void cairn_store_set_cache_size (struct cairn_store *s, uint64_t bytes);

/* The default store path: $CAIRN_STORE, else /var/lib/cairn for root,
 * else $XDG_DATA_HOME/cairn (~/.local/share/cairn). */
void cairn_default_store_path (char *buf, size_t len);

/* Transactions of the store's backend (see backend.h). */
int cairn_txn_begin (struct cairn_store *s, bool write,
                     struct cairn_txn **txn);
int cairn_txn_commit (struct cairn_store *s, struct cairn_txn *txn);
void cairn_txn_abort (struct cairn_store *s, struct cairn_txn *txn);
/* Ends TXN as R says: commits it if R is 0, else aborts it (a NULL TXN
 * is left alone).  Returns R, or the commit's error. */
int cairn_txn_end (struct cairn_store *s, struct cairn_txn *txn, int r);

/* The stored bytes of object ID (a chunk's are compressed), valid until
 * TXN ends.  -ENOENT if there is none. */
int cairn_object_get (struct cairn_txn *txn, enum cairn_object_type type,
                      const struct cairn_id *id, struct cairn_val *data);

/* ------------------------------------------------------------------ */
/* Names                                                               */

/* Branch and tag names: 1..128 of [A-Za-z0-9._/-], not starting with '-',
 * '.' or '/', no "..", "//", trailing '/' or ".lock".  A name that looks
 * like an id prefix is allowed; the name wins when resolving. */
bool cairn_ref_name_valid (const char *name);
/* Volume names: 1..32 of [a-z0-9_-]. */
bool cairn_volume_name_valid (const char *name);

/* ------------------------------------------------------------------ */
/* Commits                                                             */

/* A commit is text, so that `cairn cat` shows what it is and a person
 * can read it; its id is the SHA-256 of exactly these bytes (inline in
 * the index's "commits" database, backend.h).  Lines end in "\n" and
 * come in this order:
 *
 *   LINE                                  DESCRIPTION
 *   cairn-commit 1                        format version
 *   parent HEX                            zero or more; the first is the
 *                                         base
 *   time TIME                             UTC, always 9 fraction digits:
 *                                         2026-11-21T10:00:00.123456789Z
 *   volume NAME size=N chunk=C root=HEX   zero or more, sorted by name,
 *                                         each name once; N > 0 bytes, C
 *                                         a power of two 4096..1048576,
 *                                         root zero: all zeros
 *   vm TEXT                               optional (qemu-glue/vm.h)
 *   label KEY=VALUE                       zero or more, in given order;
 *                                         KEY of [A-Za-z0-9_.-], not
 *                                         empty
 *   (an empty line)
 *   MESSAGE                               any bytes but NUL; ends in
 *                                         "\n" unless empty
 *
 * HEX is an id as 64 lowercase hex digits; numbers are decimal without
 * leading zeros.  Parsing is strict (lines in this order, nothing
 * unknown, every number in range), so a damaged or forged commit is
 * refused (-EBADMSG) rather than half understood. */

struct cairn_volume {
  char name[CAIRN_VOLUME_NAME_MAX + 1];
  uint64_t size;                /* bytes */
  uint32_t chunk_size;
  struct cairn_id root;         /* zero: every byte is zero */
};

struct cairn_commit {
  struct cairn_id id;
  size_t nparents;
  struct cairn_id *parents;
  int64_t time;                 /* ns since the epoch, UTC */
  size_t nvolumes;
  struct cairn_volume *volumes;
  char *vm;                     /* the "vm" line after "vm ", or NULL */
  size_t nlabels;
  char **labels;                /* "key=value" */
  char *message;                /* may be "" */
};

/* Reads and parses commit ID.  CAIRN_ENOREF if there is none. */
int cairn_commit_read (struct cairn_txn *txn, const struct cairn_id *id,
                       struct cairn_commit **c);
void cairn_commit_free (struct cairn_commit *c);

/* The commit's text form (above), malloc'd and NUL-terminated. */
int cairn_commit_format (const struct cairn_commit *c, char **text,
                         size_t *len);
/* Parses the text form strictly.  -EBADMSG if malformed. */
int cairn_commit_parse (const char *text, size_t len,
                        struct cairn_commit **c);

const struct cairn_volume *cairn_commit_volume (const struct cairn_commit *c,
                                                const char *name);

/* The value of label KEY, or NULL. */
const char *cairn_commit_label (const struct cairn_commit *c,
                                const char *key);

/* A pruned commit keeps its text (history stays walkable) and gets a
 * record in the "tombstones" table:
 *
 *   "tombstones"  key: commit id (32 bytes)
 *     OFFSET  SIZE  DESCRIPTION
 *          0     8  time it was pruned, ns since the epoch (LE)
 */

/* True if retention turned commit ID into a tombstone: its text stays,
 * its volumes are no longer kept. */
bool cairn_commit_pruned (struct cairn_txn *txn, const struct cairn_id *id);

/* Marks commit ID pruned (a tombstone) in a write transaction. */
int cairn_commit_prune (struct cairn_txn *txn, const struct cairn_id *id);

/* Calls FN for every commit id (pruned ones too) in id order, from the
 * first id >= START (NULL: from the first), without reading the commits:
 * a listing of any number of commits can be paged.  FN returns 0 to go on,
 * a positive value to stop (returned by the scan) or a negative errno. */
typedef int (*cairn_commit_scan_fn) (const struct cairn_id *id, void *arg);
int cairn_commit_scan (struct cairn_txn *txn, const struct cairn_id *start,
                       cairn_commit_scan_fn fn, void *arg);

/* Finds the commit whose id starts with the hex digits PREFIX (at least
 * CAIRN_MIN_PREFIX).  CAIRN_ENOREF if none, CAIRN_EAMBIGUOUS if several. */
int cairn_commit_find_prefix (struct cairn_txn *txn, const char *prefix,
                              struct cairn_id *id);
/* The same over every object, commits, tree nodes and chunks: *TYPE gets
 * the type of the one found. */
int cairn_object_find_prefix (struct cairn_txn *txn, const char *prefix,
                              struct cairn_id *id,
                              enum cairn_object_type *type);

/* ------------------------------------------------------------------ */
/* Refs                                                                */

/* Refs live in the "refs" table, keyed by text (no NUL):
 *
 *   KEY          VALUE
 *   tags/NAME    the 32-byte id of the tagged commit
 *   heads/NAME   the branch record (struct cairn_branch_info):
 *
 * Branch record (little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  magic "brn1"
 *        4     4  n, number of volumes
 *        8    32  base commit id (zero: no commit yet)
 *       40     8  seq: bumped by every change (compare-and-swap witness)
 *       48     8  creation time, ns since the epoch
 *       56     V  n volume entries, V bytes in all
 *     56+V     8  absorbed epoch: working-state records of this epoch or
 *                 older are stale (see Branches); always written, but a
 *                 record that ends before it has 0
 *
 * Volume entry:
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     8  wid: key prefix of its working state ("work" table)
 *        8     8  size in bytes
 *       16     4  chunk size
 *       20    32  root of its tree in the base commit (zero: none)
 *       52     1  name length L, 1..32
 *       53     L  name, no NUL
 */

enum cairn_ref_kind { CAIRN_REF_BRANCH, CAIRN_REF_TAG, CAIRN_REF_COMMIT };

struct cairn_ref {
  enum cairn_ref_kind kind;
  char name[CAIRN_NAME_MAX + 1];   /* branch or tag name; "" for a commit */
  struct cairn_id commit;          /* zero: a branch with no commit yet */
};

/* Resolves what a user typed: "heads/NAME", "tags/NAME", a branch name, a
 * tag name or a commit id prefix, optionally followed by "~N" (the Nth
 * first-parent ancestor) or "^".  A branch resolves to its last commit. */
int cairn_resolve (struct cairn_txn *txn, const char *spec,
                   struct cairn_ref *ref);

/* Tags: immutable names of commits. */
int cairn_tag_create (struct cairn_store *s, const char *name,
                      const struct cairn_id *commit);
int cairn_tag_delete (struct cairn_store *s, const char *name);
int cairn_tag_get (struct cairn_txn *txn, const char *name,
                   struct cairn_id *commit);

/* Calls FN for every branch (kind BRANCH) or tag (kind TAG), by name. */
typedef int (*cairn_ref_fn) (const struct cairn_ref *ref, void *arg);
int cairn_ref_list (struct cairn_txn *txn, enum cairn_ref_kind kind,
                    cairn_ref_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Branches                                                            */

/* Branch records: what a branch is at rest (ref "heads/NAME", format
 * under Refs). */
struct cairn_branch_volume {
  char name[CAIRN_VOLUME_NAME_MAX + 1];
  uint64_t wid;                 /* key prefix of its working state */
  uint64_t size;
  uint32_t chunk_size;
  struct cairn_id root;         /* the volume's tree in the base commit */
};

struct cairn_branch_info {
  struct cairn_id base;         /* last commit; zero if none yet */
  uint64_t seq;                 /* bumped by every change of the record */
  uint64_t absorbed;            /* work records of this epoch or older are
                                   stale (in the base already) */
  int64_t created;
  size_t nvolumes;
  struct cairn_branch_volume *volumes;
  bool dirty;                   /* working state differs from base */
};

int cairn_branch_info_get (struct cairn_txn *txn, const char *name,
                           struct cairn_branch_info *info);
void cairn_branch_info_free (struct cairn_branch_info *info);

/* Creates branch NAME with one empty (sparse) volume.  -EEXIST if a
 * branch or tag of that name exists. */
int cairn_branch_create_empty (struct cairn_store *s, const char *name,
                               const char *volume, uint64_t size);

/* Creates branch NAME starting at commit FROM (its volumes, no working
 * changes).  -EEXIST if the name is taken. */
int cairn_branch_create_from (struct cairn_store *s, const char *name,
                              const struct cairn_id *from);

/* Deletes branch NAME and its working state.  CAIRN_EHELD if a writer
 * holds it.  Its commits stay (tags and other branches may name them). */
int cairn_branch_delete (struct cairn_store *s, const char *name);

/* True if a process holds branch NAME for writing right now (*PID gets
 * its pid if known, else 0). */
bool cairn_branch_is_held (struct cairn_store *s, const char *name,
                           int *pid);

/* An open branch's working state at rest (store/branch.c tells how it
 * is kept): one record per chunk that differs from the base.
 *
 *   "work"  key: wid (8 bytes, big-endian) + chunk index (8, big-endian)
 *     OFFSET  SIZE  DESCRIPTION
 *          0     1  type: 1 = sealed, 2 = scratch
 *          1     1  flags: 1 = the record ends in its epoch (always set
 *                   now; a record without it has epoch 1); 2 = scratch
 *                   only: the slot is not fragmented (a hint, see Slots
 *                   and the page cache in branch.c)
 *          2     2  reserved, 0
 *          4    32  sealed: chunk id (zero: all zeros); scratch: underlay
 *         36     4  scratch only: slot number (LE): its bytes are at slot
 *                   x chunk size in STORE/branches/NAME/VOLUME.scratch
 *                   ('/' in NAME escaped as "%2F")
 *         40     B  scratch only: sector bitmap, B = chunk size / 4096;
 *                   bit i (byte i/8, bit i%8) set if CAIRN_SECTOR-byte
 *                   sector i is in the slot
 *   36 or 40+B   8  epoch (LE): the branch's work epoch when the record
 *                   was written
 */

/* An open branch: its working state over its base commit. */
struct cairn_branch;
/* A volume of an open branch. */
struct cairn_bvol;

#define CAIRN_BRANCH_WRITE 1    /* take the writer lock; else read-only */
#define CAIRN_BRANCH_SEALER 2   /* seal written chunks in a background thread */

/* Opens branch NAME.  CAIRN_ENOREF if there is none; CAIRN_EHELD if
 * CAIRN_BRANCH_WRITE and another process holds it. */
int cairn_branch_open (struct cairn_store *s, const char *name,
                       unsigned flags, struct cairn_branch **b);
/* Closes the branch.  Unflushed writes may be lost; call flush first. */
void cairn_branch_close (struct cairn_branch *b);

const char *cairn_branch_name (const struct cairn_branch *b);
/* The branch's base commit (zero if none yet). */
void cairn_branch_base (struct cairn_branch *b, struct cairn_id *base);

/* Adds an empty volume to an open, writable branch (committed with it). */
int cairn_branch_add_volume (struct cairn_branch *b, const char *name,
                             uint64_t size);

/* The volume NAME of the branch, or NULL. */
struct cairn_bvol *cairn_branch_volume (struct cairn_branch *b,
                                        const char *name);
size_t cairn_branch_nvolumes (struct cairn_branch *b);
struct cairn_bvol *cairn_branch_volume_at (struct cairn_branch *b, size_t i);
const char *cairn_bvol_name (const struct cairn_bvol *v);
uint64_t cairn_bvol_size (const struct cairn_bvol *v);

/* Reads LEN bytes at OFF (any alignment; OFF + LEN <= size). */
int cairn_bvol_read (struct cairn_bvol *v, void *buf, size_t len,
                     uint64_t off);
/* Writes LEN bytes at OFF (any alignment).  Durable after flush. */
int cairn_bvol_write (struct cairn_bvol *v, const void *buf, size_t len,
                      uint64_t off);
/* Makes [OFF, OFF+LEN) read as zeros, freeing whole chunks in it. */
int cairn_bvol_zero (struct cairn_bvol *v, size_t len, uint64_t off);

/* Extents: calls FN for each maximal run of [OFF, OFF+LEN) that is all
 * hole (HOLE true: reads as zeros and holds no data) or may hold data. */
typedef int (*cairn_extent_fn) (uint64_t off, uint64_t len, bool hole,
                                void *arg);
int cairn_bvol_extents (struct cairn_bvol *v, uint64_t off, uint64_t len,
                        cairn_extent_fn fn, void *arg);

/* Makes every write acknowledged so far durable. */
int cairn_branch_flush (struct cairn_branch *b);

/* Seals every written chunk now (hash, compress, store), so that a later
 * commit is only metadata.  The background sealer does this on its own. */
int cairn_branch_seal (struct cairn_branch *b);

struct cairn_commit_options {
  const char *message;          /* NULL: "" */
  const char *const *labels;    /* "key=value", NULL-terminated, or NULL */
  int64_t time;                 /* 0: now */
  const char *vm;               /* the "vm" line, or NULL */
  /* Volumes to set in this commit as whole trees (built elsewhere, e.g.
   * guest memory), replacing or adding branch volumes. */
  const struct cairn_volume *set_volumes;
  size_t nset_volumes;
  /* Extra parents after the base (merges, VM lineage). */
  const struct cairn_id *extra_parents;
  size_t nextra_parents;
};

/* Freezes the branch's working state into a new commit, durable on
 * return, and makes it the branch's base.  Every write acknowledged before
 * the call is in it.  Writers are not stopped while it runs, except
 * briefly for a chunk being captured.  Always makes a new commit, also
 * when nothing changed. */
int cairn_branch_commit (struct cairn_branch *b,
                         const struct cairn_commit_options *opts,
                         struct cairn_id *id);

/* Statistics of the working state, for tests and benchmarks. */
struct cairn_branch_stats {
  uint64_t entries;             /* chunks that differ from the base, in
                                   memory */
  uint64_t evicted;             /* more, sealed, only in the index */
  uint64_t unsealed;            /* of those, not yet sealed */
  uint64_t scratch_slots;       /* slots allocated in scratch files */
  uint64_t frozen;              /* of the unsealed, frozen by a commit
                                   that runs and not read by it yet */
  uint64_t pending;             /* of the unsealed, detached from a commit
                                   that runs: their frozen sectors not
                                   copied (see branch.c, Commit) */
};
void cairn_branch_stats (struct cairn_branch *b,
                         struct cairn_branch_stats *st);

/* ------------------------------------------------------------------ */
/* Views: read-only access to a committed volume                       */

struct cairn_view {
  struct cairn_store *s;
  struct cairn_volume vol;
  unsigned levels;              /* tree height */
};

/* A view of volume NAME of commit ID.  CAIRN_ENOVOLUME if it has none. */
int cairn_view_open (struct cairn_store *s, struct cairn_txn *txn,
                     const struct cairn_id *commit, const char *name,
                     struct cairn_view *v);
/* A view of a volume description (root, size, chunk size). */
void cairn_view_init (struct cairn_store *s, const struct cairn_volume *vol,
                      struct cairn_view *v);
int cairn_view_read (struct cairn_view *v, void *buf, size_t len,
                     uint64_t off);
int cairn_view_extents (struct cairn_view *v, uint64_t off, uint64_t len,
                        cairn_extent_fn fn, void *arg);
/* The chunk id at chunk index I (zero id: a hole). */
int cairn_view_chunk (struct cairn_view *v, struct cairn_txn *txn,
                      uint64_t i, struct cairn_id *id);

/* ------------------------------------------------------------------ */
/* Chunks                                                              */

/* Reads chunk ID (decompressed, hash verified; through the cache) into
 * BUF, which holds the store's chunk size.  The zero id gives zeros.
 * -EBADMSG (with a message naming the chunk) if its bytes are corrupt. */
int cairn_chunk_read (struct cairn_store *s, const struct cairn_id *id,
                      void *buf);
/* LEN bytes at WITHIN of chunk ID, to read into BUF. */
struct cairn_chunk_part {
  struct cairn_id id;
  void *buf;
  size_t len, within;
};
/* cairn_chunk_read_part of N parts: the chunks not in the cache are
 * fetched and verified several at a time (cairn_chunk_read_many). */
int cairn_chunk_read_parts (struct cairn_store *s,
                            const struct cairn_chunk_part *parts, size_t n);
/* Reads the N chunks IDS[i] into BUFS[i] as cairn_chunk_read does, but
 * past the cache, and verifies them several at a time (see
 * cairn_sha256_many): for a caller that reads many chunks once. */
int cairn_chunk_read_many (struct cairn_store *s, const struct cairn_id *ids,
                           size_t n, void *const *bufs);
/* Reads part of a chunk: LEN bytes at OFF within it. */
int cairn_chunk_read_part (struct cairn_store *s, const struct cairn_id *id,
                           void *buf, size_t len, size_t off);
/* Verifies one chunk without the cache: 0, or -EBADMSG if it is corrupt
 * or missing (the message says which). */
int cairn_chunk_verify (struct cairn_store *s, const struct cairn_id *id);

/* A chunk prepared for storage outside any transaction (the expensive
 * part: hashing and compressing), then put inside one. */
struct cairn_sealed {
  struct cairn_id id;           /* zero: the chunk is all zeros */
  void *data;                   /* compressed or raw bytes, malloc'd */
  uint32_t len;
  uint32_t flags;
  bool known;                   /* the store had it already */
};

/* Hashes CHUNK (chunk-size bytes) and, unless it is zero or already
 * stored, compresses it.  Thread-safe. */
int cairn_chunk_seal (struct cairn_store *s, const void *chunk,
                      struct cairn_sealed *out);
/* cairn_chunk_seal of N chunks, hashed several at a time (see
 * cairn_sha256_many): the faster way for any caller with a batch.  On an
 * error every OUT[i] may still be freed. */
int cairn_chunk_seal_many (struct cairn_store *s, const void *const *chunks,
                           size_t n, struct cairn_sealed *out);
/* Puts a sealed chunk (or refreshes a known one) in a write transaction.
 * A known chunk that gc deleted meanwhile is -ENOENT: reseal it. */
int cairn_chunk_put (struct cairn_txn *txn, const struct cairn_sealed *c);
void cairn_sealed_free (struct cairn_sealed *c);

/* ------------------------------------------------------------------ */
/* Trees                                                               */

/* Tree height of a volume of SIZE bytes in chunks of CHUNK_SIZE. */
unsigned cairn_tree_levels (uint64_t size, uint32_t chunk_size);

/* Calls FN for each non-hole chunk of the tree in [FIRST, LAST] order. */
typedef int (*cairn_chunk_fn) (uint64_t index, const struct cairn_id *id,
                               void *arg);
int cairn_tree_walk (struct cairn_txn *txn, const struct cairn_id *root,
                     unsigned levels, uint64_t first, uint64_t last,
                     cairn_chunk_fn fn, void *arg);

/* Calls FN for every tree node id reachable from ROOT (each once per
 * visit; FN returns 1 to skip a node's children, e.g. already seen). */
typedef int (*cairn_node_fn) (const struct cairn_id *id, unsigned level,
                              void *arg);
int cairn_tree_walk_nodes (struct cairn_txn *txn, const struct cairn_id *root,
                           unsigned levels, cairn_node_fn node_fn,
                           cairn_chunk_fn chunk_fn, void *arg);

/* Calls FN for every chunk index where tree A (height LA) and tree B
 * (height LB) differ, with both chunk ids; either root may be zero.
 * Costs O(differences x height): equal subtrees are skipped by id. */
typedef int (*cairn_diff_fn) (uint64_t index, const struct cairn_id *a,
                              const struct cairn_id *b, void *arg);
int cairn_tree_diff (struct cairn_txn *txn, const struct cairn_id *a,
                     unsigned la, const struct cairn_id *b, unsigned lb,
                     cairn_diff_fn fn, void *arg);

/* Builds a tree from chunk ids given in increasing index order, writing
 * nodes as they fill: memory is O(height), not O(volume). */
struct cairn_tree_builder;
int cairn_tree_builder_new (unsigned levels, struct cairn_tree_builder **tb);
int cairn_tree_builder_add (struct cairn_tree_builder *tb,
                            struct cairn_txn *txn, uint64_t index,
                            const struct cairn_id *id);
int cairn_tree_builder_finish (struct cairn_tree_builder *tb,
                               struct cairn_txn *txn, struct cairn_id *root);
void cairn_tree_builder_free (struct cairn_tree_builder *tb);

/* Applies CHANGES (new chunk ids by index, sorted by index, each index
 * once; the zero id makes a hole) to the tree of volume BASE, in write
 * transaction TXN: O(changes x height) new nodes, every other node shared
 * with BASE.  OUT is BASE with its new root.  The chunks must be stored
 * (cairn_chunk_put) in TXN or before.  -EINVAL if an index is past the
 * volume's end.  (What cairn_volume_store does with a changed-chunk
 * bitmap, for a caller that stores several volumes in one transaction.) */
struct cairn_tree_change {
  uint64_t index;
  struct cairn_id id;
};
int cairn_tree_update (struct cairn_txn *txn, const struct cairn_volume *base,
                       const struct cairn_tree_change *changes, size_t n,
                       struct cairn_volume *out);

/* A tree node is stored in the index's "nodes" database (backend.h),
 * named by the SHA-256 of its serialized form (little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  magic "ctn2" ("ctn1" was fan-out 256, store format 1)
 *        4     1  level (0: children are chunk ids; k: nodes of level k-1)
 *        5     1  reserved, 0
 *        6     2  n, the number of non-zero children
 *        8     8  presence bitmap: bit i (byte i/8, bit i%8) set if child
 *                 i is non-zero
 *       16  32*n  the non-zero child ids in slot order
 *
 * The form is canonical (one serialization per content), so equal trees
 * have equal root ids.  A node with no non-zero child is not stored: its
 * id is the zero id. */

/* Children per tree node, and the most levels a tree has. */
#define CAIRN_TREE_FANOUT 64
#define CAIRN_TREE_MAX_LEVELS 11

/* Reads tree node ID: its level and its CAIRN_TREE_FANOUT children (zero:
 * hole). */
int cairn_tree_node_read (struct cairn_txn *txn, const struct cairn_id *id,
                          unsigned *level, struct cairn_id *children);

/* Nodes the builder has written (for tests of structural sharing). */
uint64_t cairn_tree_nodes_written (void);

/* The most puts or deletes one transaction of a commit's chunks or
 * records, of a flush's records or of a sweep of stale records has made
 * since the last call (for tests of their memory). */
size_t cairn_txn_batch_max (void);

/* ------------------------------------------------------------------ */
/* History                                                             */

/* Commits reachable from the given heads through parent links, each once,
 * newest first, but each after all of its children (git's --date-order):
 * of the commits whose children are all listed, the newest comes next,
 * equal times by id.  So a head comes before its history even when --time
 * dated it before its parent.  FIRST_PARENT: follow only first parents.
 * O(n log n).  The caller frees *IDS. */
int cairn_history (struct cairn_txn *txn, const struct cairn_id *heads,
                   size_t nheads, bool first_parent, struct cairn_id **ids,
                   size_t *n);

/* ------------------------------------------------------------------ */
/* Import: a whole volume from any byte source                          */

struct cairn_import_source {
  uint64_t size;
  /* Reads LEN bytes at OFF: 0 or a negative errno.  Called from several
   * threads at once. */
  int (*read) (void *arg, void *buf, size_t len, uint64_t off);
  /* Optional: calls FN for the holes and data of [OFF, OFF+LEN), so holes
   * are not read.  Thread-safe like read. */
  int (*extents) (void *arg, uint64_t off, uint64_t len,
                  cairn_extent_fn fn, void *fnarg);
  void *arg;
};

struct cairn_import_stats {
  uint64_t chunks;              /* chunks in the volume */
  uint64_t holes;               /* of those, all zeros */
  uint64_t new_chunks;          /* stored now (not deduplicated) */
  uint64_t stored_bytes;        /* bytes added to packs */
};

typedef void (*cairn_progress_fn) (void *arg, uint64_t done, uint64_t total);

/* Stores SRC as volume VOLUME of branch BRANCH and commits it: a new
 * branch is created with that one volume, atomically with its first
 * commit; an existing branch gets the volume replaced (other volumes and
 * working state are committed with it), through its serving process if it
 * is live.  Hashing and compression run on every core; memory stays
 * bounded whatever the size.  Chunks the store has are not stored again,
 * so re-importing a changed image costs only its changed chunks. */
int cairn_import (struct cairn_store *s, const char *branch,
                  const char *volume, const struct cairn_import_source *src,
                  const struct cairn_commit_options *o,
                  cairn_progress_fn progress, void *parg,
                  struct cairn_id *commit, struct cairn_import_stats *st);

/* Builds a volume's tree from SRC without committing it (the caller
 * commits it, e.g. as a VM's memory).  BASE, if not NULL, is a previous
 * version of the same volume: with CHANGED set, only the chunks whose
 * index CHANGED marks are read and the rest are taken from BASE. */
int cairn_volume_store (struct cairn_store *s,
                        const struct cairn_import_source *src,
                        const struct cairn_volume *base,
                        const uint8_t *changed,
                        cairn_progress_fn progress, void *parg,
                        struct cairn_volume *out,
                        struct cairn_import_stats *st);

/* Creates branch NAME whose first commit holds VOLUMES, in one
 * transaction: either both exist afterwards or neither. */
int cairn_branch_create_with_commit (struct cairn_store *s, const char *name,
                                     const struct cairn_volume *volumes,
                                     size_t nvolumes,
                                     const struct cairn_commit_options *o,
                                     struct cairn_id *commit);

/* ------------------------------------------------------------------ */
/* Control sockets: talking to the process that holds a live branch     */

struct json_object;

/* Sends one request (a JSON object with "op") to the writer of BRANCH
 * through STORE/run/BRANCH.sock and waits up to TIMEOUT_MS for its reply.
 * -ENOENT if nobody serves the branch.  A reply {"ok": false, "error":
 * MSG, "code": N} becomes code N with MSG as the last error. */
int cairn_control_request (struct cairn_store *s, const char *branch,
                           struct json_object *request,
                           struct json_object **reply, int timeout_ms);

/* Commits live branch BRANCH through its writer: the request carries
 * every field of O. */
int cairn_control_commit (struct cairn_store *s, const char *branch,
                          const struct cairn_commit_options *o,
                          struct cairn_id *id);

/* Serves the control socket of open branch B in a thread: "commit",
 * "flush" and "ping" requests.  EXTRA, if not NULL, handles other ops
 * (return -ENOTSUP to refuse one). */
struct cairn_control;
typedef int (*cairn_control_fn) (void *arg, struct json_object *request,
                                 struct json_object *reply);
int cairn_control_start (struct cairn_store *s, struct cairn_branch *b,
                         cairn_control_fn extra, void *arg,
                         struct cairn_control **ctl);
void cairn_control_stop (struct cairn_control *ctl);

/* Commits branch NAME wherever it lives: through its writer if it is
 * served, else by opening it here.  A branch held by a process that does
 * not answer (a writer starting or letting go) is waited for, up to 5 s;
 * then CAIRN_EHELD. */
int cairn_commit_branch (struct cairn_store *s, const char *name,
                         const struct cairn_commit_options *o,
                         struct cairn_id *id);
/* Makes sure branch NAME can be committed before work that must not be
 * wasted: opens it for writing into *B, or sets *B to NULL if it is
 * served and its writer answers (cairn_commit_branch then commits through
 * it).  Waits like cairn_commit_branch; CAIRN_EHELD if nobody answers. */
int cairn_branch_open_committer (struct cairn_store *s, const char *name,
                                 struct cairn_branch **b);

/* ------------------------------------------------------------------ */
/* Records of adapter tables (CAIRN_TABLE_VMS: qemu-glue's VM records,
 * whose format qemu-glue/vm.h documents).  Small mutable values under
 * byte-string keys, inside a store transaction. */

/* The value of KEY, valid until TXN ends.  -ENOENT if there is none. */
int cairn_record_get (struct cairn_txn *txn, enum cairn_table table,
                      const void *key, size_t klen, struct cairn_val *value);
/* Sets KEY to VALUE in a write transaction.  -EPERM for a table libcairn
 * owns (only CAIRN_TABLE_VMS is writable here), -EROFS in a read-only
 * transaction. */
int cairn_record_put (struct cairn_txn *txn, enum cairn_table table,
                      const void *key, size_t klen, const void *value,
                      size_t vlen);
/* Deletes KEY (-ENOENT if absent); the same rules as cairn_record_put. */
int cairn_record_delete (struct cairn_txn *txn, enum cairn_table table,
                         const void *key, size_t klen);
/* Calls FN for every record whose key starts with PREFIX, in key order
 * (see cairn_record_scan_fn in backend.h). */
int cairn_record_scan (struct cairn_txn *txn, enum cairn_table table,
                       const void *prefix, size_t plen,
                       cairn_record_scan_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Space                                                               */

struct cairn_du_entry {
  struct cairn_id id;
  int64_t time;
  bool pruned;                  /* a tombstone: references nothing */
  uint64_t referenced;          /* stored bytes of every chunk it names */
  uint64_t unique;              /* stored bytes named by no other commit:
                                   what deleting it alone would free */
  uint64_t shared;              /* referenced - unique */
};

/* Space accounting of the N commits IDS against every live commit of the
 * store.  Costs O(distinct tree nodes and chunks), however many commits
 * share them.  OUT holds N entries. */
int cairn_du (struct cairn_txn *txn, const struct cairn_id *ids, size_t n,
              struct cairn_du_entry *out);

/* ------------------------------------------------------------------ */
/* Pins: protect objects a long operation writes before a commit names
 * them (import, VM memory) from a concurrent gc. */

/* A pin or a lease is a record in the "sessions" table plus a lock file
 * that its process holds with flock(LOCK_EX) for as long as it lives.
 * Keys are text, "KIND/PID-N-T": KIND "pin" or "lease", PID the owner's
 * pid and N the number of sessions it began before this one (both
 * decimal), T the time it began in ns (lowercase hex), so that a reused
 * pid never meets an old key.  The lock file is
 * STORE/run/KIND-PID-N-T.lock.
 *
 *   "sessions"  key: "pin/PID-N-T"
 *     OFFSET  SIZE  DESCRIPTION
 *          0     8  gc epoch when the pin began (LE)
 *
 *   "sessions"  key: "lease/PID-N-T"
 *     OFFSET  SIZE  DESCRIPTION
 *          0    32  the leased commit's id
 */

struct cairn_pin;
int cairn_pin_begin (struct cairn_store *s, struct cairn_pin **pin);
void cairn_pin_end (struct cairn_pin *pin);

/* The gc epoch below which a live pin protects nothing: gc/ sweeps only
 * objects older than min(its own epoch, this).  UINT64_MAX if no pin. */
int cairn_pins_oldest_epoch (struct cairn_store *s, uint64_t *epoch);

/* Leases: a reader (cairnfs with a file open) keeps commit ID's data
 * alive even if retention prunes it meanwhile; gc treats every live
 * lease's commit as a root.  A lease dies with its process.  Beginning one
 * writes a record: -EROFS on a store opened CAIRN_OPEN_READONLY without
 * CAIRN_OPEN_LEASES. */
struct cairn_lease;
int cairn_lease_begin (struct cairn_store *s, const struct cairn_id *commit,
                       struct cairn_lease **lease);
void cairn_lease_end (struct cairn_lease *lease);
/* Calls FN for the commit of every live lease (for gc). */
int cairn_leases_list (struct cairn_store *s,
                       int (*fn) (const struct cairn_id *commit, void *arg),
                       void *arg);

/* Removes records of pins and leases whose processes are gone. */
int cairn_sessions_cleanup (struct cairn_store *s);

#endif /* CAIRN_STORE_H */
