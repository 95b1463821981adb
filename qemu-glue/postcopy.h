/* postcopy.h: a restored guest runs before its RAM is read: cairn is the
 * source of a QEMU postcopy migration whose pages come out of the store.
 *
 * The device state cairn keeps (vmstate.h) is QEMU's migration stream
 * saved with x-ignore-shared: the guest RAM block ("mem", the RAM file)
 * is left out.  Restoring it as it is means reading, verifying and
 * writing all of RAM before QEMU may load the state.  Instead the stream
 * is taken apart and sent again as a postcopy migration (QEMU 7.2's
 * format, migration/savevm.c):
 *
 *   header; configuration, without the x-ignore-shared capability
 *   OPEN_RETURN_PATH; POSTCOPY_ADVISE (page sizes)
 *   the ram section's start (the RAM blocks) and the pages of the small
 *     blocks (ROMs, ACPI tables), which the saved stream carries
 *   POSTCOPY_RAM_DISCARD of one page of "mem" (below)
 *   PACKAGED { POSTCOPY_LISTEN, the device sections, POSTCOPY_RUN }
 *
 * and "cont": the guest runs.  Every page of "mem" is missing in QEMU
 * (userfaultfd) until it is placed.  A page the guest touches is asked
 * for on the return path, and its chunk is sent first; the other chunks
 * stream in order.  Zero pages are not sent: they stay holes of the RAM
 * file, which read as zero once the migration ends; one asked for before
 * that is sent as a zero page.  Then the end of the ram section and EOF;
 * QEMU answers SHUT and reports the migration "completed".
 *
 * Each chunk is verified (cairn_chunk_read_many) before any of its pages
 * is sent, so the guest never sees a byte the store did not vouch for.  A
 * corrupt or missing chunk ends the migration with an error; the guest
 * is then waiting for a page and the caller kills QEMU.
 *
 * The one-page discard: QEMU 7.2 entering LISTEN straight from ADVISE
 * does the discard setup itself, which sets its postcopy state back from
 * LISTENING to DISCARD; its listen thread then loads pages the precopy
 * way and blocks on its own page fault.  QEMU's own source sends the
 * discard first; discarding a page that is still a hole changes nothing.
 */
#ifndef CAIRN_POSTCOPY_H
#define CAIRN_POSTCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "qemu-glue/qmp.h"

struct vm_postcopy;

/* Takes the saved device state STATE (LEN bytes, kept by the caller until
 * vm_postcopy_free) apart, for a restore of the RAM volume MEM.
 * -ENOTSUP if the stream is not of the shape above (the caller then
 * restores RAM before QEMU starts); -ENOMEM. */
int vm_postcopy_plan (const uint8_t *state, size_t len,
                      const struct cairn_volume *mem,
                      struct vm_postcopy **pc);
void vm_postcopy_free (struct vm_postcopy *pc);

struct vm_postcopy_stats {
  double running_ms;            /* migrate-incoming until the guest runs */
  double done_ms;               /* ... until QEMU has every page */
  uint64_t pages;               /* pages of "mem" sent with data */
  uint64_t zero_pages;          /* zero pages sent because asked for */
  uint64_t requests;            /* pages the guest asked for */
};

/* Migrates into the QEMU behind QMP, started with "-incoming defer -S"
 * and an empty RAM file: sends "cont" as soon as the device state is
 * loaded, and returns once every page is in and QEMU reports the
 * migration completed.  0 or -errno with cairn_error set; on failure the
 * guest may be waiting for a page for ever: kill QEMU. */
int vm_postcopy_run (struct vm_postcopy *pc, struct cairn_store *s,
                     struct qmp *qmp, int timeout_ms,
                     struct vm_postcopy_stats *st);

#endif /* CAIRN_POSTCOPY_H */
