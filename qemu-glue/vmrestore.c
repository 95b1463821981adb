/* vmrestore.c: vm restore COMMIT NAME and vm branch NAME NEW.
 *
 * Restore, in order:
 *
 *   1. read the commit: its vm line (the machine), the volumes disk,
 *      memory, vmstate, kernel and initrd; refuse a machine this host's
 *      QEMU cannot load (another major.minor, another machine type) and
 *      a taken VM or branch name;
 *   2. check that every tree node and chunk of the disk is in the store
 *      (the disk is served lazily, so its bytes are verified as the guest
 *      reads them; a missing piece is caught here);
 *   3. reserve the name (the record), start the branch's nbdkit;
 *   4. read kernel, initrd and device state out of the store into the
 *      run directory: every chunk is decompressed and re-hashed on the
 *      way, so a corrupt or missing chunk fails the restore here, before
 *      QEMU exists.  RAM too, into the RAM file, with --eager (or when
 *      the device state cannot be sent as a postcopy migration);
 *   5. make the new branch from the commit;
 *   6. start QEMU with the recorded machine, -incoming defer -S; then
 *      either load the device state (x-ignore-shared: RAM is the file
 *      already) and cont, or (lazy, the default) migrate it in as
 *      postcopy (postcopy.c): cont as soon as the device state is
 *      loaded, RAM following while the guest runs, every chunk verified
 *      before QEMU gets a page of it.  The restore returns once all of
 *      RAM is in; a corrupt chunk found then fails it like any other
 *      error, after the guest ran on verified pages only.
 *
 * Any failure from 3 on undoes everything it did: QEMU and the nbdkit it
 * started are ended, the branch (if made) deleted, files and record
 * removed.  Nothing half-restored is left, and no guest ever runs on a
 * byte that was not verified.
 *
 * The restored VM's ram.ref starts invalid: its first commit rebuilds it
 * while the guest runs (memscan.c), so the restore does not pay for a
 * second copy of RAM.
 *
 * vm branch NAME NEW is a vm commit of NAME, then a restore of that
 * commit as NEW whose RAM is a copy of NAME's ram.ref (taken under NAME's
 * lock, right after the commit): ram.ref holds exactly the committed
 * memory, so the bytes need not come back out of the store.  Kernel and
 * initrd are copied from NAME's run directory likewise.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qemu-glue/postcopy.h"
#include "qemu-glue/vm-internal.h"
#include "qemu-glue/vmstate.h"

/* Files that already hold a commit's state (vm branch). */
struct prepared {
  const char *ram;              /* renamed into place */
  const char *kernel, *initrd;  /* copied */
};

struct presence {
  struct cairn_txn *txn;
  const char *what;
};

static int
chunk_present (uint64_t index, const struct cairn_id *id, void *arg)
{
  struct presence *p = arg;
  struct cairn_val v;
  int r = cairn_object_get (p->txn, CAIRN_OBJECT_CHUNK, id, &v);

  if (r == -ENOENT) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (id, hex);
    return cairn_error (-EBADMSG, "chunk %s of the commit's %s is missing "
                        "from the store", hex, p->what);
  }
  return r;
}

/* Every node and chunk of volume V is in the store. */
static int
volume_present (struct cairn_store *s, const struct cairn_volume *v)
{
  struct presence p = { .what = v->name };
  int r = cairn_txn_begin (s, false, &p.txn);

  if (r < 0)
    return r;
  r = cairn_tree_walk_nodes (p.txn, &v->root,
                             cairn_tree_levels (v->size, v->chunk_size),
                             NULL, chunk_present, &p);
  cairn_txn_abort (s, p.txn);
  if (r < 0 && r != -EBADMSG)
    r = cairn_error (r, "the commit's %s is incomplete: %s", v->name,
                     *cairn_last_error () ? cairn_last_error ()
                     : cairn_strerror (r));
  return r;
}

struct state_reader {
  const uint8_t *data;
  size_t len, off;
};

