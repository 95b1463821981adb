/* scratch-store.h: a new store in a temporary directory, for the unit
 * tests that need nothing more. */
#ifndef CAIRN_SCRATCH_STORE_H
#define CAIRN_SCRATCH_STORE_H

#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

/* Makes DIR (a mkdtemp template, filled in) holding a new store made with
 * options O (NULL: the defaults) and opens it into *S, with no
 * transaction: for tests of operations that begin their own.  On failure
 * prints "Bail out!" and exits 1. */
static inline void
scratch_store_open (char *dir, const struct cairn_store_options *o,
                    struct cairn_store **s)
{
  char path[4096];

  if (!mkdtemp (dir)) {
    printf ("Bail out! mkdtemp %s\n", dir);
    exit (1);
  }
  snprintf (path, sizeof path, "%s/store", dir);
  if (cairn_store_init (path, o) < 0 || cairn_store_open (path, 0, s) < 0) {
    printf ("Bail out! store: %s\n", cairn_last_error ());
    exit (1);
  }
}

/* Makes DIR (a mkdtemp template, filled in) holding a new store, opens it
 * into *S and begins a write transaction into *TXN.  On failure prints
 * "Bail out!" and exits 1. */
static inline void
scratch_store (char *dir, struct cairn_store **s, struct cairn_txn **txn)
{
  scratch_store_open (dir, NULL, s);
  if (cairn_txn_begin (*s, true, txn) < 0) {
    printf ("Bail out! store: %s\n", cairn_last_error ());
    exit (1);
  }
}

#endif /* CAIRN_SCRATCH_STORE_H */
