/* test-branch: writable branches (store/branch.c): reads and writes at
 * any alignment, flush and recovery after a crash, sealing, zeroing,
 * extents, commits and views, corrupt chunks. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tap.h"

#define SIZE (4 << 20)
static struct cairn_store *s;
static char path[256];

static void
fill (char *buf, size_t len, unsigned seed)
{
  for (size_t i = 0; i < len; i++)
    buf[i] = (char) (seed * 131 + i * 7 + (i >> 9));
}

static bool
branch_equals (struct cairn_bvol *v, const char *model, size_t len)
{
  char *buf = malloc (len);
  bool same = cairn_bvol_read (v, buf, len, 0) == 0
    && memcmp (buf, model, len) == 0;
  free (buf);
  return same;
}

static bool
commit_equals (const struct cairn_id *id, const char *model, size_t len)
{
  struct cairn_view view;
  struct cairn_txn *txn;
  char *buf = malloc (len);
  cairn_txn_begin (s, false, &txn);
  int r = cairn_view_open (s, txn, id, "disk", &view);
  cairn_txn_abort (s, txn);
  bool same = r == 0 && cairn_view_read (&view, buf, len, 0) == 0
    && memcmp (buf, model, len) == 0;
  free (buf);
  return same;
}

struct ext {
  uint64_t off[64], len[64];
  bool hole[64];
  int n;
};

static int
add_ext (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct ext *x = arg;
  if (x->n < 64) {
    x->off[x->n] = off;
    x->len[x->n] = len;
    x->hole[x->n] = hole;
    x->n++;
  }
  return 0;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-branch.XXXXXX";
  struct cairn_branch *b;
  struct cairn_bvol *v;
  struct cairn_id c1, c2;
  char *model = calloc (1, SIZE), *buf = malloc (SIZE);

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  cairn_store_init (path, NULL);
  cairn_store_open (path, 0, &s);
  cairn_branch_create_empty (s, "main", "disk", SIZE);

  ok (cairn_branch_open (s, "main", 0, &b) == -EINVAL,
      "a branch handle is for writing");
  ok (cairn_branch_open (s, "nosuch", CAIRN_BRANCH_WRITE, &b)
      == CAIRN_ENOREF, "opening an unknown branch fails");
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0, "open");
  v = cairn_branch_volume (b, "disk");
  ok (v && cairn_bvol_size (v) == SIZE, "volume disk");
  ok (cairn_branch_volume (b, "memory") == NULL, "no volume memory");
  ok (branch_equals (v, model, SIZE), "a new volume reads as zeros");

  /* Writes at every kind of alignment. */
  struct { uint64_t off; size_t len; } w[] = {
    { 0, 512 }, { 1000, 7 }, { 65536 - 3, 10 }, { 131072, 65536 },
    { 200000, 300000 }, { SIZE - 513, 513 }, { 4095, 1 },
    { 1 << 20, 1 << 20 },
  };
  int r = 0;
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (w); i++) {
    fill (buf, w[i].len, i + 1);
    memcpy (model + w[i].off, buf, w[i].len);
    r |= cairn_bvol_write (v, buf, w[i].len, w[i].off);
  }
  ok (r == 0, "aligned and unaligned writes");
  ok (branch_equals (v, model, SIZE), "reads see every write");
  ok (cairn_bvol_write (v, buf, 2, SIZE - 1) == -EINVAL,
      "a write past the end is refused");
  ok (cairn_bvol_read (v, buf, 1, SIZE) == -EINVAL,
      "a read past the end is refused");

  struct cairn_branch_stats st;
  cairn_branch_stats (b, &st);
  ok (st.unsealed > 0 && st.unsealed == st.entries, "writes are unsealed");
  ok (cairn_branch_commit (b, &(struct cairn_commit_options) {
        .message = "first", .time = 1700000000000000000LL }, &c1) == 0,
      "commit");
  cairn_branch_stats (b, &st);
  is_int (st.entries, 0, "a commit leaves no working entries");
  ok (commit_equals (&c1, model, SIZE), "the commit holds every write");
  ok (branch_equals (v, model, SIZE), "the branch reads the same after");

  char *model1 = malloc (SIZE);
  memcpy (model1, model, SIZE);

  /* Second round: overwrite parts, zero a range, seal, commit. */
  fill (buf, 70000, 99);
  memcpy (model + 60000, buf, 70000);
  cairn_bvol_write (v, buf, 70000, 60000);
  ok (cairn_bvol_zero (v, 3 * 65536 + 100, 65536 * 20 - 50) == 0, "zero");
  memset (model + 65536 * 20 - 50, 0, 3 * 65536 + 100);
  ok (branch_equals (v, model, SIZE), "zeroed range reads as zeros");
  ok (cairn_branch_seal (b) == 0, "seal");
  cairn_branch_stats (b, &st);
  ok (st.entries > 0 && st.unsealed == 0, "sealing leaves no unsealed chunk");
  ok (branch_equals (v, model, SIZE), "sealed chunks read back");
  ok (cairn_branch_commit (b, NULL, &c2) == 0, "commit 2");
  ok (commit_equals (&c2, model, SIZE), "commit 2 holds round two");
  ok (commit_equals (&c1, model1, SIZE), "commit 1 is unchanged");

  /* Extents: a fresh region of holes around one written chunk. */
  struct ext x = { .n = 0 };
  cairn_bvol_zero (v, SIZE - (2 << 20), 2 << 20);
  memset (model + (2 << 20), 0, SIZE - (2 << 20));
  fill (buf, 4096, 5);
  cairn_bvol_write (v, buf, 4096, 3 << 20);
  memcpy (model + (3 << 20), buf, 4096);
  cairn_bvol_extents (v, 2 << 20, 2 << 20, add_ext, &x);
  ok (x.n == 3 && x.hole[0] && x.off[1] == 3 << 20 && !x.hole[1]
      && x.len[1] == 65536 && x.hole[2]
      && x.off[2] + x.len[2] == SIZE,
      "extents: hole, one data chunk, hole (got %d extents)", x.n);

  /* Flush, then a crash (a child that exits without closing). */
  ok (cairn_branch_flush (b) == 0, "flush");
  cairn_branch_close (b);
  pid_t pid = fork ();
  if (pid == 0) {
    struct cairn_store *cs;
    struct cairn_branch *cb;
    char data[8192];
    if (cairn_store_open (path, 0, &cs) < 0
        || cairn_branch_open (cs, "main", CAIRN_BRANCH_WRITE, &cb) < 0)
      _exit (2);
    struct cairn_bvol *cv = cairn_branch_volume (cb, "disk");
    fill (data, sizeof data, 77);
    cairn_bvol_write (cv, data, sizeof data, 12345);
    cairn_bvol_write (cv, data, 4096, 2 << 20);
    if (cairn_branch_flush (cb) < 0)
      _exit (3);
    fill (data, sizeof data, 78);
    cairn_bvol_write (cv, data, 1000, 500000);   /* never flushed */
    _exit (0);                                   /* no close: a crash */
  }
  int status;
  waitpid (pid, &status, 0);
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 0, "child wrote and died");
  fill (buf, 8192, 77);
  memcpy (model + 12345, buf, 8192);
  memcpy (model + (2 << 20), buf, 4096);
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0,
      "reopen after the crash (its lock died with it)");
  v = cairn_branch_volume (b, "disk");
  cairn_bvol_read (v, buf, SIZE, 0);
  ok (memcmp (buf + 12345, model + 12345, 8192) == 0
      && memcmp (buf + (2 << 20), model + (2 << 20), 4096) == 0,
      "flushed writes survived");
  ok (memcmp (buf + 500000, model + 500000, 1000) == 0
      || memcmp (buf, buf, 1) == 0, "unflushed writes may or may not");
  memcpy (model + 500000, buf + 500000, 1000);
  ok (branch_equals (v, model, SIZE), "everything else is as it was");

  /* Commit with an extra volume set as a tree. */
  struct cairn_id c3;
  struct cairn_volume mem = { .name = "memory", .size = 1 << 20,
                              .chunk_size = 65536 };
  ok (cairn_branch_commit (b, &(struct cairn_commit_options) {
        .set_volumes = &mem, .nset_volumes = 1, .vm = "test=1" }, &c3) == 0,
      "commit with a memory volume");
  ok (cairn_branch_volume (b, "memory") != NULL,
      "the branch now has a memory volume");
  struct cairn_txn *txn;
  struct cairn_commit *c;
  cairn_txn_begin (s, false, &txn);
  ok (cairn_commit_read (txn, &c3, &c) == 0 && c->nvolumes == 2
      && cairn_commit_volume (c, "memory") && strcmp (c->vm, "test=1") == 0,
      "the commit has both volumes and the vm line");
  cairn_commit_free (c);
  cairn_txn_abort (s, txn);
  ok (cairn_branch_add_volume (b, "scratch2", 1 << 20) == 0, "add a volume");
  ok (cairn_branch_add_volume (b, "scratch2", 1 << 20) == -EEXIST,
      "adding it twice is refused");
  cairn_branch_close (b);

  /* A corrupt chunk: reads that need it fail and name it. */
  int found = 0;
  char packs[300];
  snprintf (packs, sizeof packs, "%s/packs/pack-00000000.pack", path);
  int fd = open (packs, O_RDWR);
  if (fd >= 0) {
    char byte;
    pread (fd, &byte, 1, 16 + 48 + 20);
    byte ^= 0x55;
    pwrite (fd, &byte, 1, 16 + 48 + 20);
    close (fd);
    cairn_store_close (s);
    cairn_store_open (path, 0, &s);   /* an empty cache */
    struct cairn_view view;
    cairn_txn_begin (s, false, &txn);
    cairn_view_open (s, txn, &c1, "disk", &view);
    cairn_txn_abort (s, txn);
    for (uint64_t off = 0; off < SIZE && !found; off += 65536) {
      r = cairn_view_read (&view, buf, 65536, off);
      if (r == -EBADMSG && strstr (cairn_last_error (), "chunk ")
          && strstr (cairn_last_error (), "corrupt"))
        found = 1;
    }
  }
  ok (found, "a corrupt chunk fails its read with a message naming it: %s",
      cairn_last_error ());

  cairn_store_close (s);
  cairn_remove_tree (dir);
  free (model);
  free (model1);
  free (buf);
  return done_testing ();
}
