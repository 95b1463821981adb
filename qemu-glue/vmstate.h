/* vmstate.h: save and load a stopped QEMU's device state through QMP.
 *
 * cairn keeps guest RAM in a memory-backend-file with share=on and
 * migrates with the "x-ignore-shared" capability, so QEMU's migration
 * stream carries only the device state (CPUs, interrupt controllers,
 * virtio queues, ROMs): a few hundred KiB, whatever the RAM size.  RAM
 * stays in its file, which the caller stores and restores itself.  See
 * README-flow.md for the whole commit and restore sequence and what must
 * match between the two QEMUs.
 *
 * The stream goes through a socketpair: QEMU gets one end with "getfd"
 * and "migrate fd:NAME" (or "migrate-incoming fd:NAME"), and these
 * functions pump the other end through the caller's callbacks, so the
 * state can go straight into the store without a temporary file.
 *
 * Return 0 or a negative errno; never print.
 *   -EBUSY       vmstate_save(): the VM is running (stop it first: with
 *                x-ignore-shared a running guest changes RAM behind the
 *                saved device state)
 *   -EIO         QEMU reports the migration failed: STATS->error says why
 *   -ECANCELED   the migration was cancelled (not by us)
 *   -ETIMEDOUT   not finished in time; a save is cancelled
 *   -ECONNRESET  QEMU went away; a destination QEMU exits by itself when
 *                the incoming stream does not fit its machine
 *   -EREMOTEIO   QEMU refused a command: qmp_error() says why
 * or the error a callback returned (a save is then cancelled).
 */
#ifndef CAIRN_VMSTATE_H
#define CAIRN_VMSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu-glue/qmp.h"

struct vmstate_stats {
  uint64_t bytes;               /* length of the device state stream */
  char error[256];              /* QEMU's "error-desc" when it failed */
};

/* Receives the next LEN bytes of the stream; returns 0 or -errno. */
typedef int (*vmstate_write_fn) (void *opaque, const void *buf, size_t len);

/* Fills up to LEN bytes of BUF with the next bytes of the stream; returns
 * how many, 0 at its end, or -errno. */
typedef ssize_t (*vmstate_read_fn) (void *opaque, void *buf, size_t len);

/* Migrates the device state of the stopped VM behind QMP into WRITE, with
 * x-ignore-shared set, and waits until QEMU reports it completed.  QEMU is
 * left in the "postmigrate" run state: "cont" resumes the guest.  STATS
 * may be NULL. */
int vmstate_save (struct qmp *qmp, vmstate_write_fn write, void *opaque,
                  int timeout_ms, struct vmstate_stats *stats);

/* Feeds the stream READ returns into a QEMU started with "-incoming defer"
 * (and the same machine: see README-flow.md), with x-ignore-shared set,
 * and waits until QEMU reports the load completed.  The guest then runs
 * if QEMU was started without -S; otherwise "cont" resumes it. */
int vmstate_load (struct qmp *qmp, vmstate_read_fn read, void *opaque,
                  int timeout_ms, struct vmstate_stats *stats);

/* The same to and from a file descriptor, from its current offset. */
int vmstate_save_to_fd (struct qmp *qmp, int fd, int timeout_ms,
                        struct vmstate_stats *stats);
int vmstate_load_from_fd (struct qmp *qmp, int fd, int timeout_ms,
                          struct vmstate_stats *stats);

/* Starts an incoming postcopy migration in a QEMU started with "-incoming
 * defer" (postcopy-ram on, x-ignore-shared off): *SOCK gets our end of
 * the stream, which is also QEMU's return path (postcopy.h speaks on
 * it). */
int vmstate_incoming_postcopy (struct qmp *qmp, int timeout_ms, int *sock);

/* Waits until the migration reached a final state: 0 completed, else an
 * error as above. */
int vmstate_wait (struct qmp *qmp, int timeout_ms,
                  struct vmstate_stats *stats);

#endif /* CAIRN_VMSTATE_H */