static ssize_t
state_read (void *opaque, void *buf, size_t len)
{
  struct state_reader *sr = opaque;
  size_t n = CAIRN_MIN (len, sr->len - sr->off);
  memcpy (buf, sr->data + sr->off, n);
  sr->off += n;
  return n;
}

/* The commit's volume NAME into *V: CAIRN_ENOVOLUME if it has none. */
static int
need_volume (const struct cairn_commit *c, const char *name,
             struct cairn_volume *v)
{
  const struct cairn_volume *found = cairn_commit_volume (c, name);
  char hex[CAIRN_HEX_SIZE + 1];

  if (found) {
    *v = *found;
    return 0;
  }
  cairn_id_to_hex (&c->id, hex);
  return cairn_error (CAIRN_ENOVOLUME, "commit %.12s has no volume '%s': "
                      "it is not a VM commit (cairn vm commit makes them)",
                      hex, name);
}

static int
not_vm_commit (const struct cairn_id *id)
{
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_id_to_hex (id, hex);
  return cairn_error (-EINVAL, "commit %.12s has no vm line: it is not a VM "
                      "commit (cairn vm commit makes them)", hex);
}

/* Step 1: the commit and its machine; the names are free. */
static int
read_commit (struct cairn_store *s, const char *spec, const char *name,
             const char *branch, struct cairn_id *id, struct vm_machine *m,
             struct cairn_volume vols[5])
{
  static const char *const names[5] = {
    "disk", "memory", "vmstate", "kernel", "initrd"
  };
  struct cairn_commit *c = NULL;
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  struct cairn_ref ref;
  struct vm_record other;
  char version[32], hex[CAIRN_HEX_SIZE + 1];
  int e;

  if (vm_record_get (s, name, &other) == 0) {
    vm_record_free (&other);
    return cairn_error (-EEXIST, "there is a VM '%s' already (cairn vm "
                        "stop %s ends it)", name, name);
  }
  cairn_clear_error ();
  if ((e = cairn_txn_begin (s, false, &txn)) < 0)
    return e;
  e = cairn_resolve (txn, spec, &ref);
  if (e == 0)
    e = cairn_commit_read (txn, &ref.commit, &c);
  if (e == 0 && cairn_commit_pruned (txn, &ref.commit)) {
    cairn_id_to_hex (&ref.commit, hex);
    e = cairn_error (-ENOENT, "commit %.12s was pruned: its volumes are "
                     "gone", hex);
  }
  if (e == 0) {
    e = cairn_branch_info_get (txn, branch, &info);
    if (e == 0) {
      cairn_branch_info_free (&info);
      e = cairn_error (-EEXIST, "there is a branch '%s' already: name "
                       "another with --branch", branch);
    }
    else if (e == CAIRN_ENOREF) {
      cairn_clear_error ();
      e = 0;
    }
  }
  cairn_txn_abort (s, txn);
  if (e < 0)
    goto out;
  *id = ref.commit;
  cairn_id_to_hex (id, hex);
  if (!c->vm) {
    e = not_vm_commit (id);
    goto out;
  }
  for (int i = 0; i < 5 && e == 0; i++)
    e = need_volume (c, names[i], &vols[i]);
  if (e < 0 || (e = vm_machine_parse (c->vm, m)) < 0)
    goto out;
  if ((e = vm_qemu_version (s, version, sizeof version)) < 0
      || (e = vm_machine_restorable (m, version)) < 0) {
    vm_machine_free (m);
    goto out;
  }
  if (vols[1].size != m->memory) {
    e = cairn_error (-EBADMSG, "commit %.12s's memory volume holds %llu "
                     "bytes, its vm line says %llu", hex,
                     (unsigned long long) vols[1].size,
                     (unsigned long long) m->memory);
    vm_machine_free (m);
    goto out;
  }
  snprintf (m->qemu_version, sizeof m->qemu_version, "%s", version);
 out:
  cairn_commit_free (c);
  return e;
}

int
vm_commit_machine (struct cairn_store *s, const char *spec,
                   struct vm_machine *m)
{
  struct cairn_commit *c = NULL;
  struct cairn_txn *txn;
  struct cairn_ref ref;
  int e;

