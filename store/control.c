/* control.c: the control socket of a live branch.
 *
 * The process that holds a branch for writing (nbdkit with the cairn
 * plugin, usually) listens on STORE/run/NAME.sock ('/' in NAME escaped as
 * "%2F").  Requests and replies are single lines of JSON:
 *
 *   {"op": "commit", "message": M, "labels": ["k=v", ...], "time": ISO,
 *    "vm": V, "set_volumes": [{"name": N, "size": S, "chunk": C,
 *    "root": HEX}, ...], "extra_parents": [HEX, ...]}
 *                      -> {"ok": true, "id": HEX}
 *   {"op": "flush"}    -> {"ok": true}
 *   {"op": "ping"}     -> {"ok": true, "pid": P, "branch": NAME}
 *   anything else      -> the server's extra handler, or
 *                         {"ok": false, "error": MSG, "code": -95}
 *
 * Failures are {"ok": false, "error": MSG, "code": N} with N a libcairn
 * code, so a client reports exactly what the server would have.
 *
 * The server is one thread that accepts connections and serves each
 * connection's requests in order; one client at a time is enough for
 * commits, which are serialized by the branch anyway.  Stale socket files
 * (a killed server) are replaced: the branch lock proves nobody serves.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "store/internal.h"

#define MAX_LINE (1 << 20)
/* How long a commit waits for a branch held by nobody who answers. */
#define HANDOVER_MS 5000
#define HANDOVER_STEP_MS 10

static int
socket_path (struct cairn_store *s, const char *branch, struct sockaddr_un *sa)
{
  char file[3 * CAIRN_NAME_MAX + 1];

  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  branch_file_name (branch, file, sizeof file);
  if (snprintf (sa->sun_path, sizeof sa->sun_path, "%s/run/%s.sock",
                s->path, file) >= (int) sizeof sa->sun_path)
    return cairn_error (-ENAMETOOLONG, "the control socket path of branch "
                        "'%s' is longer than %zu bytes: use a shorter store "
                        "path", branch, sizeof sa->sun_path - 1);
  return 0;
}

/* Writes all of LINE and a newline. */
static int
send_line (int fd, const char *line)
{
  size_t len = strlen (line);
  char *buf = malloc (len + 1);
  if (!buf)
    return -ENOMEM;
  memcpy (buf, line, len);
  buf[len] = '\n';
  size_t done = 0;
  int r = 0;
  while (done < len + 1) {
    ssize_t n = send (fd, buf + done, len + 1 - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      r = -errno;
      break;
    }
    done += n;
  }
  free (buf);
  return r;
}

/* Reads one line (without the newline) into a malloc'd string, waiting
 * at most TIMEOUT_MS for each part of it (-1: forever). */
