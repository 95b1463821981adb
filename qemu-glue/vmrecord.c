/* vmrecord.c: VM records in CAIRN_TABLE_VMS (format in vm.h), the paths
 * of a VM's files, and its state.
 *
 * A record is JSON so that a person (or gc, or a later cairn) can read it
 * with any tool, and so that adding a member breaks no reader.  Records
 * are small and rare (one write per vm command), so the cost of JSON does
 * not matter.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "qemu-glue/vm-internal.h"

#define VM_RECORD_FORMAT 1

/* ------------------------------------------------------------------ */
/* Paths                                                               */

int
vm_path (const char *dir, const char *file, char *buf)
{
  if (snprintf (buf, PATH_MAX, "%s/%s", dir, file) >= PATH_MAX)
    return cairn_error (-ENAMETOOLONG, "path too long: %s/%s", dir, file);
  return 0;
}

int
vm_socket_path (const char *dir, const char *file, char *buf)
{
  int r = vm_path (dir, file, buf);

  if (r == 0 && strlen (buf) >= sizeof ((struct sockaddr_un *) 0)->sun_path)
    return cairn_error (-ENAMETOOLONG, "the socket path %s is longer than "
                        "a unix socket allows (%zu bytes): use a store with "
                        "a shorter path, or a shorter VM name", buf,
                        sizeof ((struct sockaddr_un *) 0)->sun_path - 1);
  return r;
}

int
vm_run_dir (struct cairn_store *s, const char *name, char *buf)
{
  char store[PATH_MAX];

  if (!realpath (cairn_store_path (s), store))
    return cairn_error (-errno, "%s: %m", cairn_store_path (s));
  if (snprintf (buf, PATH_MAX, "%s/run/vms/%s", store, name) >= PATH_MAX)
    return cairn_error (-ENAMETOOLONG, "the store's path is too long");
  return 0;
}

int
vm_ram_dir (struct cairn_store *s, const char *name, char *buf)
{
  const char *base = getenv ("CAIRN_VM_RAM_DIR");
  char store[PATH_MAX], hex[CAIRN_HEX_SIZE + 1];
  struct cairn_id id;

  if (!base || !*base)
    base = "/dev/shm";
  if (!realpath (cairn_store_path (s), store))
    return cairn_error (-errno, "%s: %m", cairn_store_path (s));
  cairn_sha256 (store, strlen (store), &id);
  cairn_id_to_hex (&id, hex);
  if (snprintf (buf, PATH_MAX, "%s/cairn-%.16s/%s", base, hex, name)
      >= PATH_MAX)
    return cairn_error (-ENAMETOOLONG, "$CAIRN_VM_RAM_DIR is too long");
  return 0;
}

