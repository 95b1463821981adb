/* vmrun.c: vm run, vm stop, the console, and the default guest.
 *
 * vm run writes the VM's record before it starts anything and updates it
 * as each process starts, so that whatever happens to the command (a
 * kill, a crash), `vm stop` finds every process and file to clean up.  A
 * failure inside vm run cleans up itself.
 *
 * accel "auto" is tcg: a /dev/kvm that opens may still not run guests
 * (nested virtualization on the machines cairn is developed on hangs
 * them), and a VM that hangs at boot is worse than a slow one.  KVM is
 * used when asked for with --accel kvm.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

#define DEFAULT_MEMORY (256ULL << 20)

/* ------------------------------------------------------------------ */
/* The default guest                                                   */

int
vm_guest_dir (char *buf, size_t len)
{
  const char *env = getenv ("CAIRN_GUEST_DIR");
  const char *cache = getenv ("XDG_CACHE_HOME"), *home = getenv ("HOME");

  if (env && *env)
    snprintf (buf, len, "%s", env);
  else if (geteuid () == 0)
    snprintf (buf, len, "/var/cache/cairn/guest");
  else if (cache && *cache)
    snprintf (buf, len, "%s/cairn/guest", cache);
  else if (home && *home)
    snprintf (buf, len, "%s/.cache/cairn/guest", home);
  else
    return cairn_error (-ENOENT, "no $HOME: set $CAIRN_GUEST_DIR");
  return 0;
}

static bool
nonempty (const char *dir, const char *file)
{
  char path[PATH_MAX];
  struct stat st;
  return vm_path (dir, file, path) == 0 && stat (path, &st) == 0
    && st.st_size > 0;
}

static const char *
guest_builder (void)
{
  const char *env = getenv ("CAIRN_GUEST_BUILDER");
  if (env && *env)
    return env;
  if (access (GUEST_BUILDER_PATH, R_OK) == 0)
    return GUEST_BUILDER_PATH;
  return GUEST_BUILDER_SRC;
}

int
vm_guest_ensure (const char *dir)
{
  const char *builder = guest_builder ();
  int status;
  pid_t pid;

  if (nonempty (dir, "vmlinuz") && nonempty (dir, "initrd.img")
      && nonempty (dir, "cmdline") && nonempty (dir, "root.img"))
    return 0;
  if (access (builder, R_OK) < 0)
    return cairn_error (-ENOENT, "the guest builder %s is not there", builder);
  pid = fork ();
  if (pid < 0)
    return -errno;
  if (pid == 0) {
    dup2 (2, 1);                /* its progress is for people: stderr */
    execl ("/bin/bash", "bash", builder, dir, (char *) NULL);
    _exit (127);
  }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -errno;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return cairn_error (-EIO, "building the guest in %s failed (%s)", dir,
                        builder);
  return 0;
}

/* ------------------------------------------------------------------ */
/* vm run                                                              */

static int
resolve_accel (const char *accel, char *out, size_t len)
{
  if (!accel || strcmp (accel, "auto") == 0 || strcmp (accel, "tcg") == 0) {
    snprintf (out, len, "tcg");
    return 0;
  }
  if (strcmp (accel, "kvm") == 0) {
    if (access ("/dev/kvm", R_OK | W_OK) < 0)
      return cairn_error (-ENOTSUP, "--accel kvm: /dev/kvm: %m");
    snprintf (out, len, "kvm");
    return 0;
  }
  return cairn_error (-EINVAL, "--accel must be tcg, kvm or auto, not '%s'",
                      accel);
}

struct branch_user {
  const char *branch;
  char name[VM_NAME_MAX + 1];
};

static int
find_branch_user (const struct vm_record *r, void *arg)
{
  struct branch_user *u = arg;
  if (strcmp (r->branch, u->branch) == 0
      && (r->qemu.pid == 0 || vm_process_alive (&r->qemu))) {
    snprintf (u->name, sizeof u->name, "%s", r->name);
    return 1;
  }
  return 0;
}

