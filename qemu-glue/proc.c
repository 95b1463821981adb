/* proc.c: the processes cairn starts for a VM (QEMU, nbdkit).
 *
 * They must outlive the cairn command that started them (vm run returns
 * while the VM runs on), so each is started in its own session with its
 * output in a log file, and holds no descriptor of cairn's: a test
 * harness waiting for cairn's stdout to close, or an LMDB environment,
 * must not be kept open by a VM.  Later commands know them by pid *and*
 * start time (/proc/PID/stat field 22), so that a pid the kernel gave to
 * another process after a crash is never signalled.
 *
 * Only async-signal-safe calls run between fork and exec: the command may
 * have threads.  Each program is started through two forks, so that its
 * parent is init, not cairn (see vm_spawn).
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

extern char **environ;

double
vm_now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Field 22 of /proc/PID/stat, or 0 if the process does not exist. */
static uint64_t
start_time (pid_t pid)
{
  char path[64], buf[1024];
  unsigned long long start = 0;
  ssize_t n;
  int fd;

  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* The command name may hold spaces and parentheses: fields restart
   * after the last ')'.  Then state is field 3, starttime field 22. */
  char *p = strrchr (buf, ')');
  if (!p)
    return 0;
  p++;
  for (int field = 3; field <= 22 && p; field++) {
    p = strchr (p, ' ');
    if (p)
      p++;
    if (field == 3 && p && *p == 'Z')
      return 0;                 /* a zombie is gone for our purposes */
  }
  if (!p || sscanf (p, "%llu", &start) != 1)
    return 0;
  return start;
}

int
vm_process_fill (struct vm_process *p)
{
  p->start = start_time (p->pid);
  return p->start ? 0 : -ESRCH;
}

bool
vm_process_alive (const struct vm_process *p)
{
  if (p->pid <= 0)
    return false;
  /* Reap it if it is our child, so a zombie is not taken for alive. */
  waitpid (p->pid, NULL, WNOHANG);
  return start_time (p->pid) == p->start && p->start != 0;
}

bool
vm_process_gone (const struct vm_process *p)
{
  return !vm_process_alive (p);
}

int
vm_process_end (const struct vm_process *p, int sig, int timeout_ms)
{
  double deadline = vm_now_ms () + timeout_ms;

  if (!vm_process_alive (p))
    return 0;
  kill (p->pid, sig);
  while (vm_process_alive (p)) {
    if (vm_now_ms () > deadline)
      return -ETIMEDOUT;
    nanosleep (&(struct timespec) { 0, 5 * 1000000L }, NULL);
  }
  return 0;
}

int
vm_spawn (const char *const *argv, const char *const *env_add,
          const char *log, struct vm_process *p)
{
  size_t nenv = 0, nadd = 0;
  char **env;
  int logfd, nullfd, err[2] = { -1, -1 }, pidpipe[2] = { -1, -1 };
  pid_t pid, grandchild = 0;

  while (environ[nenv])
    nenv++;
  while (env_add && env_add[nadd])
    nadd++;
  env = calloc (nenv + nadd + 1, sizeof *env);
  if (!env)
    return -ENOMEM;
  /* An added variable replaces the inherited one of the same name. */
  size_t n = 0;
  for (size_t i = 0; i < nenv; i++) {
    bool replaced = false;
    for (size_t k = 0; k < nadd; k++) {
      size_t klen = strcspn (env_add[k], "=");
      if (strncmp (environ[i], env_add[k], klen + 1) == 0)
        replaced = true;
    }
    if (!replaced)
      env[n++] = environ[i];
  }
  for (size_t k = 0; k < nadd; k++)
    env[n++] = (char *) env_add[k];
  env[n] = NULL;

  logfd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  nullfd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (logfd < 0 || nullfd < 0 || pipe2 (err, O_CLOEXEC) < 0
      || pipe2 (pidpipe, O_CLOEXEC) < 0) {
    int e = -errno;
    if (logfd >= 0)
      close (logfd);
    if (nullfd >= 0)
      close (nullfd);
    if (err[0] >= 0) {
      close (err[0]);
      close (err[1]);
    }
    free (env);
    return cairn_error (e, "%s: %s", log, strerror (-e));
  }

  /* Two forks: the program's parent is then init (or a subreaper), not
   * this command.  That matters beyond zombies: nbdkit sets
   * PR_SET_PDEATHSIG on itself, and would shut down when cairn exits. */
  pid = fork ();
  if (pid == 0) {
    pid_t me = getpid ();
    int e;
    setsid ();
    grandchild = fork ();
    if (grandchild != 0) {
      if (grandchild > 0
          && write (pidpipe[1], &grandchild, sizeof grandchild) < 0)
        _exit (1);
      _exit (grandchild > 0 ? 0 : 1);
    }
    /* Exec only once reparented (the parent exits at once). */
    while (getppid () == me)
      nanosleep (&(struct timespec) { 0, 100000L }, NULL);
    signal (SIGPIPE, SIG_DFL);
    if (dup2 (nullfd, 0) < 0 || dup2 (logfd, 1) < 0 || dup2 (logfd, 2) < 0)
      goto fail;
    /* Everything else closes at exec (the error pipe too, telling the
     * caller exec worked); an inherited fd without CLOEXEC is closed
     * here. */
    for (int fd = 3; fd < 1024; fd++)
      if (fd != err[1])
        close (fd);
    execve (argv[0], (char *const *) argv, env);
  fail:
    e = errno;
    if (write (err[1], &e, sizeof e) < 0)
      _exit (126);
    _exit (127);
  }
  int e = errno;
  close (logfd);
  close (nullfd);
  close (err[1]);
  close (pidpipe[1]);
  free (env);
  if (pid < 0) {
    close (err[0]);
    close (pidpipe[0]);
    return cairn_error (-e, "fork: %s", strerror (e));
  }
  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  ssize_t got;
  do
    got = read (pidpipe[0], &grandchild, sizeof grandchild);
  while (got < 0 && errno == EINTR);
  close (pidpipe[0]);
  if (got != sizeof grandchild) {
    close (err[0]);
    return cairn_error (-EAGAIN, "cannot start %s: fork failed", argv[0]);
  }
  /* The child writes errno if exec failed; EOF means exec worked. */
  do
    got = read (err[0], &e, sizeof e);
  while (got < 0 && errno == EINTR);
  close (err[0]);
  if (got == sizeof e)
    return cairn_error (-e, "cannot run %s: %s", argv[0], strerror (e));
  p->pid = grandchild;
  p->start = start_time (grandchild);
  return 0;
}

void
vm_log_last_line (const char *log, char *buf, size_t len)
{
  char *text = NULL;
  size_t n;

  buf[0] = '\0';
  if (cairn_read_file (log, &text, &n) < 0)
    return;
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'
                   || text[n - 1] == ' '))
    text[--n] = '\0';
  char *line = strrchr (text, '\n');
  line = line ? line + 1 : text;
  snprintf (buf, len, "%s", line);
  free (text);
}
