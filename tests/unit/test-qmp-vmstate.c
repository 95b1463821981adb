/* test-qmp-vmstate: device state saved from one QEMU and loaded into another.
 *
 * Two guest-less microvm QEMUs with RAM in a memory-backend-file
 * (share=on): the source sits in prelaunch (-S), the destination waits
 * with -incoming defer.  Checks that vmstate_save streams a migration
 * stream without the RAM (x-ignore-shared), refuses a running VM, cancels
 * cleanly when the caller's sink fails, and that vmstate_load feeds it to
 * the destination, which then reports the migration completed; a
 * destination whose machine does not match exits, which the caller sees.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu-child.h"
#include "tap.h"
#include "store/util.h"
#include "qemu-glue/qmp.h"
#include "qemu-glue/vmstate.h"

#define TIMEOUT 30000
#define RAM_SIZE "256M"

static char dir[] = "/tmp/cairn-test-vmstate.XXXXXX";
static pid_t pids[8];
static int n_pids;

static void
cleanup (void)
{
  char cmd[300];
  int i;

  for (i = 0; i < n_pids; i++) {
    kill (pids[i], SIGKILL);
    waitpid (pids[i], NULL, 0);
  }
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0)
    fprintf (stderr, "cannot remove %s\n", dir);
}

/* Starts a QEMU whose QMP socket is DIR/NAME.sock and RAM DIR/NAME.ram,
 * with memory backend id MEM_ID, SHARE "on" or "off", and EXTRA (NULL or
 * "-incoming"). */
static void
start_qemu (const char *name, const char *mem_id, const char *share,
            const char *extra, char *qmp_path, size_t len)
{
  char qmp_arg[300], machine[100], object[400], log_path[300];
  pid_t pid;

  snprintf (qmp_path, len, "%s/%s.sock", dir, name);
  snprintf (qmp_arg, sizeof qmp_arg, "unix:%s,server=on,wait=off", qmp_path);
  snprintf (machine, sizeof machine, "microvm,accel=tcg,memory-backend=%s",
            mem_id);
  snprintf (object, sizeof object,
            "memory-backend-file,id=%s,size=" RAM_SIZE ",mem-path=%s/%s.ram,"
            "share=%s", mem_id, dir, name, share);
  snprintf (log_path, sizeof log_path, "%s/%s.log", dir, name);
  pid = fork ();
  if (pid == 0) {
    detach_child (log_path);
    execl (QEMU_SYSTEM_PATH, QEMU_SYSTEM_PATH, "-M", machine,
           "-m", RAM_SIZE, "-object", object, "-nodefaults",
           "-no-user-config", "-display", "none", "-S", "-qmp", qmp_arg,
           extra ? extra : "-S", extra ? "defer" : "-S", (char *) NULL);
    _exit (127);
  }
  pids[n_pids++] = pid;
}

/* A growing in-memory stream. */
struct buffer {
  char *data;
  size_t len, pos;
  int fail_after;               /* sink: fail once this many bytes came */
};

static int
buffer_write (void *opaque, const void *data, size_t len)
{
  struct buffer *b = opaque;
  char *p;

  if (b->fail_after >= 0 && b->len + len > (size_t) b->fail_after)
    return -ENOSPC;
  p = realloc (b->data, b->len + len);
  if (p == NULL)
    return -ENOMEM;
  memcpy (p + b->len, data, len);
  b->data = p;
  b->len += len;
  return 0;
}

static ssize_t
buffer_read (void *opaque, void *data, size_t len)
{
  struct buffer *b = opaque;
  size_t n = len < b->len - b->pos ? len : b->len - b->pos;

  memcpy (data, b->data + b->pos, n);
  b->pos += n;
  return n;
}

static const char *
status_of (struct qmp *qmp, const char *command)
{
  static char status[64];
  struct json_object *reply, *m;

  status[0] = '\0';
  if (qmp_execute (qmp, command, NULL, &reply, TIMEOUT) == 0
      && json_object_object_get_ex (reply, "status", &m))
    snprintf (status, sizeof status, "%s", json_object_get_string (m));
  json_object_put (reply);
  return status;
}

/* The source, with its RAM shared: only device state goes. */
static void
test_save (const char *path, struct buffer *stream)
{
  struct vmstate_stats stats;
  struct buffer again = { .fail_after = -1 };
  struct qmp *src;
  int r;

  r = qmp_connect (path, TIMEOUT, &src);
  is_int (r, 0, "connect to the source");
  if (r < 0)
    return;

  qmp_execute (src, "cont", NULL, NULL, TIMEOUT);
  is_int (vmstate_save (src, buffer_write, stream, TIMEOUT, &stats), -EBUSY,
          "vmstate_save of a running VM is -EBUSY");
  is_int (qmp_execute (src, "stop", NULL, NULL, TIMEOUT), 0, "stop");

  r = vmstate_save (src, buffer_write, stream, TIMEOUT, &stats);
  is_int (r, 0, "vmstate_save of the stopped VM");
  is_int (stats.bytes, stream->len, "stats.bytes counts the stream");
  ok (stream->len > 4 && memcmp (stream->data, "QEVM", 4) == 0,
      "the stream is a QEMU migration stream");
  ok (stream->len < 256 * 1024,
      "without the " RAM_SIZE " of shared RAM (%zu bytes)", stream->len);
  diag ("device state of a guest-less microvm: %zu bytes", stream->len);
  is_str (status_of (src, "query-migrate"), "completed",
          "the source's migration completed");
  is_str (status_of (src, "query-status"), "postmigrate",
          "the source is in postmigrate");

  r = vmstate_save (src, buffer_write, &again, TIMEOUT, &stats);
  is_int (r, -EREMOTEIO, "a second save before cont is refused by QEMU");
  diag ("QEMU says: %s", qmp_error (src));
  is_int (qmp_execute (src, "cont", NULL, NULL, TIMEOUT), 0,
          "cont resumes the source");
  is_str (status_of (src, "query-status"), "running", "it runs");
  qmp_close (src);
  free (again.data);
}