/* -EBUSY if a live VM runs on BRANCH. */
static int
check_branch_free (struct cairn_store *s, const char *branch)
{
  struct branch_user u = { .branch = branch };
  int r = vm_record_list (s, find_branch_user, &u);

  if (r < 0)
    return r;
  if (u.name[0])
    return cairn_error (-EBUSY, "VM %s runs on branch '%s' already: one VM "
                        "per branch (vm branch %s NEW forks it)", u.name,
                        branch, u.name);
  return 0;
}

/* Fills the paths of a new record for VM NAME. */
int
vm_set_paths (struct cairn_store *s, struct vm_record *r)
{
  char dir[PATH_MAX], ramdir[PATH_MAX], path[PATH_MAX];
  int e;

  if ((e = vm_run_dir (s, r->name, dir)) < 0
      || (e = vm_ram_dir (s, r->name, ramdir)) < 0)
    return e;
  r->dir = strdup (dir);
  if ((e = vm_path (ramdir, "ram", path)) < 0)
    return e;
  r->ram = strdup (path);
  if ((e = vm_path (ramdir, "ram.ref", path)) < 0)
    return e;
  r->ref = strdup (path);
  if ((e = vm_path (dir, "kernel", path)) < 0)
    return e;
  r->kernel = strdup (path);
  if ((e = vm_path (dir, "initrd", path)) < 0)
    return e;
  r->initrd = strdup (path);
  r->nbd_socket = strdup ("");
  if (!r->dir || !r->ram || !r->ref || !r->kernel || !r->initrd
      || !r->nbd_socket)
    return -ENOMEM;
  return 0;
}

/* vm_set_paths, and makes the directories (a stale run directory
 * without a record is removed first). */
int
vm_prepare_dirs (struct cairn_store *s, struct vm_record *r)
{
  char dir[PATH_MAX], ramdir[PATH_MAX], probe[PATH_MAX];
  int e;

  if ((e = vm_run_dir (s, r->name, dir)) < 0
      || (e = vm_ram_dir (s, r->name, ramdir)) < 0
      || (e = vm_socket_path (dir, "console.sock", probe)) < 0)
    return e;
  cairn_remove_tree (dir);
  if (cairn_mkdir_p (dir) < 0)
    return cairn_error (-errno, "%s: %m", dir);
  if (cairn_mkdir_p (ramdir) < 0 || chmod (ramdir, 0700) < 0)
    return cairn_error (-errno, "%s: %m", ramdir);
  return vm_set_paths (s, r);
}

