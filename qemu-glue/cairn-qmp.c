/* cairn-qmp: drive a QEMU through QMP from shell scripts and benchmarks.
 *
 * A thin command-line front of qmp.c and vmstate.c, built (not installed)
 * for the VM tests and the snapshot benchmark: each subcommand is one QMP
 * connection doing one thing, and timed sequences (commit, restore,
 * snapshot-save) run inside one process so that what they print is the
 * time QEMU paused the guest, not the time to start programs.  "cairn vm"
 * will do the same through the same library calls.
 *
 * Output is "key=value" lines on stdout (times in ms with three decimals),
 * easy to pick up with grep or eval; errors are one line on stderr and
 * exit status 1, usage errors exit 2.
 */
#define _GNU_SOURCE             /* SEEK_DATA, copy_file_range, asprintf */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "store/util.h"
#include "qemu-glue/qmp.h"
#include "qemu-glue/vmstate.h"

static const char *program = "cairn-qmp";
static int timeout_ms = 60000;

static void
usage (FILE *f)
{
  fprintf (f,
"usage: cairn-qmp [-t SECONDS] SUBCOMMAND QMP-SOCKET ARGS...\n"
"  exec SOCK COMMAND [ARGS-JSON]   run one command, print its return value\n"
"  wait-event SOCK NAME            wait for the next event NAME, print it\n"
"  save-vmstate SOCK FILE          device state of the stopped VM into FILE\n"
"  load-vmstate SOCK FILE          FILE into a QEMU started with -incoming defer\n"
"  commit SOCK FILE [SRC DST]...   stop, device state into FILE, copy each SRC\n"
"                                  to DST (RAM, disk), cont; print the timings\n"
"  restore SOCK FILE               load-vmstate, then cont; print the timings\n"
"  snapshot-save SOCK TAG NODE     QEMU's internal snapshot of the whole VM\n"
"  snapshot-load SOCK TAG NODE     (a job; vmstate and disk in qcow2 NODE)\n"
"  snapshot-delete SOCK TAG NODE\n"
"  type CONSOLE-SOCK TEXT          write TEXT and a newline into a serial\n"
"                                  console's socket chardev\n"
"-t SECONDS bounds each subcommand (default 60).\n");
}

static void __attribute__ ((noreturn, format (printf, 1, 2)))
die (const char *fmt, ...)
{
  va_list ap;

  fprintf (stderr, "%s: ", program);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (1);
}

static double
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Dies with QEMU's own words when it refused a command. */
static void
check (struct qmp *qmp, int r, const char *what)
{
  if (r == -EREMOTEIO)
    die ("%s: %s", what, qmp_error (qmp));
  if (r < 0)
    die ("%s: %s", what, strerror (-r));
}

static struct qmp *
connect_or_die (const char *sock)
{
  struct qmp *qmp;
  int r = qmp_connect (sock, timeout_ms, &qmp);

  if (r < 0)
    die ("connect %s: %s", sock, strerror (-r));
  return qmp;
}