/* A QEMU whose RAM is private: x-ignore-shared leaves it in the stream,
 * which is then large enough to fill the socket while the sink fails. */
static void
test_save_cancelled (const char *path)
{
  struct buffer failing = { .fail_after = 4096 }, full = { .fail_after = -1 };
  struct vmstate_stats stats;
  struct qmp *qmp;
  int r;

  r = qmp_connect (path, TIMEOUT, &qmp);
  is_int (r, 0, "connect to a QEMU with private RAM");
  if (r < 0)
    return;
  r = vmstate_save (qmp, buffer_write, &failing, TIMEOUT, &stats);
  is_int (r, -ENOSPC, "a failing sink's error is returned");
  is_str (status_of (qmp, "query-migrate"), "cancelled",
          "and QEMU's migration was cancelled");
  r = vmstate_save (qmp, buffer_write, &full, TIMEOUT, &stats);
  is_int (r, 0, "the next save works");
  ok (full.len > 512 * 1024,
      "and carries the private RAM (%zu bytes)", full.len);
  qmp_close (qmp);
  free (failing.data);
  free (full.data);
}

static void
test_load (const char *path, struct buffer *stream)
{
  struct vmstate_stats stats;
  struct qmp *dst;
  int r;

  r = qmp_connect (path, TIMEOUT, &dst);
  is_int (r, 0, "connect to the destination");
  if (r < 0)
    return;
  stream->pos = 0;
  r = vmstate_load (dst, buffer_read, stream, TIMEOUT, &stats);
  is_int (r, 0, "vmstate_load into the -incoming defer QEMU");
  is_int (stats.bytes, stream->len, "all of the stream was sent");
  is_str (status_of (dst, "query-migrate"), "completed",
          "the destination reports the migration completed");
  is_str (status_of (dst, "query-status"), "paused",
          "and waits paused (-S) for cont");
  is_int (qmp_execute (dst, "cont", NULL, NULL, TIMEOUT), 0, "cont");
  is_str (status_of (dst, "query-status"), "running", "it runs");
  qmp_close (dst);
}

static void
test_load_mismatch (const char *path, struct buffer *stream)
{
  struct vmstate_stats stats;
  char log_path[300], *message = NULL, *line;
  struct qmp *bad;
  int r;

  r = qmp_connect (path, TIMEOUT, &bad);
  is_int (r, 0, "connect to a destination with another RAM block name");
  if (r < 0)
    return;
  stream->pos = 0;
  r = vmstate_load (bad, buffer_read, stream, TIMEOUT, &stats);
  is_int (r, -ECONNRESET,
          "a stream that does not fit the machine: QEMU exits");
  qmp_close (bad);
  snprintf (log_path, sizeof log_path, "%s/bad.log", dir);
  if (cairn_read_file (log_path, &message, NULL) == 0) {
    ok (strstr (message, "Unknown ramblock \"mem\"") != NULL,
        "and says why on stderr");
    for (line = strtok (message, "\n"); line; line = strtok (NULL, "\n"))
      diag ("qemu: %s", line);
  }
  else
    ok (0, "QEMU's stderr in %s", log_path);
  free (message);
}

int
main (void)
{
  char src[300], private[300], dst[300], bad[300];
  struct buffer stream = { .fail_after = -1 };

  if (access (QEMU_SYSTEM_PATH, X_OK) < 0)
    skip_all (QEMU_SYSTEM_PATH " is not installed");
  alarm (300);
  if (mkdtemp (dir) == NULL) {
    perror ("mkdtemp");
    return 1;
  }
  atexit (cleanup);

  start_qemu ("src", "mem", "on", NULL, src, sizeof src);
  start_qemu ("private", "mem", "off", NULL, private, sizeof private);
  start_qemu ("dst", "mem", "on", "-incoming", dst, sizeof dst);
  start_qemu ("bad", "othermem", "on", "-incoming", bad, sizeof bad);

  test_save (src, &stream);
  test_save_cancelled (private);
  if (stream.len > 0) {
    test_load (dst, &stream);
    test_load_mismatch (bad, &stream);
  }
  free (stream.data);
  return done_testing ();
}