/* The RAM file: sparse, the size of the guest's memory. */
static int
create_ram (const struct vm_record *r)
{
  char link[PATH_MAX];
  int fd = open (r->ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (fd < 0)
    return cairn_error (-errno, "%s: %m", r->ram);
  if (ftruncate (fd, r->machine.memory) < 0) {
    int e = -errno;
    close (fd);
    return cairn_error (e, "%s: %s", r->ram, strerror (-e));
  }
  close (fd);
  unlink (r->ref);
  /* Only for people looking into run/vms: nothing reads it. */
  if (vm_path (r->dir, "ram", link) == 0)
    (void) !symlink (r->ram, link);
  return 0;
}

/* Starts nbdkit (if needed) and QEMU for R, recording each; connects QMP.
 * QEMU_MS gets the time from QEMU's start to its QMP greeting. */
int
vm_start_processes (struct cairn_store *s, struct vm_record *r,
                    enum vm_start how, struct qmp **qmp, double *qemu_ms)
{
  char path[PATH_MAX], log[PATH_MAX];
  int e;

  if (!r->nbdkit.pid && !*r->nbd_socket) {
    e = vm_nbd_start (s, r);
    if (e == 0)
      e = vm_record_put (s, r, false);
    if (e < 0)
      return e;
  }
  double t0 = vm_now_ms ();
  e = vm_qemu_start (r, how);
  if (e == 0)
    e = vm_record_put (s, r, false);
  if (e == 0)
    e = vm_socket_path (r->dir, "qmp.sock", path);
  if (e == 0)
    e = vm_path (r->dir, "qemu.log", log);
  if (e == 0)
    e = vm_qmp_connect_starting (path, &r->qemu, log, VM_QEMU_START_MS, qmp);
  if (qemu_ms)
    *qemu_ms = vm_now_ms () - t0;
  return e;
}

void
vm_abandon (struct cairn_store *s, struct vm_record *r)
{
  vm_processes_end (s, r, NULL);
  vm_files_remove (r);
  vm_record_delete (s, r->name);
}

static int
run (struct cairn_store *s, const char *name, const struct vm_run_options *o,
     struct vm_record *r)
{
  char guest[PATH_MAX], path[PATH_MAX], version[32];
  char kbuf[PATH_MAX], ibuf[PATH_MAX];
  char *cmdline = NULL;
  const char *kernel = o->kernel, *initrd = o->initrd;
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  struct qmp *qmp = NULL;
  bool have_disk = false;
  int e;

  memset (r, 0, sizeof *r);
  if (!vm_name_valid (name))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid VM name "
                        "(1-%d of A-Z a-z 0-9 . _ -)", name, VM_NAME_MAX);
  snprintf (r->name, sizeof r->name, "%s", name);
  /* Checked again when the record is made; here so that nothing is
   * touched that would be another VM's (its directories). */
  struct vm_record other;
  if (vm_record_get (s, name, &other) == 0) {
    vm_record_free (&other);
    return cairn_error (-EEXIST, "there is a VM '%s' already (cairn vm "
                        "stop %s ends it)", name, name);
  }
  cairn_clear_error ();
  if (!o->branch || !cairn_ref_name_valid (o->branch))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid branch name",
                        o->branch ? o->branch : "");
  snprintf (r->branch, sizeof r->branch, "%s", o->branch);

  /* The branch, with a disk. */
  if ((e = cairn_txn_begin (s, false, &txn)) < 0)
    return e;
  e = cairn_branch_info_get (txn, o->branch, &info);
  cairn_txn_abort (s, txn);
  if (e == CAIRN_ENOREF)
    return cairn_error (e, "there is no branch '%s' (cairn import %s "
                        "root.img makes one from a disk image)", o->branch,
                        o->branch);
  if (e < 0)
    return e;
  for (size_t i = 0; i < info.nvolumes; i++)
    have_disk |= strcmp (info.volumes[i].name, "disk") == 0;
  r->base = info.base;
  cairn_branch_info_free (&info);
  if (!have_disk)
    return cairn_error (CAIRN_ENOVOLUME, "branch '%s' has no volume 'disk'",
                        o->branch);

  /* The machine. */
  r->machine.memory = o->memory ? o->memory : DEFAULT_MEMORY;
  r->machine.cpus = o->cpus ? o->cpus : 1;
  if (r->machine.memory % 4096)
    return cairn_error (-EINVAL, "the memory size must be a multiple of "
                        "4 KiB");
  if ((e = resolve_accel (o->accel, r->machine.accel,
                          sizeof r->machine.accel)) < 0)
    return e;
  snprintf (r->machine.machine, sizeof r->machine.machine, "microvm");
  snprintf (r->machine.cpu, sizeof r->machine.cpu, "qemu64");
  if ((e = vm_qemu_version (s, version, sizeof version)) < 0)
    return e;
  snprintf (r->machine.qemu_version, sizeof r->machine.qemu_version, "%s",
            version);
  if (!kernel || !initrd || !o->append) {
    if ((e = vm_guest_dir (guest, sizeof guest)) < 0
        || (e = vm_guest_ensure (guest)) < 0)
      return e;
  }
  if (!kernel) {
    vm_path (guest, "vmlinuz", kbuf);
    kernel = kbuf;
  }
  if (!initrd) {
    vm_path (guest, "initrd.img", ibuf);
    initrd = ibuf;
  }
  if (o->append)
    r->machine.append = strdup (o->append);
  else {
    size_t len;
    vm_path (guest, "cmdline", path);
    if ((e = cairn_read_file (path, &cmdline, &len)) < 0)
      return cairn_error (e, "%s: %s", path, strerror (-e));
    cmdline[strcspn (cmdline, "\n")] = '\0';
    r->machine.append = cmdline;
  }
  if (!r->machine.append)
    return -ENOMEM;
  if (access (kernel, R_OK) < 0 || access (initrd, R_OK) < 0)
    return cairn_error (-errno, "%s: %m", access (kernel, R_OK) < 0
                        ? kernel : initrd);
  if ((e = check_branch_free (s, o->branch)) < 0)
    return e;

  /* From here on the record exists: failures undo everything. */
  r->created = cairn_time_now ();
  if ((e = vm_prepare_dirs (s, r)) < 0) {
    vm_files_remove (r);
    return e;
  }
  if ((e = vm_record_put (s, r, true)) < 0)
    return e;                   /* lost a race for the name */
  if ((e = vm_copy_sparse (kernel, r->kernel)) < 0
      || (e = vm_copy_sparse (initrd, r->initrd)) < 0
      || (e = create_ram (r)) < 0
      || (e = vm_start_processes (s, r, VM_BOOT, &qmp, NULL)) < 0) {
    vm_abandon (s, r);
    return e;
  }
  qmp_close (qmp);
  return 0;
}