int
vm_lock (const char *dir, const char *name, int *fd)
{
  char path[PATH_MAX];
  int r = vm_path (dir, "lock", path);

  if (r < 0)
    return r;
  *fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (*fd < 0)
    return cairn_error (-errno, "%s: %m", path);
  if (flock (*fd, LOCK_EX | LOCK_NB) < 0) {
    r = errno == EWOULDBLOCK ? -EBUSY : -errno;
    close (*fd);
    *fd = -1;
    return cairn_error (r, "another cairn vm command is working on VM %s",
                        name);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static struct json_object *
process_json (const struct vm_process *p)
{
  struct json_object *o = json_object_new_object ();
  json_object_object_add (o, "pid", json_object_new_int (p->pid));
  json_object_object_add (o, "start", json_object_new_int64 (p->start));
  return o;
}

static void
add_string (struct json_object *o, const char *key, const char *value)
{
  json_object_object_add (o, key, json_object_new_string (value ? value : ""));
}

int
vm_record_encode (const struct vm_record *r, char **json)
{
  struct json_object *o = json_object_new_object ();
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE];
  char *line = NULL;
  int e;

  if (!o)
    return -ENOMEM;
  e = vm_machine_format (&r->machine, &line);
  if (e < 0) {
    json_object_put (o);
    return e;
  }
  cairn_time_format (r->created, when);
  json_object_object_add (o, "format", json_object_new_int (VM_RECORD_FORMAT));
  add_string (o, "name", r->name);
  add_string (o, "branch", r->branch);
  add_string (o, "created", when);
  add_string (o, "dir", r->dir);
  add_string (o, "ram", r->ram);
  add_string (o, "ref", r->ref);
  add_string (o, "nbd_socket", r->nbd_socket);
  json_object_object_add (o, "qemu", process_json (&r->qemu));
  json_object_object_add (o, "nbdkit",
                          r->nbdkit.pid ? process_json (&r->nbdkit) : NULL);
  add_string (o, "machine", line);
  add_string (o, "kernel", r->kernel);
  add_string (o, "initrd", r->initrd);
  if (cairn_id_is_zero (&r->base))
    hex[0] = '\0';
  else
    cairn_id_to_hex (&r->base, hex);
  add_string (o, "base", hex);
  if (r->have_memory) {
    struct json_object *m = json_object_new_object ();
    cairn_id_to_hex (&r->memory.root, hex);
    json_object_object_add (m, "size", json_object_new_int64 (r->memory.size));
    json_object_object_add (m, "chunk",
                            json_object_new_int64 (r->memory.chunk_size));
    add_string (m, "root", hex);
    json_object_object_add (o, "memory", m);
  }
  else
    json_object_object_add (o, "memory", NULL);
  json_object_object_add (o, "ref_valid", json_object_new_boolean (r->ref_valid));
  free (line);

  *json = strdup (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN
                                                  | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
  return *json ? 0 : -ENOMEM;
}

static const char *
get_string (struct json_object *o, const char *key)
{
  struct json_object *v;
  if (!json_object_object_get_ex (o, key, &v)
      || !json_object_is_type (v, json_type_string))
    return NULL;
  return json_object_get_string (v);
}

static int
dup_string (struct json_object *o, const char *key, char **out)
{
  const char *v = get_string (o, key);
  if (!v)
    return -EBADMSG;
  *out = strdup (v);
  return *out ? 0 : -ENOMEM;
}

static int
copy_string (struct json_object *o, const char *key, char *buf, size_t len)
{
  const char *v = get_string (o, key);
  if (!v || strlen (v) >= len)
    return -EBADMSG;
  strcpy (buf, v);
  return 0;
}

static int
get_process (struct json_object *o, const char *key, struct vm_process *p)
{
  struct json_object *v, *m;

  memset (p, 0, sizeof *p);
  if (!json_object_object_get_ex (o, key, &v) || !v)
    return 0;
  if (!json_object_is_type (v, json_type_object))
    return -EBADMSG;
  if (json_object_object_get_ex (v, "pid", &m))
    p->pid = json_object_get_int (m);
  if (json_object_object_get_ex (v, "start", &m))
    p->start = json_object_get_int64 (m);
  return 0;
}

int
vm_record_decode (const char *json, size_t len, struct vm_record *r)
{
  struct json_tokener *tok = json_tokener_new ();
  struct json_object *o, *v, *m;
  const char *s;
  int e = 0;

  memset (r, 0, sizeof *r);
  if (!tok)
    return -ENOMEM;
  o = json_tokener_parse_ex (tok, json, len);
  json_tokener_free (tok);
  if (!o || !json_object_is_type (o, json_type_object)) {
    json_object_put (o);
    return -EBADMSG;
  }
  if (!json_object_object_get_ex (o, "format", &v)
      || json_object_get_int (v) != VM_RECORD_FORMAT)
    e = -EBADMSG;
  if (e == 0)
    e = copy_string (o, "name", r->name, sizeof r->name);
  if (e == 0)
    e = copy_string (o, "branch", r->branch, sizeof r->branch);
  if (e == 0 && (s = get_string (o, "created")))
    cairn_time_parse (s, &r->created);
  if (e == 0)
    e = dup_string (o, "dir", &r->dir);
  if (e == 0)
    e = dup_string (o, "ram", &r->ram);
  if (e == 0)
    e = dup_string (o, "ref", &r->ref);
  if (e == 0)
    e = dup_string (o, "nbd_socket", &r->nbd_socket);
  if (e == 0)
    e = dup_string (o, "kernel", &r->kernel);
  if (e == 0)
    e = dup_string (o, "initrd", &r->initrd);
  if (e == 0)
    e = get_process (o, "qemu", &r->qemu);
  if (e == 0)
    e = get_process (o, "nbdkit", &r->nbdkit);
  if (e == 0) {
    s = get_string (o, "machine");
    e = s ? vm_machine_parse (s, &r->machine) : -EBADMSG;
  }
  if (e == 0) {
    s = get_string (o, "base");
    if (!s)
      e = -EBADMSG;
    else if (*s)
      e = cairn_id_from_hex (s, &r->base) < 0 ? -EBADMSG : 0;
  }
  if (e == 0 && json_object_object_get_ex (o, "memory", &v) && v) {
    r->have_memory = true;
    strcpy (r->memory.name, "memory");
    if (json_object_object_get_ex (v, "size", &m))
      r->memory.size = json_object_get_int64 (m);
    if (json_object_object_get_ex (v, "chunk", &m))
      r->memory.chunk_size = json_object_get_int64 (m);
    s = get_string (v, "root");
    if (!s || cairn_id_from_hex (s, &r->memory.root) < 0)
      e = -EBADMSG;
  }
  if (e == 0 && json_object_object_get_ex (o, "ref_valid", &v))
    r->ref_valid = json_object_get_boolean (v);
  json_object_put (o);
  if (e < 0)
    vm_record_free (r);
  return e;
}

void
vm_record_free (struct vm_record *r)
{
  free (r->dir);
  free (r->ram);
  free (r->ref);
  free (r->nbd_socket);
  free (r->kernel);
  free (r->initrd);
  vm_machine_free (&r->machine);
  r->dir = r->ram = r->ref = r->nbd_socket = r->kernel = r->initrd = NULL;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */

int
vm_record_get (struct cairn_store *s, const char *name, struct vm_record *r)
{
  struct cairn_txn *txn;
  struct cairn_val v;
  int e = cairn_txn_begin (s, false, &txn);

  if (e < 0)
    return e;
  e = cairn_record_get (txn, CAIRN_TABLE_VMS, name, strlen (name), &v);
  if (e == 0)
    e = vm_record_decode (v.data, v.len, r);
  cairn_txn_abort (s, txn);
  if (e == -ENOENT)
    return cairn_error (CAIRN_ENOREF, "there is no VM '%s' (cairn vm ls "
                        "lists them)", name);
  if (e == -EBADMSG)
    return cairn_error (e, "the record of VM '%s' is damaged", name);
  return e;
}

int
vm_record_put (struct cairn_store *s, const struct vm_record *r, bool create)
{
  struct cairn_txn *txn;
  struct cairn_val old;
  char *json;
  int e = vm_record_encode (r, &json);

  if (e < 0)
    return e;
  e = cairn_txn_begin (s, true, &txn);
  if (e < 0) {
    free (json);
    return e;
  }
  if (create && cairn_record_get (txn, CAIRN_TABLE_VMS, r->name,
                                  strlen (r->name), &old) == 0)
    e = cairn_error (-EEXIST, "there is a VM '%s' already (cairn vm stop "
                     "%s ends it)", r->name, r->name);
  if (e == 0)
    e = cairn_record_put (txn, CAIRN_TABLE_VMS, r->name, strlen (r->name),
                          json, strlen (json));
  if (e == 0)
    e = cairn_txn_commit (s, txn);
  else
    cairn_txn_abort (s, txn);
  free (json);
  return e;
}

int
vm_record_delete (struct cairn_store *s, const char *name)
{
  struct cairn_txn *txn;
  int e = cairn_txn_begin (s, true, &txn);

  if (e < 0)
    return e;
  e = cairn_record_delete (txn, CAIRN_TABLE_VMS, name, strlen (name));
  if (e == 0 || e == -ENOENT)
    e = cairn_txn_commit (s, txn);
  else
    cairn_txn_abort (s, txn);
  return e;
}

struct list_ctx {
  size_t n, cap;
  char **names;
};

static int
collect_name (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct list_ctx *l = arg;
  if (l->n == l->cap) {
    size_t cap = l->cap * 2 + 8;
    char **p = realloc (l->names, cap * sizeof *p);
    if (!p)
      return -ENOMEM;
    l->names = p;
    l->cap = cap;
  }
  l->names[l->n] = strndup (key.data, key.len);
  if (!l->names[l->n])
    return -ENOMEM;
  l->n++;
  return 0;
}

int
vm_record_list (struct cairn_store *s,
                int (*fn) (const struct vm_record *r, void *arg), void *arg)
{
  struct list_ctx l = { 0 };
  struct cairn_txn *txn;
  int e = cairn_txn_begin (s, false, &txn);

  if (e < 0)
    return e;
  e = cairn_record_scan (txn, CAIRN_TABLE_VMS, "", 0, collect_name, &l);
  cairn_txn_abort (s, txn);
  for (size_t i = 0; i < l.n && e == 0; i++) {
    struct vm_record r;
    e = vm_record_get (s, l.names[i], &r);
    if (e == CAIRN_ENOREF) {    /* stopped meanwhile */
      e = 0;
      continue;
    }
    if (e == 0) {
      e = fn (&r, arg);
      vm_record_free (&r);
    }
  }
  for (size_t i = 0; i < l.n; i++)
    free (l.names[i]);
  free (l.names);
  return e;
}

struct keep_ctx {
  int (*add) (void *ctx, const struct cairn_id *commit, const char *why);
  void *ctx;
};

static int
keep_one (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct keep_ctx *k = arg;
  struct vm_record r;
  char why[VM_NAME_MAX + 8];
  int e = vm_record_decode (value.data, value.len, &r);

  if (e == -EBADMSG)
    return cairn_error (e, "the record of VM '%.*s' is damaged",
                        (int) key.len, (const char *) key.data);
  if (e < 0)
    return e;
  if (!cairn_id_is_zero (&r.base)) {
    snprintf (why, sizeof why, "vm %s", r.name);
    e = k->add (k->ctx, &r.base, why);
  }
  vm_record_free (&r);
  return e;
}

int
vm_keep_commits (struct cairn_store *s, struct cairn_txn *txn,
                 int (*add) (void *ctx, const struct cairn_id *commit,
                             const char *why),
                 void *ctx, void *arg)
{
  struct keep_ctx k = { add, ctx };
  return cairn_record_scan (txn, CAIRN_TABLE_VMS, "", 0, keep_one, &k);
}

/* ------------------------------------------------------------------ */
/* State                                                               */

void
vm_state (const struct vm_record *r, char *buf, size_t len)
{
  char qmp_path[PATH_MAX];
  struct json_object *reply, *status;
  struct qmp *qmp;

  if (r->qemu.pid == 0) {
    snprintf (buf, len, "starting");
    return;
  }
  if (!vm_process_alive (&r->qemu)) {
    snprintf (buf, len, "dead");
    return;
  }
  snprintf (buf, len, "busy");
  if (vm_socket_path (r->dir, "qmp.sock", qmp_path) < 0
      || qmp_connect (qmp_path, 300, &qmp) < 0)
    return;
  if (qmp_execute (qmp, "query-status", NULL, &reply, 1000) == 0) {
    if (json_object_object_get_ex (reply, "status", &status))
      snprintf (buf, len, "%s", json_object_get_string (status));
    json_object_put (reply);
  }
  qmp_close (qmp);
}