static void
print_json (struct json_object *obj)
{
  printf ("%s\n", obj ? json_object_to_json_string_ext (obj,
                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
          : "null");
}

static void
vmstate_check (struct qmp *qmp, int r, const struct vmstate_stats *stats,
               const char *what)
{
  if (r == -EIO && stats->error[0])
    die ("%s: %s", what, stats->error);
  check (qmp, r, what);
}

static int
do_exec (int argc, char **argv)
{
  struct qmp *qmp;
  struct json_object *reply;
  int r;

  if (argc < 2 || argc > 3)
    return 2;
  qmp = connect_or_die (argv[0]);
  r = qmp_execute (qmp, argv[1], argc == 3 ? argv[2] : NULL, &reply,
                   timeout_ms);
  if (r == -EINVAL)
    die ("%s: arguments are not a JSON object", argv[1]);
  check (qmp, r, argv[1]);
  print_json (reply);
  json_object_put (reply);
  qmp_close (qmp);
  return 0;
}

static int
do_wait_event (int argc, char **argv)
{
  struct qmp *qmp;
  struct json_object *event;

  if (argc != 2)
    return 2;
  qmp = connect_or_die (argv[0]);
  check (qmp, qmp_wait_event (qmp, argv[1], timeout_ms, &event), argv[1]);
  print_json (event);
  json_object_put (event);
  qmp_close (qmp);
  return 0;
}

/* Copies SRC to DST keeping holes: only the data extents are read. */
static int
copy_sparse (const char *src, const char *dst)
{
  CLEANUP_CLOSE int in = open (src, O_RDONLY | O_CLOEXEC);
  CLEANUP_CLOSE int out = -1;
  struct stat st;
  off_t data, hole, off;
  ssize_t n;
  int r;

  if (in < 0 || fstat (in, &st) < 0)
    return -errno;
  out = open (dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0)
    return -errno;
  for (data = 0; data < st.st_size; data = hole) {
    data = lseek (in, data, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO)
        break;                  /* only a hole is left */
      return -errno;
    }
    hole = lseek (in, data, SEEK_HOLE);
    if (hole < 0)
      return -errno;
    for (off = data; off < hole; off += n) {
      loff_t in_off = off, out_off = off;

      n = copy_file_range (in, &in_off, out, &out_off, hole - off, 0);
      if (n < 0)
        return -errno;
      if (n == 0)
        return -EIO;
    }
  }
  if (ftruncate (out, st.st_size) < 0)
    return -errno;
  r = close (out);
  out = -1;
  return r < 0 ? -errno : 0;
}

/* The time between the queued STOP and RESUME events, by QEMU's clock,
 * or -1 if they did not both come. */
static double
qemu_pause_ms (struct qmp *qmp)
{
  struct json_object *stop, *resume;
  double ms = -1;

  if (qmp_wait_event (qmp, "STOP", 0, &stop) < 0)
    return -1;
  if (qmp_wait_event (qmp, "RESUME", 1000, &resume) == 0) {
    ms = (qmp_event_time_us (resume) - qmp_event_time_us (stop)) / 1e3;
    json_object_put (resume);
  }
  json_object_put (stop);
  return ms;
}

static int
open_or_die (const char *path, int flags)
{
  int fd = open (path, flags | O_CLOEXEC, 0600);

  if (fd < 0)
    die ("%s: %m", path);
  return fd;
}

static int
do_save_or_load_vmstate (int argc, char **argv, bool save)
{
  struct vmstate_stats stats;
  struct qmp *qmp;
  int fd, r;
  double t0;

  if (argc != 2)
    return 2;
  qmp = connect_or_die (argv[0]);
  fd = open_or_die (argv[1], save ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY);
  t0 = now_ms ();
  r = save ? vmstate_save_to_fd (qmp, fd, timeout_ms, &stats)
    : vmstate_load_from_fd (qmp, fd, timeout_ms, &stats);
  vmstate_check (qmp, r, &stats, save ? "save-vmstate" : "load-vmstate");
  if (close (fd) < 0)
    die ("%s: %m", argv[1]);
  printf ("vmstate_bytes=%llu\nvmstate_ms=%.3f\n",
          (unsigned long long) stats.bytes, now_ms () - t0);
  qmp_close (qmp);
  return 0;
}

