/* cairnfs.h: what the parts of cairnfs share.
 *
 * cairnfs shows a cairn store read-only as files (layout in DESIGN.md and
 * cairnfs(1)).  The parts, each with its design notes at its top:
 *
 *   cairnfs.c    main: options, fork, mount, the session loop, shutdown
 *   ops.c        the libfuse low-level operations (the filesystem itself)
 *   inode.c      inode numbers and lookup counts
 *   layout.c     file names <-> volumes, refs, times (pure functions)
 *   timeline.c   by-time/<branch>/: a branch's first-parent history, cached
 *   lease.c      one store lease per commit that has files open (gc)
 *   readahead.c  prefetch of chunks ahead of sequential readers
 *   watch.c      tells the kernel when a commit it caches is pruned or gone
 *
 * Errors: internal functions return 0 or a negative errno / CAIRN_E* code,
 * like libcairn; only ops.c turns them into the positive errno of one
 * fuse_reply_err.
 *
 * Locks: each part has its own, named for what it guards, and none is
 * taken while another is held, so there is no lock order to keep.  (lease.c
 * holds its lock across the store's write transaction of a lease; the
 * store's own locks are below all of cairnfs's.)
 */
#ifndef CAIRN_CAIRNFS_H
#define CAIRN_CAIRNFS_H

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "store/store.h"

/* ------------------------------------------------------------------ */
/* Nodes: everything cairnfs shows                                     */

enum node_kind {
  NODE_ROOT,                    /* MNT/ */
  NODE_COMMITS,                 /* MNT/commits/ */
  NODE_BRANCHES,                /* MNT/branches/ */
  NODE_TAGS,                    /* MNT/tags/ */
  NODE_BY_TIME,                 /* MNT/by-time/ */
  NODE_COMMIT_DIR,              /* commits/<id>/ */
  NODE_COMMIT_TEXT,             /* commits/<id>/commit */
  NODE_VOLUME,                  /* commits/<id>/<volume>.img */
  NODE_BRANCH_LINK,             /* branches/<name> */
  NODE_TAG_LINK,                /* tags/<name> */
  NODE_TIMELINE_DIR,            /* by-time/<branch>/ */
  NODE_TIMELINE_LINK,           /* by-time/<branch>/<time> */
};

/* The fixed directories have the first inode numbers (1 is FUSE's root);
 * numbers below NODE_FIRST_DYNAMIC are never handed out otherwise. */
#define NODE_FIRST_DYNAMIC 16

/* What a node is.  Unused fields are zero, so keys compare whole. */
struct node_key {
  enum node_kind kind;
  struct cairn_id commit;       /* commit nodes, by-time links */
  char name[CAIRN_NAME_MAX + 1];/* volume, branch or tag name */
};

struct node {
  fuse_ino_t ino;
  struct node_key key;
  /* Fixed when the node is made, for the nodes whose content never
   * changes (commit directories, files and by-time links). */
  int64_t time;                 /* the commit's time, ns */
  uint64_t size;                /* bytes */
  uint64_t blocks;              /* 512-byte blocks that hold data */
  /* inode.c's bookkeeping. */
  uint64_t nlookup;
  bool gone_told;               /* watch.c told the kernel it is gone */
};

bool node_is_dir (enum node_kind kind);
bool node_is_fixed (enum node_kind kind);
/* The inode number of a fixed directory. */
fuse_ino_t node_fixed_ino (enum node_kind kind);

/* inode.c */
struct inode_table;
typedef uint64_t (*inode_hash_fn) (const struct node_key *key);
/* HASH NULL: the first 64 bits of SHA-256 of the key (tests pass others
 * to force collisions). */
struct inode_table *inode_table_new (inode_hash_fn hash);
void inode_table_free (struct inode_table *t);
/* The node of TEMPLATE's key with one more lookup, added with TEMPLATE's
 * attributes if the kernel did not know it.  *OUT gets a copy. */
int inode_ref (struct inode_table *t, const struct node *tmpl,
               struct node *out);
/* Drops N lookups of INO; the node leaves the table at zero.  Fixed
 * directories and unknown numbers are ignored. */
void inode_forget (struct inode_table *t, fuse_ino_t ino, uint64_t n);
/* A copy of node INO.  -ESTALE if the kernel cannot know it. */
int inode_get (struct inode_table *t, fuse_ino_t ino, struct node *out);
/* The number KEY has, or would get if looked up now. */
fuse_ino_t inode_number (struct inode_table *t, const struct node_key *key);
/* Copies of every node of KIND that watch.c has not yet declared gone
 * (malloc'd array in *OUT).  Returns how many, or -ENOMEM. */
ssize_t inode_collect (struct inode_table *t, enum node_kind kind,
                       struct node **out);
/* A copy of the node of KEY if the kernel knows it, without counting. */
bool inode_find (struct inode_table *t, const struct node_key *key,
                 struct node *out);
/* Marks node INO as declared gone. */
void inode_mark_gone (struct inode_table *t, fuse_ino_t ino);
/* Nodes in the table (tests). */
size_t inode_count (struct inode_table *t);

/* ------------------------------------------------------------------ */
/* layout.c: names                                                     */

/* Longest file name, as in Linux (NAME_MAX).  The longest escaped ref
 * name, 128 bytes of which 63 are '/', takes 254. */
#define LAYOUT_NAME_MAX 255

/* The file name of volume VOLUME in commits/<id>/: "vmstate.bin" for the
 * device state, "<volume>.img" for the others. */
