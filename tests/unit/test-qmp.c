/* test-qmp: the QMP client against a real QEMU.
 *
 * Starts "qemu-system-x86_64 -M microvm,accel=tcg -nodefaults -display
 * none -S -qmp unix:..." (no guest: the machine sits in prelaunch until
 * "cont", then runs its firmware) and checks commands, QMP errors,
 * events, fd passing with getfd, timeouts and what a caller sees when
 * QEMU goes away.
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
#include <time.h>
#include <unistd.h>

#include "qemu-child.h"
#include "tap.h"
#include "qemu-glue/qmp.h"

#define TIMEOUT 10000

static pid_t qemu_pid = -1;
static char dir[] = "/tmp/cairn-test-qmp.XXXXXX";
static char qmp_path[256];
static char log_path[256];

static void
stop_qemu (void)
{
  if (qemu_pid > 0) {
    kill (qemu_pid, SIGKILL);
    waitpid (qemu_pid, NULL, 0);
    qemu_pid = -1;
  }
}

static void
cleanup (void)
{
  stop_qemu ();
  unlink (qmp_path);
  unlink (log_path);
  rmdir (dir);
}

static void
start_qemu (void)
{
  char qmp_arg[300];

  snprintf (qmp_arg, sizeof qmp_arg, "unix:%s,server=on,wait=off", qmp_path);
  snprintf (log_path, sizeof log_path, "%s/qemu.log", dir);
  qemu_pid = fork ();
  if (qemu_pid == 0) {
    detach_child (log_path);
    execl (QEMU_SYSTEM_PATH, QEMU_SYSTEM_PATH, "-M", "microvm,accel=tcg",
           "-m", "32M", "-nodefaults", "-no-user-config", "-display", "none",
           "-S", "-qmp", qmp_arg, (char *) NULL);
    _exit (127);
  }
}

static double
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *
member_string (struct json_object *obj, const char *key)
{
  struct json_object *m;

  return json_object_object_get_ex (obj, key, &m)
    ? json_object_get_string (m) : NULL;
}

static void
test_commands (struct qmp *qmp)
{
  struct json_object *reply, *qemu, *m;
  char version[48];
  int r;

  r = qmp_execute (qmp, "query-status", NULL, &reply, TIMEOUT);
  is_int (r, 0, "query-status succeeds");
  is_str (member_string (reply, "status"), "prelaunch",
          "query-status: a QEMU started with -S is in prelaunch");
  json_object_put (reply);

  r = qmp_execute (qmp, "query-version", NULL, &reply, TIMEOUT);
  is_int (r, 0, "query-version succeeds");
  version[0] = '\0';
  if (json_object_object_get_ex (reply, "qemu", &qemu)
      && json_object_object_get_ex (qemu, "major", &m))
    snprintf (version, sizeof version, "%d.", json_object_get_int (m));
  ok (version[0] && strncmp (qmp_qemu_version (qmp), version,
                             strlen (version)) == 0,
      "query-version agrees with the greeting (%s)", qmp_qemu_version (qmp));
  json_object_put (reply);

  reply = (struct json_object *) 1;
  r = qmp_execute (qmp, "no-such-command", NULL, &reply, TIMEOUT);
  is_int (r, -EREMOTEIO, "an unknown command fails with -EREMOTEIO");
  ok (reply == NULL, "and sets no reply");
  ok (strstr (qmp_error (qmp), "no-such-command") != NULL,
      "qmp_error() gives QEMU's desc: \"%s\"", qmp_error (qmp));
  is_str (qmp_error_class (qmp), "CommandNotFound", "and its class");

  r = qmp_execute (qmp, "query-status", "{\"bogus\": 1}", NULL, TIMEOUT);
  is_int (r, -EREMOTEIO, "an unexpected argument fails with -EREMOTEIO");
  ok (strstr (qmp_error (qmp), "bogus") != NULL,
      "with a desc naming the argument: \"%s\"", qmp_error (qmp));

  r = qmp_execute (qmp, "query-status", NULL, NULL, TIMEOUT);
  is_int (r, 0, "the connection works after errors");
  is_str (qmp_error (qmp), "", "and a success clears the error");

  is_int (qmp_execute (qmp, "query-status", "{not json", NULL, TIMEOUT),
          -EINVAL, "malformed ARGS_JSON is -EINVAL");
  is_int (qmp_execute (qmp, "query-status", "[1]", NULL, TIMEOUT),
          -EINVAL, "ARGS_JSON that is not an object is -EINVAL");

  /* A large reply spans many reads. */
  r = qmp_execute (qmp, "query-qmp-schema", NULL, &reply, TIMEOUT);
  ok (r == 0 && json_object_is_type (reply, json_type_array)
      && json_object_array_length (reply) > 100,
      "query-qmp-schema: a large reply (%zu entries)",
      reply ? json_object_array_length (reply) : 0);
  json_object_put (reply);
}

