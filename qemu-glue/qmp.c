/* qmp.c: the QMP client (interface and error conventions in qmp.h).
 *
 * Design notes
 *
 * Framing.  QEMU ends every QMP message with "\r\n" and never puts a raw
 * newline inside one (JSON strings escape it), so the receive buffer is cut
 * into lines and each line parsed on its own.  A line may be large (the
 * reply of query-qmp-schema is ~150 KiB), so the buffer grows, up to
 * QMP_MAX_MESSAGE; the scan for the newline resumes where it stopped.
 *
 * One command at a time.  Each command carries a fresh integer "id"; the
 * reply with that id ends the wait.  A reply with any other id belongs to
 * a command that timed out earlier and is dropped, which is what keeps
 * the connection usable after -ETIMEDOUT.  Out-of-band execution is not
 * used.
 *
 * Events.  Messages with an "event" member that arrive while waiting for
 * anything are appended to a FIFO; qmp_wait_event() takes the oldest match
 * and leaves the rest in order, so a caller can wait for STOP after the
 * command that caused it has returned without losing the race.  The FIFO
 * is bounded: a client that never looks at events must not grow without
 * limit, so beyond QMP_MAX_QUEUED_EVENTS the oldest event is dropped.
 *
 * Deadlines.  The socket is non-blocking; every wait is a poll(2) against
 * an absolute CLOCK_MONOTONIC deadline computed once per call, so a slow
 * trickle of events cannot stretch a timeout.
 *
 * File descriptors.  The fd goes as SCM_RIGHTS ancillary data on the first
 * sendmsg(2) of the command's bytes.  QEMU's socket chardev keeps the fds
 * that arrived with the data it is reading and "getfd" takes them, so fd
 * and command must travel together, never the fd alone.
 *
 * Not thread-safe: one thread owns a struct qmp at a time.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu-glue/qmp.h"

/* Longest message accepted from QEMU. */
#define QMP_MAX_MESSAGE (64 * 1024 * 1024)
/* How often qmp_connect() retries a socket that is not there yet. */
#define QMP_CONNECT_RETRY_MS 1

struct qmp_event {
  struct qmp_event *next;
  struct json_object *event;
  const char *name;             /* points into EVENT */
};

struct qmp {
  int fd;
  char *buf;                    /* received bytes not yet parsed */
  size_t len, cap;
  size_t scanned;               /* buf[0..scanned) holds no newline */
  int64_t next_id;
  struct qmp_event *head, *tail;
  size_t n_events;
  char version[48];
  char *error_desc, *error_class;
};

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
qmp_deadline (int timeout_ms)
{
  return timeout_ms < 0 ? -1 : now_ms () + timeout_ms;
}

int
qmp_left_ms (int64_t deadline)
{
  int64_t left;

  if (deadline < 0)
    return -1;
  left = deadline - now_ms ();
  if (left <= 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int) left;
}

int
qmp_wait_fd (int fd, short events, int64_t deadline)
{
  struct pollfd pfd = { .fd = fd, .events = events };
  int r;

  for (;;) {
    r = poll (&pfd, 1, qmp_left_ms (deadline));
    if (r > 0)
      return 0;
    if (r == 0)
      return -ETIMEDOUT;
    if (errno != EINTR)
      return -errno;
  }
}

static void
clear_error (struct qmp *qmp)
{
  free (qmp->error_desc);
  free (qmp->error_class);
  qmp->error_desc = qmp->error_class = NULL;
}

static void
event_free (struct qmp_event *e)
{
  json_object_put (e->event);
  free (e);
}

/* Takes ownership of EVENT. */
static void
queue_event (struct qmp *qmp, struct json_object *event)
{
  struct qmp_event *e;
  struct json_object *name;

  e = calloc (1, sizeof *e);
  if (e == NULL) {
    json_object_put (event);
    return;
  }
  json_object_object_get_ex (event, "event", &name);
  e->event = event;
  e->name = json_object_get_string (name);
  if (qmp->tail)
    qmp->tail->next = e;
  else
    qmp->head = e;
  qmp->tail = e;
  if (++qmp->n_events > QMP_MAX_QUEUED_EVENTS) {
    struct qmp_event *oldest = qmp->head;

    qmp->head = oldest->next;
    event_free (oldest);
    qmp->n_events--;
  }
}

/* Queues MSG if it is an event; drops it if not (a late reply to a
 * command that timed out).  Takes ownership of MSG. */
