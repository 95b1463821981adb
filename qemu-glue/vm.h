/* vm.h: cairn's virtual machines: QEMU microvm guests whose disk is a
 * branch of the store, committed, restored and branched whole (disk, RAM,
 * device state) through the store.
 *
 * The sequences (what QEMU is started with, what is stopped when, what
 * must match between the saving and the restoring QEMU) are those of
 * README-flow.md; the file-top comments of vmcommit.c, memscan.c and
 * vmrestore.c say how they are made fast and safe.
 *
 * Where a VM's things live:
 *
 *   STORE/run/vms/NAME/       its run directory
 *       qmp.sock              QEMU's QMP socket
 *       console.sock          the serial console (a socket chardev) ...
 *       console.log           ... and everything the guest printed on it
 *       qemu.log, nbdkit.log  the programs' own stderr
 *       nbd.sock              the disk, when cairn started an nbdkit for it
 *       kernel, initrd        the boot files QEMU was given (copies: a VM
 *                             needs no outside files once it runs)
 *       lock                  flock'd by commands that change the VM
 *       ram -> RAMDIR/...     a link to the RAM file, for people
 *   RAMDIR/cairn-<S>/NAME/    RAM on tmpfs ($CAIRN_VM_RAM_DIR, else
 *       ram                   /dev/shm; S = 16 hex digits of the SHA-256
 *       ram.ref               of the store's real path)
 *
 * RAM is a memory-backend-file with share=on, so with the VM stopped the
 * file is the guest's memory.  It lives on tmpfs, not in the store's
 * run/ directory: on a disk file system the kernel would write dirty
 * guest RAM back to the disk continuously.  ram.ref is the reference
 * copy that commits compare RAM against (memscan.c).
 *
 * VM records.  Each VM has one record in CAIRN_TABLE_VMS, key = its name
 * (no NUL), value = one JSON object (UTF-8, no trailing NUL):
 *
 *   member       type     description
 *   format       int      1
 *   name         string   the VM's name (= the key)
 *   branch       string   the branch its disk is
 *   created      string   ISO-8601 UTC time of vm run / vm restore
 *   dir          string   its run directory
 *   ram, ref     string   its RAM file and reference copy
 *   nbd_socket   string   the NBD socket QEMU's disk is on
 *   qemu         object   {"pid": int, "start": int}: QEMU's process;
 *                         start is /proc/PID/stat's starttime, so that a
 *                         recycled pid is not taken for it.  pid 0: not
 *                         started yet (a restore in progress or killed)
 *   nbdkit       object   the same for the nbdkit cairn started for it,
 *                         or null when it uses a server it did not start
 *   machine      string   the machine, as a "vm" line (vmline.c)
 *   kernel       string   path of the kernel QEMU was given
 *   initrd       string   path of the initrd QEMU was given
 *   base         string   hex id of the commit it runs from: the last
 *                         vm commit, the restored commit, or the branch's
 *                         base at vm run; "" if none
 *   memory       object   {"size": int, "chunk": int, "root": hex}: the
 *                         memory volume of its last commit (the base of
 *                         the next, incremental one), or null
 *   ref_valid    bool     ram.ref holds exactly that memory volume
 *
 * gc and retention read "base" (a commit a live VM runs from is kept);
 * everything else is for the vm commands.
 *
 * Errors: functions return 0 or a negative errno / CAIRN_E* code and
 * leave a sentence in cairn_last_error(); they never print or exit.
 */
#ifndef CAIRN_VM_H
#define CAIRN_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

/* VM names: 1..VM_NAME_MAX of [A-Za-z0-9._-], not starting with '.' or
 * '-' (a name is a file name in run/vms). */
#define VM_NAME_MAX 64
bool vm_name_valid (const char *name);

/* ------------------------------------------------------------------ */
/* The machine: what the saving and the restoring QEMU must agree on.  */

struct vm_machine {
  char qemu_version[32];        /* "7.2.22" */
  char machine[32];             /* "microvm" */
  char cpu[32];                 /* "qemu64" */
  char accel[8];                /* "tcg" or "kvm" */
  uint64_t memory;              /* bytes */
  unsigned cpus;
  char *append;                 /* kernel command line, malloc'd */
};

/* The "vm" line of a commit (without the leading "vm "):
 *   format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 cpus=1
 *   memory=268435456 append=console%3DttyS0%20root%3D/dev/vda...
 * Values are percent-encoded (every byte but [A-Za-z0-9._,:/+-]), so the
 * line has no spaces inside values, no newline and no ambiguity.  The
 * kernel and initrd are the commit's volumes "kernel" and "initrd". */
