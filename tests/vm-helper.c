/* vm-helper: what the VM tests need to do to a store that no cairn
 * command does, on purpose.
 *
 *   vm-helper corrupt STORE REF VOLUME [SPARE-REF]
 *       flips one byte in the stored bytes of the first chunk of VOLUME
 *       of commit REF (in its pack file), so that reading it fails its
 *       hash check; prints the chunk id.  With SPARE-REF, the first chunk
 *       that no volume of commit SPARE-REF holds, so that SPARE-REF
 *       stays intact
 *   vm-helper fake-commit STORE BRANCH VMLINE
 *       makes branch BRANCH whose first commit holds the volumes a VM
 *       commit has (disk, memory, vmstate, kernel, initrd: small, with a
 *       few bytes each) and the vm line VMLINE, as a cairn from elsewhere
 *       or a QEMU of another version would have made it; prints its id
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pack.h"
#include "store/store.h"

static int
fail (int r, const char *what)
{
  const char *msg = cairn_last_error ();
  fprintf (stderr, "vm-helper: %s: %s\n", what,
           *msg ? msg : cairn_strerror (r));
  return 1;
}

struct ids {
  size_t n, cap;
  struct cairn_id *v;
};

static int
collect (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct ids *l = arg;
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 1024;
    l->v = realloc (l->v, l->cap * sizeof *l->v);
    if (!l->v)
      return -ENOMEM;
  }
  l->v[l->n++] = *id;
  return 0;
}

static int
id_cmp (const void *a, const void *b)
{
  return memcmp (a, b, CAIRN_ID_SIZE);
}

/* Every chunk id of every volume of commit ID, sorted. */
static int
commit_chunks (struct cairn_store *s, struct cairn_txn *txn,
               const struct cairn_id *id, struct ids *l)
{
  struct cairn_commit *c;
  int r = cairn_commit_read (txn, id, &c);

  for (size_t i = 0; r == 0 && i < c->nvolumes; i++) {
    struct cairn_view v;
    cairn_view_init (s, &c->volumes[i], &v);
    r = cairn_tree_walk (txn, &v.vol.root, v.levels, 0, UINT64_MAX,
                         collect, l);
  }
  if (r == 0)
    cairn_commit_free (c);
  qsort (l->v, l->n, sizeof *l->v, id_cmp);
  return r;
}

struct first {
  const struct ids *spare;
  struct cairn_id id;
  bool found;
};

static int
take_first (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct first *f = arg;
  if (f->spare && bsearch (id, f->spare->v, f->spare->n, sizeof *id, id_cmp))
    return 0;
  f->id = *id;
  f->found = true;
  return 1;
}

static int
corrupt (struct cairn_store *s, const char *spec, const char *volume,
         const char *spare)
{
  struct ids spare_ids = { 0 };
  struct cairn_backend *be = cairn_store_backend (s);
  struct cairn_object_info info;
  struct cairn_btxn *bt;
  struct cairn_txn *txn;
  struct cairn_ref ref;
  struct cairn_view view;
  struct first f = { .found = false };
  char hex[CAIRN_HEX_SIZE + 1], path[4096];
  int r = cairn_txn_begin (s, false, &txn);

  if (r == 0 && spare) {
    r = cairn_resolve (txn, spare, &ref);
    if (r == 0)
      r = commit_chunks (s, txn, &ref.commit, &spare_ids);
    f.spare = &spare_ids;
  }
  if (r == 0)
    r = cairn_resolve (txn, spec, &ref);
  if (r == 0)
    r = cairn_view_open (s, txn, &ref.commit, volume, &view);
  if (r == 0)
    r = cairn_tree_walk (txn, &view.vol.root, view.levels, 0, UINT64_MAX,
                         take_first, &f);
  cairn_txn_abort (s, txn);
  free (spare_ids.v);
  if (r < 0)
    return fail (r, spec);
  if (!f.found)
    return fail (-ENOENT, "the volume has no data");
  r = be->ops->txn_begin (be, false, &bt);
  if (r == 0) {
    r = be->ops->object_stat (bt, CAIRN_OBJECT_CHUNK, &f.id, &info);
    be->ops->txn_abort (bt);
  }
  if (r < 0)
    return fail (r, "chunk");
  snprintf (path, sizeof path, "%s/packs/pack-%08x.pack",
            cairn_store_path (s), info.pack);
  int fd = open (path, O_RDWR);
  uint64_t off = info.offset + PACK_RECORD_HEADER_SIZE + info.stored_len / 2;
  uint8_t b;
  if (fd < 0 || pread (fd, &b, 1, off) != 1)
    return fail (-errno, path);
  b ^= 0xff;
  if (pwrite (fd, &b, 1, off) != 1 || fsync (fd) < 0)
    return fail (-errno, path);
  close (fd);
  cairn_id_to_hex (&f.id, hex);
  printf ("%s\n", hex);
  return 0;
}

struct bytes {
  const char *text;
};

static int
text_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct bytes *b = arg;
  size_t n = strlen (b->text);
  memset (buf, 0, len);
  if (off < n)
    memcpy (buf, b->text + off, n - off < len ? n - off : len);
  return 0;
}

static int
fake_commit (struct cairn_store *s, const char *branch, const char *vm)
{
  static const char *const names[5] = {
    "disk", "memory", "vmstate", "kernel", "initrd"
  };
  struct cairn_volume vols[5];
  struct cairn_pin *pin;
  struct cairn_id id;
  char hex[CAIRN_HEX_SIZE + 1];
  int r = cairn_pin_begin (s, &pin);

  for (int i = 0; i < 5 && r == 0; i++) {
    struct bytes b = { names[i] };
    struct cairn_import_source src = {
      .size = 1 << 20, .read = text_read, .arg = &b,
    };
    r = cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &vols[i], NULL);
    snprintf (vols[i].name, sizeof vols[i].name, "%s", names[i]);
  }
  struct cairn_commit_options o = { .message = "fake VM commit", .vm = vm };
  if (r == 0)
    r = cairn_branch_create_with_commit (s, branch, vols, 5, &o, &id);
  cairn_pin_end (pin);
  if (r < 0)
    return fail (r, "fake-commit");
  cairn_id_to_hex (&id, hex);
  printf ("%s\n", hex);
  return 0;
}

int
main (int argc, char **argv)
{
  struct cairn_store *s;
  int r;

  if (argc < 5 || argc > 6 || (strcmp (argv[1], "corrupt") != 0
                               && strcmp (argv[1], "fake-commit") != 0)) {
    fprintf (stderr, "usage: vm-helper corrupt STORE REF VOLUME [SPARE]\n"
             "       vm-helper fake-commit STORE BRANCH VMLINE\n");
    return 2;
  }
  r = cairn_store_open (argv[2], 0, &s);
  if (r < 0)
    return fail (r, argv[2]);
  if (strcmp (argv[1], "corrupt") == 0)
    r = corrupt (s, argv[3], argv[4], argc == 6 ? argv[5] : NULL);
  else
    r = fake_commit (s, argv[3], argv[4]);
  cairn_store_close (s);
  return r;
}
