/* test-fsck: damage is found and blamed on exactly the right commits.
 *
 * History: main c1 (writes all 16 chunks) - c2 (rewrites chunk 5);
 * dev from c1 - d1 (rewrites chunk 9); tag t1 on c1.  So chunk 0 of c1
 * is in c1, c2 and d1; chunk 5 of c2 is only in c2.
 *
 *  - a flipped byte in chunk 0's pack record: fsck without read-data
 *    cannot see it; with read-data it names chunk 0, commits c1, c2, d1,
 *    branches main and dev, and tag t1;
 *  - after c3 rewrites chunk 5 again, c2's chunk 5 missing from the
 *    index: plain fsck names c2 only, and no branch;
 *  - d1's root node missing: named, with c2 and d1 and branch dev; gc
 *    then refuses to run (it deletes nothing on a guess).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gc/gc.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (16 * CHUNK)

static struct fixture f;
static struct cairn_store *s;
static struct cairn_id c1, c2, d1;

static int
chunk_of (const struct cairn_id *commit, uint64_t index, struct cairn_id *id)
{
  struct cairn_txn *txn;
  struct cairn_view v;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_view_open (s, txn, commit, "disk", &v);
  if (r == 0)
    r = cairn_view_chunk (&v, txn, index, id);
  cairn_txn_abort (s, txn);
  return r;
}

static int
root_of (const struct cairn_id *commit, struct cairn_id *root)
{
  struct cairn_txn *txn;
  struct cairn_commit *c;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_commit_read (txn, commit, &c);
  cairn_txn_abort (s, txn);
  if (r == 0) {
    *root = cairn_commit_volume (c, "disk")->root;
    cairn_commit_free (c);
  }
  return r;
}

/* Flips a byte in the middle of chunk ID's record payload. */
static int
corrupt_chunk (const struct cairn_id *id)
{
  struct cairn_backend *b = cairn_store_backend (s);
  struct cairn_object_info info;
  struct cairn_txn *txn;
  char path[512];
  unsigned char byte;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = b->ops->object_stat (cairn_txn_backend (txn), CAIRN_OBJECT_CHUNK, id,
                           &info);
  cairn_txn_abort (s, txn);
  if (r < 0)
    return r;
  snprintf (path, sizeof path, "%s/packs/pack-%08x.pack", f.path, info.pack);
  int fd = open (path, O_RDWR);
  off_t at = info.offset + 48 + info.stored_len / 2;
  if (fd < 0 || pread (fd, &byte, 1, at) != 1)
    return -1;
  byte ^= 0x55;
  r = pwrite (fd, &byte, 1, at) == 1 ? 0 : -1;
  close (fd);
  return r;
}

static int
delete_object (enum cairn_object_type type, const struct cairn_id *id)
{
  struct cairn_backend *b = cairn_store_backend (s);
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  r = b->ops->object_delete (cairn_txn_backend (txn), type, id);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  return cairn_txn_commit (s, txn);
}

static bool
names_commits (const struct cairn_fsck_report *r, size_t n,
               const struct cairn_id *want)
{
  if (r->n_commits != n)
    return false;
  for (size_t i = 0; i < n; i++) {
    bool found = false;
    for (size_t j = 0; j < r->n_commits; j++)
      found |= cairn_id_equal (&r->commits[j], &want[i]);
    if (!found)
      return false;
  }
  return true;
}

static bool
names (char **list, size_t n, const char *a, const char *b)
{
  size_t want = (a != NULL) + (b != NULL), got = 0;
  for (size_t i = 0; i < n; i++)
    got += (a && strcmp (list[i], a) == 0) || (b && strcmp (list[i], b) == 0);
  return n == want && got == want;
}

static bool
mentions (const struct cairn_fsck_report *r, const struct cairn_id *id)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (id, hex);
  for (size_t i = 0; i < r->n_problems; i++)
    if (strstr (r->problems[i], hex))
      return true;
  return false;
}

static void
show (const struct cairn_fsck_report *r)
{
  for (size_t i = 0; i < r->n_problems; i++)
    diag ("problem: %s", r->problems[i]);
}