int vm_machine_format (const struct vm_machine *m, char **line);
/* Parses a vm line.  -EBADMSG if malformed, -ENOTSUP (with a sentence)
 * for a format this cairn does not know. */
int vm_machine_parse (const char *line, struct vm_machine *m);
void vm_machine_free (struct vm_machine *m);

/* Whether a machine saved by QEMU SAVED->qemu_version can be restored by
 * this host's QEMU HOST_VERSION: same major.minor and the microvm machine
 * cairn builds.  -ENOTSUP with one sentence saying what differs. */
int vm_machine_restorable (const struct vm_machine *saved,
                           const char *host_version);

/* The version of the QEMU cairn runs ($CAIRN_QEMU, else the one configure
 * found), from "--version", cached in STORE/run/qemu-version by the
 * binary's inode, size and mtime. */
int vm_qemu_version (struct cairn_store *s, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Records                                                             */

struct vm_process {
  pid_t pid;                    /* 0: none */
  uint64_t start;               /* /proc/PID/stat starttime */
};

struct vm_record {
  char name[VM_NAME_MAX + 1];
  char branch[CAIRN_NAME_MAX + 1];
  int64_t created;
  char *dir, *ram, *ref, *nbd_socket, *kernel, *initrd;
  struct vm_process qemu;
  struct vm_process nbdkit;     /* pid 0: not ours */
  struct vm_machine machine;
  struct cairn_id base;         /* zero: none */
  bool have_memory;
  struct cairn_volume memory;
  bool ref_valid;
};

/* CAIRN_ENOREF (with a sentence) if there is no VM NAME. */
int vm_record_get (struct cairn_store *s, const char *name,
                   struct vm_record *r);
/* Writes R.  CREATE: -EEXIST if a VM of that name exists. */
int vm_record_put (struct cairn_store *s, const struct vm_record *r,
                   bool create);
int vm_record_delete (struct cairn_store *s, const char *name);
/* Calls FN for every VM, by name. */
int vm_record_list (struct cairn_store *s,
                    int (*fn) (const struct vm_record *r, void *arg),
                    void *arg);
void vm_record_free (struct vm_record *r);

/* The commits the VMs run from (each record's "base"), for retention and
 * gc, which must keep them: calls ADD (CTX, commit, "vm NAME") for each,
 * reading the records in the caller's transaction TXN.  The shape of
 * retention/prune.h's cairn_retention_keep_fn and gc/gc.h's
 * cairn_extra_roots_fn; ARG is unused. */
int vm_keep_commits (struct cairn_store *s, struct cairn_txn *txn,
                     int (*add) (void *ctx, const struct cairn_id *commit,
                                 const char *why),
                     void *ctx, void *arg);

/* JSON text of a record and back (exposed for tests). */
int vm_record_encode (const struct vm_record *r, char **json);
int vm_record_decode (const char *json, size_t len, struct vm_record *r);

/* True if process P is alive and is the one recorded (same start time). */
bool vm_process_alive (const struct vm_process *p);

/* The VM's state for people: "running", "paused", "postmigrate" ... (as
 * QEMU's query-status says), "busy" (QMP did not answer: another command
 * is talking to it), "dead" (QEMU is gone) or "starting". */
void vm_state (const struct vm_record *r, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Commands                                                            */

struct vm_run_options {
  const char *branch;
  uint64_t memory;              /* 0: 256 MiB */
  unsigned cpus;                /* 0: 1 */
  const char *accel;            /* "tcg", "kvm", "auto" or NULL (auto) */
  const char *kernel, *initrd;  /* NULL: the default guest's */
  const char *append;           /* NULL: the default guest's cmdline */
};

/* Boots a new VM NAME on branch O->branch: serves the branch through
 * nbdkit cairn unless STORE/run/nbd.sock does, starts QEMU, and returns
 * once QEMU answers on QMP (the guest boots on its own).  R gets the
 * record (caller frees). */
int vm_run (struct cairn_store *s, const char *name,
            const struct vm_run_options *o, struct vm_record *r);

struct vm_commit_options {
  const char *message;
  const char *const *labels;    /* "key=value", NULL-terminated, or NULL */
};

struct vm_commit_result {
  struct cairn_id id;
  double pause_ms;              /* QMP stop sent -> cont answered */
  double total_ms;              /* the whole command */
  /* Within the pause: */
  double stop_ms;               /*   QMP stop (QEMU drains the disk) */
  double save_ms;               /*   device state and paused RAM pass */
  double scan_ms;               /*     of which the RAM pass */
  double vmstate_ms;            /*     and the device state, stored */
  double store_ms;              /*   storing what they found */
  double commit_ms;             /*   the commit through the server */
  double cont_ms;               /*   QMP cont */
  uint64_t memory_chunks;       /* chunks of RAM holding data */
  uint64_t changed_chunks;      /* that differed from the last commit */
  uint64_t paused_chunks;       /* of those, found while paused */
  uint64_t stored_bytes;        /* bytes added to packs for RAM + state */
  uint64_t vmstate_bytes;
  bool was_running;             /* cont only if it was */
};

/* Commits VM NAME: its disk (through the branch's server), RAM, device
 * state, kernel, initrd and machine in one commit of its branch. */
int vm_commit (struct cairn_store *s, const char *name,
               const struct vm_commit_options *o,
               struct vm_commit_result *res);

struct vm_restore_options {
  const char *branch;           /* the new branch; NULL: the VM's name */
  bool eager;                   /* read all of RAM before QEMU starts */
};

struct vm_restore_result {
  char branch[CAIRN_NAME_MAX + 1];
  struct cairn_id commit;
  double total_ms;
  double verify_ms;             /* reading (and so verifying) the state */
  double qemu_ms;               /* QEMU started until its QMP answered */
  double load_ms;               /* device state loaded and cont */
  double running_ms;            /* the start until the guest runs */
  double running_at_ms;         /* when it ran: ms since the epoch */
  bool lazy;                    /* RAM came in while the guest ran */
  bool spare;                   /* into a spare QEMU started ahead */
  uint64_t memory_bytes;        /* RAM bytes materialized */
  uint64_t pages_asked;         /* lazy: pages the guest asked for first */
};

/* Restores commit SPEC (any ref) as a new VM NAME on a new branch made
 * from the commit.  Kernel, initrd and device state are read and
 * verified before QEMU starts; RAM is too with O->eager, else it comes
 * in while the guest runs (postcopy.h), each chunk verified before the
 * guest sees it, and the call returns once all of it is in.  On any
 * failure nothing of the restore remains (branch, processes, files,
 * record). */
int vm_restore (struct cairn_store *s, const char *spec, const char *name,
                const struct vm_restore_options *o,
                struct vm_restore_result *res);

/* vm commit NAME, then restore that commit as NEW (its RAM copied from
 * NAME's reference copy, which holds exactly the committed memory).
 * Both VMs run on. */
int vm_branch (struct cairn_store *s, const char *name, const char *new_name,
               const struct vm_commit_options *co,
               const struct vm_restore_options *ro,
               struct vm_commit_result *cres,
               struct vm_restore_result *rres);

/* Spare QEMUs (vmspare.c): started ahead for the machine of a VM commit,
 * each taken by a vm restore of a commit of that machine, which starts
 * another in its place. */
struct vm_spare_info {
  char id[17];
  char shape[256];              /* "qemu=V machine=M accel=A cpu=C ..." */
  pid_t pid;                    /* its QEMU */
  pid_t nbdkit_pid;             /* its nbdkit; 0: none (a shared server) */
  bool alive;                   /* both run */
};
/* Starts COUNT spares shaped like VM commit SPEC's machine. */
int vm_spare_start (struct cairn_store *s, const char *spec, unsigned count);
int vm_spare_list (struct cairn_store *s,
                   int (*fn) (const struct vm_spare_info *, void *),
                   void *arg);
/* Ends every spare; *STOPPED: how many. */
int vm_spare_stop (struct cairn_store *s, unsigned *stopped);

/* The machine of VM commit SPEC (its vm line). */
int vm_commit_machine (struct cairn_store *s, const char *spec,
                       struct vm_machine *m);

struct vm_stop_result {
  bool was_alive;               /* QEMU was running until now */
  bool forced;                  /* it had to be killed */
};

/* Stops VM NAME: QEMU quits (killed if it does not within 5 s), the
 * nbdkit cairn started ends, its files and record go.  A VM whose QEMU
 * died already is cleaned up the same way. */
int vm_stop (struct cairn_store *s, const char *name,
             struct vm_stop_result *res);

/* Types LINE and a newline into VM NAME's serial console. */
int vm_console_send (struct cairn_store *s, const char *name,
                     const char *line);

/* The default guest (qemu-glue/guest/build-guest.sh): its directory
 * ($CAIRN_GUEST_DIR, else /var/cache/cairn/guest for root, else
 * $XDG_CACHE_HOME/cairn/guest), built there on first use.  The builder's
 * output goes to stderr. */
int vm_guest_dir (char *buf, size_t len);
int vm_guest_ensure (const char *dir);

#endif /* CAIRN_VM_H */
