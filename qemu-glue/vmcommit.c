/* vmcommit.c: vm commit NAME, one commit of a running VM's whole state.
 *
 * The sequence, and what is done while the guest is stopped (the pause):
 *
 *   guest running                        guest stopped
 *   -------------                        -------------
 *   store kernel and initrd (dedup: a hash)
 *   pass 1: compare RAM with ram.ref,
 *     copy what changed, store it
 *   (pass 2 likewise, if pass 1 found
 *     much: it took long enough for the
 *     guest to change more)
 *                                  QMP stop: QEMU drains and flushes the
 *                                    disk, so nbdkit has every write
 *                                  in parallel:
 *                                    device state (x-ignore-shared) into
 *                                    a buffer, by QEMU over a socketpair
 *                                    the paused pass over RAM (memscan.c)
 *                                  one transaction: the chunks the paused
 *                                    pass found, the memory tree over
 *                                    pass 1's, the device state's volume
 *                                  one commit of the branch, through the
 *                                    server that holds it: the disk's
 *                                    working state + memory + vmstate +
 *                                    kernel + initrd + the vm line
 *                                  QMP cont
 *   record the commit as the VM's base, the memory volume as the next
 *   commit's base, and ram.ref as valid
 *
 * The pause is then the device state (5-9 ms), a memcmp of resident RAM
 * against ram.ref (about 13 ms per 120 MiB on one core, split over every
 * core), the few chunks the guest changed since pass 1, one transaction of
 * ours and the commit's; not a hash of all RAM, and not a copy of it.
 * Every transaction is a pair of fsyncs, which a busy disk makes the
 * slowest part: hence one for everything stored while paused.
 *
 * Consistency.  ram.ref must equal the memory volume the record names,
 * or an incremental store over that volume would be wrong.  The record
 * says ref_valid = false (durably) before the first pass touches
 * ram.ref, and true again only once the commit exists; a commit that
 * fails anywhere leaves it false, and the next commit stores RAM whole
 * (every chunk hashed, the known ones not stored again) to rebuild it.
 * Everything stored before the commit names it is under a pin, so a
 * concurrent gc keeps it; a commit that never happens leaves garbage for
 * gc, never a dangling name.
 *
 * Failures.  Once the guest is stopped, every failure path sends cont if
 * the guest was running and QEMU is still there: a failed commit never
 * leaves a paused VM.  If QEMU dies in the middle (killed, crashed), no
 * commit is made: the device state is missing or incomplete; nbdkit sees
 * its client go and flushes the branch, which stays as consistent as
 * after any crash of a guest.  A commit that died after QEMU saved its
 * device state leaves QEMU in "postmigrate", from which it cannot save
 * again: the next commit sends cont first.
 *
 * Test hook: CAIRN_VM_TEST_STALL=POINT:MS makes the commit create
 * RUN_DIR/test-stall-POINT and sleep MS at POINT (prepass, paused,
 * saved), so that a test can kill QEMU at a known moment of the pause.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"
#include "qemu-glue/vmstate.h"

/* A second pass runs while the guest runs if the first found more than
 * this many changed chunks. */
#define SECOND_PASS_CHUNKS 64

static void
test_stall (const char *dir, const char *point)
{
  const char *hook = getenv ("CAIRN_VM_TEST_STALL");
  size_t n = strlen (point);
  char path[PATH_MAX];

  if (!hook || strncmp (hook, point, n) != 0 || hook[n] != ':')
    return;
  if (vm_path (dir, "test-stall-", path) == 0
      && strlen (path) + n < sizeof path) {
    strcat (path, point);
    int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
      close (fd);
  }
  long ms = atol (hook + n + 1);
  nanosleep (&(struct timespec) { ms / 1000, ms % 1000 * 1000000L }, NULL);
}

struct state_buffer {
  uint8_t *data;
  size_t len, cap;
};

static int
state_append (void *opaque, const void *buf, size_t len)
{
  struct state_buffer *b = opaque;

  if (cairn_reserve (&b->data, &b->cap, b->len + len, 65536) < 0)
    return -ENOMEM;
  memcpy (b->data + b->len, buf, len);
  b->len += len;
  return 0;
}

/* The device state, saved in a thread of its own while the paused RAM
 * pass runs. */
struct saver {
  struct qmp *qmp;
  struct state_buffer buf;
  struct vmstate_stats stats;
  int r;
  double ms;                    /* how long it took */
};

static void *
save_thread (void *arg)
{
  struct saver *sv = arg;
  double t0 = vm_now_ms ();
  sv->r = vmstate_save (sv->qmp, state_append, &sv->buf, VM_QMP_MS,
                        &sv->stats);
  sv->ms = vm_now_ms () - t0;
  return NULL;
}