int
vm_run (struct cairn_store *s, const char *name,
        const struct vm_run_options *o, struct vm_record *r)
{
  int e = run (s, name, o, r);

  if (e < 0)
    vm_record_free (r);
  return e;
}

/* ------------------------------------------------------------------ */
/* vm stop                                                             */

int
vm_stop (struct cairn_store *s, const char *name, struct vm_stop_result *res)
{
  struct vm_record r;
  int lock = -1, e = vm_record_get (s, name, &r);

  if (e < 0)
    return e;
  if (access (r.dir, F_OK) == 0 && (e = vm_lock (r.dir, name, &lock)) < 0) {
    vm_record_free (&r);
    return e;
  }
  vm_processes_end (s, &r, res);
  vm_files_remove (&r);
  e = vm_record_delete (s, name);
  if (lock >= 0)
    close (lock);
  vm_record_free (&r);
  return e;
}

/* ------------------------------------------------------------------ */
/* The console                                                         */

int
vm_console_send (struct cairn_store *s, const char *name, const char *line)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  char path[PATH_MAX], *text = NULL;
  struct vm_record r;
  int fd = -1, e = vm_record_get (s, name, &r);

  if (e < 0)
    return e;
  if (!vm_process_alive (&r.qemu)) {
    e = cairn_error (-ESRCH, "VM %s is not running", name);
    goto out;
  }
  if ((e = vm_socket_path (r.dir, "console.sock", path)) < 0)
    goto out;
  strcpy (sa.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
    e = cairn_error (-errno, "%s: %m", path);
    goto out;
  }
  if (asprintf (&text, "%s\n", line) < 0) {
    e = -ENOMEM;
    goto out;
  }
  size_t len = strlen (text);
  for (size_t off = 0; off < len;) {
    ssize_t n = send (fd, text + off, len - off, MSG_NOSIGNAL);
    if (n < 0) {
      e = cairn_error (-errno, "%s: %m", path);
      goto out;
    }
    off += n;
  }
  /* QEMU drops a console client as soon as it sees the hangup, with
   * what it had not read yet: wait until it read everything. */
  double deadline = vm_now_ms () + 10000;
  int unread;
  while (ioctl (fd, SIOCOUTQ, &unread) == 0 && unread > 0) {
    if (vm_now_ms () > deadline) {
      e = cairn_error (-ETIMEDOUT, "VM %s does not read its console", name);
      break;
    }
    nanosleep (&(struct timespec) { 0, 2 * 1000000L }, NULL);
  }
 out:
  if (fd >= 0)
    close (fd);
  free (text);
  vm_record_free (&r);
  return e;
}