static int
recv_line (int fd, char **out, int timeout_ms)
{
  size_t len = 0, cap = 256;
  char *buf = malloc (cap);

  if (!buf)
    return -ENOMEM;
  for (;;) {
    if (timeout_ms >= 0) {
      struct pollfd pfd = { fd, POLLIN, 0 };
      int n = poll (&pfd, 1, timeout_ms);
      if (n == 0) {
        free (buf);
        return -ETIMEDOUT;
      }
      if (n < 0 && errno != EINTR) {
        free (buf);
        return -errno;
      }
    }
    char c;
    ssize_t n = recv (fd, &c, 1, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      free (buf);
      return n == 0 ? -ECONNRESET : -errno;
    }
    if (c == '\n')
      break;
    if (len + 2 > cap) {
      if (cap >= MAX_LINE) {
        free (buf);
        return -EMSGSIZE;
      }
      cap *= 2;
      char *p = realloc (buf, cap);
      if (!p) {
        free (buf);
        return -ENOMEM;
      }
      buf = p;
    }
    buf[len++] = c;
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

int
cairn_control_request (struct cairn_store *s, const char *branch,
                       struct json_object *request,
                       struct json_object **reply, int timeout_ms)
{
  struct sockaddr_un sa;
  char *line = NULL;
  int r = socket_path (s, branch, &sa);

  if (r < 0)
    return r;
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
    r = errno == ECONNREFUSED || errno == ENOENT ? -ENOENT : -errno;
    close (fd);
    if (r == -ENOENT)
      return cairn_error (r, "nobody serves branch '%s'", branch);
    return r;
  }
  r = send_line (fd, json_object_to_json_string_ext (request,
                                                     JSON_C_TO_STRING_PLAIN));
  if (r == 0)
    r = recv_line (fd, &line, timeout_ms);
  close (fd);
  if (r < 0)
    return cairn_error (r, "the writer of branch '%s' did not answer: %s",
                        branch, cairn_strerror (r));
  struct json_object *j = json_tokener_parse (line);
  free (line);
  if (!j || !json_object_is_type (j, json_type_object)) {
    json_object_put (j);
    return cairn_error (-EPROTO, "the writer of branch '%s' answered "
                        "something that is not JSON", branch);
  }
  struct json_object *okv, *err, *code;
  if (!json_object_object_get_ex (j, "ok", &okv)
      || !json_object_get_boolean (okv)) {
    int c = json_object_object_get_ex (j, "code", &code)
      ? json_object_get_int (code) : -EIO;
    r = cairn_error (c < 0 ? c : -EIO, "%s",
                     json_object_object_get_ex (j, "error", &err)
                     ? json_object_get_string (err) : "request failed");
    json_object_put (j);
    return r;
  }
  if (reply)
    *reply = j;
  else
    json_object_put (j);
  return 0;
}

static struct json_object *
options_to_json (const struct cairn_commit_options *o)
{
  struct json_object *req = json_object_new_object ();
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE];

  json_object_object_add (req, "op", json_object_new_string ("commit"));
  if (!o)
    return req;
  if (o->message)
    json_object_object_add (req, "message",
                            json_object_new_string (o->message));
  if (o->labels) {
    struct json_object *a = json_object_new_array ();
    for (size_t i = 0; o->labels[i]; i++)
      json_object_array_add (a, json_object_new_string (o->labels[i]));
    json_object_object_add (req, "labels", a);
  }
  if (o->time) {
    cairn_time_format (o->time, when);
    json_object_object_add (req, "time", json_object_new_string (when));
  }
  if (o->vm)
    json_object_object_add (req, "vm", json_object_new_string (o->vm));
  if (o->nset_volumes) {
    struct json_object *a = json_object_new_array ();
    for (size_t i = 0; i < o->nset_volumes; i++) {
      const struct cairn_volume *v = &o->set_volumes[i];
      struct json_object *jv = json_object_new_object ();
      cairn_id_to_hex (&v->root, hex);
      json_object_object_add (jv, "name", json_object_new_string (v->name));
      json_object_object_add (jv, "size", json_object_new_int64 (v->size));
      json_object_object_add (jv, "chunk", json_object_new_int64 (v->chunk_size));
      json_object_object_add (jv, "root", json_object_new_string (hex));
      json_object_array_add (a, jv);
    }
    json_object_object_add (req, "set_volumes", a);
  }
  if (o->nextra_parents) {
    struct json_object *a = json_object_new_array ();
    for (size_t i = 0; i < o->nextra_parents; i++) {
      cairn_id_to_hex (&o->extra_parents[i], hex);
      json_object_array_add (a, json_object_new_string (hex));
    }
    json_object_object_add (req, "extra_parents", a);
  }
  return req;
}

/* The commit options a request carries; strings borrowed from REQ. */
struct parsed_options {
  struct cairn_commit_options o;
  const char **labels;
  struct cairn_volume *volumes;
  struct cairn_id *parents;
};

static void
parsed_free (struct parsed_options *p)
{
  free (p->labels);
  free (p->volumes);
  free (p->parents);
}

static int
options_from_json (struct json_object *req, struct parsed_options *p)
{
  struct json_object *v;

  memset (p, 0, sizeof *p);
  if (json_object_object_get_ex (req, "message", &v))
    p->o.message = json_object_get_string (v);
  if (json_object_object_get_ex (req, "vm", &v))
    p->o.vm = json_object_get_string (v);
  if (json_object_object_get_ex (req, "time", &v)
      && cairn_time_parse (json_object_get_string (v), &p->o.time) < 0)
    return cairn_error (-EINVAL, "bad time '%s'", json_object_get_string (v));
  if (json_object_object_get_ex (req, "labels", &v)
      && json_object_is_type (v, json_type_array)) {
    size_t n = json_object_array_length (v);
    p->labels = calloc (n + 1, sizeof *p->labels);
    if (!p->labels)
      return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      p->labels[i] = json_object_get_string (json_object_array_get_idx (v, i));
    p->o.labels = p->labels;
  }
  if (json_object_object_get_ex (req, "set_volumes", &v)
      && json_object_is_type (v, json_type_array)) {
    size_t n = json_object_array_length (v);
    p->volumes = calloc (n ? n : 1, sizeof *p->volumes);
    if (!p->volumes)
      return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
      struct json_object *jv = json_object_array_get_idx (v, i), *f;
      struct cairn_volume *vol = &p->volumes[i];
      const char *name = json_object_object_get_ex (jv, "name", &f)
        ? json_object_get_string (f) : "";
      if (strlen (name) > CAIRN_VOLUME_NAME_MAX)
        return cairn_error (-EINVAL, "bad volume name");
      strcpy (vol->name, name);
      vol->size = json_object_object_get_ex (jv, "size", &f)
        ? (uint64_t) json_object_get_int64 (f) : 0;
      vol->chunk_size = json_object_object_get_ex (jv, "chunk", &f)
        ? (uint32_t) json_object_get_int64 (f) : 0;
      if (!json_object_object_get_ex (jv, "root", &f)
          || cairn_id_from_hex (json_object_get_string (f), &vol->root) < 0)
        return cairn_error (-EINVAL, "bad volume root");
    }
    p->o.set_volumes = p->volumes;
    p->o.nset_volumes = n;
  }
  if (json_object_object_get_ex (req, "extra_parents", &v)
      && json_object_is_type (v, json_type_array)) {
    size_t n = json_object_array_length (v);
    p->parents = calloc (n ? n : 1, sizeof *p->parents);
    if (!p->parents)
      return -ENOMEM;
    for (size_t i = 0; i < n; i++)
      if (cairn_id_from_hex (json_object_get_string (
                               json_object_array_get_idx (v, i)),
                             &p->parents[i]) < 0)
        return cairn_error (-EINVAL, "bad parent id");
    p->o.extra_parents = p->parents;
    p->o.nextra_parents = n;
  }
  return 0;
}