static void
test_events (struct qmp *qmp)
{
  struct json_object *event = NULL;
  double t0;
  int r;

  is_int (qmp_execute (qmp, "cont", NULL, NULL, TIMEOUT), 0, "cont");
  is_int (qmp_execute (qmp, "stop", NULL, NULL, TIMEOUT), 0, "stop");
  /* Both events arrived during the commands: a later command must not
   * lose them. */
  is_int (qmp_execute (qmp, "query-status", NULL, NULL, TIMEOUT), 0,
          "another command in between");
  r = qmp_wait_event (qmp, "STOP", TIMEOUT, &event);
  is_int (r, 0, "the STOP event was queued and is returned");
  is_str (member_string (event, "event"), "STOP", "it is STOP");
  ok (qmp_event_time_us (event) > 1600000000000000LL,
      "it has QEMU's timestamp");
  json_object_put (event);
  r = qmp_wait_event (qmp, "RESUME", 0, &event);
  is_int (r, 0, "the earlier RESUME is still queued (timeout 0)");
  json_object_put (event);

  t0 = now_ms ();
  r = qmp_wait_event (qmp, "NO_SUCH_EVENT", 200, NULL);
  is_int (r, -ETIMEDOUT, "waiting for an event that never comes times out");
  ok (now_ms () - t0 >= 190 && now_ms () - t0 < 2000,
      "after about the timeout (%.0f ms)", now_ms () - t0);

  is_int (qmp_execute (qmp, "cont", NULL, NULL, TIMEOUT), 0, "cont again");
  is_int (qmp_discard_events (qmp, "RESUME"), 0, "discard RESUME events");
  is_int (qmp_wait_event (qmp, "RESUME", 0, NULL), -ETIMEDOUT,
          "none is left");
  is_int (qmp_execute (qmp, "stop", NULL, NULL, TIMEOUT), 0, "stop again");
  is_int (qmp_wait_event (qmp, NULL, TIMEOUT, &event), 0,
          "NULL waits for any event");
  is_str (member_string (event, "event"), "STOP", "which is the STOP");
  json_object_put (event);
}

static void
test_fd_passing (struct qmp *qmp)
{
  struct json_object *args;
  char magic[4];
  int pipefd[2];
  int r;

  if (pipe (pipefd) < 0) {
    ok (0, "pipe: %m");
    return;
  }
  is_int (qmp_getfd (qmp, "test-fd", pipefd[1], TIMEOUT), 0,
          "getfd with a file descriptor");
  is_int (qmp_execute (qmp, "closefd", "{\"fdname\": \"test-fd\"}", NULL,
                       TIMEOUT), 0, "QEMU knows it by name: closefd works");
  r = qmp_execute (qmp, "closefd", "{\"fdname\": \"test-fd\"}", NULL, TIMEOUT);
  is_int (r, -EREMOTEIO, "and it is gone after closefd");

  args = json_object_new_object ();
  json_object_object_add (args, "fdname", json_object_new_string ("x"));
  r = qmp_execute_object (qmp, "getfd", args, NULL, TIMEOUT);
  is_int (r, -EREMOTEIO, "getfd without a file descriptor fails");
  ok (strstr (qmp_error (qmp), "SCM_RIGHTS") != NULL,
      "saying why: \"%s\"", qmp_error (qmp));
  json_object_put (args);

  /* The proof that QEMU really holds our fd: it migrates into it. */
  is_int (qmp_getfd (qmp, "test-fd", pipefd[1], TIMEOUT), 0, "getfd again");
  close (pipefd[1]);
  r = qmp_execute (qmp, "migrate", "{\"uri\": \"fd:test-fd\"}", NULL, TIMEOUT);
  is_int (r, 0, "migrate fd:test-fd");
  ok (read (pipefd[0], magic, 4) == 4 && memcmp (magic, "QEVM", 4) == 0,
      "QEMU wrote a migration stream (\"QEVM\") into our pipe");
  close (pipefd[0]);            /* QEMU then fails with EPIPE: fine */
}

static void
test_connection (void)
{
  struct qmp *qmp;
  double t0 = now_ms ();
  char path[300];
  int r;

  snprintf (path, sizeof path, "%s/absent.sock", dir);
  r = qmp_connect (path, 100, &qmp);
  is_int (r, -ETIMEDOUT, "connecting to a socket that never appears times out");
  ok (qmp == NULL, "and returns no handle");
  ok (now_ms () - t0 < 2000, "in about the timeout");
  memset (path, 'x', sizeof path - 1);
  path[sizeof path - 1] = '\0';
  is_int (qmp_connect (path, 100, &qmp), -ENAMETOOLONG,
          "a path longer than sun_path is -ENAMETOOLONG");
}

int
main (void)
{
  struct qmp *qmp, *second;
  int r;

  if (access (QEMU_SYSTEM_PATH, X_OK) < 0)
    skip_all (QEMU_SYSTEM_PATH " is not installed");
  alarm (300);                  /* a hung QEMU must not hang the suite */
  if (mkdtemp (dir) == NULL) {
    perror ("mkdtemp");
    return 1;
  }
  snprintf (qmp_path, sizeof qmp_path, "%s/qmp.sock", dir);
  atexit (cleanup);

  start_qemu ();
  r = qmp_connect (qmp_path, 30000, &qmp);
  is_int (r, 0, "qmp_connect: greeting read, capabilities negotiated");
  if (r < 0)
    return done_testing ();
  diag ("QEMU %s", qmp_qemu_version (qmp));

  test_commands (qmp);
  test_events (qmp);
  test_fd_passing (qmp);

  qmp_close (qmp);
  r = qmp_connect (qmp_path, TIMEOUT, &second);
  is_int (r, 0, "after qmp_close, a new client can connect");
  stop_qemu ();
  if (r == 0) {
    r = qmp_execute (second, "query-status", NULL, NULL, TIMEOUT);
    is_int (r, -ECONNRESET, "a command to a QEMU that died is -ECONNRESET");
    r = qmp_wait_event (second, "STOP", TIMEOUT, NULL);
    is_int (r, -ECONNRESET, "and so is waiting for an event");
    qmp_close (second);
  }
  qmp_close (NULL);
  ok (1, "qmp_close (NULL) is harmless");

  test_connection ();
  return done_testing ();
}
