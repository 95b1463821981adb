/* ops.c: cairnfs, the filesystem: the libfuse low-level operations.
 *
 * Layout (cairnfs(1)):
 *
 *   MNT/commits/<id>/commit           the commit object's text
 *   MNT/commits/<id>/<volume>.img     its volumes (vmstate.bin for "vmstate")
 *   MNT/branches/<name>               -> ../commits/<last commit of branch>
 *   MNT/tags/<name>                   -> ../commits/<id>
 *   MNT/by-time/<branch>/<time>       -> ../../commits/<id>
 *
 * Requests.  Every operation is a worker that returns 0 or a positive
 * errno and a thin wrapper that sends exactly one fuse_reply_*, as in
 * libfuse's passthrough_ll.  A worker uses one short read transaction of
 * the store: it sees one snapshot and neither blocks nor is blocked by the
 * commits, prunes and gc runs that go on while the store is mounted.
 *
 * Inodes.  A node's number derives from what it is (inode.c), so it is
 * the same in every lookup and every mount.  Lookup counts are exact:
 * every entry a reply carries is counted (lookup, readdirplus), and an
 * entry in a reply the kernel did not take is uncounted again.
 *
 * Metadata.  Sizes are exact (the commit's text, the volume's size); the
 * times of a commit's directory and files are the commit's time, those of
 * a ref's link its commit's, those of the fixed directories the mount's.
 * A volume's st_blocks counts the chunks that hold data: du shows what a
 * volume really holds, and cp, which looks at st_blocks, goes on to find
 * its holes with SEEK_DATA and SEEK_HOLE.
 *
 * Caching and live updates.  A commit's names and bytes never change, so
 * the kernel may keep their entries and attributes for COMMIT_TIMEOUT and
 * a volume's pages across opens (keep_cache); when retention prunes a
 * commit or gc deletes one, watch.c tells the kernel at once.  The names
 * of refs (branches/, tags/, by-time/) are kept only for -o timeout
 * (default 1 s); symlinks are read afresh each time; every opendir lists
 * its directory afresh; and a name that does not exist is answered with
 * ENOENT, which the kernel does not cache.  So new commits, branches and
 * tags appear without a remount, and a moved branch is seen at once.
 *
 * Paging commits/.  Its listing walks the commits table in id order from
 * the directory offset, never loading the table: the offset after an
 * entry is 4 plus the first 60 bits of its id, and a readdir at an offset
 * resumes with the first id whose first 60 bits are at least the offset
 * minus 3.  (Two ids alike in their first 60 bits, which is not expected
 * among fewer than about 10^8 commits, would hide one of them from a
 * listing, though not from a lookup.)  Its entries carry no attributes
 * unless the kernel asks for readdirplus, which reads each commit.
 *
 * Reading.  A read walks its range chunk by chunk: block-map lookup, then
 * the store's cache of verified chunks, or fetch, decompress and SHA-256
 * check (libcairn).  A chunk that fails fails its request with EIO and
 * logs a line naming the chunk, the commit, the volume and the range;
 * every read that does not touch it succeeds.  (A short read instead of
 * EIO would make the kernel take the file to end there.)  Sequential
 * readers get readahead (readahead.c).  SEEK_DATA and SEEK_HOLE answer
 * from the block map, chunk by chunk.
 *
 * Open files, pruning and gc.  Opening a volume leases its commit
 * (lease.c) and then opens a view of it, checking the commit is still
 * there and not pruned: from then on the open file reads that commit's
 * data whatever branches, retention and gc do, since gc treats leased
 * commits as roots.  A commit pruned before the open cannot be opened:
 * its directory then lists only its commit file, as the store keeps only
 * its text.  Where the store cannot record leases (read-only media, where
 * no gc can run either), cairnfs logs so and runs without, and a lease
 * that fails (a full disk) is logged and the file opened all the same: an
 * investigator's read is not refused for want of bookkeeping.  Without a
 * lease, or if a gc run listed the leases just before an open took its
 * lease, gc may reclaim a commit nothing else refers to: reads of its lost
 * chunks then fail cleanly with EIO, as for any missing chunk.
 *
 * Read-only in every sense: the mount is ro, and every operation that
 * would change anything answers EROFS as well.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fusefs/cairnfs.h"

/* Seconds the kernel may keep content-addressed names and attributes;
 * watch.c invalidates them earlier when they go. */
#define COMMIT_TIMEOUT 60.0

/* The directory offsets of commits/ (see above). */
#define COOKIE_FIRST_COMMIT 3
#define COOKIE_SHIFT 4

static const char *const fixed_names[] = {
  [NODE_COMMITS] = "commits",
  [NODE_BRANCHES] = "branches",
  [NODE_TAGS] = "tags",
  [NODE_BY_TIME] = "by-time",
};

int
cairnfs_errno (int code)
{
  switch (code) {
  case 0: return 0;
  case CAIRN_ENOREF: case CAIRN_ENOVOLUME: return ENOENT;
  case CAIRN_EBADNAME: return ENOENT;
  case -EBADMSG: return EIO;
  default: return code < 0 && code > -4096 ? -code : EIO;
  }
}

static struct cairnfs *
fs_of (fuse_req_t req)
{
  return fuse_req_userdata (req);
}

/* ------------------------------------------------------------------ */
/* Nodes: what a key stands for now                                    */

/* The commit a branch or tag points at: CAIRN_ENOREF if none (a branch
 * without commits has no link). */
static int
ref_commit (struct cairn_txn *txn, enum node_kind kind, const char *name,
            struct cairn_id *id)
{
  struct cairn_branch_info info;
  int r;

  if (kind == NODE_TAG_LINK)
    return cairn_tag_get (txn, name, id);
  r = cairn_branch_info_get (txn, name, &info);
  if (r < 0)
    return r == -ENOENT ? CAIRN_ENOREF : r;
  *id = info.base;
  cairn_branch_info_free (&info);
  return cairn_id_is_zero (id) ? CAIRN_ENOREF : 0;
}

