/* launch.c: starting and ending a VM's processes: nbdkit cairn for its
 * disk, and QEMU.
 *
 * QEMU's command line is README-flow.md's, built from the VM's record, so
 * that the QEMU a restore starts is the machine the commit recorded:
 * same machine type and options, -cpu, -smp, -m, memory backend id "mem",
 * and devices in the same order.  Paths (RAM file, sockets, kernel) may
 * differ between the two and do.
 *
 * The disk's server.  nbdkit cairn serves every branch of a store on one
 * socket, and holds a branch's writer lock while a client has it open.
 * If `cairn serve` already runs on STORE/run/nbd.sock, the VM uses it;
 * else cairn starts an nbdkit of the VM's own on RUN_DIR/nbd.sock, which
 * `vm stop` ends after QEMU (the server must outlive the QEMU using it:
 * killed under a running guest, it leaves the guest's file system
 * aborted).
 *
 * Programs: $CAIRN_QEMU (else configure's qemu-system-x86_64),
 * $CAIRN_NBDKIT (else configure's nbdkit), $CAIRN_PLUGIN (else the
 * installed plugin "cairn"); $CAIRN_NBDKIT_PRELOAD is put in nbdkit's
 * LD_PRELOAD (the sanitizer builds' tests need it).
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

const char *vm_qemu_program (void);

/* NAME as an absolute path, searched in $PATH if it has no '/'. */
static int
resolve_program (const char *name, char *buf)
{
  if (strchr (name, '/')) {
    snprintf (buf, PATH_MAX, "%s", name);
    return 0;
  }
  const char *path = getenv ("PATH");
  if (!path)
    path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn (path, ":");
    if (n > 0 && snprintf (buf, PATH_MAX, "%.*s/%s", (int) n, path, name)
        < PATH_MAX && access (buf, X_OK) == 0)
      return 0;
    path += n + (path[n] == ':');
  }
  return cairn_error (-ENOENT, "%s is not installed (not found in $PATH)",
                      name);
}

const char *
vm_qemu_program (void)
{
  const char *q = getenv ("CAIRN_QEMU");
  return q && *q ? q : QEMU_SYSTEM_PATH;
}

/* Copies S into BUF with every ',' doubled, as QEMU's option syntax
 * wants inside a value. */
static int
escape_commas (const char *s, char *buf, size_t len)
{
  size_t n = 0;
  for (; *s; s++) {
    if (n + 3 > len)
      return cairn_error (-ENAMETOOLONG, "a path is too long for QEMU");
    buf[n++] = *s;
    if (*s == ',')
      buf[n++] = ',';
  }
  buf[n] = '\0';
  return 0;
}

static bool
socket_answers (const char *path)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd, r;

  if (strlen (path) >= sizeof sa.sun_path)
    return false;
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  r = connect (fd, (struct sockaddr *) &sa, sizeof sa);
  close (fd);
  return r == 0;
}

/* The socket and log of the nbdkit cairn started in DIR. */
static int
nbd_files (const char *dir, char *sock, char *log)
{
  int e = vm_socket_path (dir, "nbd.sock", sock);
  return e < 0 ? e : vm_path (dir, "nbdkit.log", log);
}

/* STORE/run/nbd.sock into BUF if a server answers there. */
static bool
shared_server (const char *store, char *buf)
{
  return vm_path (store, "run/nbd.sock", buf) == 0 && socket_answers (buf);
}

int
vm_nbd_spawn (struct cairn_store *s, const char *dir, struct vm_process *p)
{
  char sock[PATH_MAX], log[PATH_MAX], nbdkit[PATH_MAX], store[PATH_MAX];
  char *store_arg = NULL, *preload_env = NULL;
  const char *plugin, *preload;
  int e;

  if (!realpath (cairn_store_path (s), store))
    return cairn_error (-errno, "%s: %m", cairn_store_path (s));
  if ((e = nbd_files (dir, sock, log)) < 0)
    return e;
  const char *prog = getenv ("CAIRN_NBDKIT");
  if ((e = resolve_program (prog && *prog ? prog : NBDKIT_PATH, nbdkit)) < 0)
    return e;
  plugin = getenv ("CAIRN_PLUGIN");
  if (!plugin || !*plugin)
    plugin = "cairn";
  preload = getenv ("CAIRN_NBDKIT_PRELOAD");
  if (asprintf (&store_arg, "store=%s", store) < 0
      || (preload && *preload
          && asprintf (&preload_env, "LD_PRELOAD=%s", preload) < 0)) {
    free (store_arg);
    return -ENOMEM;
  }
  unlink (sock);
  const char *argv[] = { nbdkit, "--foreground", "--unix", sock, plugin,
                         store_arg, NULL };
  const char *env[] = { preload_env, NULL };
  e = vm_spawn (argv, env, log, p);
  free (store_arg);
  free (preload_env);
  return e;
}