int
cairn_control_commit (struct cairn_store *s, const char *branch,
                      const struct cairn_commit_options *o,
                      struct cairn_id *id)
{
  struct json_object *req = options_to_json (o), *reply, *v;
  /* A commit waits behind the sealing of everything written: allow for
   * gigabytes of it. */
  int r = cairn_control_request (s, branch, req, &reply, 10 * 60 * 1000);

  json_object_put (req);
  if (r < 0)
    return r;
  if (!json_object_object_get_ex (reply, "id", &v)
      || cairn_id_from_hex (json_object_get_string (v), id) < 0)
    r = cairn_error (-EPROTO, "the writer of branch '%s' did not say which "
                     "commit it made", branch);
  json_object_put (reply);
  return r;
}

/* Opens branch NAME for writing into *B, or, while another process holds
 * it, asks that writer through ASK (*B is then NULL and ASK's result is
 * returned).  A writer takes the lock before it opens its socket and
 * closes the socket before it lets go of the lock: in those moments the
 * branch is held and nobody answers, or a connection made just before
 * the socket closed is reset unanswered.  Wait them out (up to
 * HANDOVER_MS), then report who holds it. */
static int
open_or_ask (struct cairn_store *s, const char *name,
             int (*ask) (struct cairn_store *, const char *, void *),
             void *arg, struct cairn_branch **b)
{
  for (int waited = 0;; waited += HANDOVER_STEP_MS) {
    *b = NULL;
    int r = cairn_branch_open (s, name, CAIRN_BRANCH_WRITE, b);
    if (r != CAIRN_EHELD || waited >= HANDOVER_MS)
      return r;
    r = ask (s, name, arg);
    if (r != -ENOENT && r != -ECONNRESET && r != -EPIPE)
      return r;
    nanosleep (&(struct timespec) { 0, HANDOVER_STEP_MS * 1000000L }, NULL);
  }
}

struct commit_args {
  const struct cairn_commit_options *o;
  struct cairn_id *id;
};

static int
ask_commit (struct cairn_store *s, const char *name, void *arg)
{
  struct commit_args *a = arg;
  return cairn_control_commit (s, name, a->o, a->id);
}

static int
ask_ping (struct cairn_store *s, const char *name, void *arg)
{
  struct json_object *req = json_object_new_object (), *reply;
  (void) arg;
  json_object_object_add (req, "op", json_object_new_string ("ping"));
  int r = cairn_control_request (s, name, req, &reply, 10 * 1000);
  json_object_put (req);
  if (r == 0)
    json_object_put (reply);
  return r;
}

int
cairn_commit_branch (struct cairn_store *s, const char *name,
                     const struct cairn_commit_options *o,
                     struct cairn_id *id)
{
  struct commit_args a = { o, id };
  struct cairn_branch *b;
  int r = open_or_ask (s, name, ask_commit, &a, &b);

  if (r < 0 || !b)
    return r;
  r = cairn_branch_commit (b, o, id);
  cairn_branch_close (b);
  return r;
}

int
cairn_branch_open_committer (struct cairn_store *s, const char *name,
                             struct cairn_branch **b)
{
  return open_or_ask (s, name, ask_ping, NULL, b);
}

/* ---- server ------------------------------------------------------- */

struct cairn_control {
  struct cairn_store *s;
  struct cairn_branch *b;
  cairn_control_fn extra;
  void *arg;
  int listen_fd;
  int stop_pipe[2];
  pthread_t thread;
  char path[sizeof ((struct sockaddr_un *) 0)->sun_path];
};

static void
reply_error (struct json_object *reply, int code)
{
  const char *msg = cairn_last_error ();
  json_object_object_add (reply, "ok", json_object_new_boolean (0));
  json_object_object_add (reply, "error", json_object_new_string (
                            *msg ? msg : cairn_strerror (code)));
  json_object_object_add (reply, "code", json_object_new_int (code));
}

