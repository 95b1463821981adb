/* test-fusefs-inodes: cairnfs's inode table.  A node's number derives
 * from its key alone (the same in every table, so in every mount); lookup
 * counts are exact, a node leaves at zero and comes back with the same
 * number; colliding keys get distinct numbers; the fixed directories are
 * never counted. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fusefs/cairnfs.h"
#include "tap.h"

static struct node
node_of (enum node_kind kind, int commit_byte, const char *name)
{
  struct node n;

  memset (&n, 0, sizeof n);
  n.key.kind = kind;
  n.key.commit.bytes[0] = commit_byte;
  snprintf (n.key.name, sizeof n.key.name, "%s", name);
  n.size = 1000 + commit_byte;
  return n;
}

static uint64_t
always_42 (const struct node_key *key)
{
  return 42;
}

static fuse_ino_t
ref (struct inode_table *t, const struct node *tmpl)
{
  struct node n;
  return inode_ref (t, tmpl, &n) == 0 ? n.ino : 0;
}

int
main (void)
{
  struct inode_table *t = inode_table_new (NULL);
  struct inode_table *u = inode_table_new (NULL);
  struct node a = node_of (NODE_VOLUME, 1, "disk");
  struct node b = node_of (NODE_VOLUME, 1, "memory");
  struct node c = node_of (NODE_COMMIT_DIR, 1, "");
  struct node got;

  /* Numbers. */
  fuse_ino_t ia = ref (t, &a);
  ok (ia >= NODE_FIRST_DYNAMIC, "a node gets a number above the fixed ones");
  is_int (ref (t, &a), ia, "the same key, the same number");
  ok (ref (t, &b) != ia && ref (t, &c) != ia && ref (t, &b) != ref (t, &c),
      "other keys, other numbers");
  is_int (ref (u, &a), ia, "another table (mount) gives the same number");
  is_int (inode_number (u, &b.key), inode_number (t, &b.key),
          "also before a lookup");
  ok (inode_get (t, ia, &got) == 0 && got.key.kind == NODE_VOLUME
      && strcmp (got.key.name, "disk") == 0 && got.size == 1001,
      "the number finds the node and its attributes");

  /* Counts: a was counted twice in t. */
  is_int (got.nlookup, 2, "each lookup counts");
  inode_forget (t, ia, 1);
  ok (inode_get (t, ia, &got) == 0 && got.nlookup == 1,
      "forget takes one off");
  inode_forget (t, ia, 1);
  is_int (inode_get (t, ia, &got), -ESTALE, "at zero the node is gone");
  is_int (ref (t, &a), ia, "and comes back with the same number");
  inode_forget (t, ia, 100);
  is_int (inode_get (t, ia, &got), -ESTALE, "forgetting more is no harm");
  size_t before = inode_count (t);
  inode_forget (t, 999999, 1);
  is_int (inode_count (t), before, "forgetting an unknown number is ignored");

  /* Fixed directories. */
  struct node root = node_of (NODE_ROOT, 0, "");
  struct node commits = node_of (NODE_COMMITS, 0, "");
  is_int (ref (t, &root), FUSE_ROOT_ID, "the root is 1");
  is_int (ref (t, &commits), 2, "commits/ is 2");
  is_int (inode_count (t), before, "fixed directories are not in the table");
  inode_forget (t, 2, 5);
  ok (inode_get (t, 2, &got) == 0 && got.key.kind == NODE_COMMITS,
      "and are never forgotten");

  /* Collisions. */
  struct inode_table *x = inode_table_new (always_42);
  fuse_ino_t xa = ref (x, &a), xb = ref (x, &b);
  ok (xa != xb, "colliding keys get distinct numbers (%llu, %llu)",
      (unsigned long long) xa, (unsigned long long) xb);
  ok (inode_get (x, xb, &got) == 0 && strcmp (got.key.name, "memory") == 0,
      "each finds its own node");
  is_int (ref (x, &b), xb, "and keeps its number");
  inode_forget (x, xa, 1);
  is_int (inode_number (x, &b.key), xb, "also when the other is forgotten");
  is_int (ref (x, &a), xa, "which gets its number back");
  inode_table_free (x);

  /* Many nodes. */
  struct inode_table *m = inode_table_new (NULL);
  bool all = true;
  for (int i = 0; i < 10000; i++) {
    struct node n = node_of (NODE_COMMIT_DIR, 0, "");
    memcpy (n.key.commit.bytes + 1, &i, sizeof i);
    all &= ref (m, &n) != 0;
  }
  ok (all && inode_count (m) == 10000, "10000 nodes");
  struct node *v;
  ssize_t k = inode_collect (m, NODE_COMMIT_DIR, &v);
  is_int (k, 10000, "all collected");
  inode_mark_gone (m, v[0].ino);
  free (v);
  is_int (inode_collect (m, NODE_COMMIT_DIR, &v), 9999,
          "but for one marked gone");
  free (v);
  inode_table_free (m);

  inode_table_free (t);
  inode_table_free (u);
  return done_testing ();
}