static void
keep_event (struct qmp *qmp, struct json_object *msg)
{
  if (json_object_object_get_ex (msg, "event", NULL))
    queue_event (qmp, msg);
  else
    json_object_put (msg);
}

static bool
event_matches (const struct qmp_event *e, const char *name)
{
  return name == NULL || (e->name && strcmp (e->name, name) == 0);
}

/* Unlinks and returns the oldest queued event called NAME, or NULL. */
static struct json_object *
take_event (struct qmp *qmp, const char *name)
{
  struct qmp_event *e, *prev = NULL;
  struct json_object *event;

  for (e = qmp->head; e; prev = e, e = e->next) {
    if (!event_matches (e, name))
      continue;
    if (prev)
      prev->next = e->next;
    else
      qmp->head = e->next;
    if (qmp->tail == e)
      qmp->tail = prev;
    qmp->n_events--;
    event = e->event;
    free (e);
    return event;
  }
  return NULL;
}

/* Receives more bytes into the buffer. */
static int
fill_buffer (struct qmp *qmp, int64_t deadline)
{
  ssize_t n;
  int r;

  if (qmp->cap - qmp->len < 4096) {
    size_t cap = qmp->cap ? qmp->cap * 2 : 16384;
    char *buf = realloc (qmp->buf, cap);

    if (buf == NULL)
      return -ENOMEM;
    qmp->buf = buf;
    qmp->cap = cap;
  }
  for (;;) {
    n = recv (qmp->fd, qmp->buf + qmp->len, qmp->cap - qmp->len, 0);
    if (n > 0) {
      qmp->len += n;
      return 0;
    }
    if (n == 0)
      return -ECONNRESET;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    r = qmp_wait_fd (qmp->fd, POLLIN, deadline);
    if (r < 0)
      return r;
  }
}

/* Reads the next message, a JSON object, into *MSG (caller puts it). */
static int
read_message (struct qmp *qmp, int64_t deadline, struct json_object **msg)
{
  char *nl;
  struct json_object *obj;
  size_t line_len;
  bool blank;
  int r;

  for (;;) {
    nl = qmp->len > qmp->scanned
      ? memchr (qmp->buf + qmp->scanned, '\n', qmp->len - qmp->scanned) : NULL;
    if (nl == NULL) {
      qmp->scanned = qmp->len;
      if (qmp->len > QMP_MAX_MESSAGE)
        return -EMSGSIZE;
      r = fill_buffer (qmp, deadline);
      if (r < 0)
        return r;
      continue;
    }
    *nl = '\0';
    line_len = nl - qmp->buf;
    blank = qmp->buf[strspn (qmp->buf, " \t\r")] == '\0';
    obj = blank ? NULL : json_tokener_parse (qmp->buf);
    memmove (qmp->buf, nl + 1, qmp->len - line_len - 1);
    qmp->len -= line_len + 1;
    qmp->scanned = 0;
    if (blank)
      continue;
    if (obj == NULL)
      return -EPROTO;
    if (!json_object_is_type (obj, json_type_object)) {
      json_object_put (obj);
      return -EPROTO;
    }
    *msg = obj;
    return 0;
  }
}