static struct json_object *
handle (struct cairn_control *ctl, const char *line)
{
  struct json_object *req = json_tokener_parse (line), *op;
  struct json_object *reply = json_object_new_object ();
  const char *name;
  int r = 0;

  cairn_clear_error ();
  if (!req || !json_object_object_get_ex (req, "op", &op)) {
    r = cairn_error (-EINVAL, "a request is a JSON object with an \"op\"");
    goto out;
  }
  name = json_object_get_string (op);
  if (strcmp (name, "commit") == 0) {
    struct parsed_options p;
    struct cairn_id id;
    char hex[CAIRN_HEX_SIZE + 1];
    r = options_from_json (req, &p);
    if (r == 0)
      r = cairn_branch_commit (ctl->b, &p.o, &id);
    parsed_free (&p);
    /* A commit frees what it captured and read back in many threads'
     * arenas: give the pages back, the server lives long. */
    malloc_trim (0);
    if (r == 0) {
      cairn_id_to_hex (&id, hex);
      json_object_object_add (reply, "id", json_object_new_string (hex));
    }
  }
  else if (strcmp (name, "flush") == 0)
    r = cairn_branch_flush (ctl->b);
  else if (strcmp (name, "ping") == 0) {
    json_object_object_add (reply, "pid", json_object_new_int (getpid ()));
    json_object_object_add (reply, "branch", json_object_new_string (
                              cairn_branch_name (ctl->b)));
  }
  else if (ctl->extra)
    r = ctl->extra (ctl->arg, req, reply);
  else
    r = cairn_error (-ENOTSUP, "unknown request '%s'", name);
 out:
  if (r < 0) {
    json_object_put (reply);
    reply = json_object_new_object ();
    reply_error (reply, r);
  }
  else
    json_object_object_add (reply, "ok", json_object_new_boolean (1));
  json_object_put (req);
  return reply;
}

static void *
control_main (void *arg)
{
  struct cairn_control *ctl = arg;

  for (;;) {
    struct pollfd pfd[2] = { { ctl->listen_fd, POLLIN, 0 },
                             { ctl->stop_pipe[0], POLLIN, 0 } };
    if (poll (pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pfd[1].revents)
      break;
    int fd = accept4 (ctl->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    char *line;
    /* A client that connects and says nothing must not wedge the server. */
    while (recv_line (fd, &line, 30000) == 0) {
      struct json_object *reply = handle (ctl, line);
      free (line);
      int r = send_line (fd, json_object_to_json_string_ext (
                           reply, JSON_C_TO_STRING_PLAIN));
      json_object_put (reply);
      if (r < 0)
        break;
    }
    close (fd);
  }
  return NULL;
}

int
cairn_control_start (struct cairn_store *s, struct cairn_branch *b,
                     cairn_control_fn extra, void *arg,
                     struct cairn_control **out)
{
  struct cairn_control *ctl = calloc (1, sizeof *ctl);
  struct sockaddr_un sa;
  int r;

  if (!ctl)
    return -ENOMEM;
  ctl->s = s;
  ctl->b = b;
  ctl->extra = extra;
  ctl->arg = arg;
  ctl->listen_fd = ctl->stop_pipe[0] = ctl->stop_pipe[1] = -1;
  r = socket_path (s, cairn_branch_name (b), &sa);
  if (r < 0)
    goto err;
  strcpy (ctl->path, sa.sun_path);
  /* We hold the branch lock: a socket file here is a dead server's. */
  unlink (ctl->path);
  ctl->listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ctl->listen_fd < 0
      || bind (ctl->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0
      || listen (ctl->listen_fd, 16) < 0
      || pipe2 (ctl->stop_pipe, O_CLOEXEC) < 0) {
    r = cairn_error (-errno, "control socket %s: %m", ctl->path);
    goto err;
  }
  r = -pthread_create (&ctl->thread, NULL, control_main, ctl);
  if (r < 0)
    goto err;
  *out = ctl;
  return 0;

 err:
  if (ctl->listen_fd >= 0) {
    close (ctl->listen_fd);
    unlink (ctl->path);
  }
  if (ctl->stop_pipe[0] >= 0) {
    close (ctl->stop_pipe[0]);
    close (ctl->stop_pipe[1]);
  }
  free (ctl);
  return r;
}

void
cairn_control_stop (struct cairn_control *ctl)
{
  if (!ctl)
    return;
  if (write (ctl->stop_pipe[1], "x", 1) < 0) { /* the thread polls it */ }
  pthread_join (ctl->thread, NULL);
  close (ctl->listen_fd);
  unlink (ctl->path);
  close (ctl->stop_pipe[0]);
  close (ctl->stop_pipe[1]);
  free (ctl);
}
