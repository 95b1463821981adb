/* vmstate.c: device state through a socketpair (interface in vmstate.h).
 *
 * Save:  query-status (must not be running) -> migrate-set-capabilities
 *        x-ignore-shared + events -> getfd (one end of a socketpair) ->
 *        migrate fd:NAME -> read the other end until EOF -> poll
 *        query-migrate until a final status.
 * Load:  migrate-set-capabilities -> getfd -> migrate-incoming fd:NAME ->
 *        write the stream, then shutdown(SHUT_WR) -> poll query-migrate.
 *
 * Why a socketpair and not a pipe: writing to a pipe whose reader died
 * raises SIGPIPE, and a library must not touch the process's signal
 * dispositions; send(MSG_NOSIGNAL) on a socket gets EPIPE instead.  QEMU
 * accepts either (its fd: URI wraps sockets in a QIOChannelSocket).
 *
 * Why EOF then query-migrate: QEMU closes its end only after the
 * migration reached a final state, so EOF means "ask how it ended".  The
 * "events" capability makes QEMU send MIGRATION events, used only to
 * wake up early between query-migrate polls; query-migrate has the last
 * word (and the error-desc of a failure).
 *
 * The fd name is fixed: QEMU consumes a named fd when a migration URI
 * uses it, and a failed "migrate" leaves it behind, so it is closed with
 * "closefd" before every use.  One migration at a time per QEMU anyway.
 */
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/util.h"
#include "qemu-glue/qmp.h"
#include "qemu-glue/vmstate.h"

#define VMSTATE_FD_NAME "cairn-vmstate"
#define VMSTATE_BUFFER (256 * 1024)
/* Longest sleep between query-migrate polls when no event comes. */
#define VMSTATE_POLL_MS 20

/* x-ignore-shared, or postcopy-ram without it (postcopy.h). */
static int
set_capabilities (struct qmp *qmp, bool postcopy, int64_t deadline)
{
  char args[256];

  snprintf (args, sizeof args, "{\"capabilities\": ["
            "{\"capability\": \"x-ignore-shared\", \"state\": %s},"
            "{\"capability\": \"postcopy-ram\", \"state\": %s},"
            "{\"capability\": \"events\", \"state\": true}]}",
            postcopy ? "false" : "true", postcopy ? "true" : "false");
  return qmp_execute (qmp, "migrate-set-capabilities", args, NULL,
                      qmp_left_ms (deadline));
}

/* Hands QEMU one end of a new socketpair as VMSTATE_FD_NAME and keeps the
 * other in *OURS. */
static int
pass_socket (struct qmp *qmp, int64_t deadline, int *ours)
{
  int sv[2], r;

  /* A name left over from a failed migrate would make getfd replace it;
   * closing it first keeps QEMU's fd table clean.  Errors (no such fd)
   * are expected. */
  qmp_execute (qmp, "closefd", "{\"fdname\": \"" VMSTATE_FD_NAME "\"}",
               NULL, qmp_left_ms (deadline));
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  r = qmp_getfd (qmp, VMSTATE_FD_NAME, sv[1], qmp_left_ms (deadline));
  close (sv[1]);
  if (r < 0) {
    close (sv[0]);
    return r;
  }
  *ours = sv[0];
  return 0;
}

/* Polls query-migrate until the migration reached a final state. */
static int
wait_final_status (struct qmp *qmp, int64_t deadline,
                   struct vmstate_stats *stats)
{
  struct json_object *info, *member;
  const char *status;
  int r, wait;

  for (;;) {
    r = qmp_execute (qmp, "query-migrate", NULL, &info,
                     qmp_left_ms (deadline));
    if (r < 0)
      return r;
    status = json_object_object_get_ex (info, "status", &member)
      ? json_object_get_string (member) : "none";
    if (strcmp (status, "completed") == 0)
      r = 0;
    else if (strcmp (status, "failed") == 0) {
      r = -EIO;
      if (json_object_object_get_ex (info, "error-desc", &member))
        snprintf (stats->error, sizeof stats->error, "%s",
                  json_object_get_string (member));
      else
        snprintf (stats->error, sizeof stats->error, "migration failed");
    }
    else if (strcmp (status, "cancelled") == 0)
      r = -ECANCELED;
    else
      r = 1;                    /* setup, active, device, ...: not yet */
    json_object_put (info);
    if (r <= 0)
      return r;
    if (qmp_left_ms (deadline) == 0)
      return -ETIMEDOUT;
    wait = qmp_left_ms (deadline);
    if (wait < 0 || wait > VMSTATE_POLL_MS)
      wait = VMSTATE_POLL_MS;
    r = qmp_wait_event (qmp, "MIGRATION", wait, NULL);
    if (r < 0 && r != -ETIMEDOUT)
      return r;
  }
}

/* Reads the stream from SOCK into WRITE until QEMU closes its end. */
static int
pump_out (int sock, vmstate_write_fn write, void *opaque, int64_t deadline,
          struct vmstate_stats *stats)
{
  CLEANUP_FREE char *buf = malloc (VMSTATE_BUFFER);
  ssize_t n;
  int r;

  if (buf == NULL)
    return -ENOMEM;
  for (;;) {
    r = qmp_wait_fd (sock, POLLIN, deadline);
    if (r < 0)
      return r;
    n = recv (sock, buf, VMSTATE_BUFFER, MSG_DONTWAIT);
    if (n == 0)
      return 0;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -errno;
    }
    r = write (opaque, buf, n);
    if (r < 0)
      return r;
    stats->bytes += n;
  }
}

