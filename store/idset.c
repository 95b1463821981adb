/* idset.c: a hash set of object ids (see idset.h). */
#include <config.h>

#include <stdlib.h>
#include <string.h>

#include "store/idset.h"

void
idset_init (struct idset *set)
{
  memset (set, 0, sizeof *set);
}

void
idset_free (struct idset *set)
{
  free (set->slots);
  idset_init (set);
}

static size_t
home (const struct cairn_id *id, size_t cap)
{
  uint64_t h;
  memcpy (&h, id->bytes, sizeof h);
  return h & (cap - 1);
}

static int
grow (struct idset *set)
{
  size_t cap = set->cap ? set->cap * 2 : 1024;
  struct idset_slot *slots = calloc (cap, sizeof *slots);

  if (!slots)
    return -1;
  for (size_t i = 0; i < set->cap; i++) {
    if (!set->slots[i].used)
      continue;
    size_t at = home (&set->slots[i].id, cap);
    while (slots[at].used)
      at = (at + 1) & (cap - 1);
    slots[at] = set->slots[i];
  }
  free (set->slots);
  set->slots = slots;
  set->cap = cap;
  return 0;
}

struct idset_slot *
idset_find (const struct idset *set, const struct cairn_id *id)
{
  if (set->cap == 0)
    return NULL;
  for (size_t at = home (id, set->cap);; at = (at + 1) & (set->cap - 1)) {
    if (!set->slots[at].used)
      return NULL;
    if (cairn_id_equal (&set->slots[at].id, id))
      return &set->slots[at];
  }
}

struct idset_slot *
idset_add (struct idset *set, const struct cairn_id *id, bool *added)
{
  struct idset_slot *slot = idset_find (set, id);

  if (slot) {
    if (added)
      *added = false;
    return slot;
  }
  if ((set->count + 1) * 4 > set->cap * 3 && grow (set) < 0)
    return NULL;
  size_t at = home (id, set->cap);
  while (set->slots[at].used)
    at = (at + 1) & (set->cap - 1);
  set->slots[at].used = true;
  set->slots[at].id = *id;
  set->slots[at].value = 0;
  set->count++;
  if (added)
    *added = true;
  return &set->slots[at];
}