  if ((e = cairn_txn_begin (s, false, &txn)) < 0)
    return e;
  e = cairn_resolve (txn, spec, &ref);
  if (e == 0)
    e = cairn_commit_read (txn, &ref.commit, &c);
  cairn_txn_abort (s, txn);
  if (e < 0)
    return e;
  if (!c->vm)
    e = not_vm_commit (&ref.commit);
  else
    e = vm_machine_parse (c->vm, m);
  cairn_commit_free (c);
  return e;
}

/* Kernel and initrd into the run directory. */
static int
boot_files (struct cairn_store *s, struct vm_record *r,
            const struct cairn_volume vols[5], const struct prepared *prep)
{
  int e;

  if (prep) {
    if ((e = vm_copy_sparse (prep->kernel, r->kernel)) < 0
        || (e = vm_copy_sparse (prep->initrd, r->initrd)) < 0)
      return e;
  }
  else if ((e = vm_volume_to_file (s, &vols[3], r->kernel)) < 0
           || (e = vm_volume_to_file (s, &vols[4], r->initrd)) < 0)
    return e;
  return 0;
}

/* Step 4.  A lazy restore (*LAZY) reads only the device state here: *PC
 * is its plan; *LAZY is cleared if it cannot go as postcopy. */
static int
materialize (struct cairn_store *s, struct vm_record *r,
             const struct cairn_volume vols[5], const struct prepared *prep,
             bool *lazy, struct vm_postcopy **pc, void **state,
             struct vm_restore_result *res)
{
  int e;

  if ((e = vm_volume_to_buffer (s, &vols[2], state)) < 0)
    return e;
  if (*lazy && vm_postcopy_plan (*state, vols[2].size, &vols[1], pc) == 0)
    return 0;
  *lazy = false;
  if ((e = boot_files (s, r, vols, prep)) < 0)
    return e;
  if (prep) {
    if (rename (prep->ram, r->ram) < 0)
      return cairn_error (-errno, "%s: %m", r->ram);
    res->memory_bytes = 0;
    return 0;
  }
  return vm_volume_to_ram (s, &vols[1], r->ram, &res->memory_bytes);
}

/* Step 6 of a lazy restore: the guest runs, RAM comes in; then the boot
 * files, which QEMU did not need (a commit of the VM stores them). */
static int
load_lazily (struct cairn_store *s, struct vm_record *r, struct qmp *qmp,
             const struct cairn_volume vols[5], struct vm_postcopy *pc,
             struct vm_restore_result *res)
{
  struct vm_postcopy_stats st;
  int e = vm_postcopy_run (pc, s, qmp, VM_QMP_MS, &st);

  if (e < 0 && !vm_process_alive (&r->qemu)) {
    char log[PATH_MAX], last[512];
    vm_path (r->dir, "qemu.log", log);
    vm_log_last_line (log, last, sizeof last);
    e = cairn_error (e, "QEMU exited while its RAM came in: %s",
                     *last ? last : "(nothing in qemu.log)");
  }
  if (e == 0)
    e = boot_files (s, r, vols, NULL);
  if (e < 0) {
    /* Its guest may wait for a page for ever: QMP would not answer. */
    vm_process_end (&r->qemu, SIGKILL, VM_STOP_MS);
    return e;
  }
  res->lazy = true;
  res->load_ms = st.running_ms;
  res->memory_bytes = st.pages * 4096;
  res->pages_asked = st.requests;
  return 0;
}

