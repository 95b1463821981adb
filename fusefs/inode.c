/* inode.c: cairnfs's inode numbers and lookup counts.
 *
 * Every name cairnfs shows stands for a node whose key says what it is: a
 * kind, a commit id and a name (volume, branch or tag).  A node's inode
 * number is derived from its key, the first 63 bits of SHA-256(key), so
 * the same thing has the same number in every lookup, in every mount and
 * in every readdir (find -inum, tar, cp -a and du see stable numbers, and
 * two mounts of one store agree).  Two keys whose numbers collide cannot
 * share one: the later takes the next free number, which is correct though
 * not stable across mounts (at 2^-63 per pair, it is not expected to
 * happen, but a forensic tool must never show one commit's data as
 * another's).
 *
 * The table holds the nodes the kernel knows, as in libfuse's
 * passthrough_ll: a node enters with its first lookup (or readdirplus
 * entry), every further one counts, and forget removes it when its count
 * reaches zero.  The fixed directories (root, commits, branches, tags,
 * by-time) have numbers 1..5, are never in the table and never forgotten.
 *
 * Two hash tables index the same nodes, by number and by key (keyed by the
 * key's hash, so one SHA-256 serves both).  Locking: one mutex guards
 * both; callers get copies of nodes, never pointers, so no node is used
 * after forget frees it.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fusefs/cairnfs.h"

struct inode {
  struct node node;
  uint64_t hash;                /* of node.key */
  struct inode *next_by_ino;
  struct inode *next_by_key;
};

struct inode_table {
  pthread_mutex_t lock;         /* guards everything below */
  inode_hash_fn hash;
  struct inode **by_ino;        /* buckets: power of two */
  struct inode **by_key;
  size_t nbuckets;
  size_t count;
};

static const fuse_ino_t fixed_inos[] = {
  [NODE_ROOT] = FUSE_ROOT_ID,
  [NODE_COMMITS] = 2,
  [NODE_BRANCHES] = 3,
  [NODE_TAGS] = 4,
  [NODE_BY_TIME] = 5,
};

bool
node_is_fixed (enum node_kind kind)
{
  return kind <= NODE_BY_TIME;
}

bool
node_is_dir (enum node_kind kind)
{
  return node_is_fixed (kind) || kind == NODE_COMMIT_DIR
    || kind == NODE_TIMELINE_DIR;
}

fuse_ino_t
node_fixed_ino (enum node_kind kind)
{
  return fixed_inos[kind];
}

static uint64_t
sha256_hash (const struct node_key *key)
{
  uint8_t buf[1 + CAIRN_ID_SIZE + CAIRN_NAME_MAX + 1];
  size_t n = strlen (key->name);
  struct cairn_id digest;

  buf[0] = key->kind;
  memcpy (buf + 1, key->commit.bytes, CAIRN_ID_SIZE);
  memcpy (buf + 1 + CAIRN_ID_SIZE, key->name, n);
  cairn_sha256 (buf, 1 + CAIRN_ID_SIZE + n, &digest);
  return cairn_le64 (digest.bytes);
}

static bool
key_equal (const struct node_key *a, const struct node_key *b)
{
  return a->kind == b->kind && cairn_id_equal (&a->commit, &b->commit)
    && strcmp (a->name, b->name) == 0;
}

/* The number a hash asks for: 63 bits, above the fixed ones. */
static fuse_ino_t
ino_of_hash (uint64_t h)
{
  fuse_ino_t ino = h & INT64_MAX;
  return ino < NODE_FIRST_DYNAMIC ? ino + NODE_FIRST_DYNAMIC : ino;
}

static size_t
bucket (const struct inode_table *t, uint64_t v)
{
  /* Numbers and hashes are uniform already. */
  return (v ^ v >> 32) & (t->nbuckets - 1);
}

static struct inode *
find_by_ino (const struct inode_table *t, fuse_ino_t ino)
{
  struct inode *i = t->by_ino[bucket (t, ino)];

  while (i && i->node.ino != ino)
    i = i->next_by_ino;
  return i;
}

static struct inode *
find_by_key (const struct inode_table *t, const struct node_key *key,
             uint64_t h)
{
  struct inode *i = t->by_key[bucket (t, h)];

  while (i && !(i->hash == h && key_equal (&i->node.key, key)))
    i = i->next_by_key;
  return i;
}

/* The number a new node of hash H gets: its own, or the next free one. */
static fuse_ino_t
free_ino (const struct inode_table *t, uint64_t h)
{
  fuse_ino_t ino = ino_of_hash (h);

  while (find_by_ino (t, ino))
    ino = ino == INT64_MAX ? NODE_FIRST_DYNAMIC : ino + 1;
  return ino;
}

static void
link_inode (struct inode_table *t, struct inode *i)
{
  size_t b = bucket (t, i->node.ino), k = bucket (t, i->hash);

  i->next_by_ino = t->by_ino[b];
  t->by_ino[b] = i;
  i->next_by_key = t->by_key[k];
  t->by_key[k] = i;
}

static void
unlink_inode (struct inode_table *t, struct inode *i)
{
  struct inode **pp = &t->by_ino[bucket (t, i->node.ino)];

  while (*pp != i)
    pp = &(*pp)->next_by_ino;
  *pp = i->next_by_ino;
  pp = &t->by_key[bucket (t, i->hash)];
  while (*pp != i)
    pp = &(*pp)->next_by_key;
  *pp = i->next_by_key;
}

/* Doubles the buckets when the table is full; stays as it is if memory
 * is short (chains only get longer). */
