/* markset.c: a set of chunk-id fingerprints (see gc-internal.h). */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gc/gc-internal.h"

static uint64_t
fingerprint (const struct cairn_id *id)
{
  uint64_t f;
  memcpy (&f, id->bytes, sizeof f);
  return f ? f : 1;             /* 0 marks an empty slot */
}

void
markset_init (struct markset *m)
{
  memset (m, 0, sizeof *m);
}

void
markset_free (struct markset *m)
{
  free (m->slots);
  markset_init (m);
}

/* The slot of F: where it is, or the empty slot where it would go. */
static size_t
slot_of (const struct markset *m, uint64_t f)
{
  size_t at = f & (m->cap - 1);
  while (m->slots[at] && m->slots[at] != f)
    at = (at + 1) & (m->cap - 1);
  return at;
}

static int
grow (struct markset *m)
{
  struct markset bigger = { .cap = m->cap ? 2 * m->cap : 1 << 16 };

  bigger.slots = calloc (bigger.cap, sizeof *bigger.slots);
  if (!bigger.slots)
    return -ENOMEM;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i])
      bigger.slots[slot_of (&bigger, m->slots[i])] = m->slots[i];
  bigger.count = m->count;
  free (m->slots);
  *m = bigger;
  return 0;
}

int
markset_add (struct markset *m, const struct cairn_id *id)
{
  uint64_t f = fingerprint (id);

  if ((m->count + 1) * 4 > m->cap * 3 && grow (m) < 0)
    return -ENOMEM;
  size_t at = slot_of (m, f);
  if (!m->slots[at]) {
    m->slots[at] = f;
    m->count++;
  }
  return 0;
}

bool
markset_has (const struct markset *m, const struct cairn_id *id)
{
  return m->cap && m->slots[slot_of (m, fingerprint (id))] != 0;
}