static int
commit_time (struct cairn_txn *txn, const struct cairn_id *id, int64_t *time)
{
  struct cairn_commit *c;
  int r = cairn_commit_read (txn, id, &c);

  if (r < 0)
    return r;
  *time = c->time;
  cairn_commit_free (c);
  return 0;
}

static int
count_chunk (uint64_t index, const struct cairn_id *id, void *arg)
{
  uint64_t *n = arg;
  (*n)++;
  return 0;
}

/* 512-byte blocks of volume V that hold data: its chunks that are not
 * holes, the last one cut at the volume's end. */
static int
volume_blocks (struct cairn_txn *txn, const struct cairn_volume *v,
               uint64_t *blocks)
{
  uint64_t chunks = 0, nchunks = (v->size + v->chunk_size - 1) / v->chunk_size;
  int r = 0;

  if (nchunks > 0)
    r = cairn_tree_walk (txn, &v->root,
                         cairn_tree_levels (v->size, v->chunk_size), 0,
                         nchunks - 1, count_chunk, &chunks);
  if (r < 0)
    return r;
  *blocks = CAIRN_MIN (chunks * (v->chunk_size / 512), (v->size + 511) / 512);
  return 0;
}

/* A volume's blocks take a walk of its tree: a node the kernel knows
 * already has them. */
static int
volume_node (struct cairnfs *fs, struct cairn_txn *txn, struct node *n)
{
  struct cairn_commit *c;
  struct node known;
  int r = cairn_commit_read (txn, &n->key.commit, &c);

  if (r < 0)
    return r;
  const struct cairn_volume *v = cairn_commit_volume (c, n->key.name);
  if (!v || cairn_commit_pruned (txn, &n->key.commit))
    r = CAIRN_ENOVOLUME;
  else {
    n->time = c->time;
    n->size = v->size;
    if (inode_find (fs->inodes, &n->key, &known))
      n->blocks = known.blocks;
    else
      r = volume_blocks (txn, v, &n->blocks);
  }
  cairn_commit_free (c);
  return r;
}

static int
commit_text_node (struct cairn_txn *txn, struct node *n)
{
  struct cairn_val text;
  int r = cairn_object_get (txn, CAIRN_OBJECT_COMMIT, &n->key.commit, &text);

  if (r < 0)
    return r == -ENOENT ? CAIRN_ENOREF : r;
  n->size = text.len;
  n->blocks = (text.len + 511) / 512;
  return commit_time (txn, &n->key.commit, &n->time);
}

/* Makes the node of KEY with its attributes as the store has them now:
 * CAIRN_ENOREF or CAIRN_ENOVOLUME if it does not exist. */
static int
node_fill (struct cairnfs *fs, struct cairn_txn *txn,
           const struct node_key *key, struct node *n)
{
  struct cairn_id target;
  int r;

  memset (n, 0, sizeof *n);
  n->key = *key;
  switch (key->kind) {
  case NODE_ROOT: case NODE_COMMITS: case NODE_BRANCHES: case NODE_TAGS:
  case NODE_BY_TIME:
    n->ino = node_fixed_ino (key->kind);
    return 0;
  case NODE_COMMIT_DIR:
    return commit_time (txn, &key->commit, &n->time);
  case NODE_COMMIT_TEXT:
    return commit_text_node (txn, n);
  case NODE_VOLUME:
    return volume_node (fs, txn, n);
  case NODE_BRANCH_LINK: case NODE_TAG_LINK: case NODE_TIMELINE_DIR:
    r = ref_commit (txn, key->kind, key->name, &target);
    if (r == 0)
      r = commit_time (txn, &target, &n->time);
    if (key->kind != NODE_TIMELINE_DIR)
      n->size = strlen ("../commits/") + CAIRN_HEX_SIZE;
    return r;
  case NODE_TIMELINE_LINK:
    n->size = strlen ("../../commits/") + CAIRN_HEX_SIZE;
    return commit_time (txn, &key->commit, &n->time);
  }
  return -EINVAL;
}

/* Nodes whose attributes change with refs and are read afresh. */
static bool
node_follows_refs (enum node_kind kind)
{
  return kind == NODE_BRANCH_LINK || kind == NODE_TAG_LINK
    || kind == NODE_TIMELINE_DIR;
}

static double
node_timeout (const struct cairnfs *fs, enum node_kind kind)
{
  switch (kind) {
  case NODE_BRANCH_LINK: case NODE_TAG_LINK: case NODE_TIMELINE_DIR:
  case NODE_TIMELINE_LINK:
    return fs->timeout;
  default:
    return COMMIT_TIMEOUT;
  }
}

static mode_t
node_mode (enum node_kind kind)
{
  if (node_is_dir (kind))
    return S_IFDIR | 0555;
  if (kind == NODE_COMMIT_TEXT || kind == NODE_VOLUME)
    return S_IFREG | 0444;
  return S_IFLNK | 0777;
}