int
vm_nbd_wait (const char *dir, struct vm_process *p, int timeout_ms)
{
  char sock[PATH_MAX], log[PATH_MAX], last[512];
  int e;

  if ((e = nbd_files (dir, sock, log)) < 0)
    return e;
  /* nbdkit starts in about 3 ms here: look often. */
  double deadline = vm_now_ms () + timeout_ms;
  while (!socket_answers (sock)) {
    if (!vm_process_alive (p)) {
      vm_log_last_line (log, last, sizeof last);
      memset (p, 0, sizeof *p);
      return cairn_error (-EIO, "nbdkit cairn did not start: %s",
                          *last ? last : "(nothing in nbdkit.log)");
    }
    if (vm_now_ms () > deadline) {
      vm_process_end (p, SIGKILL, VM_STOP_MS);
      memset (p, 0, sizeof *p);
      return cairn_error (-ETIMEDOUT, "nbdkit cairn did not open %s", sock);
    }
    nanosleep (&(struct timespec) { 0, 250 * 1000L }, NULL);
  }
  return 0;
}

int
vm_nbd_start (struct cairn_store *s, struct vm_record *r)
{
  char shared[PATH_MAX], sock[PATH_MAX], log[PATH_MAX], store[PATH_MAX];
  int e, holder;

  if (!realpath (cairn_store_path (s), store))
    return cairn_error (-errno, "%s: %m", cairn_store_path (s));
  if (shared_server (store, shared)) {
    free (r->nbd_socket);
    r->nbd_socket = strdup (shared);
    memset (&r->nbdkit, 0, sizeof r->nbdkit);
    return r->nbd_socket ? 0 : -ENOMEM;
  }
  if (cairn_branch_is_held (s, r->branch, &holder))
    return cairn_error (CAIRN_EHELD, "branch '%s' is held by process %d, "
                        "which does not serve it on %s: another VM or "
                        "writer has it", r->branch, holder, shared);
  if ((e = nbd_files (r->dir, sock, log)) < 0
      || (e = vm_nbd_spawn (s, r->dir, &r->nbdkit)) < 0
      || (e = vm_nbd_wait (r->dir, &r->nbdkit, VM_QEMU_START_MS)) < 0)
    return e;
  free (r->nbd_socket);
  r->nbd_socket = strdup (sock);
  return r->nbd_socket ? 0 : -ENOMEM;
}

bool
vm_nbd_shared (struct cairn_store *s)
{
  char store[PATH_MAX], shared[PATH_MAX];
  return realpath (cairn_store_path (s), store) && shared_server (store, shared);
}

int
vm_qemu_start (struct vm_record *r, enum vm_start how)
{
  const struct vm_machine *m = &r->machine;
  char qemu[PATH_MAX], qmp[PATH_MAX], con[PATH_MAX], clog[PATH_MAX];
  char log[PATH_MAX], esc[4][2 * PATH_MAX];
  char machine[128], mem[32], smp[16], memdev[3 * PATH_MAX];
  char blockdev[3 * PATH_MAX + 256], chardev[5 * PATH_MAX], qmparg[3 * PATH_MAX];
  int e;

  if ((e = resolve_program (vm_qemu_program (), qemu)) < 0
      || (e = vm_socket_path (r->dir, "qmp.sock", qmp)) < 0
      || (e = vm_socket_path (r->dir, "console.sock", con)) < 0
      || (e = vm_path (r->dir, "console.log", clog)) < 0
      || (e = vm_path (r->dir, "qemu.log", log)) < 0
      || (e = escape_commas (r->ram, esc[0], sizeof esc[0])) < 0
      || (e = escape_commas (r->nbd_socket, esc[1], sizeof esc[1])) < 0
      || (e = escape_commas (con, esc[2], sizeof esc[2])) < 0
      || (e = escape_commas (clog, esc[3], sizeof esc[3])) < 0)
    return e;
  snprintf (machine, sizeof machine, "%s,accel=%s,memory-backend=mem",
            m->machine, m->accel);
  snprintf (mem, sizeof mem, "%llub", (unsigned long long) m->memory);
  snprintf (smp, sizeof smp, "%u", m->cpus);
  snprintf (memdev, sizeof memdev,
            "memory-backend-file,id=mem,size=%llu,mem-path=%s,share=on",
            (unsigned long long) m->memory, esc[0]);
  if (how == VM_SPARE)
    /* A placeholder that vm_spare_attach_disk replaces. */
    snprintf (blockdev, sizeof blockdev, "driver=raw,node-name=disk0,"
              "file.driver=null-co,file.node-name=disk0-null");
  else
    snprintf (blockdev, sizeof blockdev,
              "driver=nbd,server.type=unix,server.path=%s,export=%s,"
              "node-name=disk0", esc[1], r->branch);
  snprintf (chardev, sizeof chardev,
            "socket,id=con,path=%s,server=on,wait=off,logfile=%s,"
            "logappend=on", esc[2], esc[3]);
  if (escape_commas (qmp, esc[0], sizeof esc[0]) < 0)
    return -ENAMETOOLONG;
  snprintf (qmparg, sizeof qmparg, "unix:%s,server=on,wait=off", esc[0]);

  const char *argv[48] = {
    qemu, "-name", r->name,
    "-M", machine, "-cpu", m->cpu, "-smp", smp, "-m", mem,
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-object", memdev,
    "-blockdev", blockdev, "-device", "virtio-blk-device,drive=disk0",
    "-chardev", chardev, "-serial", "chardev:con",
    "-qmp", qmparg,
  };
  size_t n = 0;

  while (argv[n])
    n++;
  if (how != VM_BOOT) {
    argv[n++] = "-incoming";
    argv[n++] = "defer";
    argv[n++] = "-S";
  }
  if (how == VM_BOOT || how == VM_INCOMING) {
    argv[n++] = "-kernel";
    argv[n++] = r->kernel;
    argv[n++] = "-initrd";
    argv[n++] = r->initrd;
    argv[n++] = "-append";
    argv[n++] = m->append;
  }
  unlink (qmp);
  unlink (con);
  return vm_spawn (argv, NULL, log, &r->qemu);
}

