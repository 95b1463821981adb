/* test-gc-reader-fds: a long-lived reader (nbdkit, cairnfs) lets go of the
 * packs gc compacted away, so that their space really comes back.
 *
 * Each open store caches a descriptor per pack it read from.  A pack gc
 * unlinks stays on disk for as long as a descriptor of it is open: in a
 * process that runs for weeks that is forever.  Here one store handle
 * (the reader) reads every chunk of a commit, a second handle prunes and
 * gcs so that those packs are compacted into a new one, then the reader
 * reads the kept data again, now in the new pack.  Afterwards no
 * descriptor of this process may point at a deleted pack file, and the
 * reader still reads the right bytes.
 */
#include <config.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gc/gc.h"
#include "retention/prune.h"
#include "gc-fixture.h"
#include "tap.h"

#define CHUNK 4096
#define VOLUME (256 << 10)

/* Descriptors of this process naming a pack file that was unlinked. */
static int
deleted_packs_open (void)
{
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (!d)
    return -1;
  while ((e = readdir (d)) != NULL) {
    char link[300], target[4096];
    snprintf (link, sizeof link, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink (link, target, sizeof target - 1);
    if (len <= 0)
      continue;
    target[len] = '\0';
    n += strstr (target, ".pack (deleted)") != NULL;
  }
  closedir (d);
  return n;
}

int
main (void)
{
  struct fixture f;
  struct cairn_store *reader;
  struct cairn_id old, keep, d_keep, d;
  struct cairn_gc_report g;
  struct cairn_prune_result res;
  struct cairn_retention_policy p = { 0 };

  setenv ("CAIRN_PACK_LIMIT", "64K", 1);
  if (fixture_open (&f, CHUNK) < 0
      || cairn_branch_create_empty (f.s, "main", "disk", VOLUME) < 0
      || fixture_commit (f.s, "main", 0, VOLUME, 1, NULL, &old) < 0
      || fixture_commit (f.s, "main", 0, VOLUME / 2, 2, NULL, &keep) < 0
      || fixture_digest (f.s, &keep, &d_keep) < 0
      || cairn_store_open (f.path, CAIRN_OPEN_READONLY, &reader) < 0) {
    printf ("Bail out! cannot make the store\n");
    return 1;
  }
  cairn_store_set_cache_size (reader, 0);
  ok (fixture_digest (reader, &old, &d) == 0, "the reader reads the old "
      "commit: every pack is open in it");
  cairn_retention_policy_set (&p, "keep-last", "1");
  ok (cairn_retention_set (f.s, "main", &p) == 0
      && cairn_prune (f.s, &(struct cairn_prune_options) { 0 }, &res) == 0,
      "prune the old commit");
  cairn_prune_result_free (&res);
  ok (cairn_gc (f.s, NULL, &g) == 0, "gc");
  ok (g.packs_compacted > 0, "it compacted %llu packs",
      (unsigned long long) g.packs_compacted);
  ok (fixture_digest (reader, &keep, &d) == 0 && cairn_id_equal (&d, &d_keep),
      "the reader reads the kept commit, from the new pack");
  is_int (deleted_packs_open (), 0, "and holds no compacted pack open");
  cairn_store_close (reader);
  fixture_close (&f);
  return done_testing ();
}
