/* test-vm-memscan: finding the RAM chunks that changed, by content, and
 * storing them (qemu-glue/memscan.c), on a fake RAM file.
 *
 * A tmpfs file stands in for a guest's RAM: some chunks full of data,
 * some partly data and partly hole, most hole.  Each round changes it the
 * way a guest does (rewrites chunks, writes zeros, touches new pages),
 * runs a pass, stores incrementally over the last round's volume (in both
 * ways a commit does: memscan_store, and memscan_seal + cairn_tree_update
 * in one transaction), and checks that the volume reads back byte for byte
 * as the file, that exactly the changed chunks were found, and that the
 * pass did not allocate the file's holes.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "qemu-glue/vm-internal.h"

#define CS 65536
#define NCHUNKS 64
#define SIZE ((uint64_t) CS * NCHUNKS)

static char dir[] = "/dev/shm/cairn-test-memscan.XXXXXX";
static char store_path[256], ram[256], ref[256];

static void
fill (int fd, uint64_t chunk, size_t off, size_t len, int seed)
{
  char *buf = malloc (len);
  for (size_t i = 0; i < len; i++)
    buf[i] = (char) (seed * 31 + i * 7 + chunk);
  if (pwrite (fd, buf, len, chunk * CS + off) != (ssize_t) len)
    abort ();
  free (buf);
}

/* The volume reads back as the RAM file. */
static bool
same (struct cairn_store *s, const struct cairn_volume *v, int fd)
{
  struct cairn_view view;
  char *a = malloc (SIZE), *b = malloc (SIZE);
  bool eq;

  cairn_view_init (s, v, &view);
  eq = pread (fd, a, SIZE, 0) == (ssize_t) SIZE
    && cairn_view_read (&view, b, SIZE, 0) == 0 && memcmp (a, b, SIZE) == 0;
  free (a);
  free (b);
  return eq;
}

static uint64_t
allocated (int fd)
{
  struct stat st;
  fstat (fd, &st);
  return st.st_blocks * 512;
}

/* One transaction, as the paused part of a commit stores. */
static int
store_one_txn (struct cairn_store *s, struct memscan *ms,
               const struct cairn_volume *base, struct cairn_volume *out)
{
  struct cairn_tree_change *changes;
  struct cairn_sealed *sealed;
  struct cairn_txn *txn;
  size_t n;
  int r = memscan_seal (ms, &changes, &sealed, &n);

  if (r < 0)
    return r;
  r = cairn_txn_begin (s, true, &txn);
  for (size_t k = 0; r == 0 && k < n; k++)
    r = cairn_chunk_put (txn, &sealed[k]);
  if (r == 0)
    r = cairn_tree_update (txn, base, changes, n, out);
  r = cairn_txn_end (s, txn, r);
  if (r == 0)
    memscan_forget (ms);
  for (size_t k = 0; k < n; k++)
    cairn_sealed_free (&sealed[k]);
  free (sealed);
  free (changes);
  return r;
}

int
main (void)
{
  struct cairn_store *s;
  struct memscan *ms;
  struct cairn_volume vol, next;
  uint64_t changed, data;
  char cmd[300];
  int fd;

  if (!mkdtemp (dir))
    skip_all ("no /dev/shm");
  snprintf (store_path, sizeof store_path, "%s/store", dir);
  snprintf (ram, sizeof ram, "%s/ram", dir);
  snprintf (ref, sizeof ref, "%s/ram.ref", dir);
  if (cairn_store_init (store_path, NULL) < 0
      || cairn_store_open (store_path, 0, &s) < 0)
    skip_all ("cannot make a store");
  fd = open (ram, O_RDWR | O_CREAT, 0600);
  if (fd < 0 || ftruncate (fd, SIZE) < 0)
    skip_all ("cannot make the RAM file");

  /* Chunks 0-9 data, 20 half data half hole, 30 zeros written. */
  for (int c = 0; c < 10; c++)
    fill (fd, c, 0, CS, 1);
  fill (fd, 20, 0, CS / 2, 1);
  char *zero = calloc (1, CS);
  if (pwrite (fd, zero, CS, 30 * CS) != CS)
    abort ();
  uint64_t before = allocated (fd);

  ok (memscan_open (s, ram, ref, SIZE, false, &ms) == 0, "memscan_open");
  ok (memscan_pass (ms, &changed, &data) == 0, "the first pass");
  is_int (changed, 11, "it finds the 11 chunks that hold non-zero bytes");
  is_int (data, 12, "12 chunks hold data (one of them zeros)");
  ok (memscan_store (ms, NULL, &vol, NULL) == 0, "stored whole");
  ok (same (s, &vol, fd), "the volume reads back as the RAM file");
  is_int (allocated (fd), before, "the pass allocated none of the holes");
  memscan_close (ms);

  for (int round = 2; round <= 4; round++) {
    /* A guest's second: rewrite a chunk, touch a new page in a hole,
     * zero a chunk, rewrite half of the half chunk. */
    fill (fd, round, 0, CS, round);
    fill (fd, 40 + round, 4096, 4096, round);
    if (pwrite (fd, zero, CS, (5 + round) * CS) != CS)
      abort ();
    fill (fd, 20, 100, 200, round);
    before = allocated (fd);

    ok (memscan_open (s, ram, ref, SIZE, true, &ms) == 0,
        "[%d] memscan_open over the reference", round);
    ok (memscan_pass (ms, &changed, &data) == 0, "[%d] a pass", round);
    is_int (changed, 4, "[%d] it finds exactly the 4 changed chunks", round);
    if (round % 2)
      ok (memscan_store (ms, &vol, &next, NULL) == 0,
          "[%d] stored incrementally (memscan_store)", round);
    else
      ok (store_one_txn (s, ms, &vol, &next) == 0,
          "[%d] stored incrementally (seal + cairn_tree_update)", round);
    ok (same (s, &next, fd), "[%d] the volume reads back as the RAM file",
        round);
    ok (memscan_pass (ms, &changed, &data) == 0 && changed == 0,
        "[%d] a second pass finds nothing more", round);
    is_int (allocated (fd), before, "[%d] and allocated no hole", round);
    memscan_close (ms);
    vol = next;
  }

  /* An invalid reference: everything is new again, and still right. */
  ok (memscan_open (s, ram, ref, SIZE, false, &ms) == 0
      && memscan_pass (ms, &changed, &data) == 0
      && memscan_store (ms, NULL, &next, NULL) == 0 && same (s, &next, fd),
      "from an invalid reference, a whole store is right");
  ok (cairn_id_equal (&next.root, &vol.root),
      "and equals the incremental one, id for id");
  memscan_close (ms);

  free (zero);
  close (fd);
  cairn_store_close (s);
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    diag ("cannot remove %s", dir);
  return done_testing ();
}
