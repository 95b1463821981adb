/* vmspare.c: spare QEMUs, started ahead of restores.
 *
 * Of a lazy restore's time to a running guest, most is QEMU starting:
 * loading its libraries and building the machine, 30 to 60 ms here; then
 * nbdkit starting, 4 to 6 ms.  A spare is a QEMU started ahead for one
 * machine shape (QEMU version, machine type, accelerator, CPU model,
 * vCPUs, memory), waiting with "-incoming defer -S", an empty RAM file,
 * no kernel, and a placeholder disk: the raw node "disk0" that the
 * virtio-blk device uses sits on a null-co node.  Beside it runs an
 * nbdkit cairn for the store, which serves no branch yet: a client names
 * the branch when it connects.  (Where STORE/run/nbd.sock answers when
 * the spare starts, VMs use that server, and the spare has no nbdkit.)
 * vm restore of a commit of that shape takes one:
 *
 *   1. renames the spare's run directory and RAM directory to the VM's
 *      (QEMU's and nbdkit's sockets, logs and RAM file move with them:
 *      they hold them open or bound), so its record and files are those
 *      of any VM, its nbdkit that VM's own;
 *   2. once the branch exists, points disk0 at it: blockdev-add of the
 *      NBD node, blockdev-reopen of disk0 with it as its file (the
 *      null-co node, made with disk0, goes with the reopen);
 *   3. migrates into it as into a QEMU it started (postcopy.h);
 *   4. starts another spare of the shape, so the pool keeps its size.
 *
 * Spares exist only when asked for (vm spare start), and vm spare stop
 * ends them; a spare whose QEMU died is cleaned up by the next claim or
 * listing.  Two restores cannot take the same spare: taking it is the
 * rename of its run directory, which only one of them can do.
 *
 * Files:
 *   STORE/run/spares/ID/        the spare's run directory: qmp.sock,
 *                               console.sock, console.log, qemu.log,
 *                               nbd.sock, nbdkit.log, "qemu" and
 *                               "nbdkit" (PID START), "shape" (written
 *                               last: a spare without it is not ready)
 *   RAMDIR/cairn-S/.spare-ID/   its RAM directory (vm_ram_dir; a VM name
 *                               cannot start with '.')
 */
#define _GNU_SOURCE
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu-glue/vm-internal.h"

#define SPARE_ID_LEN 16
/* How long a restore waits for a spare that is still starting (it would
 * take longer to start its own). */
#define SPARE_READY_MS 2000

/* The shape line of machine M: what a spare must have in common with
 * the commit it takes. */
static void
shape_of (const struct vm_machine *m, char *buf, size_t len)
{
  snprintf (buf, len, "qemu=%s machine=%s accel=%s cpu=%s cpus=%u "
            "memory=%" PRIu64 "\n", m->qemu_version, m->machine, m->accel,
            m->cpu, m->cpus, m->memory);
}

static int
spares_dir (struct cairn_store *s, char *buf)
{
  char store[PATH_MAX];

  if (!realpath (cairn_store_path (s), store))
    return cairn_error (-errno, "%s: %m", cairn_store_path (s));
  if (snprintf (buf, PATH_MAX, "%s/run/spares", store) >= PATH_MAX)
    return cairn_error (-ENAMETOOLONG, "the store's path is too long");
  return 0;
}

/* The run and RAM directories of spare ID. */
static int
spare_dirs (struct cairn_store *s, const char *id, char *run, char *ram)
{
  char dir[PATH_MAX], name[SPARE_ID_LEN + 8];
  int e;

  snprintf (name, sizeof name, ".spare-%s", id);
  if ((e = spares_dir (s, dir)) < 0 || (e = vm_path (dir, id, run)) < 0)
    return e;
  return vm_ram_dir (s, name, ram);
}

/* DIR/FILE's text (a malloc'd string), or NULL. */
static char *
read_text (const char *dir, const char *file)
{
  char path[PATH_MAX], *text;
  size_t len;

  if (vm_path (dir, file, path) < 0 || cairn_read_file (path, &text, &len) < 0)
    return NULL;
  return text;
}

