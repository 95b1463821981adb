/* watch.c: telling the kernel which names have gone.
 *
 * Content-addressed names, commits/<id>/ and what it holds, never change
 * meaning, so the kernel may cache them for long (COMMIT_TIMEOUT in
 * ops.c).  Two things can still remove them while mounted:
 * retention prunes a commit (its volume files go, its commit file stays)
 * and gc deletes a commit that nothing refers to any more.  Every interval
 * the watcher checks the commit directories and volume files the kernel
 * knows (the inode table) against the store and, for each that has gone,
 * sends notify_delete: the kernel drops the name at once, and inotify
 * watchers see it deleted.  It tells once per node.
 *
 * Names of refs (branches/, tags/, by-time/) change often and are cached
 * only for -o timeout, and every opendir reads its directory afresh, so
 * they need no notifications: a new commit, branch or tag shows at once.
 *
 * The watcher holds no lock while it notifies, as the kernel may be
 * waiting for a request on the same directory (see
 * fuse_lowlevel_notify_inval_entry in fuse_lowlevel.h).
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fusefs/cairnfs.h"

struct watcher {
  struct cairnfs *fs;
  unsigned interval_ms;
  pthread_t thread;
  pthread_mutex_t lock;         /* guards stop */
  pthread_cond_t wake;
  bool stop;
};

static bool
commit_gone (struct cairn_txn *txn, const struct cairn_id *id)
{
  struct cairn_val text;
  return cairn_object_get (txn, CAIRN_OBJECT_COMMIT, id, &text) == -ENOENT;
}

/* Fills GONE[i] for each of the N nodes: has its name left the store? */
static int
find_gone (struct cairn_store *s, const struct node *nodes, size_t n,
           bool *gone)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  for (size_t i = 0; i < n; i++) {
    const struct node_key *k = &nodes[i].key;
    gone[i] = commit_gone (txn, &k->commit)
      || (k->kind == NODE_VOLUME && cairn_commit_pruned (txn, &k->commit));
  }
  cairn_txn_abort (s, txn);
  return 0;
}

static void
tell_gone (struct cairnfs *fs, const struct node *node)
{
  const struct node_key *k = &node->key;
  char name[LAYOUT_NAME_MAX + 1];
  fuse_ino_t parent;

  if (k->kind == NODE_COMMIT_DIR) {
    parent = node_fixed_ino (NODE_COMMITS);
    cairn_id_to_hex (&k->commit, name);
  }
  else {
    struct node_key dir = { .kind = NODE_COMMIT_DIR, .commit = k->commit };
    parent = inode_number (fs->inodes, &dir);
    layout_volume_file (k->name, name, sizeof name);
  }
  /* -ENOENT: the kernel had dropped the name already. */
  fuse_lowlevel_notify_delete (fs->se, parent, node->ino, name,
                               strlen (name));
  inode_mark_gone (fs->inodes, node->ino);
}

static void
check_kind (struct cairnfs *fs, enum node_kind kind)
{
  struct node *nodes;
  ssize_t n = inode_collect (fs->inodes, kind, &nodes);
  bool *gone;

  if (n <= 0)
    return;
  gone = calloc (n, sizeof *gone);
  if (gone && find_gone (fs->store, nodes, n, gone) == 0)
    for (ssize_t i = 0; i < n; i++)
      if (gone[i])
        tell_gone (fs, &nodes[i]);
  free (gone);
  free (nodes);
}

static void *
watch_loop (void *arg)
{
  struct watcher *w = arg;

  pthread_mutex_lock (&w->lock);
  while (!w->stop) {
    struct timespec until;
    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_sec += w->interval_ms / 1000;
    until.tv_nsec += (w->interval_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait (&w->wake, &w->lock, &until);
    if (w->stop)
      break;
    pthread_mutex_unlock (&w->lock);
    check_kind (w->fs, NODE_VOLUME);
    check_kind (w->fs, NODE_COMMIT_DIR);
    pthread_mutex_lock (&w->lock);
  }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

int
watch_start (struct cairnfs *fs, unsigned interval_ms, struct watcher **out)
{
  struct watcher *w = calloc (1, sizeof *w);
  int r;

  if (!w)
    return -ENOMEM;
  w->fs = fs;
  w->interval_ms = interval_ms;
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->wake, NULL);
  r = -pthread_create (&w->thread, NULL, watch_loop, w);
  if (r < 0) {
    pthread_cond_destroy (&w->wake);
    pthread_mutex_destroy (&w->lock);
    free (w);
    return r;
  }
  *out = w;
  return 0;
}

void
watch_stop (struct watcher *w)
{
  if (!w)
    return;
  pthread_mutex_lock (&w->lock);
  w->stop = true;
  pthread_cond_signal (&w->wake);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL);
  pthread_cond_destroy (&w->wake);
  pthread_mutex_destroy (&w->lock);
  free (w);
}