/* The commit sequence of README-flow.md, timed step by step. */
static int
do_commit (int argc, char **argv)
{
  struct vmstate_stats stats;
  struct qmp *qmp;
  double t_stop, t_saved, t_copied, t_cont, t_end, pause;
  int fd, i, r;

  if (argc < 2 || argc % 2 != 0)
    return 2;
  qmp = connect_or_die (argv[0]);
  fd = open_or_die (argv[1], O_WRONLY | O_CREAT | O_TRUNC);
  check (qmp, qmp_discard_events (qmp, NULL), "events");

  t_stop = now_ms ();
  check (qmp, qmp_execute (qmp, "stop", NULL, NULL, timeout_ms), "stop");
  t_saved = now_ms ();
  r = vmstate_save_to_fd (qmp, fd, timeout_ms, &stats);
  if (r < 0)
    qmp_execute (qmp, "cont", NULL, NULL, timeout_ms);
  vmstate_check (qmp, r, &stats, "save-vmstate");
  t_copied = now_ms ();
  for (i = 2; i < argc; i += 2) {
    r = copy_sparse (argv[i], argv[i + 1]);
    if (r < 0) {
      qmp_execute (qmp, "cont", NULL, NULL, timeout_ms);
      die ("copy %s to %s: %s", argv[i], argv[i + 1], strerror (-r));
    }
  }
  t_cont = now_ms ();
  check (qmp, qmp_execute (qmp, "cont", NULL, NULL, timeout_ms), "cont");
  t_end = now_ms ();
  if (close (fd) < 0)
    die ("%s: %m", argv[1]);

  printf ("vmstate_bytes=%llu\n", (unsigned long long) stats.bytes);
  printf ("stop_ms=%.3f\n", t_saved - t_stop);
  printf ("vmstate_ms=%.3f\n", t_copied - t_saved);
  printf ("copy_ms=%.3f\n", t_cont - t_copied);
  printf ("cont_ms=%.3f\n", t_end - t_cont);
  printf ("pause_ms=%.3f\n", t_end - t_stop);
  pause = qemu_pause_ms (qmp);  /* none if the VM was stopped already */
  if (pause >= 0)
    printf ("qemu_pause_ms=%.3f\n", pause);
  qmp_close (qmp);
  return 0;
}

static int
do_restore (int argc, char **argv)
{
  struct vmstate_stats stats;
  struct qmp *qmp;
  double t0, t1, t2;
  int fd;

  if (argc != 2)
    return 2;
  qmp = connect_or_die (argv[0]);
  fd = open_or_die (argv[1], O_RDONLY);
  t0 = now_ms ();
  vmstate_check (qmp, vmstate_load_from_fd (qmp, fd, timeout_ms, &stats),
                 &stats, "load-vmstate");
  t1 = now_ms ();
  check (qmp, qmp_execute (qmp, "cont", NULL, NULL, timeout_ms), "cont");
  t2 = now_ms ();
  close (fd);
  printf ("vmstate_bytes=%llu\n", (unsigned long long) stats.bytes);
  printf ("load_ms=%.3f\n", t1 - t0);
  printf ("cont_ms=%.3f\n", t2 - t1);
  printf ("restore_ms=%.3f\n", t2 - t0);
  qmp_close (qmp);
  return 0;
}

/* Waits for job ID to conclude; dies with its error if it had one. */
static void
wait_job (struct qmp *qmp, const char *id)
{
  struct json_object *event, *data, *member, *jobs;
  bool concluded = false;
  const char *error = NULL;
  size_t i;

  while (!concluded) {
    check (qmp, qmp_wait_event (qmp, "JOB_STATUS_CHANGE", timeout_ms, &event),
           id);
    if (json_object_object_get_ex (event, "data", &data)
        && json_object_object_get_ex (data, "id", &member)
        && strcmp (json_object_get_string (member), id) == 0
        && json_object_object_get_ex (data, "status", &member)
        && strcmp (json_object_get_string (member), "concluded") == 0)
      concluded = true;
    json_object_put (event);
  }
  check (qmp, qmp_execute (qmp, "query-jobs", NULL, &jobs, timeout_ms),
         "query-jobs");
  for (i = 0; i < json_object_array_length (jobs); i++) {
    struct json_object *job = json_object_array_get_idx (jobs, i);

    if (json_object_object_get_ex (job, "id", &member)
        && strcmp (json_object_get_string (member), id) == 0
        && json_object_object_get_ex (job, "error", &member))
      error = json_object_get_string (member);
  }
  if (error)
    die ("%s: %s", id, error);
  json_object_put (jobs);
}

