/* test-plugin-writers: the plugin's table of branches it writes
 * (nbd-plugin/writers.c): one shared open branch per name, its control
 * socket while held, a flush when the last user lets go, and the branch
 * lock that keeps every other process out until then. */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "store/store.h"
#include "nbd-plugin/writers.h"
#include "tap.h"

#define SIZE (1 << 20)

static char dir[] = "/tmp/cairn-test-plugin-writers.XXXXXX";

/* Connections that come and go at once: each of THREADS acquires main,
 * writes its byte over its own 4 KiB and lets go, ROUNDS times.  A last
 * user's flush runs outside writers_lock, so others take the writer over
 * while it flushes (under ASan, a writer freed under a user shows). */
#define THREADS 4
#define ROUNDS 100

struct churn {
  struct cairn_store *s;
  int n, failed;
};

static void *
churn (void *arg)
{
  struct churn *c = arg;
  char data[4096];
  struct writer *w;

  for (int i = 0; i < ROUNDS; i++) {
    memset (data, 'A' + c->n * ROUNDS % 26 + i % 26, sizeof data);
    if (writer_acquire (c->s, "main", &w) < 0
        || cairn_bvol_write (cairn_branch_volume (w->branch, "disk"), data,
                             sizeof data, 524288 + c->n * sizeof data) < 0) {
      c->failed++;
      continue;
    }
    if (writer_release (w) < 0)
      c->failed++;
  }
  return NULL;
}

/* A process that waits for a byte on GO, then tries to write branch
 * "main" and exits with 0 if it could, 1 if it was held, naming PID, and
 * 2 on anything else.  Forked before any thread exists. */
static pid_t
spawn_prober (int *go)
{
  int p[2];
  if (pipe (p) == -1)
    abort ();
  pid_t pid = fork ();
  if (pid == 0) {
    char c;
    close (p[1]);
    if (read (p[0], &c, 1) != 1)
      _exit (2);
    struct cairn_store *s;
    struct cairn_branch *b;
    if (cairn_store_open (dir, 0, &s) < 0)
      _exit (2);
    int r = cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b);
    if (r == 0) {
      cairn_branch_close (b);
      _exit (0);
    }
    char want[64];
    snprintf (want, sizeof want, "(pid %d)", (int) getppid ());
    _exit (r == CAIRN_EHELD && strstr (cairn_last_error (), want) ? 1 : 2);
  }
  close (p[0]);
  *go = p[1];
  return pid;
}

static int
prober_result (pid_t pid, int go)
{
  int status;
  if (write (go, "x", 1) != 1)
    return -1;
  close (go);
  if (waitpid (pid, &status, 0) != pid || !WIFEXITED (status))
    return -1;
  return WEXITSTATUS (status);
}

static bool
commit_reads (struct cairn_store *s, const struct cairn_id *id,
              const char *want, size_t len, uint64_t off)
{
  struct cairn_view view;
  struct cairn_txn *txn;
  char *buf = malloc (len);
  cairn_txn_begin (s, false, &txn);
  int r = cairn_view_open (s, txn, id, "disk", &view);
  cairn_txn_abort (s, txn);
  bool same = r == 0 && cairn_view_read (&view, buf, len, off) == 0
    && memcmp (buf, want, len) == 0;
  free (buf);
  return same;
}