static void
grow (struct inode_table *t)
{
  size_t n = t->nbuckets * 2;
  struct inode **by_ino = calloc (n, sizeof *by_ino);
  struct inode **by_key = calloc (n, sizeof *by_key);
  struct inode *all = NULL;

  if (!by_ino || !by_key) {
    free (by_ino);
    free (by_key);
    return;
  }
  for (size_t b = 0; b < t->nbuckets; b++)
    for (struct inode *i = t->by_ino[b], *next; i; i = next) {
      next = i->next_by_ino;
      i->next_by_ino = all;
      all = i;
    }
  free (t->by_ino);
  free (t->by_key);
  t->by_ino = by_ino;
  t->by_key = by_key;
  t->nbuckets = n;
  for (struct inode *i = all, *next; i; i = next) {
    next = i->next_by_ino;
    link_inode (t, i);
  }
}

struct inode_table *
inode_table_new (inode_hash_fn hash)
{
  struct inode_table *t = calloc (1, sizeof *t);

  if (!t)
    return NULL;
  t->hash = hash ? hash : sha256_hash;
  t->nbuckets = 1024;
  t->by_ino = calloc (t->nbuckets, sizeof *t->by_ino);
  t->by_key = calloc (t->nbuckets, sizeof *t->by_key);
  if (!t->by_ino || !t->by_key) {
    free (t->by_ino);
    free (t->by_key);
    free (t);
    return NULL;
  }
  pthread_mutex_init (&t->lock, NULL);
  return t;
}

void
inode_table_free (struct inode_table *t)
{
  if (!t)
    return;
  for (size_t b = 0; b < t->nbuckets; b++)
    for (struct inode *i = t->by_ino[b], *next; i; i = next) {
      next = i->next_by_ino;
      free (i);
    }
  free (t->by_ino);
  free (t->by_key);
  pthread_mutex_destroy (&t->lock);
  free (t);
}

int
inode_ref (struct inode_table *t, const struct node *tmpl, struct node *out)
{
  if (node_is_fixed (tmpl->key.kind)) {
    *out = *tmpl;
    out->ino = node_fixed_ino (tmpl->key.kind);
    return 0;
  }

  uint64_t h = t->hash (&tmpl->key);
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_key (t, &tmpl->key, h);
  if (!i) {
    i = malloc (sizeof *i);
    if (!i) {
      pthread_mutex_unlock (&t->lock);
      return -ENOMEM;
    }
    i->node = *tmpl;
    i->node.ino = free_ino (t, h);
    i->node.nlookup = 0;
    i->node.gone_told = false;
    i->hash = h;
    link_inode (t, i);
    if (++t->count > t->nbuckets)
      grow (t);
  }
  i->node.nlookup++;
  *out = i->node;
  pthread_mutex_unlock (&t->lock);
  return 0;
}

void
inode_forget (struct inode_table *t, fuse_ino_t ino, uint64_t n)
{
  if (ino < NODE_FIRST_DYNAMIC)
    return;
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_ino (t, ino);
  if (i) {
    i->node.nlookup -= CAIRN_MIN (n, i->node.nlookup);
    if (i->node.nlookup == 0) {
      unlink_inode (t, i);
      t->count--;
      free (i);
    }
  }
  pthread_mutex_unlock (&t->lock);
}

int
inode_get (struct inode_table *t, fuse_ino_t ino, struct node *out)
{
  for (enum node_kind k = NODE_ROOT; node_is_fixed (k); k++)
    if (ino == fixed_inos[k]) {
      memset (out, 0, sizeof *out);
      out->ino = ino;
      out->key.kind = k;
      return 0;
    }

  int r = -ESTALE;
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_ino (t, ino);
  if (i) {
    *out = i->node;
    r = 0;
  }
  pthread_mutex_unlock (&t->lock);
  return r;
}

fuse_ino_t
inode_number (struct inode_table *t, const struct node_key *key)
{
  if (node_is_fixed (key->kind))
    return node_fixed_ino (key->kind);

  uint64_t h = t->hash (key);
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_key (t, key, h);
  fuse_ino_t ino = i ? i->node.ino : free_ino (t, h);
  pthread_mutex_unlock (&t->lock);
  return ino;
}

bool
inode_find (struct inode_table *t, const struct node_key *key,
            struct node *out)
{
  if (node_is_fixed (key->kind))
    return false;

  uint64_t h = t->hash (key);
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_key (t, key, h);
  if (i)
    *out = i->node;
  pthread_mutex_unlock (&t->lock);
  return i != NULL;
}

ssize_t
inode_collect (struct inode_table *t, enum node_kind kind, struct node **out)
{
  struct node *v = NULL;
  size_t n = 0, cap = 0;

  pthread_mutex_lock (&t->lock);
  for (size_t b = 0; b < t->nbuckets; b++)
    for (struct inode *i = t->by_ino[b]; i; i = i->next_by_ino) {
      if (i->node.key.kind != kind || i->node.gone_told)
        continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        struct node *nv = realloc (v, cap * sizeof *nv);
        if (!nv) {
          pthread_mutex_unlock (&t->lock);
          free (v);
          return -ENOMEM;
        }
        v = nv;
      }
      v[n++] = i->node;
    }
  pthread_mutex_unlock (&t->lock);
  *out = v;
  return n;
}

void
inode_mark_gone (struct inode_table *t, fuse_ino_t ino)
{
  pthread_mutex_lock (&t->lock);
  struct inode *i = find_by_ino (t, ino);
  if (i)
    i->node.gone_told = true;
  pthread_mutex_unlock (&t->lock);
}

size_t
inode_count (struct inode_table *t)
{
  pthread_mutex_lock (&t->lock);
  size_t n = t->count;
  pthread_mutex_unlock (&t->lock);
  return n;
}