/* Step 6, from QMP on. */
static int
load_state (struct vm_record *r, struct qmp *qmp, const void *state,
            size_t len)
{
  struct state_reader sr = { state, len, 0 };
  struct vmstate_stats stats;
  char log[PATH_MAX], last[512];
  int e = vmstate_load (qmp, state_read, &sr, VM_QMP_MS, &stats);

  if (e == 0)
    e = qmp_execute (qmp, "cont", NULL, NULL, VM_QMP_MS);
  if (e == 0)
    return 0;
  if (!vm_process_alive (&r->qemu)) {
    vm_path (r->dir, "qemu.log", log);
    vm_log_last_line (log, last, sizeof last);
    return cairn_error (e, "QEMU refused the device state and exited: %s",
                        *last ? last : "(nothing in qemu.log)");
  }
  if (e == -EIO && stats.error[0])
    return cairn_error (e, "loading the device state: %s", stats.error);
  if (e == -EREMOTEIO)
    return cairn_error (e, "loading the device state: %s", qmp_error (qmp));
  return cairn_error (e, "loading the device state: %s", strerror (-e));
}

static int
restore (struct cairn_store *s, const char *spec, const char *name,
         const struct vm_restore_options *o, const struct prepared *prep,
         struct vm_restore_result *res)
{
  const char *branch = o && o->branch ? o->branch : name;
  struct cairn_volume vols[5];
  struct vm_record r;
  struct qmp *qmp = NULL;
  struct vm_postcopy *pc = NULL;
  void *state = NULL;
  bool branch_made = false, lazy = !prep && !(o && o->eager);
  struct timespec wall;
  double t0 = vm_now_ms ();
  int e;

  clock_gettime (CLOCK_REALTIME, &wall);

  memset (res, 0, sizeof *res);
  memset (&r, 0, sizeof r);
  if (!vm_name_valid (name))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid VM name "
                        "(1-%d of A-Z a-z 0-9 . _ -)", name, VM_NAME_MAX);
  if (!cairn_ref_name_valid (branch))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid branch name",
                        branch);
  snprintf (r.name, sizeof r.name, "%s", name);
  snprintf (r.branch, sizeof r.branch, "%s", branch);
  snprintf (res->branch, sizeof res->branch, "%s", branch);

  /* 1, 2 */
  if ((e = read_commit (s, spec, name, branch, &res->commit, &r.machine,
                        vols)) < 0)
    return e;
  if ((e = volume_present (s, &vols[0])) < 0)
    goto out;

  /* 3: from here on, failures undo what was done. */
  r.created = cairn_time_now ();
  r.base = res->commit;
  r.memory = vols[1];
  r.have_memory = true;
  r.ref_valid = false;
  /* A spare QEMU of the machine, if one waits (vmspare.c). */
  double tc = vm_now_ms ();
  if (lazy && vm_spare_claim (s, &r, &qmp) == 0) {
    res->spare = true;
    res->qemu_ms = vm_now_ms () - tc;
  }
  else if ((e = vm_prepare_dirs (s, &r)) < 0) {
    vm_files_remove (&r);
    goto out;
  }
  if ((e = vm_record_put (s, &r, true)) < 0) {
    if (res->spare) {           /* not ours to keep: the name is taken */
      qmp_close (qmp);
      qmp = NULL;
      vm_process_end (&r.qemu, SIGKILL, VM_STOP_MS);
      vm_process_end (&r.nbdkit, SIGKILL, VM_STOP_MS);
      vm_files_remove (&r);
    }
    goto out;
  }
  /* A spare brings its nbdkit (vmspare.c). */
  if ((!*r.nbd_socket && (e = vm_nbd_start (s, &r)) < 0)
      || (e = vm_record_put (s, &r, false)) < 0)
    goto undo;

  /* 4 */
  double t1 = vm_now_ms ();
  if ((e = materialize (s, &r, vols, prep, &lazy, &pc, &state, res)) < 0)
    goto undo;
  res->verify_ms = vm_now_ms () - t1;

  /* 5 */
  if ((e = cairn_branch_create_from (s, branch, &res->commit)) < 0)
    goto undo;
  branch_made = true;

  /* 6 */
  if (res->spare) {
    double t = vm_now_ms ();
    if ((e = vm_spare_attach_disk (qmp, &r)) < 0)
      goto undo;
    res->qemu_ms += vm_now_ms () - t;
  }
  else if ((e = vm_start_processes (s, &r, lazy ? VM_INCOMING_NO_BOOT_FILES
                                    : VM_INCOMING, &qmp,
                                    &res->qemu_ms)) < 0)
    goto undo;
  double t2 = vm_now_ms ();
  if (lazy) {
    if ((e = load_lazily (s, &r, qmp, vols, pc, res)) < 0)
      goto undo;
    res->running_ms = t2 - t0 + res->load_ms;
  }
  else {
    if ((e = load_state (&r, qmp, state, vols[2].size)) < 0)
      goto undo;
    res->load_ms = vm_now_ms () - t2;
    res->running_ms = vm_now_ms () - t0;
  }
  res->running_at_ms = wall.tv_sec * 1e3 + wall.tv_nsec / 1e6
    + res->running_ms;
  qmp_close (qmp);
  qmp = NULL;
  res->total_ms = vm_now_ms () - t0;
  /* Keep the pool's size.  Best effort: the restore is done. */
  if (res->spare && vm_spare_spawn (s, &r.machine) < 0)
    cairn_clear_error ();
  goto out;

 undo:
  qmp_close (qmp);
  qmp = NULL;
  {
    /* Keep the first error's sentence over the cleanup's. */
    char msg[1024];
    snprintf (msg, sizeof msg, "%s", cairn_last_error ());
    vm_abandon (s, &r);
    if (branch_made)
      cairn_branch_delete (s, branch);
    if (*msg)
      cairn_error (e, "%s", msg);
  }
 out:
  vm_postcopy_free (pc);
  free (state);
  vm_record_free (&r);
  return e;
}

