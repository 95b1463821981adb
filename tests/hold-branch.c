/* hold-branch STORE BRANCH: holds BRANCH for writing, as a serving nbdkit
 * would, until killed.  Prints "held" once it holds it.  With --write,
 * writes a byte first and never flushes (a writer with unflushed data). */
#include <config.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

int
main (int argc, char **argv)
{
  struct cairn_store *s;
  struct cairn_branch *b;

  if (argc < 3) {
    fprintf (stderr, "usage: hold-branch STORE BRANCH\n");
    return 2;
  }
  if (cairn_store_open (argv[1], 0, &s) < 0
      || cairn_branch_open (s, argv[2], CAIRN_BRANCH_WRITE, &b) < 0) {
    fprintf (stderr, "hold-branch: %s\n", cairn_last_error ());
    return 1;
  }
  printf ("held\n");
  fflush (stdout);
  for (;;)
    pause ();
}
