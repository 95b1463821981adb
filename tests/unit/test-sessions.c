/* test-sessions: pins, leases, the control socket and incremental volume
 * stores (store/pin.c, store/control.c, store/import.c). */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "store/store.h"
#include "tap.h"

static struct cairn_store *s;
static char path[256];

static int
count_lease (const struct cairn_id *id, void *arg)
{
  (*(int *) arg)++;
  return 0;
}

struct mem_source {
  char *data;
  uint64_t size;
  int reads;
};

static int
mem_read (void *arg, void *buf, size_t len, uint64_t off)
{
  struct mem_source *m = arg;
  __atomic_add_fetch (&m->reads, 1, __ATOMIC_SEQ_CST);
  memcpy (buf, m->data + off, len);
  return 0;
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-sessions.XXXXXX";
  struct cairn_pin *pin;
  struct cairn_lease *lease;
  uint64_t epoch;
  int n;

  if (!mkdtemp (dir))
    return 1;
  snprintf (path, sizeof path, "%s/store", dir);
  cairn_store_init (path, NULL);
  cairn_store_open (path, 0, &s);

  /* Pins. */
  ok (cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == UINT64_MAX,
      "no pin: nothing is protected");
  ok (cairn_pin_begin (s, &pin) == 0, "pin");
  ok (cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == 0,
      "a live pin protects from its epoch on");
  cairn_pin_end (pin);
  ok (cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == UINT64_MAX,
      "an ended pin protects nothing");

  /* A pin whose process died (kill -9) protects nothing, and cleanup
   * removes its record. */
  int pfd[2];
  pipe (pfd);
  pid_t pid = fork ();
  if (pid == 0) {
    struct cairn_store *cs;
    struct cairn_pin *cp;
    if (cairn_store_open (path, 0, &cs) < 0 || cairn_pin_begin (cs, &cp) < 0)
      _exit (1);
    write (pfd[1], "x", 1);
    pause ();
  }
  char c;
  read (pfd[0], &c, 1);
  ok (cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == 0,
      "another process's live pin counts");
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
  ok (cairn_pins_oldest_epoch (s, &epoch) == 0 && epoch == UINT64_MAX,
      "a killed process's pin does not");
  ok (cairn_sessions_cleanup (s) == 0, "cleanup of dead sessions");

  /* Leases. */
  struct cairn_id commit;
  cairn_branch_create_empty (s, "main", "disk", 1 << 20);
  struct cairn_branch *b;
  cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b);
  cairn_branch_commit (b, NULL, &commit);
  ok (cairn_lease_begin (s, &commit, &lease) == 0, "lease a commit");
  n = 0;
  cairn_leases_list (s, count_lease, &n);
  is_int (n, 1, "one live lease listed");
  cairn_lease_end (lease);
  n = 0;
  cairn_leases_list (s, count_lease, &n);
  is_int (n, 0, "none after it ends");

  /* The control socket: a commit and a ping through it. */
  struct cairn_control *ctl;
  ok (cairn_control_start (s, b, NULL, NULL, &ctl) == 0, "control socket");
  struct cairn_bvol *v = cairn_branch_volume (b, "disk");
  char buf[4096];
  memset (buf, 'a', sizeof buf);
  cairn_bvol_write (v, buf, sizeof buf, 8192);
  struct cairn_id via;
  const char *labels[] = { "via=socket", NULL };
  pid = fork ();
  if (pid == 0) {
    /* Another process, as the cairn command would be. */
    struct cairn_store *cs;
    struct cairn_id id;
    if (cairn_store_open (path, 0, &cs) < 0)
      _exit (1);
    struct cairn_commit_options o = { .message = "live", .labels = labels };
    int r = cairn_commit_branch (cs, "main", &o, &id);
    _exit (r == 0 ? 0 : 1);
  }
  int status;
  waitpid (pid, &status, 0);
  ok (WIFEXITED (status) && WEXITSTATUS (status) == 0,
      "another process commits the live branch through its socket");
  cairn_branch_base (b, &via);
  struct cairn_txn *txn;
  struct cairn_commit *cm;
  cairn_txn_begin (s, false, &txn);
  ok (cairn_commit_read (txn, &via, &cm) == 0
      && strcmp (cm->message, "live") == 0
      && strcmp (cairn_commit_label (cm, "via"), "socket") == 0,
      "the branch's base is that commit, with its message and label");
  cairn_commit_free (cm);
  struct cairn_view view;
  ok (cairn_view_open (s, txn, &via, "disk", &view) == 0
      && cairn_view_read (&view, buf, 4096, 8192) == 0 && buf[100] == 'a',
      "it holds the write made before the request");
  cairn_txn_abort (s, txn);
  struct json_object *req = json_tokener_parse ("{\"op\":\"ping\"}"), *reply;
  ok (cairn_control_request (s, "main", req, &reply, 5000) == 0, "ping");
  json_object_put (reply);
  json_object_put (req);
  req = json_tokener_parse ("{\"op\":\"reboot\"}");
  ok (cairn_control_request (s, "main", req, NULL, 5000) == -ENOTSUP,
      "an unknown request is refused");
  ok (strstr (cairn_last_error (), "unknown request") != NULL,
      "with the server's message: %s", cairn_last_error ());
  json_object_put (req);
  cairn_control_stop (ctl);
  req = json_tokener_parse ("{\"op\":\"ping\"}");
  ok (cairn_control_request (s, "main", req, NULL, 1000) == -ENOENT,
      "no server after stop");
  json_object_put (req);
  cairn_branch_close (b);

  /* Incremental volume store: only the marked chunks are read. */
  struct mem_source m = { .size = 64 << 20 };
  m.data = malloc (m.size);
  for (uint64_t i = 0; i < m.size; i++)
    m.data[i] = (char) (i * 2654435761u >> 13);
  struct cairn_import_source src = { .size = m.size, .read = mem_read,
                                     .arg = &m };
  struct cairn_volume full, inc, fresh;
  ok (cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &full, NULL) == 0,
      "store a 64 MiB volume");
  strcpy (full.name, "memory");
  uint64_t nchunks = m.size / 65536;
  uint8_t *changed = calloc (nchunks / 8, 1);
  memset (m.data + 5 * 65536 + 100, 0x5a, 10);
  memset (m.data + 900 * 65536, 0x33, 65536);
  changed[5 / 8] |= 1 << (5 % 8);
  changed[900 / 8] |= 1 << (900 % 8);
  m.reads = 0;
  ok (cairn_volume_store (s, &src, &full, changed, NULL, NULL, &inc, NULL)
      == 0, "store it again with two chunks marked changed");
  is_int (m.reads, 2, "only the two marked chunks were read");
  ok (cairn_volume_store (s, &src, NULL, NULL, NULL, NULL, &fresh, NULL) == 0
      && cairn_id_equal (&fresh.root, &inc.root),
      "the incremental tree equals a full store of the same bytes");

  free (changed);
  free (m.data);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
