/* vm-internal.h: what the VM modules of qemu-glue share (see vm.h). */
#ifndef CAIRN_VM_INTERNAL_H
#define CAIRN_VM_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "qemu-glue/qmp.h"
#include "qemu-glue/vm.h"

/* How long QEMU may take to answer on QMP after it was started, and any
 * QMP command to answer. */
#define VM_QEMU_START_MS 30000
#define VM_QMP_MS 30000
/* How long a process gets to end after being asked to. */
#define VM_STOP_MS 5000

/* Milliseconds of CLOCK_MONOTONIC, fractional. */
double vm_now_ms (void);

/* Paths.  Each fills BUF (PATH_MAX) and fails with -ENAMETOOLONG. */
int vm_run_dir (struct cairn_store *s, const char *name, char *buf);
int vm_ram_dir (struct cairn_store *s, const char *name, char *buf);
/* DIR/FILE, and for a unix socket also checks that it fits sun_path. */
int vm_path (const char *dir, const char *file, char *buf);
int vm_socket_path (const char *dir, const char *file, char *buf);

/* proc.c: processes cairn starts for a VM. */
/* Starts ARGV[0] in its own session, detached: stdin from /dev/null,
 * stdout and stderr appended to LOG, no other inherited fd, and ENV_ADD
 * ("K=V", NULL-terminated, or NULL) added to the environment.  It
 * outlives cairn. */
int vm_spawn (const char *const *argv, const char *const *env_add,
              const char *log, struct vm_process *p);
/* True if P exited; reaps it if it is our child. */
bool vm_process_gone (const struct vm_process *p);
/* Sends SIG to P if it is alive, then waits up to TIMEOUT_MS for it to
 * end: 0 if it ended, -ETIMEDOUT if not. */
int vm_process_end (const struct vm_process *p, int sig, int timeout_ms);
int vm_process_fill (struct vm_process *p);     /* reads start time */
/* The last non-empty line of LOG (for error messages), or "". */
void vm_log_last_line (const char *log, char *buf, size_t len);

/* launch.c */
/* Connects to QMP at PATH while process P starts up, failing early if it
 * exits (with the last line of LOG in the message). */
int vm_qmp_connect_starting (const char *path, const struct vm_process *p,
                             const char *log, int timeout_ms,
                             struct qmp **qmp);
/* Uses STORE/run/nbd.sock if a server answers there, else starts nbdkit
 * cairn for the store on DIR/nbd.sock.  R->nbd_socket and R->nbdkit are
 * set. */
int vm_nbd_start (struct cairn_store *s, struct vm_record *r);
/* Its parts: starts nbdkit cairn for the store on DIR/nbd.sock (its
 * stderr to DIR/nbdkit.log), P set, without waiting for it; waits up to
 * TIMEOUT_MS for that socket to answer (P ended and cleared if it does
 * not).  vm_nbd_shared: whether STORE/run/nbd.sock answers. */
int vm_nbd_spawn (struct cairn_store *s, const char *dir,
                  struct vm_process *p);
int vm_nbd_wait (const char *dir, struct vm_process *p, int timeout_ms);
bool vm_nbd_shared (struct cairn_store *s);
/* How QEMU starts: booting R's kernel, or waiting for an incoming
 * migration ("-incoming defer -S"), with or without the kernel, initrd
 * and append line (only a boot reads them: a lazy restore starts QEMU
 * before they are out of the store). */
enum vm_start {
  VM_BOOT, VM_INCOMING, VM_INCOMING_NO_BOOT_FILES,
  VM_SPARE,                     /* incoming, no boot files, no disk yet */
};
/* Starts QEMU for R (its machine, files and sockets).  R->qemu is set. */
int vm_qemu_start (struct vm_record *r, enum vm_start how);
/* QEMU's run state ("running", "paused", "inmigrate", ...) into BUF. */
int vm_qmp_status (struct qmp *qmp, char *buf, size_t len);
/* Ends R's QEMU (quit, then kill) and its own nbdkit, once that let go
 * of the branch. */
void vm_processes_end (struct cairn_store *s, struct vm_record *r,
                       struct vm_stop_result *res);
/* vmrun.c: starts nbdkit (unless R has a server) and QEMU for R,
 * recording each in R's record, and connects to QEMU's QMP.  QEMU_MS gets
 * the time from QEMU's start to its QMP greeting. */
int vm_start_processes (struct cairn_store *s, struct vm_record *r,
                        enum vm_start how, struct qmp **qmp, double *qemu_ms);
/* Undoes a failed start: R's processes, files and record. */
void vm_abandon (struct cairn_store *s, struct vm_record *r);
/* vmcommit.c: vm_commit, leaving the record in R and the lock held in
 * *LOCK on success (vm branch copies ram.ref before another commit may
 * change it). */
