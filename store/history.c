/* history.c: walking commits through their parents. */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/idset.h"
#include "store/internal.h"

int
cairn_history (struct cairn_txn *txn, const struct cairn_id *heads,
               size_t nheads, bool first_parent, struct cairn_id **ids,
               size_t *n)
{
  struct idset seen;
  struct cairn_dated *out = NULL;
  struct cairn_id *queue = NULL;
  size_t nout = 0, cap = 0, qlen = 0, qcap = 0;
  int r = 0;

  idset_init (&seen);
  for (size_t i = 0; i < nheads; i++) {
    if (cairn_id_is_zero (&heads[i]))
      continue;
    if (qlen == qcap) {
      qcap = qcap ? 2 * qcap : 16;
      struct cairn_id *q = realloc (queue, qcap * sizeof *q);
      if (!q) {
        r = -ENOMEM;
        goto out;
      }
      queue = q;
    }
    queue[qlen++] = heads[i];
  }
  while (qlen > 0) {
    struct cairn_id id = queue[--qlen];
    bool added;
    if (!idset_add (&seen, &id, &added)) {
      r = -ENOMEM;
      goto out;
    }
    if (!added)
      continue;
    struct cairn_commit *c;
    r = cairn_commit_read (txn, &id, &c);
    if (r < 0)
      goto out;
    if (nout == cap) {
      cap = cap ? 2 * cap : 64;
      struct cairn_dated *o = realloc (out, cap * sizeof *o);
      if (!o) {
        cairn_commit_free (c);
        r = -ENOMEM;
        goto out;
      }
      out = o;
    }
    out[nout].id = id;
    out[nout].time = c->time;
    nout++;
    size_t np = first_parent ? CAIRN_MIN (c->nparents, 1) : c->nparents;
    if (qlen + np > qcap) {
      qcap = 2 * (qlen + np);
      struct cairn_id *q = realloc (queue, qcap * sizeof *q);
      if (!q) {
        cairn_commit_free (c);
        r = -ENOMEM;
        goto out;
      }
      queue = q;
    }
    for (size_t i = 0; i < np; i++)
      queue[qlen++] = c->parents[i];
    cairn_commit_free (c);
  }
  if (nout > 1)
    qsort (out, nout, sizeof *out, cairn_dated_newest_first);
  *ids = malloc ((nout ? nout : 1) * sizeof **ids);
  if (!*ids) {
    r = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < nout; i++)
    (*ids)[i] = out[i].id;
  *n = nout;
 out:
  free (out);
  free (queue);
  idset_free (&seen);
  return r;
}