int
main (void)
{
  struct cairn_store *s;
  struct writer *w1, *w2, *w3;
  char first[4096], second[4096], buf[4096];
  struct cairn_id id;
  int go_held, go_free;

  if (!mkdtemp (dir))
    abort ();
  plan (19);
  memset (first, 'a', sizeof first);
  memset (second, 'b', sizeof second);
  ok (cairn_store_init (dir, NULL) == 0 && cairn_store_open (dir, 0, &s) == 0
      && cairn_branch_create_empty (s, "main", "disk", SIZE) == 0,
      "a store with branch main");
  pid_t held = spawn_prober (&go_held);
  pid_t freed = spawn_prober (&go_free);

  is_int (writer_acquire (s, "nosuch", &w1), CAIRN_ENOREF,
          "a branch that does not exist is not acquired");
  is_int (writers_count (), 0, "and nothing is held");

  ok (writer_acquire (s, "main", &w1) == 0
      && writer_acquire (s, "main", &w2) == 0, "two users acquire main");
  ok (w1 == w2 && w1->users == 2, "and share one writer");
  is_int (writers_count (), 1, "one branch is held");

  /* Another process cannot write it, and learns who does. */
  is_int (prober_result (held, go_held), 1,
          "another process gets CAIRN_EHELD naming this pid");

  /* The control socket answers for the branch while it is held. */
  struct json_object *req = json_object_new_object (), *reply = NULL, *pid;
  json_object_object_add (req, "op", json_object_new_string ("ping"));
  ok (cairn_control_request (s, "main", req, &reply, 5000) == 0
      && json_object_object_get_ex (reply, "pid", &pid)
      && json_object_get_int (pid) == getpid (),
      "its control socket answers with this pid");
  json_object_put (req);
  json_object_put (reply);

  struct cairn_bvol *v = cairn_branch_volume (w1->branch, "disk");
  ok (v && cairn_bvol_write (v, first, sizeof first, 65536 - 1000) == 0,
      "a write through one user");
  ok (cairn_commit_branch (s, "main", NULL, &id) == 0
      && commit_reads (s, &id, first, sizeof first, 65536 - 1000),
      "cairn_commit_branch goes through the writer and gets the write");

  ok (writer_release (w2) == 0 && writers_count () == 1,
      "one user leaves: the branch stays held");
  ok (writer_acquire (s, "main", &w3) == 0 && w3 == w1,
      "a newcomer shares it still");
  ok (writer_release (w3) == 0 && cairn_bvol_write (v, second, sizeof second,
                                                    300000) == 0,
      "a write, not flushed, by the remaining user");
  ok (writer_release (w1) == 0 && writers_count () == 0,
      "the last user leaves: nothing is held");

  /* The last release flushed: reopening finds the unflushed write. */
  struct cairn_branch *b;
  ok (cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0
      && cairn_bvol_read (cairn_branch_volume (b, "disk"), buf, sizeof buf,
                          300000) == 0
      && memcmp (buf, second, sizeof buf) == 0,
      "the write survived the close: release flushed it");
  cairn_branch_close (b);

  is_int (prober_result (freed, go_free), 0,
          "another process may write the branch now");
  struct json_object *req2 = json_object_new_object ();
  json_object_object_add (req2, "op", json_object_new_string ("ping"));
  is_int (cairn_control_request (s, "main", req2, NULL, 5000), -ENOENT,
          "and the control socket is gone");
  json_object_put (req2);

  pthread_t t[THREADS];
  struct churn c[THREADS];
  int failed = 0;
  for (int i = 0; i < THREADS; i++) {
    c[i] = (struct churn) { s, i, 0 };
    pthread_create (&t[i], NULL, churn, &c[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join (t[i], NULL);
    failed += c[i].failed;
  }
  ok (failed == 0 && writers_count () == 0,
      "connections coming and going at once all work, and leave nothing "
      "held");
  bool opened = cairn_branch_open (s, "main", CAIRN_BRANCH_WRITE, &b) == 0;
  bool all = opened;
  for (int i = 0; all && i < THREADS; i++) {
    char want[4096];
    memset (want, 'A' + i * ROUNDS % 26 + (ROUNDS - 1) % 26, sizeof want);
    all = cairn_bvol_read (cairn_branch_volume (b, "disk"), buf, sizeof buf,
                           524288 + i * sizeof buf) == 0
      && memcmp (buf, want, sizeof buf) == 0;
  }
  if (opened)
    cairn_branch_close (b);
  ok (all, "and each one's last write is there");

  cairn_store_close (s);
  cairn_remove_tree (dir);
  return tap_exit_status ();
}
