/* test-idset: the hash set of ids with a value each (store/idset.h).
 *
 * What a set holds is what was added, each id once: a duplicate add
 * finds the first slot with its value; growth past the first table keeps
 * every id and value; ids that share their hash bytes (the first eight)
 * still probe to their own slots, also across the table's end; and 1e5
 * random ids agree with a sorted array searched by bsearch, for ids in
 * the set and for as many that are not.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/idset.h"
#include "tap.h"
#include "xorshift.h"

#define MANY 100000

static uint64_t rng = 0x243f6a8885a308d3ULL;

static struct cairn_id
random_id (void)
{
  struct cairn_id id;

  for (size_t i = 0; i < sizeof id.bytes; i += 8) {
    uint64_t x = xorshift64 (&rng);
    memcpy (id.bytes + i, &x, 8);
  }
  return id;
}

/* An id whose hash bytes (the first eight) are HOME and whose last eight
 * are N: ids of one HOME collide. */
static struct cairn_id
colliding_id (uint64_t home, uint64_t n)
{
  struct cairn_id id = { 0 };

  memcpy (id.bytes, &home, 8);
  memcpy (id.bytes + 24, &n, 8);
  return id;
}

static int
compare_ids (const void *a, const void *b)
{
  return memcmp (a, b, sizeof (struct cairn_id));
}

static void
empty_and_one (void)
{
  struct idset set;
  struct cairn_id zero = { 0 }, a = random_id ();
  bool added = false;

  idset_init (&set);
  ok (set.count == 0 && idset_find (&set, &a) == NULL,
      "an empty set finds nothing");
  struct idset_slot *slot = idset_add (&set, &a, &added);
  ok (slot && added && cairn_id_equal (&slot->id, &a) && slot->value == 0,
      "adding an id: new, value 0");
  slot->value = 42;
  ok (idset_find (&set, &a) == slot && set.count == 1,
      "it is found in the slot it was added to; count 1");
  slot = idset_add (&set, &a, &added);
  ok (slot && !added && slot->value == 42 && set.count == 1,
      "adding it again: not new, value kept, count still 1");
  ok (idset_add (&set, &a, NULL) == slot, "ADDED may be NULL");
  ok (idset_find (&set, &zero) == NULL,
      "the zero id is not in the set (a zeroed slot is no entry)");
  slot = idset_add (&set, &zero, &added);
  ok (slot && added && idset_find (&set, &zero) == slot && set.count == 2,
      "the zero id can be added like any other");
  idset_free (&set);
  ok (set.count == 0 && set.cap == 0 && idset_find (&set, &a) == NULL,
      "freed: empty again");
  ok (idset_add (&set, &a, &added) && added && set.count == 1,
      "and usable again");
  idset_free (&set);
}

/* Every id of IDS[0..N) is found with value I + 1. */
static bool
all_found (const struct idset *set, const struct cairn_id *ids, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    struct idset_slot *slot = idset_find (set, &ids[i]);
    if (!slot || !cairn_id_equal (&slot->id, &ids[i]) || slot->value != i + 1)
      return false;
  }
  return true;
}

static void
growth (void)
{
  enum { N = 5000 };
  struct cairn_id *ids = malloc (N * sizeof *ids);
  struct idset set;
  size_t first_cap = 0, grew = 0;
  bool adds_ok = true;

  idset_init (&set);
  for (size_t i = 0; i < N; i++) {
    bool added;
    ids[i] = random_id ();
    struct idset_slot *slot = idset_add (&set, &ids[i], &added);
    if (!slot || !added) {
      adds_ok = false;
      break;
    }
    slot->value = i + 1;
    if (i == 0)
      first_cap = set.cap;
    if (set.cap != first_cap && !grew)
      grew = i;
  }
  ok (adds_ok && set.count == N, "%d random ids added, count %zu", N,
      set.count);
  ok (grew > 0, "the table grew past its first %zu slots (at id %zu)",
      first_cap, grew);
  ok (all_found (&set, ids, N), "every id is found with its value after growth");
  idset_free (&set);
  free (ids);
}

static void
collisions (void)
{
  enum { N = 3000 };
  struct idset set;
  struct cairn_id ids[N];
  bool adds_ok = true;

  idset_init (&set);
  /* Half the ids share the last home of the first table, so that probing
   * wraps around its end; the rest share home 0, where the wrapped ones
   * land. */
  for (size_t i = 0; i < N; i++) {
    ids[i] = colliding_id (i % 2 ? 1023 : 0, i);
    struct idset_slot *slot = idset_add (&set, &ids[i], NULL);
    if (!slot)
      adds_ok = false;
    else
      slot->value = i + 1;
  }
  ok (adds_ok && set.count == N, "%d ids on two homes: all added", N);
  ok (all_found (&set, ids, N), "each is found with its own value");
  struct cairn_id other = colliding_id (1023, N + 7);
  ok (idset_find (&set, &other) == NULL,
      "an absent id of the same home is not found");
  idset_free (&set);
}

static void
against_sorted_array (void)
{
  struct cairn_id *ids = malloc (MANY * sizeof *ids);
  struct cairn_id *probes = malloc (MANY * sizeof *probes);
  struct idset set;
  size_t distinct = 0, wrong_added = 0, wrong_member = 0, wrong_probe = 0;

  idset_init (&set);
  /* Every id twice, the second time in another order. */
  for (size_t i = 0; i < MANY; i++)
    ids[i] = random_id ();
  for (size_t pass = 0; pass < 2; pass++)
    for (size_t k = 0; k < MANY; k++) {
      size_t i = pass ? (k * 7919) % MANY : k;
      bool added;
      struct idset_slot *slot = idset_add (&set, &ids[i], &added);
      if (!slot || added != (pass == 0))
        wrong_added++;
      else if (pass == 0)
        slot->value = i;
    }
  qsort (ids, MANY, sizeof *ids, compare_ids);
  for (size_t i = 0; i < MANY; i++)
    if (i == 0 || !cairn_id_equal (&ids[i], &ids[i - 1]))
      ids[distinct++] = ids[i];
  /* Probes: half of them ids of the set, half random ones. */
  for (size_t i = 0; i < MANY; i++)
    probes[i] = i % 2 ? random_id () : ids[(i * 31) % distinct];

  is_int (wrong_added, 0, "each id new on its first add only");
  is_int (set.count, distinct, "count equals the distinct ids (%zu)",
          distinct);
  for (size_t i = 0; i < distinct; i++)
    if (!idset_find (&set, &ids[i]))
      wrong_member++;
  is_int (wrong_member, 0, "every id of the array is in the set");
  for (size_t i = 0; i < MANY; i++) {
    bool in_array = bsearch (&probes[i], ids, distinct, sizeof *ids,
                             compare_ids) != NULL;
    if ((idset_find (&set, &probes[i]) != NULL) != in_array)
      wrong_probe++;
  }
  is_int (wrong_probe, 0, "%d probes: each found exactly when in the array",
          MANY);
  size_t used = 0;
  for (size_t i = 0; i < set.cap; i++)
    if (set.slots[i].used) {
      used++;
      if (!bsearch (&set.slots[i].id, ids, distinct, sizeof *ids,
                    compare_ids))
        wrong_member++;
    }
  ok (used == distinct && wrong_member == 0,
      "the set holds no id the array lacks (%zu slots used)", used);
  idset_free (&set);
  free (probes);
  free (ids);
}

int
main (void)
{
  empty_and_one ();
  growth ();
  collisions ();
  against_sorted_array ();
  return done_testing ();
}
