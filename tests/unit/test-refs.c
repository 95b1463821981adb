/* test-refs: stores, names, branches, tags and ref resolution. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"

static struct cairn_store *s;

static int
resolve (const char *spec, struct cairn_ref *ref)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    return r;
  r = cairn_resolve (txn, spec, ref);
  cairn_txn_abort (s, txn);
  return r;
}

static int
commit_branch (const char *name, const char *msg, struct cairn_id *id)
{
  struct cairn_branch *b;
  struct cairn_commit_options o = { .message = msg };
  int r = cairn_branch_open (s, name, CAIRN_BRANCH_WRITE, &b);
  if (r < 0)
    return r;
  r = cairn_branch_commit (b, &o, id);
  cairn_branch_close (b);
  return r;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-refs.XXXXXX", path[256], file[300];
  struct cairn_ref ref;
  struct cairn_id c1, c2, c3;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);

  ok (cairn_store_open (path, 0, &s) == CAIRN_ENOTSTORE,
      "a missing path is not a store");
  ok (strstr (cairn_last_error (), "is not a cairn store") != NULL,
      "and the message says so: %s", cairn_last_error ());
  ok (cairn_store_init (path, &(struct cairn_store_options) {
        .chunk_size = 3000 }) == -EINVAL, "chunk size 3000 refused");
  ok (cairn_store_init (path, NULL) == 0, "init");
  ok (cairn_store_init (path, NULL) == -EEXIST, "init twice refused");
  snprintf (file, sizeof file, "%s/notempty", dir);
  cairn_mkdir_p (file);
  snprintf (file, sizeof file, "%s/notempty/x", dir);
  FILE *f = fopen (file, "w");
  fclose (f);
  snprintf (file, sizeof file, "%s/notempty", dir);
  ok (cairn_store_init (file, NULL) == -EEXIST,
      "init over a directory with files refused");
  ok (cairn_store_open (path, 0, &s) == 0, "open");
  is_int (cairn_store_chunk_size (s), 65536, "default chunk size");
  is_int (cairn_store_compress_level (s), 1, "default zstd level");

  ok (cairn_ref_name_valid ("main"), "main is a name");
  ok (cairn_ref_name_valid ("feature/x-1.2"), "feature/x-1.2 is a name");
  ok (!cairn_ref_name_valid ("-x"), "leading dash refused");
  ok (!cairn_ref_name_valid ("a..b"), ".. refused");
  ok (!cairn_ref_name_valid ("a:b"), "colon refused (export separator)");
  ok (cairn_ref_name_valid ("cafe"), "hex-looking names are names");
  ok (!cairn_ref_name_valid ("a b"), "space refused");
  ok (!cairn_ref_name_valid ("x.lock"), ".lock refused");
  ok (!cairn_ref_name_valid (""), "empty refused");

  ok (cairn_branch_create_empty (s, "main", "disk", 1000) == -EINVAL,
      "a size that is not a multiple of 512 is refused");
  ok (cairn_branch_create_empty (s, "main", "Disk", 4096) == CAIRN_EBADNAME,
      "bad volume name refused");
  ok (cairn_branch_create_empty (s, "main", "disk", 1 << 20) == 0,
      "create main");
  ok (cairn_branch_create_empty (s, "main", "disk", 1 << 20) == -EEXIST,
      "create main twice refused");
  ok (strstr (cairn_last_error (), "already exists") != NULL,
      "message: %s", cairn_last_error ());

  ok (resolve ("main", &ref) == 0 && ref.kind == CAIRN_REF_BRANCH
      && cairn_id_is_zero (&ref.commit), "main resolves, no commit yet");
  ok (commit_branch ("main", "one", &c1) == 0, "commit 1");
  ok (commit_branch ("main", "two", &c2) == 0, "commit 2");
  ok (!cairn_id_equal (&c1, &c2), "an unchanged branch still commits anew");
  ok (resolve ("main", &ref) == 0 && cairn_id_equal (&ref.commit, &c2),
      "main resolves to its last commit");
  ok (resolve ("heads/main", &ref) == 0 && cairn_id_equal (&ref.commit, &c2),
      "heads/main");
  ok (resolve ("main~1", &ref) == 0 && cairn_id_equal (&ref.commit, &c1),
      "main~1 is the parent");
  ok (resolve ("main^", &ref) == 0 && cairn_id_equal (&ref.commit, &c1),
      "main^ too");
  ok (resolve ("main~2", &ref) == CAIRN_ENOREF, "main~2 does not exist");

  char hex[CAIRN_HEX_SIZE + 1], prefix[8];
  cairn_id_to_hex (&c1, hex);
  snprintf (prefix, sizeof prefix, "%.6s", hex);
  ok (resolve (prefix, &ref) == 0 && ref.kind == CAIRN_REF_COMMIT
      && cairn_id_equal (&ref.commit, &c1), "a 6-digit prefix resolves");
  ok (resolve (hex, &ref) == 0 && cairn_id_equal (&ref.commit, &c1),
      "the full id resolves");
  ok (resolve ("nosuch", &ref) == CAIRN_ENOREF, "unknown ref");
  ok (strstr (cairn_last_error (), "nosuch") != NULL,
      "message names it: %s", cairn_last_error ());

  /* Make commits until two share a 4-digit prefix: ambiguity. */
  struct cairn_id ids[1500];
  char amb[5] = "";
  int found = 0;
  for (int i = 0; i < 1500 && !found; i++) {
    commit_branch ("main", "more", &ids[i]);
    for (int j = 0; j < i && !found; j++)
      if (memcmp (ids[i].bytes, ids[j].bytes, 2) == 0) {
        cairn_id_to_hex (&ids[i], hex);
        snprintf (amb, sizeof amb, "%.4s", hex);
        found = 1;
      }
  }
  ok (found && resolve (amb, &ref) == CAIRN_EAMBIGUOUS,
      "a prefix shared by two commits is ambiguous (%s)", amb);

  ok (cairn_tag_create (s, "v1", &c1) == 0, "tag v1");
  ok (cairn_tag_create (s, "v1", &c2) == -EEXIST, "tag v1 twice refused");
  ok (cairn_tag_create (s, "main", &c2) == -EEXIST,
      "a tag may not shadow a branch");
  ok (cairn_branch_create_from (s, "v1", &c1) == -EEXIST,
      "a branch may not shadow a tag");
  /* A branch named like a prefix of c1 wins over the prefix. */
  char hexc1[CAIRN_HEX_SIZE + 1], shadow[8];
  cairn_id_to_hex (&c1, hexc1);
  snprintf (shadow, sizeof shadow, "%.5s", hexc1);
  if (cairn_ref_name_valid (shadow)) {
    ok (cairn_branch_create_from (s, shadow, &c2) == 0
        && resolve (shadow, &ref) == 0 && ref.kind == CAIRN_REF_BRANCH
        && cairn_id_equal (&ref.commit, &c2),
        "a branch named like an id prefix resolves to the branch");
    cairn_branch_delete (s, shadow);
  }
  else
    ok (1, "(the prefix starts with a digit: nothing to shadow)");
  ok (resolve ("v1", &ref) == 0 && ref.kind == CAIRN_REF_TAG
      && cairn_id_equal (&ref.commit, &c1), "v1 resolves to c1");
  ok (resolve ("tags/v1", &ref) == 0, "tags/v1");
  ok (resolve ("heads/v1", &ref) == CAIRN_ENOREF, "heads/v1 is not a branch");

  ok (cairn_branch_create_from (s, "dev", &c1) == 0, "branch dev from c1");
  ok (resolve ("dev", &ref) == 0 && cairn_id_equal (&ref.commit, &c1),
      "dev starts at c1");
  ok (commit_branch ("dev", "dev work", &c3) == 0, "commit on dev");
  struct cairn_txn *txn;
  struct cairn_commit *c;
  cairn_txn_begin (s, false, &txn);
  ok (cairn_commit_read (txn, &c3, &c) == 0 && c->nparents == 1
      && cairn_id_equal (&c->parents[0], &c1), "dev's commit has c1 as parent");
  cairn_commit_free (c);
  cairn_txn_abort (s, txn);

  struct cairn_branch *held;
  ok (cairn_branch_open (s, "dev", CAIRN_BRANCH_WRITE, &held) == 0,
      "open dev for writing");
  int pid = 0;
  ok (cairn_branch_is_held (s, "dev", &pid) && pid == getpid (),
      "dev is held, by this process");
  ok (cairn_branch_delete (s, "dev") == CAIRN_EHELD,
      "a held branch cannot be deleted");
  cairn_branch_close (held);
  ok (!cairn_branch_is_held (s, "dev", &pid), "released on close");
  ok (cairn_branch_delete (s, "dev") == 0, "delete dev");
  ok (resolve ("dev", &ref) == CAIRN_ENOREF, "dev is gone");
  ok (resolve (prefix, &ref) == 0, "its commits stay reachable by id");
  ok (cairn_tag_delete (s, "v1") == 0 && resolve ("v1", &ref) == CAIRN_ENOREF,
      "delete tag");
  ok (cairn_tag_delete (s, "v1") == CAIRN_ENOREF, "delete it twice refused");

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