static int
write_text (const char *dir, const char *file, const char *text)
{
  char path[PATH_MAX];
  int e = vm_path (dir, file, path);

  if (e == 0 && (e = cairn_write_file_atomic (path, text, strlen (text))) < 0)
    e = cairn_error (e, "%s: %s", path, strerror (-e));
  return e;
}

/* The spare's processes, each with a file of its name in the run
 * directory. */
static const char *const spare_processes[] = { "qemu", "nbdkit" };

/* Writes process P to RUN/FILE ("PID START"), which spare_process reads. */
static int
write_process (const char *run, const char *file, const struct vm_process *p)
{
  char text[64];

  snprintf (text, sizeof text, "%lld %llu\n", (long long) p->pid,
            (unsigned long long) p->start);
  return write_text (run, file, text);
}

/* A process of the spare in RUN, from its FILE ("qemu" or "nbdkit"). */
static bool
spare_process (const char *run, const char *file, struct vm_process *p)
{
  char *text = read_text (run, file);
  long long pid;
  unsigned long long start;
  bool ok = text && sscanf (text, "%lld %llu", &pid, &start) == 2 && pid > 0;

  memset (p, 0, sizeof *p);
  free (text);
  if (!ok)
    return false;
  p->pid = pid;
  p->start = start;
  return true;
}

/* Ends spare ID's QEMU and nbdkit and removes its directories. */
static void
spare_remove (struct cairn_store *s, const char *id)
{
  char run[PATH_MAX], ram[PATH_MAX];
  struct vm_process p;

  if (spare_dirs (s, id, run, ram) < 0)
    return;
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (spare_processes); i++)
    if (spare_process (run, spare_processes[i], &p)
        && vm_process_end (&p, SIGTERM, VM_STOP_MS) < 0)
      vm_process_end (&p, SIGKILL, VM_STOP_MS);
  cairn_remove_tree (run);
  cairn_remove_tree (ram);
}

