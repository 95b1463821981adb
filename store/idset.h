/* idset.h: a hash set of object ids with a 64-bit value each.
 *
 * Open addressing with linear probing; ids are SHA-256 so their bytes are
 * already uniform and serve as the hash.  Not thread-safe.
 */
#ifndef CAIRN_IDSET_H
#define CAIRN_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/util.h"

struct idset_slot {
  struct cairn_id id;
  uint64_t value;
  bool used;
};

struct idset {
  struct idset_slot *slots;
  size_t cap;                   /* power of two */
  size_t count;
};

void idset_init (struct idset *set);
void idset_free (struct idset *set);
/* Inserts ID (value 0) if absent.  Returns its slot, or NULL on ENOMEM.
 * *ADDED tells whether it was new. */
struct idset_slot *idset_add (struct idset *set, const struct cairn_id *id,
                              bool *added);
struct idset_slot *idset_find (const struct idset *set,
                               const struct cairn_id *id);

#endif /* CAIRN_IDSET_H */