/* Sends what READ returns into SOCK, then shuts down our sending side. */
static int
pump_in (int sock, vmstate_read_fn read, void *opaque, int64_t deadline,
         struct vmstate_stats *stats)
{
  CLEANUP_FREE char *buf = malloc (VMSTATE_BUFFER);
  ssize_t n, sent, off;
  int r;

  if (buf == NULL)
    return -ENOMEM;
  for (;;) {
    n = read (opaque, buf, VMSTATE_BUFFER);
    if (n < 0)
      return n;
    if (n == 0)
      break;
    for (off = 0; off < n; off += sent) {
      r = qmp_wait_fd (sock, POLLOUT, deadline);
      if (r < 0)
        return r;
      sent = send (sock, buf + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EINTR || errno == EAGAIN)
          sent = 0;
        else
          return -errno;        /* EPIPE: QEMU stopped reading */
      }
    }
    stats->bytes += n;
  }
  shutdown (sock, SHUT_WR);
  return 0;
}

/* Sets the capabilities, hands QEMU one end of a socket pair (our end in
 * *SOCK, -1 on failure before that) and starts COMMAND ("migrate" or
 * "migrate-incoming") on it, with no MIGRATION event of before queued. */
static int
start_migration (struct qmp *qmp, const char *command, bool postcopy,
                 int64_t deadline, int *sock)
{
  int r;

  *sock = -1;
  r = set_capabilities (qmp, postcopy, deadline);
  if (r == 0)
    r = pass_socket (qmp, deadline, sock);
  if (r == 0)
    r = qmp_discard_events (qmp, "MIGRATION");
  if (r == 0)
    r = qmp_execute (qmp, command, "{\"uri\": \"fd:" VMSTATE_FD_NAME "\"}",
                     NULL, qmp_left_ms (deadline));
  return r;
}

int
vmstate_save (struct qmp *qmp, vmstate_write_fn write, void *opaque,
              int timeout_ms, struct vmstate_stats *stats)
{
  int64_t deadline = qmp_deadline (timeout_ms);
  struct vmstate_stats ignored;
  struct json_object *status, *running;
  bool is_running;
  int sock = -1, r, r2;

  if (stats == NULL)
    stats = &ignored;
  memset (stats, 0, sizeof *stats);

  r = qmp_execute (qmp, "query-status", NULL, &status,
                   qmp_left_ms (deadline));
  if (r < 0)
    return r;
  is_running = json_object_object_get_ex (status, "running", &running)
    && json_object_get_boolean (running);
  json_object_put (status);
  if (is_running)
    return -EBUSY;

  r = start_migration (qmp, "migrate", false, deadline, &sock);
  if (r < 0)
    goto out_close;

  r = pump_out (sock, write, opaque, deadline, stats);
  if (r < 0) {
    /* Our side failed (or timed out): stop QEMU writing, and give it a
     * moment to reach "cancelled" so the next migration can start. */
    qmp_execute (qmp, "migrate_cancel", NULL, NULL, 1000);
    close (sock);
    sock = -1;
    r2 = wait_final_status (qmp, qmp_deadline (5000), stats);
    if (r2 == -ECONNRESET)
      r = r2;
    goto out_close;
  }
  r = wait_final_status (qmp, deadline, stats);
  if (r == -ETIMEDOUT)
    qmp_execute (qmp, "migrate_cancel", NULL, NULL, 1000);

 out_close:
  if (sock >= 0)
    close (sock);
  return r;
}

int
vmstate_load (struct qmp *qmp, vmstate_read_fn read, void *opaque,
              int timeout_ms, struct vmstate_stats *stats)
{
  int64_t deadline = qmp_deadline (timeout_ms);
  struct vmstate_stats ignored;
  int sock = -1, r, r2;

  if (stats == NULL)
    stats = &ignored;
  memset (stats, 0, sizeof *stats);

  r = start_migration (qmp, "migrate-incoming", false, deadline,
                       &sock);
  if (r < 0)
    goto out_close;

  r = pump_in (sock, read, opaque, deadline, stats);
  /* On EPIPE QEMU stopped reading: it failed, and says why (or exited). */
  r2 = wait_final_status (qmp, r < 0 ? qmp_deadline (5000) : deadline,
                          stats);
  if (r == 0 || r == -EPIPE || r == -ECONNRESET)
    r = r2;

 out_close:
  if (sock >= 0)
    close (sock);
  return r;
}

int
vmstate_incoming_postcopy (struct qmp *qmp, int timeout_ms, int *sock)
{
  int r = start_migration (qmp, "migrate-incoming", true,
                           qmp_deadline (timeout_ms), sock);

  if (r < 0 && *sock >= 0) {
    close (*sock);
    *sock = -1;
  }
  return r;
}

int
vmstate_wait (struct qmp *qmp, int timeout_ms, struct vmstate_stats *stats)
{
  memset (stats, 0, sizeof *stats);
  return wait_final_status (qmp, qmp_deadline (timeout_ms), stats);
}

static int
write_to_fd (void *opaque, const void *buf, size_t len)
{
  int fd = *(int *) opaque;
  const char *p = buf;
  ssize_t n;

  while (len > 0) {
    n = write (fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= n;
  }
  return 0;
}

static ssize_t
read_from_fd (void *opaque, void *buf, size_t len)
{
  int fd = *(int *) opaque;
  ssize_t n;

  do
    n = read (fd, buf, len);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

int
vmstate_save_to_fd (struct qmp *qmp, int fd, int timeout_ms,
                    struct vmstate_stats *stats)
{
  return vmstate_save (qmp, write_to_fd, &fd, timeout_ms, stats);
}

int
vmstate_load_from_fd (struct qmp *qmp, int fd, int timeout_ms,
                      struct vmstate_stats *stats)
{
  return vmstate_load (qmp, read_from_fd, &fd, timeout_ms, stats);
}