int
vm_spare_spawn (struct cairn_store *s, const struct vm_machine *m)
{
  char run[PATH_MAX], ramdir[PATH_MAX], ram[PATH_MAX];
  char id[SPARE_ID_LEN + 1], text[PATH_MAX];
  uint8_t rnd[SPARE_ID_LEN / 2];
  struct vm_record t;
  int fd, e;

  if (getrandom (rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
    return cairn_error (-EIO, "getrandom: %m");
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf (id + 2 * i, 3, "%02x", rnd[i]);
  if ((e = spare_dirs (s, id, run, ramdir)) < 0
      || (e = vm_path (ramdir, "ram", ram)) < 0)
    return e;
  if (cairn_mkdir_p (run) < 0 || cairn_mkdir_p (ramdir) < 0
      || chmod (ramdir, 0700) < 0) {
    e = cairn_error (-errno, "%s: %m", run);
    goto fail;
  }
  fd = open (ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate (fd, m->memory) < 0) {
    e = cairn_error (-errno, "%s: %m", ram);
    if (fd >= 0)
      close (fd);
    goto fail;
  }
  close (fd);

  memset (&t, 0, sizeof t);
  snprintf (t.name, sizeof t.name, "spare-%s", id);
  t.dir = run;
  t.ram = ram;
  t.nbd_socket = (char *) "";
  t.machine = *m;
  /* nbdkit first: it starts while QEMU does.  Its pid is written before
   * QEMU starts, so that a failure from here on ends it too. */
  if (!vm_nbd_shared (s)) {
    if ((e = vm_nbd_spawn (s, run, &t.nbdkit)) < 0)
      goto fail;
    if ((e = write_process (run, "nbdkit", &t.nbdkit)) < 0)
      goto fail_kill;
  }
  if ((e = vm_qemu_start (&t, VM_SPARE)) < 0
      || (e = write_process (run, "qemu", &t.qemu)) < 0)
    goto fail_kill;
  shape_of (m, text, sizeof text);
  if ((e = write_text (run, "shape", text)) < 0)
    goto fail_kill;
  return 0;

 fail_kill:
  vm_process_end (&t.qemu, SIGKILL, VM_STOP_MS);      /* pid 0: nothing */
  vm_process_end (&t.nbdkit, SIGKILL, VM_STOP_MS);
 fail:
  cairn_remove_tree (run);
  cairn_remove_tree (ramdir);
  return e;
}

/* Calls FN for every spare directory's id (dead ones included). */
static int
each_spare (struct cairn_store *s, int (*fn) (const char *id, void *arg),
            void *arg)
{
  char dir[PATH_MAX];
  struct dirent *d;
  DIR *dp;
  int e;

  if ((e = spares_dir (s, dir)) < 0)
    return e;
  if (!(dp = opendir (dir)))
    return errno == ENOENT ? 0 : cairn_error (-errno, "%s: %m", dir);
  e = 0;
  while (e == 0 && (d = readdir (dp)))
    if (strlen (d->d_name) == SPARE_ID_LEN
        && strspn (d->d_name, "0123456789abcdef") == SPARE_ID_LEN)
      e = fn (d->d_name, arg);
  closedir (dp);
  return e;
}

struct claim {
  struct cairn_store *s;
  struct vm_record *r;
  char shape[256];
  struct qmp *qmp;              /* set once claimed */
};

static int
try_claim (const char *id, void *arg)
{
  struct claim *c = arg;
  char run[PATH_MAX], ramdir[PATH_MAX], *shape, sock[PATH_MAX];
  char vmrun[PATH_MAX], vmram[PATH_MAX];
  struct vm_process p, np = { 0 };
  struct qmp *qmp;

  if (spare_dirs (c->s, id, run, ramdir) < 0
      || !(shape = read_text (run, "shape")))
    return 0;                   /* not ready (or gone) */
  bool same = strcmp (shape, c->shape) == 0;
  free (shape);
  bool nbdkit = spare_process (run, "nbdkit", &np);
  if (!spare_process (run, "qemu", &p) || !vm_process_alive (&p)
      || (nbdkit && !vm_process_alive (&np))) {
    spare_remove (c->s, id);
    return 0;
  }
  if (!same)
    return 0;
  if (vm_run_dir (c->s, c->r->name, vmrun) < 0
      || vm_ram_dir (c->s, c->r->name, vmram) < 0
      || vm_socket_path (run, "qmp.sock", sock) < 0)
    return 0;
  /* Ready once QMP greets: QEMU has opened every path it was given (its
   * console log, RAM file), so they may move.  The connection stays: it
   * is the restore's.  QMP takes one client; another restore trying this
   * spare now waits, then finds it gone. */
  if (qmp_connect (sock, SPARE_READY_MS, &qmp) < 0) {
    cairn_clear_error ();
    return 0;
  }
  /* Its nbdkit as well, so that its socket is there to move. */
  if (nbdkit && vm_nbd_wait (run, &np, SPARE_READY_MS) < 0) {
    cairn_clear_error ();
    qmp_close (qmp);
    spare_remove (c->s, id);
    return 0;
  }
  cairn_remove_tree (vmrun);
  if (rename (run, vmrun) < 0) {
    qmp_close (qmp);
    return 0;                   /* another restore took it */
  }
  cairn_remove_tree (vmram);
  if (rename (ramdir, vmram) < 0) {
    int e = cairn_error (-errno, "%s: %m", vmram);
    qmp_close (qmp);
    vm_process_end (&p, SIGKILL, VM_STOP_MS);
    cairn_remove_tree (vmrun);
    cairn_remove_tree (ramdir);
    return e;
  }
  c->r->qemu = p;
  c->r->nbdkit = np;            /* pid 0 if it brought none */
  c->qmp = qmp;
  return 1;
}

int
vm_spare_claim (struct cairn_store *s, struct vm_record *r, struct qmp **qmp)
{
  struct claim c = { s, r, "", NULL };
  char sock[PATH_MAX];
  int e;

  shape_of (&r->machine, c.shape, sizeof c.shape);
  e = each_spare (s, try_claim, &c);
  if (e < 0)
    return e;
  if (!c.qmp)
    return -ENOENT;
  bool nbdkit = r->nbdkit.pid != 0;
  if ((e = vm_set_paths (s, r)) < 0
      || (nbdkit && (e = vm_socket_path (r->dir, "nbd.sock", sock)) < 0)) {
    qmp_close (c.qmp);
    return e;
  }
  if (nbdkit) {
    free (r->nbd_socket);
    if (!(r->nbd_socket = strdup (sock))) {
      qmp_close (c.qmp);
      return -ENOMEM;
    }
  }
  *qmp = c.qmp;
  return 0;
}

int
vm_spare_attach_disk (struct qmp *qmp, const struct vm_record *r)
{
  struct json_object *add = json_object_new_object ();
  struct json_object *server = json_object_new_object ();
  int e;

  json_object_object_add (add, "driver", json_object_new_string ("nbd"));
  json_object_object_add (add, "node-name",
                          json_object_new_string ("disk0-nbd"));
  json_object_object_add (server, "type", json_object_new_string ("unix"));
  json_object_object_add (server, "path",
                          json_object_new_string (r->nbd_socket));
  json_object_object_add (add, "server", server);
  json_object_object_add (add, "export", json_object_new_string (r->branch));
  e = qmp_execute (qmp, "blockdev-add", json_object_to_json_string (add),
                   NULL, VM_QMP_MS);
  json_object_put (add);
  if (e == 0)
    e = qmp_execute (qmp, "blockdev-reopen",
                     "{\"options\": [{\"driver\": \"raw\", \"node-name\": "
                     "\"disk0\", \"file\": \"disk0-nbd\"}]}", NULL, VM_QMP_MS);
  if (e == -EREMOTEIO)
    return cairn_error (e, "the spare QEMU did not take the disk: %s",
                        qmp_error (qmp));
  return e < 0 ? cairn_error (e, "the spare QEMU: %s", strerror (-e)) : 0;
}

/* ------------------------------------------------------------------ */
/* vm spare start / ls / stop                                          */

int
vm_spare_start (struct cairn_store *s, const char *spec, unsigned count)
{
  struct vm_machine m;
  char version[32];
  int e = vm_commit_machine (s, spec, &m);

  if (e < 0)
    return e;
  if ((e = vm_qemu_version (s, version, sizeof version)) == 0
      && (e = vm_machine_restorable (&m, version)) == 0) {
    snprintf (m.qemu_version, sizeof m.qemu_version, "%s", version);
    for (unsigned i = 0; i < count && e == 0; i++)
      e = vm_spare_spawn (s, &m);
  }
  vm_machine_free (&m);
  return e;
}

struct listing {
  struct cairn_store *s;
  int (*fn) (const struct vm_spare_info *, void *);
  void *arg;
};

static int
list_one (const char *id, void *arg)
{
  struct listing *l = arg;
  char run[PATH_MAX], ram[PATH_MAX];
  struct vm_spare_info info;
  struct vm_process p;
  char *shape;

  if (spare_dirs (l->s, id, run, ram) < 0
      || !(shape = read_text (run, "shape")))
    return 0;                   /* not ready (or gone) */
  memset (&info, 0, sizeof info);
  snprintf (info.id, sizeof info.id, "%s", id);
  snprintf (info.shape, sizeof info.shape, "%.*s",
            (int) strcspn (shape, "\n"), shape);
  free (shape);
  if (spare_process (run, "qemu", &p)) {
    info.pid = p.pid;
    info.alive = vm_process_alive (&p);
  }
  if (spare_process (run, "nbdkit", &p)) {
    info.nbdkit_pid = p.pid;
    info.alive = info.alive && vm_process_alive (&p);
  }
  return l->fn (&info, l->arg);
}

int
vm_spare_list (struct cairn_store *s,
               int (*fn) (const struct vm_spare_info *, void *), void *arg)
{
  struct listing l = { s, fn, arg };
  return each_spare (s, list_one, &l);
}

struct stopping {
  struct cairn_store *s;
  unsigned stopped;
};

static int
stop_one (const char *id, void *arg)
{
  struct stopping *st = arg;
  spare_remove (st->s, id);
  st->stopped++;
  return 0;
}

int
vm_spare_stop (struct cairn_store *s, unsigned *stopped)
{
  struct stopping st = { s, 0 };
  int e = each_spare (s, stop_one, &st);

  *stopped = st.stopped;
  return e;
}
