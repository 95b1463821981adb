/* test-branch-commit-memory: a commit's memory does not grow with the
 * data it seals.
 *
 * A commit seals every chunk still dirty when it is asked for.  Holding
 * all of them, compressed, until its one transaction made a commit of a
 * large working state (a VM that wrote a lot since the last one, nbdkit
 * serving a branch to fio) cost memory in proportion to the data: 2000
 * incompressible chunks were 125 MiB at once.  Sealed chunks are stored
 * in batches as they are captured, so the commit's peak stays near one
 * batch whatever the working state.  The check is the process's peak
 * RSS (VmHWM, reset through /proc/self/clear_refs) while it commits. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "tap.h"

#define CHUNKS 2000

#ifdef __SANITIZE_ADDRESS__
/* ASan's quarantine would keep freed chunks resident: measure without. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "quarantine_size_mb=0";
}
#endif

static long
status_kib (const char *field)
{
  FILE *f = fopen ("/proc/self/status", "r");
  char line[256];
  long v = -1;

  while (f && fgets (line, sizeof line, f))
    if (strncmp (line, field, strlen (field)) == 0)
      v = atol (line + strlen (field));
  if (f)
    fclose (f);
  return v;
}

static bool
reset_peak (void)
{
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  bool done = f && fputs ("5", f) >= 0;
  if (f)
    done &= fclose (f) == 0;
  return done;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-commit-memory.XXXXXX";
  struct cairn_store *s;
  struct cairn_branch *b;
  struct cairn_id id;
  uint32_t cs;

  if (!reset_peak () || status_kib ("VmHWM:") < 0)
    skip_all ("no /proc/self/clear_refs to measure the peak RSS with");
  if (!mkdtemp (dir))
    abort ();
  plan (3);
  if (cairn_store_init (dir, &(struct cairn_store_options) {
                          .compress_level = 1 }) < 0
      || cairn_store_open (dir, 0, &s) < 0
      || cairn_branch_create_empty (s, "main", "disk",
                                    (uint64_t) CHUNKS * 65536) < 0
      || cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) < 0)
    abort ();
  cs = cairn_store_chunk_size (s);

  /* Incompressible chunks: each is stored at its full size. */
  char *buf = malloc (cs);
  unsigned x = 12345;
  int r = 0;
  for (unsigned c = 0; c < CHUNKS && r == 0; c++) {
    for (uint32_t i = 0; i < cs; i += 4) {
      x = x * 1103515245 + 12345;
      memcpy (buf + i, &x, 4);
    }
    r = cairn_bvol_write (cairn_branch_volume (b, "disk"), buf, cs,
                          (uint64_t) c * cs);
  }
  free (buf);
  ok (r == 0, "%d chunks of random data written", CHUNKS);

  long before = status_kib ("VmRSS:");
  reset_peak ();
  ok (cairn_branch_commit (b, NULL, &id) == 0, "and committed");
  long grew = status_kib ("VmHWM:") - before;
  long data = (long) CHUNKS * cs / 1024;
  ok (grew < data / 4, "the commit's peak memory grew by %ld KiB, for %ld "
      "KiB of data sealed", grew, data);

  cairn_branch_close (b);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