static void
node_stat (const struct cairnfs *fs, const struct node *n, struct stat *st)
{
  enum node_kind kind = n->key.kind;

  memset (st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_mode = node_mode (kind);
  st->st_uid = fs->uid;
  st->st_gid = fs->gid;
  st->st_size = n->size;
  st->st_blocks = n->blocks;
  st->st_blksize = cairn_store_chunk_size (fs->store);
  if (node_is_fixed (kind))
    st->st_mtim = fs->mounted;
  else {
    st->st_mtim.tv_sec = n->time / 1000000000;
    st->st_mtim.tv_nsec = n->time % 1000000000;
    if (st->st_mtim.tv_nsec < 0) {
      st->st_mtim.tv_sec--;
      st->st_mtim.tv_nsec += 1000000000;
    }
  }
  st->st_atim = st->st_ctim = st->st_mtim;
  /* Directories whose subdirectories are not counted get 1, which tells
   * find not to rely on the count. */
  if (kind == NODE_ROOT)
    st->st_nlink = 2 + 4;
  else if (kind == NODE_COMMITS || kind == NODE_BY_TIME)
    st->st_nlink = 1;
  else
    st->st_nlink = node_is_dir (kind) ? 2 : 1;
}

static void
entry_of (const struct cairnfs *fs, const struct node *n,
          struct fuse_entry_param *e)
{
  memset (e, 0, sizeof *e);
  e->ino = n->ino;
  node_stat (fs, n, &e->attr);
  e->attr_timeout = e->entry_timeout = node_timeout (fs, n->key.kind);
}

/* The target of a link node. */
static int
link_target (struct cairn_txn *txn, const struct node_key *key, char *buf,
             size_t len)
{
  struct cairn_id target = key->commit;
  int r = 0;

  if (key->kind == NODE_BRANCH_LINK || key->kind == NODE_TAG_LINK)
    r = ref_commit (txn, key->kind, key->name, &target);
  if (r == 0)
    layout_commit_link (&target, key->kind == NODE_TIMELINE_LINK ? 2 : 1,
                        buf, len);
  return r;
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

/* The key of NAME in directory PARENT, or CAIRN_ENOREF.  A by-time entry
 * is found in the branch's timeline. */
static int
name_key (struct cairnfs *fs, struct cairn_txn *txn,
          const struct node *parent, const char *name, struct node_key *key)
{
  struct cairn_id head;
  struct timeline *tl;
  int r;

  memset (key, 0, sizeof *key);
  switch (parent->key.kind) {
  case NODE_ROOT:
    for (enum node_kind k = NODE_COMMITS; k <= NODE_BY_TIME; k++)
      if (strcmp (name, fixed_names[k]) == 0) {
        key->kind = k;
        return 0;
      }
    return CAIRN_ENOREF;
  case NODE_COMMITS:
    key->kind = NODE_COMMIT_DIR;
    return layout_commit_of_file (name, &key->commit) ? 0 : CAIRN_ENOREF;
  case NODE_COMMIT_DIR:
    key->commit = parent->key.commit;
    if (strcmp (name, "commit") == 0) {
      key->kind = NODE_COMMIT_TEXT;
      return 0;
    }
    key->kind = NODE_VOLUME;
    return layout_volume_of_file (name, key->name, sizeof key->name) ? 0
      : CAIRN_ENOREF;
  case NODE_BRANCHES: case NODE_TAGS: case NODE_BY_TIME:
    key->kind = parent->key.kind == NODE_BRANCHES ? NODE_BRANCH_LINK
      : parent->key.kind == NODE_TAGS ? NODE_TAG_LINK : NODE_TIMELINE_DIR;
    return layout_ref_of_file (name, key->name, sizeof key->name) ? 0
      : CAIRN_ENOREF;
  case NODE_TIMELINE_DIR:
    r = ref_commit (txn, NODE_TIMELINE_DIR, parent->key.name, &head);
    if (r == 0)
      r = timeline_get (fs->timelines, txn, parent->key.name, &head, &tl);
    if (r < 0)
      return r;
    const struct timeline_entry *e = timeline_find (tl, name);
    if (e) {
      key->kind = NODE_TIMELINE_LINK;
      key->commit = e->commit;
      strcpy (key->name, parent->key.name);
    }
    timeline_put (fs->timelines, tl);
    return e ? 0 : CAIRN_ENOREF;
  default:
    return -ENOTDIR;
  }
}

/* ------------------------------------------------------------------ */
/* lookup, forget, getattr, readlink                                   */

static int
do_lookup (struct cairnfs *fs, fuse_ino_t parent_ino, const char *name,
           struct fuse_entry_param *e)
{
  struct node parent, tmpl, n;
  struct node_key key;
  struct cairn_txn *txn;
  int r = inode_get (fs->inodes, parent_ino, &parent);

  if (r < 0)
    return -r;
  r = cairn_txn_begin (fs->store, false, &txn);
  if (r < 0)
    return cairnfs_errno (r);
  r = name_key (fs, txn, &parent, name, &key);
  if (r == 0)
    r = node_fill (fs, txn, &key, &tmpl);
  cairn_txn_abort (fs->store, txn);
  if (r == 0)
    r = inode_ref (fs->inodes, &tmpl, &n);
  if (r < 0)
    return cairnfs_errno (r);
  entry_of (fs, &n, e);
  return 0;
}

static void
cairnfs_lookup (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  struct cairnfs *fs = fs_of (req);
  struct fuse_entry_param e;
  int err = do_lookup (fs, parent, name, &e);

  if (err)
    fuse_reply_err (req, err);
  else if (fuse_reply_entry (req, &e) != 0)
    inode_forget (fs->inodes, e.ino, 1);      /* the kernel never saw it */
}

static void
cairnfs_forget (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  inode_forget (fs_of (req)->inodes, ino, nlookup);
  fuse_reply_none (req);
}

static void
cairnfs_forget_multi (fuse_req_t req, size_t count,
                      struct fuse_forget_data *forgets)
{
  struct cairnfs *fs = fs_of (req);

  for (size_t i = 0; i < count; i++)
    inode_forget (fs->inodes, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none (req);
}

static int
do_getattr (struct cairnfs *fs, fuse_ino_t ino, struct stat *st,
            double *timeout)
{
  struct node n;
  int r = inode_get (fs->inodes, ino, &n);

  if (r < 0)
    return -r;
  if (node_follows_refs (n.key.kind)) {
    struct cairn_txn *txn;
    fuse_ino_t keep = n.ino;
    r = cairn_txn_begin (fs->store, false, &txn);
    if (r == 0) {
      r = node_fill (fs, txn, &n.key, &n);
      cairn_txn_abort (fs->store, txn);
    }
    if (r < 0)
      return cairnfs_errno (r);
    n.ino = keep;
  }
  node_stat (fs, &n, st);
  *timeout = node_timeout (fs, n.key.kind);
  return 0;
}

static void
cairnfs_getattr (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct stat st;
  double timeout = 0;
  int err = do_getattr (fs_of (req), ino, &st, &timeout);

  if (err)
    fuse_reply_err (req, err);
  else
    fuse_reply_attr (req, &st, timeout);
}

static int
do_readlink (struct cairnfs *fs, fuse_ino_t ino, char *buf, size_t len)
{
  struct node n;
  struct cairn_txn *txn;
  int r = inode_get (fs->inodes, ino, &n);

  if (r < 0)
    return -r;
  if (!S_ISLNK (node_mode (n.key.kind)))
    return EINVAL;
  r = cairn_txn_begin (fs->store, false, &txn);
  if (r == 0) {
    r = link_target (txn, &n.key, buf, len);
    cairn_txn_abort (fs->store, txn);
  }
  return cairnfs_errno (r);
}

static void
cairnfs_readlink (fuse_req_t req, fuse_ino_t ino)
{
  char target[128];
  int err = do_readlink (fs_of (req), ino, target, sizeof target);

  if (err)
    fuse_reply_err (req, err);
  else
    fuse_reply_readlink (req, target);
}

/* ------------------------------------------------------------------ */
/* Handles                                                             */

/* Every open file and directory is on the filesystem's list, so that the
 * ones the kernel never releases (a lazy unmount with files open) are
 * still freed, and their leases ended, at exit. */
struct handle {
  struct handle *prev, *next;
  bool dir;
};

static void
handle_add (struct cairnfs *fs, struct handle *h, bool dir)
{
  h->dir = dir;
  h->prev = NULL;
  pthread_mutex_lock (&fs->handles_lock);
  h->next = fs->handles;
  if (h->next)
    h->next->prev = h;
  fs->handles = h;
  pthread_mutex_unlock (&fs->handles_lock);
}

static void
handle_remove (struct cairnfs *fs, struct handle *h)
{
  pthread_mutex_lock (&fs->handles_lock);
  if (h->prev)
    h->prev->next = h->next;
  else
    fs->handles = h->next;
  if (h->next)
    h->next->prev = h->prev;
  pthread_mutex_unlock (&fs->handles_lock);
}

/* ------------------------------------------------------------------ */
/* Directories                                                         */

/* One entry of a listing made at opendir. */
struct listed {
  char name[LAYOUT_NAME_MAX + 1];
  struct node_key key;
};

/* An open directory: every directory but commits/ is listed whole at
 * opendir, so that a listing is one consistent snapshot; commits/ pages
 * through the store instead (see the top). */
struct open_dir {
  struct handle h;              /* first: a handle is its open_dir */
  struct node dir;
  size_t n;
  struct listed *entries;
  struct timeline *timeline;    /* by-time/<branch>/ instead of entries */
};

static int
listed_add (struct open_dir *d, size_t *cap, const char *name,
            const struct node_key *key)
{
  if (d->n == *cap) {
    size_t c = *cap ? 2 * *cap : 16;
    struct listed *v = realloc (d->entries, c * sizeof *v);
    if (!v)
      return -ENOMEM;
    d->entries = v;
    *cap = c;
  }
  snprintf (d->entries[d->n].name, sizeof d->entries[0].name, "%s", name);
  d->entries[d->n].key = *key;
  d->n++;
  return 0;
}

struct ref_listing {
  struct open_dir *d;
  size_t cap;
  enum node_kind kind;          /* of the entries */
};

static int
list_ref (const struct cairn_ref *ref, void *arg)
{
  struct ref_listing *rl = arg;
  struct node_key key = { .kind = rl->kind };
  char file[LAYOUT_NAME_MAX + 1];

  /* A branch with no commit yet has nothing to point at. */
  if (cairn_id_is_zero (&ref->commit)
      || !layout_ref_file (ref->name, file, sizeof file))
    return 0;
  snprintf (key.name, sizeof key.name, "%s", ref->name);
  return listed_add (rl->d, &rl->cap, file, &key);
}

static int
list_commit_dir (struct cairn_txn *txn, struct open_dir *d)
{
  struct node_key key = { .kind = NODE_COMMIT_TEXT,
                          .commit = d->dir.key.commit };
  struct cairn_commit *c;
  size_t cap = 0;
  int r = cairn_commit_read (txn, &key.commit, &c);

  if (r < 0)
    return r;
  r = listed_add (d, &cap, "commit", &key);
  /* A pruned commit keeps only its text. */
  if (r == 0 && !cairn_commit_pruned (txn, &key.commit))
    for (size_t i = 0; i < c->nvolumes && r == 0; i++) {
      char file[LAYOUT_NAME_MAX + 1];
      key.kind = NODE_VOLUME;
      snprintf (key.name, sizeof key.name, "%s", c->volumes[i].name);
      layout_volume_file (key.name, file, sizeof file);
      r = listed_add (d, &cap, file, &key);
    }
  cairn_commit_free (c);
  return r;
}

static int
list_dir (struct cairnfs *fs, struct cairn_txn *txn, struct open_dir *d)
{
  struct ref_listing rl = { .d = d };
  struct cairn_id head;
  size_t cap = 0;
  int r = 0;

  switch (d->dir.key.kind) {
  case NODE_ROOT:
    for (enum node_kind k = NODE_COMMITS; k <= NODE_BY_TIME && r == 0; k++)
      r = listed_add (d, &cap, fixed_names[k], &(struct node_key) {
                        .kind = k });
    return r;
  case NODE_COMMITS:
    return 0;
  case NODE_COMMIT_DIR:
    return list_commit_dir (txn, d);
  case NODE_BRANCHES: case NODE_BY_TIME:
    rl.kind = d->dir.key.kind == NODE_BRANCHES ? NODE_BRANCH_LINK
      : NODE_TIMELINE_DIR;
    return cairn_ref_list (txn, CAIRN_REF_BRANCH, list_ref, &rl);
  case NODE_TAGS:
    rl.kind = NODE_TAG_LINK;
    return cairn_ref_list (txn, CAIRN_REF_TAG, list_ref, &rl);
  case NODE_TIMELINE_DIR:
    r = ref_commit (txn, NODE_TIMELINE_DIR, d->dir.key.name, &head);
    if (r == 0)
      r = timeline_get (fs->timelines, txn, d->dir.key.name, &head,
                        &d->timeline);
    return r;
  default:
    return -ENOTDIR;
  }
}

static void
open_dir_free (struct cairnfs *fs, struct open_dir *d)
{
  handle_remove (fs, &d->h);
  if (d->timeline)
    timeline_put (fs->timelines, d->timeline);
  free (d->entries);
  free (d);
}

static int
do_opendir (struct cairnfs *fs, fuse_ino_t ino, struct open_dir **out)
{
  struct open_dir *d = calloc (1, sizeof *d);
  struct cairn_txn *txn;
  int r;

  if (!d)
    return ENOMEM;
  r = inode_get (fs->inodes, ino, &d->dir);
  if (r == 0 && !node_is_dir (d->dir.key.kind))
    r = -ENOTDIR;
  if (r == 0)
    r = cairn_txn_begin (fs->store, false, &txn);
  if (r == 0) {
    r = list_dir (fs, txn, d);
    cairn_txn_abort (fs->store, txn);
  }
  handle_add (fs, &d->h, true);
  if (r < 0) {
    open_dir_free (fs, d);
    return cairnfs_errno (r);
  }
  *out = d;
  return 0;
}

static void
cairnfs_opendir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct cairnfs *fs = fs_of (req);
  struct open_dir *d = NULL;
  int err = do_opendir (fs, ino, &d);

  if (err) {
    fuse_reply_err (req, err);
    return;
  }
  fi->fh = (uintptr_t) d;
  if (fuse_reply_open (req, fi) != 0)
    open_dir_free (fs, d);
}

static void
cairnfs_releasedir (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  open_dir_free (fs_of (req), (struct open_dir *) (uintptr_t) fi->fh);
  fuse_reply_err (req, 0);
}

/* A readdir reply being filled. */
struct dir_reply {
  struct cairnfs *fs;
  fuse_req_t req;
  struct cairn_txn *txn;
  bool plus;
  char *buf;
  size_t size, len;
  fuse_ino_t *counted;          /* entries counted as lookups */
  size_t ncounted;
};

/* Adds NAME whose next offset is NEXT: the node of KEY, or with KEY NULL
 * a "." or ".." that is directory DOT.  Returns 1 if it does not fit
 * (nothing added or counted), 0 if added or skipped (gone meanwhile), or
 * an error. */
static int
reply_add (struct dir_reply *d, const char *name, const struct node_key *key,
           fuse_ino_t dot, off_t next)
{
  size_t room = d->size - d->len, need;
  struct fuse_entry_param e;
  struct node tmpl, n;
  int r;

  if (!d->plus) {
    struct stat st = { 0 };
    need = fuse_add_direntry (d->req, NULL, 0, name, NULL, 0);
    if (need > room)
      return 1;
    st.st_ino = key ? inode_number (d->fs->inodes, key) : dot;
    st.st_mode = node_mode (key ? key->kind : NODE_ROOT);
    fuse_add_direntry (d->req, d->buf + d->len, room, name, &st, next);
    d->len += need;
    return 0;
  }

  need = fuse_add_direntry_plus (d->req, NULL, 0, name, NULL, 0);
  if (need > room)
    return 1;
  if (!key) {
    /* No lookup is counted for "." and "..": ino 0 says so. */
    memset (&e, 0, sizeof e);
    e.attr.st_ino = dot;
    e.attr.st_mode = S_IFDIR;
  }
  else {
    r = node_fill (d->fs, d->txn, key, &tmpl);
    if (r == CAIRN_ENOREF || r == CAIRN_ENOVOLUME)
      return 0;
    if (r == 0)
      r = inode_ref (d->fs->inodes, &tmpl, &n);
    if (r < 0)
      return r;
    d->counted[d->ncounted++] = n.ino;
    entry_of (d->fs, &n, &e);
  }
  fuse_add_direntry_plus (d->req, d->buf + d->len, room, name, &e, next);
  d->len += need;
  return 0;
}

/* The directory that holds DIR. */
static fuse_ino_t
parent_ino (const struct node *dir)
{
  switch (dir->key.kind) {
  case NODE_COMMIT_DIR: return node_fixed_ino (NODE_COMMITS);
  case NODE_TIMELINE_DIR: return node_fixed_ino (NODE_BY_TIME);
  default: return FUSE_ROOT_ID;
  }
}

static int
reply_dots (struct dir_reply *d, const struct node *dir, off_t off)
{
  int r = 0;

  if (off < 1)
    r = reply_add (d, ".", NULL, dir->ino, 1);
  if (r == 0 && off < 2)
    r = reply_add (d, "..", NULL, parent_ino (dir), 2);
  return r;
}

static int
page_commit (const struct cairn_id *id, void *arg)
{
  struct dir_reply *d = arg;
  struct node_key key = { .kind = NODE_COMMIT_DIR, .commit = *id };
  char hex[CAIRN_HEX_SIZE + 1];
  off_t next = (off_t) (cairn_be64 (id->bytes) >> COOKIE_SHIFT)
    + COOKIE_FIRST_COMMIT + 1;

  cairn_id_to_hex (id, hex);
  return reply_add (d, hex, &key, 0, next);
}

/* commits/: the dots, then commits from the one OFF points at. */
static int
readdir_commits (struct dir_reply *d, const struct node *dir, off_t off)
{
  struct cairn_id start = cairn_zero_id;
  int r = reply_dots (d, dir, off);

  if (r != 0)
    return r < 0 ? r : 0;
  if (off > COOKIE_FIRST_COMMIT)
    cairn_put_be64 (start.bytes,
                    (uint64_t) (off - COOKIE_FIRST_COMMIT) << COOKIE_SHIFT);
  r = cairn_commit_scan (d->txn, &start, page_commit, d);
  return r < 0 ? r : 0;
}

/* A listing made at opendir: entry I has offset I + 2 after the dots. */
static int
readdir_listed (struct dir_reply *d, const struct open_dir *od, off_t off)
{
  const struct timeline *tl = od->timeline;
  size_t n = tl ? tl->n : od->n;
  int r = reply_dots (d, &od->dir, off);

  for (size_t i = off > 2 ? off - 2 : 0; r == 0 && i < n; i++) {
    struct node_key key = { .kind = NODE_TIMELINE_LINK };
    const char *name;
    if (tl) {
      key.commit = tl->entries[i].commit;
      strcpy (key.name, tl->branch);
      name = tl->entries[i].name;
    }
    else {
      key = od->entries[i].key;
      name = od->entries[i].name;
    }
    r = reply_add (d, name, &key, 0, i + 3);
  }
  return r < 0 ? r : 0;
}

static int
do_readdir (struct dir_reply *d, const struct open_dir *od, off_t off)
{
  /* At most one entry per 24 bytes (the smallest dirent). */
  d->buf = malloc (d->size);
  d->counted = malloc ((d->size / 24 + 1) * sizeof *d->counted);
  if (!d->buf || !d->counted)
    return -ENOMEM;
  int r = cairn_txn_begin (d->fs->store, false, &d->txn);
  if (r < 0)
    return r;
  if (od->dir.key.kind == NODE_COMMITS)
    r = readdir_commits (d, &od->dir, off);
  else
    r = readdir_listed (d, od, off);
  cairn_txn_abort (d->fs->store, d->txn);
  return r;
}

static void
uncount (struct dir_reply *d)
{
  for (size_t i = 0; i < d->ncounted; i++)
    inode_forget (d->fs->inodes, d->counted[i], 1);
}

static void
reply_readdir (fuse_req_t req, size_t size, off_t off,
               struct fuse_file_info *fi, bool plus)
{
  struct dir_reply d = { .fs = fs_of (req), .req = req, .plus = plus,
                         .size = size };
  int r = do_readdir (&d, (struct open_dir *) (uintptr_t) fi->fh, off);

  /* After an error, what is in the buffer is still sent: its entries are
   * counted already. */
  if (r < 0 && d.len == 0)
    fuse_reply_err (req, cairnfs_errno (r));
  else if (fuse_reply_buf (req, d.buf, d.len) != 0)
    uncount (&d);
  free (d.buf);
  free (d.counted);
}

static void
cairnfs_readdir (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
  reply_readdir (req, size, off, fi, false);
}

static void
cairnfs_readdirplus (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
  reply_readdir (req, size, off, fi, true);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

struct open_file {
  struct handle h;              /* first: a handle is its open_file */
  struct node node;
  bool leased;                  /* holds a lease on its commit */
  char *text;                   /* a commit's text */
  struct cairn_view view;       /* a volume */
  struct read_stream stream;
};

static void
open_file_free (struct cairnfs *fs, struct open_file *f)
{
  handle_remove (fs, &f->h);
  if (f->node.key.kind == NODE_VOLUME)
    read_stream_destroy (&f->stream);
  if (f->leased)
    lease_release (fs->leases, &f->node.key.commit);
  free (f->text);
  free (f);
}

static int
open_commit_text (struct cairnfs *fs, struct open_file *f)
{
  struct cairn_txn *txn;
  struct cairn_val text;
  int r = cairn_txn_begin (fs->store, false, &txn);

  if (r < 0)
    return r;
  r = cairn_object_get (txn, CAIRN_OBJECT_COMMIT, &f->node.key.commit, &text);
  if (r == 0) {
    f->text = malloc (text.len + 1);
    if (f->text) {
      memcpy (f->text, text.data, text.len);
      f->node.size = text.len;
    }
    else
      r = -ENOMEM;
  }
  cairn_txn_abort (fs->store, txn);
  return r;
}

/* The lease comes first: once it is recorded, a gc run keeps the commit,
 * so the check that it is still there holds for as long as it is open.
 * A lease that cannot be recorded (a full disk) does not stop a reader:
 * it reads unprotected, and a chunk gc reclaims meanwhile fails its read
 * with EIO. */
static int
open_volume (struct cairnfs *fs, struct open_file *f)
{
  char hex[CAIRN_HEX_SIZE + 1];
  struct cairn_txn *txn;
  int r = lease_hold (fs->leases, &f->node.key.commit);

  f->leased = r == 0;
  if (r < 0) {
    const char *why = cairn_last_error ();
    cairn_id_to_hex (&f->node.key.commit, hex);
    fuse_log (FUSE_LOG_WARNING, "commit %s: no lease (%s): its files are "
              "read without protection from gc\n", hex,
              *why ? why : cairn_strerror (r));
  }
  r = cairn_txn_begin (fs->store, false, &txn);
  if (r == 0) {
    r = cairn_view_open (fs->store, txn, &f->node.key.commit, f->node.key.name,
                         &f->view);
    cairn_txn_abort (fs->store, txn);
  }
  if (r < 0) {
    if (f->leased)
      lease_release (fs->leases, &f->node.key.commit);
    return r == -ENOENT ? CAIRN_ENOVOLUME : r;
  }
  read_stream_init (&f->stream);
  return 0;
}

static int
do_open (struct cairnfs *fs, fuse_ino_t ino, int flags,
         struct open_file **out)
{
  struct open_file *f = calloc (1, sizeof *f);
  int r;

  if (!f)
    return ENOMEM;
  r = inode_get (fs->inodes, ino, &f->node);
  if (r == 0 && (flags & O_ACCMODE) != O_RDONLY)
    r = -EROFS;
  else if (r == 0 && node_is_dir (f->node.key.kind))
    r = -EISDIR;
  else if (r == 0 && f->node.key.kind == NODE_COMMIT_TEXT)
    r = open_commit_text (fs, f);
  else if (r == 0 && f->node.key.kind == NODE_VOLUME)
    r = open_volume (fs, f);
  else if (r == 0)
    r = -ELOOP;
  if (r < 0) {
    free (f->text);
    free (f);
    return cairnfs_errno (r);
  }
  handle_add (fs, &f->h, false);
  *out = f;
  return 0;
}

static void
cairnfs_open (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  struct cairnfs *fs = fs_of (req);
  struct open_file *f = NULL;
  int err = do_open (fs, ino, fi->flags, &f);

  if (err) {
    fuse_reply_err (req, err);
    return;
  }
  fi->fh = (uintptr_t) f;
  /* The bytes of this inode never change: pages read by one open serve
   * the next. */
  fi->keep_cache = 1;
  if (fuse_reply_open (req, fi) != 0)
    open_file_free (fs, f);
}

static void
cairnfs_release (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  open_file_free (fs_of (req), (struct open_file *) (uintptr_t) fi->fh);
  fuse_reply_err (req, 0);
}

static void
log_read_error (const struct open_file *f, uint64_t index, int code)
{
  const struct cairn_volume *v = &f->view.vol;
  char commit[CAIRN_HEX_SIZE + 1];
  const char *why = cairn_last_error ();
  uint64_t lo = index * v->chunk_size;
  uint64_t hi = CAIRN_MIN (lo + v->chunk_size, v->size) - 1;

  cairn_id_to_hex (&f->node.key.commit, commit);
  fuse_log (FUSE_LOG_ERR,
            "read error in commit %s volume %s, bytes %" PRIu64 "..%" PRIu64
            " (chunk %" PRIu64 "): %s\n", commit, v->name, lo, hi, index,
            *why ? why : cairn_strerror (code));
}

/* Reads [OFF, OFF+LEN) of a volume, chunk by chunk. */
static int
volume_read (struct cairnfs *fs, struct open_file *f, char *buf, size_t len,
             uint64_t off)
{
  uint32_t cs = f->view.vol.chunk_size;
  struct cairn_txn *txn;
  int r = cairn_txn_begin (fs->store, false, &txn);

  if (r < 0)
    return r;
  while (len > 0 && r == 0) {
    uint64_t index = off / cs;
    size_t within = off % cs, n = CAIRN_MIN (len, cs - within);
    struct cairn_id id;
    r = cairn_view_chunk (&f->view, txn, index, &id);
    if (r == 0)
      r = cairn_chunk_read_part (fs->store, &id, buf, n, within);
    if (r < 0)
      log_read_error (f, index, r);
    buf += n;
    off += n;
    len -= n;
  }
  cairn_txn_abort (fs->store, txn);
  return r;
}

/* *BUF gets the N bytes to send.  They are always a copy: the kernel may
 * take the reply, let the reader close the file and release it (freeing a
 * commit's text) while this thread is still returning from the send. */
static int
do_read (struct cairnfs *fs, struct open_file *f, size_t size, off_t off,
         char **buf, size_t *n)
{
  uint64_t end = f->node.size;

  *n = off < 0 || (uint64_t) off >= end ? 0
    : CAIRN_MIN (size, end - (uint64_t) off);
  if (*n == 0)
    return 0;
  *buf = malloc (*n);
  if (!*buf)
    return ENOMEM;
  if (f->text) {
    memcpy (*buf, f->text + off, *n);
    return 0;
  }
  read_stream_note (&f->stream, fs->readahead, &f->view.vol, off, *n,
                    fs->readahead_window);
  return cairnfs_errno (volume_read (fs, f, *buf, *n, off));
}

static void
cairnfs_read (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi)
{
  char *buf = NULL;
  size_t n;
  int err = do_read (fs_of (req), (struct open_file *) (uintptr_t) fi->fh,
                     size, off, &buf, &n);

  if (err)
    fuse_reply_err (req, err);
  else
    fuse_reply_buf (req, buf, n);
  free (buf);
}

struct seek {
  uint64_t next;                /* chunk index expected next */
  uint64_t found;
  bool want_hole, have;
};

static int
seek_visit (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct seek *sk = arg;

  if (!sk->want_hole || index != sk->next) {
    /* The first data chunk, or a gap before this one: found. */
    sk->found = sk->want_hole ? sk->next : index;
    sk->have = true;
    return 1;
  }
  sk->next = index + 1;
  return 0;
}

/* SEEK_DATA and SEEK_HOLE at chunk granularity: a chunk that holds data
 * is data even where its bytes are zero; the end of the file is a hole. */
static int
volume_seek (struct cairnfs *fs, struct open_file *f, uint64_t off,
             int whence, uint64_t *out)
{
  const struct cairn_volume *v = &f->view.vol;
  uint64_t nchunks = (v->size + v->chunk_size - 1) / v->chunk_size;
  struct seek sk = { .next = off / v->chunk_size,
                     .want_hole = whence == SEEK_HOLE };
  struct cairn_txn *txn;
  int r = cairn_txn_begin (fs->store, false, &txn);

  if (r < 0)
    return r;
  r = cairn_tree_walk (txn, &v->root, f->view.levels, off / v->chunk_size,
                       nchunks - 1, seek_visit, &sk);
  cairn_txn_abort (fs->store, txn);
  if (r < 0)
    return r;
  if (!sk.have && sk.want_hole) {
    sk.found = sk.next;         /* the hole after the last data chunk */
    sk.have = true;
  }
  if (!sk.have)
    return -ENXIO;
  *out = CAIRN_MIN (v->size, CAIRN_MAX (off, sk.found * v->chunk_size));
  return 0;
}

static int
do_lseek (struct cairnfs *fs, struct open_file *f, off_t off, int whence,
          off_t *out)
{
  uint64_t pos = 0;
  int r;

  if (whence != SEEK_DATA && whence != SEEK_HOLE)
    return EINVAL;
  if (off < 0 || (uint64_t) off >= f->node.size)
    return ENXIO;
  if (f->text) {
    *out = whence == SEEK_DATA ? off : (off_t) f->node.size;
    return 0;
  }
  r = volume_seek (fs, f, off, whence, &pos);
  *out = pos;
  return cairnfs_errno (r);
}

static void
cairnfs_lseek (fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
               struct fuse_file_info *fi)
{
  off_t pos = 0;
  int err = do_lseek (fs_of (req), (struct open_file *) (uintptr_t) fi->fh,
                      off, whence, &pos);

  if (err)
    fuse_reply_err (req, err);
  else
    fuse_reply_lseek (req, pos);
}

void
cairnfs_release_all (struct cairnfs *fs)
{
  while (fs->handles) {
    struct handle *h = fs->handles;
    if (h->dir)
      open_dir_free (fs, (struct open_dir *) h);
    else
      open_file_free (fs, (struct open_file *) h);
  }
}

/* ------------------------------------------------------------------ */
/* The filesystem                                                      */

static void
cairnfs_init (void *userdata, struct fuse_conn_info *conn)
{
  /* Reads come in parallel (kernel readahead, several readers), each
   * served by a worker thread. */
  if (conn->capable & FUSE_CAP_ASYNC_READ)
    conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  /* Branches move: their links must be read afresh. */
  conn->want &= ~FUSE_CAP_CACHE_SYMLINKS;
}

static int
do_statfs (struct cairnfs *fs, struct statvfs *st)
{
  struct cairn_backend *b = cairn_store_backend (fs->store);
  uint64_t bytes = 0, packs = 0;
  uint32_t bsize = cairn_store_chunk_size (fs->store);
  int r = b->ops->space (b, &bytes, &packs);

  if (r < 0)
    return cairnfs_errno (r);
  memset (st, 0, sizeof *st);
  st->f_bsize = st->f_frsize = bsize;
  st->f_blocks = (bytes + bsize - 1) / bsize;
  st->f_namemax = LAYOUT_NAME_MAX;
  st->f_flag = ST_RDONLY;
  return 0;
}

static void
cairnfs_statfs (fuse_req_t req, fuse_ino_t ino)
{
  struct statvfs st;
  int err = do_statfs (fs_of (req), &st);

  if (err)
    fuse_reply_err (req, err);
  else
    fuse_reply_statfs (req, &st);
}

/* Everything that would change something: EROFS, also should the kernel
 * ever ask despite the ro mount. */
static void
erofs_setattr (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
               struct fuse_file_info *fi)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_mknod (fuse_req_t req, fuse_ino_t parent, const char *name,
             mode_t mode, dev_t rdev)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_mkdir (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_remove (fuse_req_t req, fuse_ino_t parent, const char *name)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_symlink (fuse_req_t req, const char *link, fuse_ino_t parent,
               const char *name)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_rename (fuse_req_t req, fuse_ino_t parent, const char *name,
              fuse_ino_t newparent, const char *newname, unsigned int flags)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_link (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
            const char *newname)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_write (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
             off_t off, struct fuse_file_info *fi)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_create (fuse_req_t req, fuse_ino_t parent, const char *name,
              mode_t mode, struct fuse_file_info *fi)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_setxattr (fuse_req_t req, fuse_ino_t ino, const char *name,
                const char *value, size_t size, int flags)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_removexattr (fuse_req_t req, fuse_ino_t ino, const char *name)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_fallocate (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                 off_t length, struct fuse_file_info *fi)
{
  fuse_reply_err (req, EROFS);
}

static void
erofs_copy_file_range (fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
                       off_t off_out, struct fuse_file_info *fi_out,
                       size_t len, int flags)
{
  fuse_reply_err (req, EROFS);
}

const struct fuse_lowlevel_ops cairnfs_ops = {
  .init = cairnfs_init,
  .lookup = cairnfs_lookup,
  .forget = cairnfs_forget,
  .forget_multi = cairnfs_forget_multi,
  .getattr = cairnfs_getattr,
  .readlink = cairnfs_readlink,
  .opendir = cairnfs_opendir,
  .readdir = cairnfs_readdir,
  .readdirplus = cairnfs_readdirplus,
  .releasedir = cairnfs_releasedir,
  .open = cairnfs_open,
  .read = cairnfs_read,
  .lseek = cairnfs_lseek,
  .release = cairnfs_release,
  .statfs = cairnfs_statfs,
  .setattr = erofs_setattr,
  .mknod = erofs_mknod,
  .mkdir = erofs_mkdir,
  .unlink = erofs_remove,
  .rmdir = erofs_remove,
  .symlink = erofs_symlink,
  .rename = erofs_rename,
  .link = erofs_link,
  .write = erofs_write,
  .create = erofs_create,
  .setxattr = erofs_setxattr,
  .removexattr = erofs_removexattr,
  .fallocate = erofs_fallocate,
  .copy_file_range = erofs_copy_file_range,
};
