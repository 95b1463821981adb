/* test-fusefs-store-lease: a reader that opened the store read-only (as
 * cairnfs does) can still take a lease, so that gc keeps the commit of a
 * file it has open; the lease is visible to other processes' stores and
 * gone when it ends; the store stays read-only for everything else. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"

struct lease_count {
  struct cairn_id commit;
  int n;
};

static int
lease_seen (const struct cairn_id *commit, void *arg)
{
  struct lease_count *lc = arg;

  if (cairn_id_equal (commit, &lc->commit))
    lc->n++;
  return 0;
}

static int
leases_of (struct cairn_store *s, const struct cairn_id *commit)
{
  struct lease_count lc = { *commit, 0 };

  if (cairn_leases_list (s, lease_seen, &lc) < 0)
    return -1;
  return lc.n;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-lease.XXXXXX", path[256];
  struct cairn_store *writer, *reader;
  struct cairn_branch *b;
  struct cairn_lease *lease = NULL;
  struct cairn_id commit;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  plan (10);

  ok (cairn_store_init (path, NULL) == 0
      && cairn_store_open (path, 0, &writer) == 0
      && cairn_branch_create_empty (writer, "main", "disk", 1 << 20) == 0
      && cairn_branch_open (writer, "main", CAIRN_BRANCH_WRITE, &b) == 0
      && cairn_branch_commit (b, NULL, &commit) == 0,
      "a store with one commit");
  cairn_branch_close (b);

  ok (cairn_store_open (path, CAIRN_OPEN_READONLY, &reader) == 0,
      "opened read-only");
  is_int (cairn_lease_begin (reader, &commit, &lease), -EROFS,
          "a plain read-only store cannot record a lease");
  cairn_store_close (reader);

  ok (cairn_store_open (path, CAIRN_OPEN_READONLY | CAIRN_OPEN_LEASES,
                        &reader) == 0,
      "opened read-only with leases");
  is_int (cairn_lease_begin (reader, &commit, &lease), 0,
          "it records a lease");
  is_int (leases_of (writer, &commit), 1,
          "another handle on the store sees the leased commit");
  is_int (cairn_branch_open (reader, "main", CAIRN_BRANCH_WRITE, &b), -EROFS,
          "the store stays read-only: no branch opens for writing");
  is_int (cairn_tag_create (reader, "t", &commit), -EROFS,
          "nor is a tag written");
  cairn_lease_end (lease);
  is_int (leases_of (writer, &commit), 0, "the lease ends");
  is_int (leases_of (reader, &commit), 0, "also as its owner sees it");

  cairn_store_close (reader);
  cairn_store_close (writer);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