static void
test_corrupt_chunk (void)
{
  struct cairn_fsck_report r;
  struct cairn_id shared;

  ok (chunk_of (&c1, 0, &shared) == 0 && corrupt_chunk (&shared) == 0,
      "flip a byte of chunk 0's stored bytes");
  ok (cairn_fsck (s, NULL, &r) == 0, "fsck");
  is_int (r.n_problems, 0, "without read-data the bytes are not read");
  cairn_fsck_report_free (&r);

  ok (cairn_fsck (s, &(struct cairn_fsck_options) { .read_data = true }, &r)
      == 0, "fsck --read-data");
  show (&r);
  is_int (r.n_problems, 1, "one problem");
  ok (mentions (&r, &shared), "it names the chunk");
  ok (names_commits (&r, 3, (struct cairn_id[]) { c1, c2, d1 }),
      "commits c1, c2 and d1 are affected");
  ok (r.n_commits == 3 && cairn_id_equal (&r.commits[0], &d1),
      "newest first");
  ok (names (r.branches, r.n_branches, "main", "dev"),
      "branches main and dev are affected");
  ok (names (r.tags, r.n_tags, "t1", NULL), "tag t1 is affected");
  is_int (r.chunks_read, r.chunks - 1, "every other chunk re-hashed fine");
  cairn_fsck_report_free (&r);
}

static void
test_missing (void)
{
  struct cairn_fsck_report r;
  struct cairn_gc_report g;
  struct cairn_id only_c2, root, c3;

  ok (fixture_commit (s, "main", 5 * CHUNK, CHUNK, 4, NULL, &c3) == 0,
      "c3 rewrites chunk 5 again: main moves past c2");
  ok (chunk_of (&c2, 5, &only_c2) == 0
      && delete_object (CAIRN_OBJECT_CHUNK, &only_c2) == 0,
      "delete the index entry of c2's own chunk 5");
  ok (cairn_fsck (s, NULL, &r) == 0, "fsck");
  show (&r);
  ok (r.n_problems >= 1 && mentions (&r, &only_c2), "it names the chunk");
  ok (names_commits (&r, 1, &c2), "only c2 is affected");
  ok (names (r.branches, r.n_branches, NULL, NULL),
      "no branch: main moved past c2");
  cairn_fsck_report_free (&r);

  ok (root_of (&d1, &root) == 0
      && delete_object (CAIRN_OBJECT_NODE, &root) == 0,
      "delete d1's root tree node");
  ok (cairn_fsck (s, NULL, &r) == 0, "fsck");
  show (&r);
  ok (mentions (&r, &root), "it names the node");
  ok (names_commits (&r, 2, (struct cairn_id[]) { c2, d1 }),
      "c2 and d1 are affected");
  ok (names (r.branches, r.n_branches, "dev", NULL), "branch dev is");
  cairn_fsck_report_free (&r);

  ok (cairn_gc (s, NULL, &g) == -EBADMSG, "gc refuses a damaged store");
  diag ("gc: %s", cairn_last_error ());
  is_int (g.chunks_swept + g.nodes_swept, 0, "and deleted nothing");
}

int
main (void)
{
  int r;

  if (fixture_open (&f, CHUNK) < 0) {
    printf ("Bail out! cannot make a store\n");
    return 1;
  }
  s = f.s;
  r = cairn_branch_create_empty (s, "main", "disk", VOLUME);
  if (r == 0)
    r = fixture_commit (s, "main", 0, VOLUME, 1, "2026-11-21T10:00:00Z", &c1);
  if (r == 0)
    r = fixture_commit (s, "main", 5 * CHUNK, CHUNK, 2,
                        "2026-11-21T10:01:00Z", &c2);
  if (r == 0)
    r = cairn_branch_create_from (s, "dev", &c1);
  if (r == 0)
    r = fixture_commit (s, "dev", 9 * CHUNK, CHUNK, 3,
                        "2026-11-21T10:02:00Z", &d1);
  if (r == 0)
    r = cairn_tag_create (s, "t1", &c1);
  if (r < 0) {
    printf ("Bail out! cannot make the history: %s\n", cairn_last_error ());
    return 1;
  }
  test_corrupt_chunk ();
  test_missing ();
  fixture_close (&f);
  return done_testing ();
}
