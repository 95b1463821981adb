/* fusefs-helper: store operations cairnfs's tests need and the cairn
 * command does not offer (yet), through libcairn:
 *
 *   fusefs-helper commits STORE BRANCH N      N commits on BRANCH, quickly
 *   fusefs-helper chunk STORE COMMIT VOLUME I where chunk I lives:
 *                                             "ID PACKFILE OFFSET LENGTH" of
 *                                             its stored bytes
 *   fusefs-helper prune STORE COMMIT          makes COMMIT a tombstone
 *   fusefs-helper leases STORE                the commits of live leases
 *
 * COMMIT is any ref cairn_resolve takes.  Exit 0, or 1 with a message.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "unit/gc-fixture.h"

/* Local backend pack file layout (store/pack.h): a record's header. */
#define PACK_RECORD_HEADER_SIZE 48

static int
fail (int r, const char *what)
{
  const char *why = cairn_last_error ();
  fprintf (stderr, "fusefs-helper: %s: %s\n", what,
           *why ? why : cairn_strerror (r));
  return 1;
}

static int
make_commits (struct cairn_store *s, const char *branch, long n)
{
  struct cairn_branch *b;
  struct cairn_id id;
  int r = cairn_branch_open (s, branch, CAIRN_BRANCH_WRITE, &b);

  if (r < 0)
    return fail (r, branch);
  for (long i = 0; i < n && r == 0; i++) {
    char msg[64];
    struct cairn_commit_options o = { .message = msg };
    snprintf (msg, sizeof msg, "commit %ld", i);
    r = cairn_branch_commit (b, &o, &id);
  }
  cairn_branch_close (b);
  return r < 0 ? fail (r, "commit") : 0;
}

static int
chunk_location (struct cairn_store *s, const char *spec, const char *volume,
                long index)
{
  struct cairn_backend *be = cairn_store_backend (s);
  struct cairn_object_info info;
  struct cairn_btxn *bt;
  struct cairn_view view;
  struct cairn_txn *txn;
  struct cairn_id commit, chunk;
  char hex[CAIRN_HEX_SIZE + 1];
  int r = fixture_resolve (s, spec, &commit);

  if (r < 0)
    return fail (r, spec);
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0)
    r = cairn_view_open (s, txn, &commit, volume, &view);
  if (r == 0)
    r = cairn_view_chunk (&view, txn, index, &chunk);
  cairn_txn_abort (s, txn);
  if (r < 0)
    return fail (r, "chunk");
  if (cairn_id_is_zero (&chunk))
    return fail (-ENOENT, "that chunk is a hole");
  r = be->ops->txn_begin (be, false, &bt);
  if (r == 0) {
    r = be->ops->object_stat (bt, CAIRN_OBJECT_CHUNK, &chunk, &info);
    be->ops->txn_abort (bt);
  }
  if (r < 0)
    return fail (r, "chunk");
  cairn_id_to_hex (&chunk, hex);
  printf ("%s %s/packs/pack-%08x.pack %llu %u\n", hex, cairn_store_path (s),
          info.pack,
          (unsigned long long) info.offset + PACK_RECORD_HEADER_SIZE,
          info.stored_len);
  return 0;
}

static int
prune (struct cairn_store *s, const char *spec)
{
  struct cairn_txn *txn;
  struct cairn_id id;
  int r = fixture_resolve (s, spec, &id);

  if (r == 0)
    r = cairn_txn_begin (s, true, &txn);
  if (r == 0) {
    r = cairn_commit_prune (txn, &id);
    r = cairn_txn_end (s, txn, r);
  }
  return r < 0 ? fail (r, "prune") : 0;
}

static int
print_lease (const struct cairn_id *commit, void *arg)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (commit, hex);
  printf ("%s\n", hex);
  return 0;
}

int
main (int argc, char **argv)
{
  struct cairn_store *s;
  int r, status;

  if (argc < 3) {
    fprintf (stderr, "usage: fusefs-helper commits|chunk|prune|leases "
             "STORE ...\n");
    return 2;
  }
  r = cairn_store_open (argv[2], 0, &s);
  if (r < 0)
    return fail (r, argv[2]);
  if (strcmp (argv[1], "commits") == 0 && argc == 5)
    status = make_commits (s, argv[3], atol (argv[4]));
  else if (strcmp (argv[1], "chunk") == 0 && argc == 6)
    status = chunk_location (s, argv[3], argv[4], atol (argv[5]));
  else if (strcmp (argv[1], "prune") == 0 && argc == 4)
    status = prune (s, argv[3]);
  else if (strcmp (argv[1], "leases") == 0 && argc == 3) {
    r = cairn_leases_list (s, print_lease, NULL);
    status = r < 0 ? fail (r, "leases") : 0;
  }
  else {
    fprintf (stderr, "fusefs-helper: bad arguments\n");
    status = 2;
  }
  cairn_store_close (s);
  return status;
}
