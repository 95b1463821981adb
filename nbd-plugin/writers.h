/* writers.h: the branches this process holds for writing, shared by all
 * the connections that serve them.
 *
 * A branch has at most one writer across processes (its lock in
 * STORE/run), and one struct cairn_branch per process: two handles in one
 * process would contend for the same lock.  So every connection to branch
 * NAME shares one struct writer: the open branch, with its background
 * sealer, and the control socket through which `cairn commit NAME` reaches
 * it.  The first connection opens it; the last one to leave flushes and
 * closes it, which releases the lock for other processes (a connection
 * that comes during the flush keeps it open).
 *
 * Functions return 0 or a libcairn code, with cairn_last_error() set, and
 * print nothing: the plugin turns codes into nbdkit_error, the unit test
 * checks them.
 */
#ifndef CAIRN_NBD_WRITERS_H
#define CAIRN_NBD_WRITERS_H

#include "store/store.h"

struct writer {
  char name[CAIRN_NAME_MAX + 1];
  struct cairn_branch *branch;
  struct cairn_control *control;
  unsigned users;               /* connections using it; writers_lock */
  unsigned flushing;            /* last users flushing it; writers_lock */
  struct writer *next;
};

/* The writer of branch NAME in store S, opened (lock, working state,
 * sealer, control socket) if this process does not hold it yet.
 * CAIRN_ENOREF if there is no such branch; CAIRN_EHELD, naming the
 * holder's pid, if another process writes it. */
int writer_acquire (struct cairn_store *s, const char *name,
                    struct writer **w);

/* Lets go of W.  The last user flushes the branch (every acknowledged
 * write is durable after that), then, unless another connection has
 * taken W meanwhile, stops its control socket and closes it.  Returns
 * the flush's result: the branch is closed even if it failed. */
int writer_release (struct writer *w);

/* How many branches this process holds (for tests). */
unsigned writers_count (void);

/* Lets go of every branch still held, whoever uses it: for the plugin's
 * cleanup, which nbdkit may run without having closed every connection
 * (a branch's sealer would then outlive the store). */
void writers_close_all (void);

#endif /* CAIRN_NBD_WRITERS_H */