int
vm_qmp_connect_starting (const char *path, const struct vm_process *p,
                         const char *log, int timeout_ms, struct qmp **qmp)
{
  double deadline = vm_now_ms () + timeout_ms;
  int e;

  for (;;) {
    e = qmp_connect (path, 50, qmp);
    if (e == 0)
      return 0;
    if (!vm_process_alive (p)) {
      char last[512];
      vm_log_last_line (log, last, sizeof last);
      return cairn_error (-ECONNRESET, "QEMU exited: %s",
                          *last ? last : "(nothing in qemu.log)");
    }
    /* A garbled greeting or reply while QEMU starts (seen once, under
     * load, in the test suite) is retried like a slow one; a QEMU that
     * keeps it up runs into the deadline below. */
    if (e != -ETIMEDOUT && e != -ECONNRESET && e != -EPROTO)
      return cairn_error (e, "QMP %s: %s", path, strerror (-e));
    if (vm_now_ms () > deadline)
      return cairn_error (-ETIMEDOUT, "QEMU did not answer on %s", path);
  }
}

int
vm_qmp_status (struct qmp *qmp, char *buf, size_t len)
{
  struct json_object *reply, *status;
  int r = qmp_execute (qmp, "query-status", NULL, &reply, VM_QMP_MS);

  if (r < 0)
    return r;
  if (json_object_object_get_ex (reply, "status", &status))
    snprintf (buf, len, "%s", json_object_get_string (status));
  else
    snprintf (buf, len, "unknown");
  json_object_put (reply);
  return 0;
}

void
vm_processes_end (struct cairn_store *s, struct vm_record *r,
                  struct vm_stop_result *res)
{
  char qmp_path[PATH_MAX];
  struct qmp *qmp;

  if (res)
    memset (res, 0, sizeof *res);
  if (vm_process_alive (&r->qemu)) {
    if (res)
      res->was_alive = true;
    /* "quit" lets QEMU close its NBD connection properly; it may exit
     * before it answers. */
    if (vm_socket_path (r->dir, "qmp.sock", qmp_path) == 0
        && qmp_connect (qmp_path, 1000, &qmp) == 0) {
      qmp_execute (qmp, "quit", NULL, NULL, 2000);
      qmp_close (qmp);
    }
    if (vm_process_end (&r->qemu, 0, VM_STOP_MS) < 0
        && vm_process_end (&r->qemu, SIGTERM, 2000) < 0) {
      vm_process_end (&r->qemu, SIGKILL, VM_STOP_MS);
      if (res)
        res->forced = true;
    }
  }
  /* nbdkit only after QEMU: the server must outlive its client.  And
   * only once it let go of the branch (it flushes and closes it when its
   * last client leaves): ended in the middle of that, it could be
   * closing the store under its own write transaction, which leaves the
   * store's write lock held by no one for ever. */
  if (r->nbdkit.pid && vm_process_alive (&r->nbdkit)) {
    double deadline = vm_now_ms () + VM_STOP_MS;
    int holder;
    while (cairn_branch_is_held (s, r->branch, &holder)
           && vm_now_ms () < deadline)
      nanosleep (&(struct timespec) { 0, 5 * 1000000L }, NULL);
  }
  if (r->nbdkit.pid && vm_process_alive (&r->nbdkit)
      && vm_process_end (&r->nbdkit, SIGTERM, VM_STOP_MS) < 0) {
    vm_process_end (&r->nbdkit, SIGKILL, VM_STOP_MS);
    if (res)
      res->forced = true;
  }
}

void
vm_files_remove (struct vm_record *r)
{
  char path[PATH_MAX];

  if (r->ram && *r->ram) {
    unlink (r->ram);
    if (r->ref)
      unlink (r->ref);
    snprintf (path, sizeof path, "%s", r->ram);
    char *slash = strrchr (path, '/');
    if (slash) {
      *slash = '\0';
      rmdir (path);             /* RAMDIR/cairn-S/NAME */
      slash = strrchr (path, '/');
      if (slash) {
        *slash = '\0';
        rmdir (path);           /* RAMDIR/cairn-S, if no VM is left */
      }
    }
  }
  if (r->dir && *r->dir)
    cairn_remove_tree (r->dir);
}