/* Seals LEN bytes of STATE as chunks: *SEALED gets *N of them. */
static int
seal_state (struct cairn_store *s, const uint8_t *state, size_t len,
            struct cairn_sealed **sealed, size_t *n)
{
  uint32_t cs = cairn_store_chunk_size (s);
  uint8_t *buf = malloc (cs);
  int r = 0;

  *n = (len + cs - 1) / cs;
  *sealed = calloc (*n ? *n : 1, sizeof **sealed);
  if (!buf || !*sealed) {
    free (buf);
    free (*sealed);
    return -ENOMEM;
  }
  for (size_t k = 0; k < *n && r == 0; k++) {
    size_t part = CAIRN_MIN ((size_t) cs, len - k * cs);
    memset (buf, 0, cs);
    memcpy (buf, state + k * cs, part);
    r = cairn_chunk_seal (s, buf, &(*sealed)[k]);
  }
  free (buf);
  return r;
}

static void
sealed_free (struct cairn_sealed *v, size_t n)
{
  for (size_t k = 0; v && k < n; k++)
    cairn_sealed_free (&v[k]);
  free (v);
}

/* What the paused pass found and the device state, stored in one
 * transaction: one pair of fsyncs in the pause, not one per volume.
 * -ENOENT if a chunk the store had went to gc between seal and put (the
 * caller then takes the slow path, which reseals). */
static int
store_paused (struct cairn_store *s, struct memscan *ms,
              const struct cairn_volume *base, const uint8_t *state,
              size_t len, struct cairn_volume *memory,
              struct cairn_volume *vmstate, uint64_t *stored)
{
  struct cairn_tree_change *changes = NULL;
  struct cairn_sealed *msealed = NULL, *ssealed = NULL;
  struct cairn_tree_builder *tb = NULL;
  struct cairn_txn *txn = NULL;
  size_t nm = 0, ns = 0;
  int r;

  *stored = 0;
  if ((r = memscan_seal (ms, &changes, &msealed, &nm)) < 0)
    return r;
  if ((r = seal_state (s, state, len, &ssealed, &ns)) < 0)
    goto out;
  memset (vmstate, 0, sizeof *vmstate);
  strcpy (vmstate->name, "vmstate");
  vmstate->size = len;
  vmstate->chunk_size = cairn_store_chunk_size (s);
  if ((r = cairn_tree_builder_new (cairn_tree_levels (len,
                                                      vmstate->chunk_size),
                                   &tb)) < 0
      || (r = cairn_txn_begin (s, true, &txn)) < 0)
    goto out;
  for (size_t k = 0; k < nm && r == 0; k++)
    r = cairn_chunk_put (txn, &msealed[k]);
  for (size_t k = 0; k < ns && r == 0; k++) {
    r = cairn_chunk_put (txn, &ssealed[k]);
    if (r == 0 && !cairn_id_is_zero (&ssealed[k].id))
      r = cairn_tree_builder_add (tb, txn, k, &ssealed[k].id);
  }
  if (r == 0)
    r = cairn_tree_builder_finish (tb, txn, &vmstate->root);
  if (r == 0)
    r = cairn_tree_update (txn, base, changes, nm, memory);
  if (r == 0) {
    r = cairn_txn_commit (s, txn);
    txn = NULL;
  }
  if (r == 0) {
    strcpy (memory->name, "memory");
    memscan_forget (ms);
    for (size_t k = 0; k < nm; k++)
      *stored += msealed[k].known ? 0 : msealed[k].len;
    for (size_t k = 0; k < ns; k++)
      *stored += ssealed[k].known ? 0 : ssealed[k].len;
  }
 out:
  if (txn)
    cairn_txn_abort (s, txn);
  cairn_tree_builder_free (tb);
  sealed_free (msealed, nm);
  sealed_free (ssealed, ns);
  free (changes);
  return r;
}

/* Turns a QMP failure into a sentence: QEMU's own words if it refused,
 * "QEMU exited" if it is gone. */
static int
qmp_failed (struct qmp *qmp, const struct vm_record *r, int e,
            const char *what)
{
  if (!vm_process_alive (&r->qemu))
    return cairn_error (-ECONNRESET, "QEMU of VM %s exited during the "
                        "commit (%s); nothing was committed", r->name, what);
  if (e == -EREMOTEIO)
    return cairn_error (e, "%s: %s", what, qmp_error (qmp));
  return cairn_error (e, "%s: %s", what, strerror (-e));
}