int vm_commit_keep_lock (struct cairn_store *s, const char *name,
                         const struct vm_commit_options *o,
                         struct vm_commit_result *res, struct vm_record *r,
                         int *lock);
/* vmrun.c: the paths of a new VM's record, and its directories. */
int vm_prepare_dirs (struct cairn_store *s, struct vm_record *r);
/* The paths alone (R->name set): dir, ram, ref, kernel, initrd. */
int vm_set_paths (struct cairn_store *s, struct vm_record *r);
/* vmspare.c (see there).  Starts a spare QEMU shaped like M, and an
 * nbdkit beside it, detached. */
int vm_spare_spawn (struct cairn_store *s, const struct vm_machine *m);
/* Takes a ready spare shaped like R->machine: moves its directories to
 * R's (R->name set), sets R's paths and R->qemu, and gives its QMP
 * connection in *QMP; if the spare brought its nbdkit, also
 * R->nbd_socket and R->nbdkit (else R->nbd_socket is "").  -ENOENT:
 * none. */
int vm_spare_claim (struct cairn_store *s, struct vm_record *r,
                    struct qmp **qmp);
/* Points a claimed spare's disk at R's branch (R->nbd_socket). */
int vm_spare_attach_disk (struct qmp *qmp, const struct vm_record *r);
/* Removes R's run directory and RAM directory. */
void vm_files_remove (struct vm_record *r);
/* Takes DIR/lock (exclusive, not waiting): -EBUSY if another command
 * holds it.  Returns the fd in *FD. */
int vm_lock (const char *dir, const char *name, int *fd);

/* memscan.c: RAM against its reference copy (see memscan.c). */
struct memscan;
int memscan_open (struct cairn_store *s, const char *ram, const char *ref,
                  uint64_t size, bool ref_valid, struct memscan **ms);
void memscan_close (struct memscan *ms);
/* Compares every chunk of RAM with the reference copy and copies those
 * that differ into it.  *CHANGED: how many; *DATA: chunks of RAM holding
 * data.  The chunks found are remembered for the next store. */
int memscan_pass (struct memscan *ms, uint64_t *changed, uint64_t *data);
/* Chunks that any pass so far found changed (each counted once). */
uint64_t memscan_changed_total (const struct memscan *ms);
/* Stores the reference copy as a memory volume: incrementally over BASE
 * (the volume the copy held before the passes since the last store), or
 * whole when BASE is NULL.  OUT is the new volume ("memory"). */
int memscan_store (struct memscan *ms, const struct cairn_volume *base,
                   struct cairn_volume *out, struct cairn_import_stats *st);

/* Hashes (and compresses what the store lacks) the chunks changed since
 * the last store, as the paused commit needs them: CHANGES and SEALED (the
 * caller frees both, and each sealed chunk) hold N of them, by index. */
int memscan_seal (struct memscan *ms, struct cairn_tree_change **changes,
                  struct cairn_sealed **sealed, size_t *n);
/* Once the sealed chunks are stored: the next store starts afresh. */
void memscan_forget (struct memscan *ms);

/* store.c helpers: a file or buffer as a volume, and back. */
int vm_store_file (struct cairn_store *s, const char *path, const char *name,
                   struct cairn_volume *out, struct cairn_import_stats *st);
int vm_store_buffer (struct cairn_store *s, const void *buf, size_t len,
                     const char *name, struct cairn_volume *out,
                     struct cairn_import_stats *st);
/* The chunks of a volume that are not holes, in index order. */
struct vm_chunk_ref {
  uint64_t index;
  struct cairn_id id;
};
struct vm_chunk_list {
  size_t n, cap;
  struct vm_chunk_ref *v;         /* malloc'd */
};
int vm_volume_chunks (struct cairn_store *s, const struct cairn_volume *v,
                      struct vm_chunk_list *l);
/* Writes volume V (verified) into a new file PATH. */
int vm_volume_to_file (struct cairn_store *s, const struct cairn_volume *v,
                       const char *path);
/* Reads volume V (verified) into a malloc'd buffer. */
int vm_volume_to_buffer (struct cairn_store *s, const struct cairn_volume *v,
                         void **buf);
/* Writes memory volume V into the RAM file PATH (created, sparse), on
 * every core, each chunk read and verified once however often it
 * occurs. */
int vm_volume_to_ram (struct cairn_store *s, const struct cairn_volume *v,
                      const char *path, uint64_t *bytes);
/* Copies the data of FROM into a new sparse file TO. */
int vm_copy_sparse (const char *from, const char *to);

#endif /* CAIRN_VM_INTERNAL_H */