int
vm_restore (struct cairn_store *s, const char *spec, const char *name,
            const struct vm_restore_options *o, struct vm_restore_result *res)
{
  return restore (s, spec, name, o, NULL, res);
}

int
vm_branch (struct cairn_store *s, const char *name, const char *new_name,
           const struct vm_commit_options *co,
           const struct vm_restore_options *ro,
           struct vm_commit_result *cres, struct vm_restore_result *rres)
{
  char ramdir[PATH_MAX], ram[PATH_MAX], hex[CAIRN_HEX_SIZE + 1];
  const char *branch = ro && ro->branch ? ro->branch : new_name;
  struct cairn_branch_info info;
  struct vm_record r, other;
  struct cairn_txn *txn;
  int lock, e;

  /* Refuse what the restore would refuse before committing anything. */
  if (!vm_name_valid (new_name))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid VM name "
                        "(1-%d of A-Z a-z 0-9 . _ -)", new_name, VM_NAME_MAX);
  if (!cairn_ref_name_valid (branch))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid branch name",
                        branch);
  if (vm_record_get (s, new_name, &other) == 0) {
    vm_record_free (&other);
    return cairn_error (-EEXIST, "there is a VM '%s' already", new_name);
  }
  if ((e = cairn_txn_begin (s, false, &txn)) < 0)
    return e;
  e = cairn_branch_info_get (txn, branch, &info);
  cairn_txn_abort (s, txn);
  if (e == 0) {
    cairn_branch_info_free (&info);
    return cairn_error (-EEXIST, "there is a branch '%s' already: name "
                        "another with --branch", branch);
  }
  cairn_clear_error ();
  if ((e = vm_ram_dir (s, new_name, ramdir)) < 0
      || (e = vm_path (ramdir, "ram.branch", ram)) < 0)
    return e;

  double t0 = vm_now_ms ();
  if ((e = vm_commit_keep_lock (s, name, co, cres, &r, &lock)) < 0)
    return e;
  if (cairn_mkdir_p (ramdir) < 0)
    e = cairn_error (-errno, "%s: %m", ramdir);
  else
    e = vm_copy_sparse (r.ref, ram);
  close (lock);
  if (e == 0) {
    struct prepared prep = { ram, r.kernel, r.initrd };
    cairn_id_to_hex (&cres->id, hex);
    e = restore (s, hex, new_name, ro, &prep, rres);
    rres->total_ms = vm_now_ms () - t0;
  }
  unlink (ram);
  if (e < 0)
    rmdir (ramdir);
  vm_record_free (&r);
  return e;
}