void layout_volume_file (const char *volume, char *buf, size_t len);
/* Back: the volume a file name stands for, or false. */
bool layout_volume_of_file (const char *file, char *volume, size_t len);
/* A branch or tag name as one file name: '/' becomes "%2F", as in
 * STORE/branches/.  False if it does not fit in BUF or NAME_MAX. */
bool layout_ref_file (const char *ref, char *buf, size_t len);
/* Back: the ref name a file name stands for, or false. */
bool layout_ref_of_file (const char *file, char *ref, size_t len);
/* The target of a link DEPTH directories below MNT to commits/<ID>. */
void layout_commit_link (const struct cairn_id *id, unsigned depth,
                         char *buf, size_t len);
/* The id a commits/ entry names: exactly 64 lowercase hex digits. */
bool layout_commit_of_file (const char *file, struct cairn_id *id);

/* ------------------------------------------------------------------ */
/* timeline.c: by-time/<branch>/                                       */

struct timeline_entry {
  char name[CAIRN_TIME_SIZE + CAIRN_HEX_SIZE + 2];  /* time [~id] */
  struct cairn_id commit;
  int64_t time;
};

/* A branch's first-parent history from HEAD, sorted by name (= by time). */
struct timeline {
  unsigned refs;                /* guarded by the cache's lock */
  char branch[CAIRN_NAME_MAX + 1];
  struct cairn_id head;
  size_t n;
  struct timeline_entry *entries;
};

struct timeline_cache;
struct timeline_cache *timeline_cache_new (void);
void timeline_cache_free (struct timeline_cache *tc);
/* The timeline of BRANCH whose last commit is HEAD: cached, or built in
 * TXN.  Release with timeline_put. */
int timeline_get (struct timeline_cache *tc, struct cairn_txn *txn,
                  const char *branch, const struct cairn_id *head,
                  struct timeline **tl);
void timeline_put (struct timeline_cache *tc, struct timeline *tl);
const struct timeline_entry *timeline_find (const struct timeline *tl,
                                            const char *name);
/* Builds the entries of a history (newest first, as cairn_history gives
 * it) sorted by name; the same times get distinct names. */
int timeline_entries (struct cairn_txn *txn, const struct cairn_id *ids,
                      size_t n, struct timeline_entry **entries);

/* ------------------------------------------------------------------ */
/* lease.c                                                             */

struct lease_table;
/* ENABLED false: hold nothing (a store opened without leases). */
struct lease_table *lease_table_new (struct cairn_store *s, bool enabled);
/* Ends every lease still held. */
void lease_table_free (struct lease_table *t);
/* Makes sure commit ID is leased while held: the first holder of a
 * commit begins its lease, the last release ends it. */
int lease_hold (struct lease_table *t, const struct cairn_id *id);
void lease_release (struct lease_table *t, const struct cairn_id *id);

/* ------------------------------------------------------------------ */
/* readahead.c                                                         */

struct readahead;
/* THREADS workers that read queued chunks into the store's cache. */
int readahead_start (struct cairn_store *s, unsigned threads,
                     struct readahead **ra);
void readahead_stop (struct readahead *ra);
/* Queues chunks FIRST..LAST of volume V (dropped if the queue is full:
 * readahead is advice). */
void readahead_queue (struct readahead *ra, const struct cairn_volume *v,
                      uint64_t first, uint64_t last);

/* Sequential-stream detection of one open file. */
struct read_stream {
  pthread_mutex_t lock;         /* guards the fields below */
  uint64_t next;                /* where a sequential reader reads next */
  uint64_t ahead;               /* read ahead up to here */
};
void read_stream_init (struct read_stream *rs);
void read_stream_destroy (struct read_stream *rs);
/* Notes a read of [OFF, OFF+LEN) of volume V and, if it continues a
 * stream, queues the chunks of the next WINDOW bytes. */
void read_stream_note (struct read_stream *rs, struct readahead *ra,
                       const struct cairn_volume *v, uint64_t off,
                       uint64_t len, uint64_t window);

/* ------------------------------------------------------------------ */
/* The filesystem                                                      */

struct watcher;

struct cairnfs {
  struct cairn_store *store;
  struct fuse_session *se;
  struct inode_table *inodes;
  struct lease_table *leases;
  struct timeline_cache *timelines;
  struct readahead *readahead;
  struct watcher *watcher;
  uid_t uid;
  gid_t gid;
  struct timespec mounted;      /* mtime of the fixed directories */
  pthread_mutex_t handles_lock; /* guards handles */
  struct handle *handles;       /* open files and directories (ops.c) */
  double timeout;               /* seconds: names that change (refs) */
  uint64_t readahead_window;    /* bytes; 0: no readahead */
};

/* ops.c */
extern const struct fuse_lowlevel_ops cairnfs_ops;
/* Frees the open files and directories the kernel never released (after
 * a lazy unmount), ending their leases. */
void cairnfs_release_all (struct cairnfs *fs);
/* Converts a libcairn code to a positive errno for the kernel. */
int cairnfs_errno (int code);

/* watch.c: every INTERVAL_MS, tells the kernel which commit directories
 * and volume files it knows have gone (pruned or deleted). */
int watch_start (struct cairnfs *fs, unsigned interval_ms,
                 struct watcher **w);
void watch_stop (struct watcher *w);

#endif /* CAIRN_CAIRNFS_H */