/* Sends LEN bytes of TEXT, with FD as SCM_RIGHTS if FD >= 0. */
static int
send_message (struct qmp *qmp, const char *text, size_t len, int fd,
              int64_t deadline)
{
  size_t off = 0;
  ssize_t n;
  int r;

  while (off < len) {
    struct iovec iov = { .iov_base = (char *) text + off, .iov_len = len - off };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    union {
      char buf[CMSG_SPACE (sizeof (int))];
      struct cmsghdr align;
    } control;

    if (fd >= 0) {
      struct cmsghdr *cmsg;

      memset (&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cmsg), &fd, sizeof (int));
    }
    n = sendmsg (qmp->fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      off += n;
      fd = -1;                  /* the fd went with the first bytes */
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno == EPIPE || errno == ECONNRESET)
      return -ECONNRESET;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    r = qmp_wait_fd (qmp->fd, POLLOUT, deadline);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Keeps the "desc" and "class" of an error reply. */
static void
record_error (struct qmp *qmp, struct json_object *error)
{
  struct json_object *desc = NULL, *class = NULL;

  clear_error (qmp);
  json_object_object_get_ex (error, "desc", &desc);
  json_object_object_get_ex (error, "class", &class);
  qmp->error_desc = strdup (desc ? json_object_get_string (desc) : "error");
  qmp->error_class = strdup (class ? json_object_get_string (class) : "");
}

/* Reads messages until the reply to command ID, queueing events. */
static int
await_reply (struct qmp *qmp, int64_t id, int64_t deadline,
             struct json_object **reply)
{
  struct json_object *msg, *member;
  int r;

  for (;;) {
    r = read_message (qmp, deadline, &msg);
    if (r < 0)
      return r;
    if (json_object_object_get_ex (msg, "event", NULL)) {
      queue_event (qmp, msg);
      continue;
    }
    if (!json_object_object_get_ex (msg, "id", &member)
        || json_object_get_int64 (member) != id) {
      json_object_put (msg);    /* a late reply to a timed-out command */
      continue;
    }
    if (json_object_object_get_ex (msg, "error", &member)) {
      record_error (qmp, member);
      json_object_put (msg);
      return -EREMOTEIO;
    }
    if (!json_object_object_get_ex (msg, "return", &member)) {
      json_object_put (msg);
      return -EPROTO;
    }
    if (reply)
      *reply = json_object_get (member);
    json_object_put (msg);
    return 0;
  }
}

int
qmp_execute_with_fd (struct qmp *qmp, const char *command,
                     struct json_object *args, int fd,
                     struct json_object **reply, int timeout_ms)
{
  int64_t deadline = qmp_deadline (timeout_ms);
  int64_t id = ++qmp->next_id;
  struct json_object *msg;
  const char *text;
  int r;

  clear_error (qmp);
  if (reply)
    *reply = NULL;
  if (args && !json_object_is_type (args, json_type_object))
    return -EINVAL;

  msg = json_object_new_object ();
  if (msg == NULL)
    return -ENOMEM;
  json_object_object_add (msg, "execute", json_object_new_string (command));
  if (args)
    json_object_object_add (msg, "arguments", json_object_get (args));
  json_object_object_add (msg, "id", json_object_new_int64 (id));
  text = json_object_to_json_string_ext (msg, JSON_C_TO_STRING_PLAIN
                                         | JSON_C_TO_STRING_NOSLASHESCAPE);
  if (text == NULL) {
    json_object_put (msg);
    return -ENOMEM;
  }
  r = send_message (qmp, text, strlen (text), fd, deadline);
  if (r == 0)
    r = send_message (qmp, "\n", 1, -1, deadline);
  json_object_put (msg);
  if (r < 0)
    return r;
  return await_reply (qmp, id, deadline, reply);
}

int
qmp_execute_object (struct qmp *qmp, const char *command,
                    struct json_object *args,
                    struct json_object **reply, int timeout_ms)
{
  return qmp_execute_with_fd (qmp, command, args, -1, reply, timeout_ms);
}

int
qmp_execute (struct qmp *qmp, const char *command, const char *args_json,
             struct json_object **reply, int timeout_ms)
{
  struct json_object *args = NULL;
  int r;

  if (reply)
    *reply = NULL;
  if (args_json) {
    args = json_tokener_parse (args_json);
    if (args == NULL || !json_object_is_type (args, json_type_object)) {
      json_object_put (args);
      return -EINVAL;
    }
  }
  r = qmp_execute_object (qmp, command, args, reply, timeout_ms);
  json_object_put (args);
  return r;
}

int
qmp_getfd (struct qmp *qmp, const char *name, int fd, int timeout_ms)
{
  struct json_object *args = json_object_new_object ();
  int r;

  if (args == NULL)
    return -ENOMEM;
  json_object_object_add (args, "fdname", json_object_new_string (name));
  r = qmp_execute_with_fd (qmp, "getfd", args, fd, NULL, timeout_ms);
  json_object_put (args);
  return r;
}

const char *
qmp_error (const struct qmp *qmp)
{
  return qmp->error_desc ? qmp->error_desc : "";
}

const char *
qmp_error_class (const struct qmp *qmp)
{
  return qmp->error_class ? qmp->error_class : "";
}

int
qmp_wait_event (struct qmp *qmp, const char *name, int timeout_ms,
                struct json_object **event)
{
  int64_t deadline = qmp_deadline (timeout_ms);
  struct json_object *msg;
  int r;

  if (event)
    *event = NULL;
  for (;;) {
    msg = take_event (qmp, name);
    if (msg) {
      if (event)
        *event = msg;
      else
        json_object_put (msg);
      return 0;
    }
    r = read_message (qmp, deadline, &msg);
    if (r < 0)
      return r;
    keep_event (qmp, msg);
  }
}

/* Queues the events that have already arrived, without waiting. */
static int
read_available (struct qmp *qmp)
{
  int64_t now = now_ms ();
  struct json_object *msg;
  int r;

  for (;;) {
    r = read_message (qmp, now, &msg);
    if (r == -ETIMEDOUT)
      return 0;
    if (r < 0)
      return r;
    keep_event (qmp, msg);
  }
}

int
qmp_discard_events (struct qmp *qmp, const char *name)
{
  struct json_object *event;
  int r;

  r = read_available (qmp);
  if (r < 0)
    return r;
  while ((event = take_event (qmp, name)) != NULL)
    json_object_put (event);
  return 0;
}

long long
qmp_event_time_us (struct json_object *event)
{
  struct json_object *ts, *sec, *usec;

  if (!json_object_object_get_ex (event, "timestamp", &ts)
      || !json_object_object_get_ex (ts, "seconds", &sec)
      || !json_object_object_get_ex (ts, "microseconds", &usec))
    return -1;
  return json_object_get_int64 (sec) * 1000000LL + json_object_get_int64 (usec);
}

const char *
qmp_qemu_version (const struct qmp *qmp)
{
  return qmp->version;
}

/* Keeps "major.minor.micro" from the greeting's QMP.version.qemu. */
static int
parse_greeting (struct qmp *qmp, struct json_object *greeting)
{
  struct json_object *qmp_member, *version, *qemu, *major, *minor, *micro;

  if (!json_object_object_get_ex (greeting, "QMP", &qmp_member))
    return -EPROTO;
  if (json_object_object_get_ex (qmp_member, "version", &version)
      && json_object_object_get_ex (version, "qemu", &qemu)
      && json_object_object_get_ex (qemu, "major", &major)
      && json_object_object_get_ex (qemu, "minor", &minor)
      && json_object_object_get_ex (qemu, "micro", &micro))
    snprintf (qmp->version, sizeof qmp->version, "%d.%d.%d",
              json_object_get_int (major), json_object_get_int (minor),
              json_object_get_int (micro));
  return 0;
}

/* One connection attempt: 0, or -errno from socket/connect. */
static int
connect_once (const struct sockaddr_un *addr, int *fdp)
{
  int fd, r;

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  if (connect (fd, (const struct sockaddr *) addr, sizeof *addr) == 0) {
    *fdp = fd;
    return 0;
  }
  r = -errno;
  close (fd);
  return r;
}

int
qmp_connect (const char *path, int timeout_ms, struct qmp **qmpp)
{
  int64_t deadline = qmp_deadline (timeout_ms);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct json_object *greeting;
  struct qmp *qmp;
  int r;

  *qmpp = NULL;
  if (strlen (path) >= sizeof addr.sun_path)
    return -ENAMETOOLONG;
  strcpy (addr.sun_path, path);

  qmp = calloc (1, sizeof *qmp);
  if (qmp == NULL)
    return -ENOMEM;
  qmp->fd = -1;

  /* QEMU creates the socket a little after it starts: retry until then.
   * EAGAIN is a full backlog, which also clears by itself. */
  for (;;) {
    r = connect_once (&addr, &qmp->fd);
    if (r == 0)
      break;
    if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN)
      goto err_free;
    if (deadline >= 0 && now_ms () + QMP_CONNECT_RETRY_MS > deadline) {
      r = -ETIMEDOUT;
      goto err_free;
    }
    usleep (QMP_CONNECT_RETRY_MS * 1000);
  }

  /* QEMU serves one QMP client at a time: while another holds the monitor
   * the greeting does not come, and this times out. */
  r = read_message (qmp, deadline, &greeting);
  if (r < 0)
    goto err_free;
  r = parse_greeting (qmp, greeting);
  json_object_put (greeting);
  if (r < 0)
    goto err_free;

  r = qmp_execute (qmp, "qmp_capabilities", NULL, NULL,
                   qmp_left_ms (deadline));
  if (r < 0)
    goto err_free;
  *qmpp = qmp;
  return 0;

 err_free:
  qmp_close (qmp);
  return r;
}

void
qmp_close (struct qmp *qmp)
{
  struct qmp_event *e, *next;

  if (qmp == NULL)
    return;
  if (qmp->fd >= 0)
    close (qmp->fd);
  for (e = qmp->head; e; e = next) {
    next = e->next;
    event_free (e);
  }
  clear_error (qmp);
  free (qmp->buf);
  free (qmp);
}