static void
add_stats (struct vm_commit_result *res, const struct cairn_import_stats *st)
{
  res->stored_bytes += st->stored_bytes;
}

/* The commit itself, with the VM's lock held and QMP connected.  R is
 * updated on success (base, memory, ref_valid). */
static int
commit_locked (struct cairn_store *s, struct vm_record *r, struct qmp *qmp,
               const struct vm_commit_options *o,
               struct vm_commit_result *res)
{
  struct cairn_volume volumes[4], base;
  struct cairn_volume *memory = &volumes[0], *vmstate = &volumes[1];
  struct cairn_import_stats st;
  struct memscan *ms = NULL;
  struct saver sv = { .qmp = qmp };
  char status[32], *line = NULL;
  bool stopped = false;
  uint64_t changed, data;
  int e;

  if ((e = vm_qmp_status (qmp, status, sizeof status)) < 0)
    return qmp_failed (qmp, r, e, "query-status");
  if (strcmp (status, "postmigrate") == 0) {
    /* A commit died after saving the device state: QEMU cannot save
     * again until the guest ran. */
    if ((e = qmp_execute (qmp, "cont", NULL, NULL, VM_QMP_MS)) < 0)
      return qmp_failed (qmp, r, e, "cont");
    snprintf (status, sizeof status, "running");
  }
  if (strcmp (status, "inmigrate") == 0 || strcmp (status, "prelaunch") == 0)
    return cairn_error (-EBUSY, "VM %s is still starting (%s)", r->name,
                        status);
  res->was_running = strcmp (status, "running") == 0;

  /* Kernel and initrd: the same bytes every time, so a hash each. */
  if ((e = vm_store_file (s, r->kernel, "kernel", &volumes[2], &st)) < 0)
    return e;
  add_stats (res, &st);
  if ((e = vm_store_file (s, r->initrd, "initrd", &volumes[3], &st)) < 0)
    return e;
  add_stats (res, &st);

  bool incremental = r->ref_valid && r->have_memory
    && r->memory.size == r->machine.memory
    && r->memory.chunk_size == cairn_store_chunk_size (s);
  if ((e = memscan_open (s, r->ram, r->ref, r->machine.memory, incremental,
                         &ms)) < 0)
    return e;
  if (r->ref_valid) {
    r->ref_valid = false;
    if ((e = vm_record_put (s, r, false)) < 0)
      goto out;
  }

  /* While the guest runs. */
  base = r->memory;
  if ((e = memscan_pass (ms, &changed, &data)) < 0
      || (e = memscan_store (ms, incremental ? &base : NULL, &base, &st)) < 0)
    goto out;
  add_stats (res, &st);
  if (changed > SECOND_PASS_CHUNKS) {
    if ((e = memscan_pass (ms, &changed, &data)) < 0
        || (e = memscan_store (ms, &base, &base, &st)) < 0)
      goto out;
    add_stats (res, &st);
  }
  test_stall (r->dir, "prepass");

  /* The pause. */
  qmp_discard_events (qmp, NULL);
  double t_stop = vm_now_ms ();
  if (res->was_running) {
    if ((e = qmp_execute (qmp, "stop", NULL, NULL, VM_QMP_MS)) < 0) {
      e = qmp_failed (qmp, r, e, "stop");
      goto out;
    }
    stopped = true;
  }
  double t_saving = vm_now_ms ();
  res->stop_ms = t_saving - t_stop;
  test_stall (r->dir, "paused");
  pthread_t th;
  bool threaded = pthread_create (&th, NULL, save_thread, &sv) == 0;
  if (!threaded)
    save_thread (&sv);
  e = memscan_pass (ms, &changed, &data);
  res->scan_ms = vm_now_ms () - t_saving;
  if (threaded)
    pthread_join (th, NULL);
  res->vmstate_ms = sv.ms;
  if (sv.r < 0) {
    if (sv.r == -EIO && sv.stats.error[0])
      e = cairn_error (sv.r, "saving the device state: %s", sv.stats.error);
    else
      e = qmp_failed (qmp, r, sv.r, "saving the device state");
    goto out;
  }
  if (e < 0)
    goto out;
  double t_storing = vm_now_ms ();
  res->save_ms = t_storing - t_saving;
  res->paused_chunks = changed;
  res->changed_chunks = memscan_changed_total (ms);
  res->memory_chunks = data;
  res->vmstate_bytes = sv.buf.len;
  uint64_t stored;
  e = store_paused (s, ms, &base, sv.buf.data, sv.buf.len, memory, vmstate,
                    &stored);
  if (e == -ENOENT) {
    /* gc took a chunk the store had between its seal and its put: the
     * slow path seals again what it must. */
    cairn_clear_error ();
    e = memscan_store (ms, &base, memory, &st);
    stored = st.stored_bytes;
    if (e == 0)
      e = vm_store_buffer (s, sv.buf.data, sv.buf.len, "vmstate", vmstate,
                           &st);
    stored += st.stored_bytes;
  }
  if (e < 0)
    goto out;
  res->stored_bytes += stored;
  test_stall (r->dir, "saved");
  if (!vm_process_alive (&r->qemu)) {
    e = qmp_failed (qmp, r, -ECONNRESET, "after saving the device state");
    goto out;
  }