static int
do_snapshot (int argc, char **argv, const char *command)
{
  struct json_object *args, *devices;
  struct qmp *qmp;
  double t0, t1, pause;
  char id[64];

  if (argc != 3)
    return 2;
  qmp = connect_or_die (argv[0]);
  check (qmp, qmp_discard_events (qmp, NULL), "events");
  snprintf (id, sizeof id, "cairn-%s", command);
  args = json_object_new_object ();
  devices = json_object_new_array ();
  json_object_array_add (devices, json_object_new_string (argv[2]));
  json_object_object_add (args, "job-id", json_object_new_string (id));
  json_object_object_add (args, "tag", json_object_new_string (argv[1]));
  if (strcmp (command, "snapshot-delete") != 0)
    json_object_object_add (args, "vmstate", json_object_new_string (argv[2]));
  json_object_object_add (args, "devices", devices);

  t0 = now_ms ();
  check (qmp, qmp_execute_object (qmp, command, args, NULL, timeout_ms),
         command);
  wait_job (qmp, id);
  t1 = now_ms ();
  json_object_put (args);
  args = json_object_new_object ();
  json_object_object_add (args, "id", json_object_new_string (id));
  check (qmp, qmp_execute_object (qmp, "job-dismiss", args, NULL, timeout_ms),
         "job-dismiss");
  json_object_put (args);

  pause = qemu_pause_ms (qmp);
  printf ("job_ms=%.3f\n", t1 - t0);
  if (pause >= 0)
    printf ("qemu_pause_ms=%.3f\n", pause);
  qmp_close (qmp);
  return 0;
}

/* Writes TEXT and a newline into a socket chardev, then waits until QEMU
 * has read all of it before closing: QEMU drops the connection as soon as
 * it sees the hangup, and with it whatever it had not read yet. */
static int
do_type (int argc, char **argv)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  CLEANUP_FREE char *line = NULL;
  CLEANUP_CLOSE int fd = -1;
  double deadline = now_ms () + timeout_ms;
  size_t len, off;
  ssize_t n;
  int unread;

  if (argc != 2)
    return 2;
  if (strlen (argv[0]) >= sizeof addr.sun_path)
    die ("%s: path too long", argv[0]);
  strcpy (addr.sun_path, argv[0]);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    die ("%s: %m", argv[0]);
  if (asprintf (&line, "%s\n", argv[1]) < 0)
    die ("%m");
  len = strlen (line);
  for (off = 0; off < len; off += n) {
    n = send (fd, line + off, len - off, MSG_NOSIGNAL);
    if (n < 0)
      die ("%s: %m", argv[0]);
  }
  while (ioctl (fd, SIOCOUTQ, &unread) == 0 && unread > 0) {
    if (now_ms () > deadline)
      die ("%s: the guest did not read its console", argv[0]);
    usleep (2000);
  }
  return 0;
}

int
main (int argc, char **argv)
{
  const char *sub;
  int c, r;

  while ((c = getopt (argc, argv, "+t:h")) != -1) {
    switch (c) {
    case 't':
      timeout_ms = atoi (optarg) * 1000;
      if (timeout_ms <= 0) {
        fprintf (stderr, "%s: -t wants a positive number of seconds\n", program);
        return 2;
      }
      break;
    case 'h':
      usage (stdout);
      return 0;
    default:
      usage (stderr);
      return 2;
    }
  }
  if (optind >= argc) {
    usage (stderr);
    return 2;
  }
  sub = argv[optind];
  argc -= optind + 1;
  argv += optind + 1;

  if (strcmp (sub, "exec") == 0)
    r = do_exec (argc, argv);
  else if (strcmp (sub, "wait-event") == 0)
    r = do_wait_event (argc, argv);
  else if (strcmp (sub, "save-vmstate") == 0)
    r = do_save_or_load_vmstate (argc, argv, true);
  else if (strcmp (sub, "load-vmstate") == 0)
    r = do_save_or_load_vmstate (argc, argv, false);
  else if (strcmp (sub, "commit") == 0)
    r = do_commit (argc, argv);
  else if (strcmp (sub, "restore") == 0)
    r = do_restore (argc, argv);
  else if (strncmp (sub, "snapshot-", 9) == 0
           && (strcmp (sub + 9, "save") == 0 || strcmp (sub + 9, "load") == 0
               || strcmp (sub + 9, "delete") == 0))
    r = do_snapshot (argc, argv, sub);
  else if (strcmp (sub, "type") == 0)
    r = do_type (argc, argv);
  else {
    fprintf (stderr, "%s: unknown subcommand %s\n", program, sub);
    usage (stderr);
    return 2;
  }
  if (r == 2) {
    fprintf (stderr, "%s: wrong arguments for %s\n", program, sub);
    usage (stderr);
  }
  return r;
}