  if ((e = vm_machine_format (&r->machine, &line)) < 0)
    goto out;
  double t_commit = vm_now_ms ();
  res->store_ms = t_commit - t_storing;
  struct cairn_commit_options co = {
    .message = o && o->message ? o->message : "",
    .labels = o ? o->labels : NULL,
    .vm = line,
    .set_volumes = volumes,
    .nset_volumes = 4,
  };
  if ((e = cairn_commit_branch (s, r->branch, &co, &res->id)) < 0)
    goto out;
  res->commit_ms = vm_now_ms () - t_commit;

  double t_cont = vm_now_ms ();
  if (stopped) {
    e = qmp_execute (qmp, "cont", NULL, NULL, VM_QMP_MS);
    stopped = false;
    if (e < 0) {
      char hex[CAIRN_HEX_SIZE + 1];
      cairn_id_to_hex (&res->id, hex);
      e = cairn_error (e, "committed as %s, but the VM did not resume: %s",
                       hex, e == -EREMOTEIO ? qmp_error (qmp)
                       : strerror (-e));
    }
  }
  res->pause_ms = vm_now_ms () - t_stop;
  res->cont_ms = vm_now_ms () - t_cont;

  /* What the next commit builds on, even if cont failed: the commit
   * exists and ram.ref matches it. */
  r->base = res->id;
  r->memory = *memory;
  r->have_memory = true;
  r->ref_valid = true;
  int e2 = vm_record_put (s, r, false);
  if (e == 0)
    e = e2;

 out:
  if (stopped && vm_process_alive (&r->qemu))
    qmp_execute (qmp, "cont", NULL, NULL, VM_QMP_MS);
  memscan_close (ms);
  free (sv.buf.data);
  free (line);
  return e;
}

/* Opens VM NAME for a commit: its record, its lock, QMP. */
static int
commit_open (struct cairn_store *s, const char *name, struct vm_record *r,
             int *lock, struct qmp **qmp)
{
  char path[PATH_MAX];
  int e = vm_record_get (s, name, r);

  *lock = -1;
  *qmp = NULL;
  if (e < 0)
    return e;
  if (!vm_process_alive (&r->qemu)) {
    e = cairn_error (-ESRCH, "VM %s is not running (its QEMU exited); "
                     "cairn vm stop %s cleans it up", name, name);
    goto err;
  }
  if ((e = vm_lock (r->dir, name, lock)) < 0)
    goto err;
  if ((e = vm_socket_path (r->dir, "qmp.sock", path)) < 0)
    goto err;
  if ((e = qmp_connect (path, 10000, qmp)) < 0) {
    e = cairn_error (e, "cannot talk to VM %s's QEMU on %s: %s", name, path,
                     strerror (-e));
    goto err;
  }
  return 0;

 err:
  if (*lock >= 0)
    close (*lock);
  *lock = -1;
  vm_record_free (r);
  return e;
}

int
vm_commit_keep_lock (struct cairn_store *s, const char *name,
                     const struct vm_commit_options *o,
                     struct vm_commit_result *res, struct vm_record *r,
                     int *lock)
{
  struct cairn_pin *pin = NULL;
  struct qmp *qmp;
  double t0 = vm_now_ms ();
  int e;

  memset (res, 0, sizeof *res);
  if ((e = commit_open (s, name, r, lock, &qmp)) < 0)
    return e;
  if ((e = cairn_pin_begin (s, &pin)) == 0) {
    e = commit_locked (s, r, qmp, o, res);
    cairn_pin_end (pin);
  }
  qmp_close (qmp);
  res->total_ms = vm_now_ms () - t0;
  if (e < 0) {
    close (*lock);
    *lock = -1;
    vm_record_free (r);
  }
  return e;
}

int
vm_commit (struct cairn_store *s, const char *name,
           const struct vm_commit_options *o, struct vm_commit_result *res)
{
  struct vm_record r;
  int lock, e = vm_commit_keep_lock (s, name, o, res, &r, &lock);

  if (e == 0) {
    close (lock);
    vm_record_free (&r);
  }
  return e;
}
