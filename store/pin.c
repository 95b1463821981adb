/* pin.c: pins and leases, the two ways a live process tells gc to keep
 * something no ref names.
 *
 * A pin keeps gc off objects a writer has stored but not yet named from
 * any commit or working state (an import half done, a VM's memory stored
 * before its commit).  A lease keeps a commit's data alive while a reader
 * uses it, even if retention prunes the commit meanwhile (a file open in
 * cairnfs).  Each is a record in the "sessions" table plus a lock file its
 * process holds with flock for as long as it lives (formats: see store.h,
 * Pins).
 *
 * Every object the pinned writer puts carries an epoch at least the pin's,
 * and gc sweeps only objects older than the oldest live pin.  A pin whose
 * lock file nobody holds belongs to a dead process: gc ignores it and
 * removes its record.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/internal.h"

/* STORE/run/KIND-TAG.lock for the session key "KIND/TAG". */
static bool
session_lock_path (struct cairn_store *s, const char *key, size_t klen,
                   char *path, size_t len)
{
  const char *slash = memchr (key, '/', klen);
  if (!slash || klen >= 64)
    return false;
  snprintf (path, len, "%s/run/%.*s-%.*s.lock", s->path,
            (int) (slash - key), key, (int) (klen - (slash - key) - 1),
            slash + 1);
  return true;
}

/* A pin or a lease: a sessions record and the lock file proving life. */
struct session {
  struct cairn_store *s;
  char key[64];
  char path[4096];
  int fd;
};

struct cairn_pin {
  struct session session;
};

struct cairn_lease {
  struct session session;
};

static atomic_uint session_counter;

/* Creates session KIND ("pin" or "lease") with record VALUE, or, for a pin,
 * the current epoch if VALUE is NULL. */
static int
session_begin (struct cairn_store *s, const char *kind, const void *value,
               size_t vlen, struct session *ss)
{
  unsigned n = atomic_fetch_add (&session_counter, 1);
  struct cairn_txn *txn;
  uint8_t epoch_le[8];
  int r;

  ss->s = s;
  /* The start time keeps a reused pid from ever meeting its old key. */
  snprintf (ss->key, sizeof ss->key, "%s/%d-%u-%llx", kind, (int) getpid (),
            n, (unsigned long long) cairn_time_now ());
  session_lock_path (s, ss->key, strlen (ss->key), ss->path,
                     sizeof ss->path);
  ss->fd = open (ss->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (ss->fd == -1 || flock (ss->fd, LOCK_EX | LOCK_NB) == -1) {
    r = -errno;
    goto err;
  }
  r = txn_begin_session (s, true, &txn);
  if (r < 0)
    goto err;
  if (!value) {
    uint64_t epoch;
    r = meta_get_u64 (txn, "epoch", &epoch);
    cairn_put_le64 (epoch_le, epoch);
    value = epoch_le;
    vlen = sizeof epoch_le;
  }
  if (r == 0)
    r = TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_SESSIONS, ss->key,
                                strlen (ss->key), value, vlen);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    goto err;
  }
  r = cairn_txn_commit (s, txn);
  if (r == 0)
    return 0;

 err:
  if (ss->fd >= 0) {
    unlink (ss->path);
    close (ss->fd);
  }
  return r;
}

static void
session_end (struct session *ss)
{
  struct cairn_txn *txn;

  if (txn_begin_session (ss->s, true, &txn) == 0) {
    if (TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_SESSIONS, ss->key,
                                   strlen (ss->key)) == 0)
      cairn_txn_commit (ss->s, txn);
    else
      cairn_txn_abort (ss->s, txn);
  }
  /* A record left behind (a failed delete) is harmless: without the lock
   * held, gc treats it as dead. */
  unlink (ss->path);
  close (ss->fd);
}

int
cairn_pin_begin (struct cairn_store *s, struct cairn_pin **out)
{
  struct cairn_pin *pin = calloc (1, sizeof *pin);
  if (!pin)
    return -ENOMEM;
  int r = session_begin (s, "pin", NULL, 0, &pin->session);
  if (r < 0) {
    free (pin);
    return r;
  }
  *out = pin;
  return 0;
}

void
cairn_pin_end (struct cairn_pin *pin)
{
  if (!pin)
    return;
  session_end (&pin->session);
  free (pin);
}

int
cairn_lease_begin (struct cairn_store *s, const struct cairn_id *commit,
                   struct cairn_lease **out)
{
  struct cairn_lease *lease = calloc (1, sizeof *lease);
  if (!lease)
    return -ENOMEM;
  int r = session_begin (s, "lease", commit->bytes, CAIRN_ID_SIZE,
                         &lease->session);
  if (r < 0) {
    free (lease);
    return r;
  }
  *out = lease;
  return 0;
}

void
cairn_lease_end (struct cairn_lease *lease)
{
  if (!lease)
    return;
  session_end (&lease->session);
  free (lease);
}

struct oldest_ctx {
  struct cairn_store *s;
  uint64_t oldest;
};

/* True if the session's process still holds its lock file. */
static bool
session_alive (struct cairn_store *s, const char *key, size_t klen)
{
  char path[4096];

  if (!session_lock_path (s, key, klen, path, sizeof path))
    return false;
  int fd = open (path, O_RDWR | O_CLOEXEC);
  if (fd == -1)
    return false;
  bool alive = flock (fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK;
  close (fd);
  return alive;
}

static int
oldest_visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct oldest_ctx *o = arg;

  if (value.len == 8 && session_alive (o->s, key.data, key.len)) {
    uint64_t e = cairn_le64 (value.data);
    if (e < o->oldest)
      o->oldest = e;
  }
  return 0;
}

int
cairn_pins_oldest_epoch (struct cairn_store *s, uint64_t *epoch)
{
  struct oldest_ctx o = { s, UINT64_MAX };
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_SESSIONS, "pin/", 4,
                               NULL, 0, oldest_visit, &o);
  cairn_txn_abort (s, txn);
  *epoch = o.oldest;
  return r < 0 ? r : 0;
}

struct leases_ctx {
  struct cairn_store *s;
  int (*fn) (const struct cairn_id *commit, void *arg);
  void *arg;
};

static int
lease_visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct leases_ctx *l = arg;
  struct cairn_id id;

  if (value.len != CAIRN_ID_SIZE || !session_alive (l->s, key.data, key.len))
    return 0;
  memcpy (id.bytes, value.data, CAIRN_ID_SIZE);
  return l->fn (&id, l->arg);
}

int
cairn_leases_list (struct cairn_store *s,
                   int (*fn) (const struct cairn_id *commit, void *arg),
                   void *arg)
{
  struct leases_ctx l = { s, fn, arg };
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_SESSIONS, "lease/", 6,
                               NULL, 0, lease_visit, &l);
  cairn_txn_abort (s, txn);
  return r < 0 ? r : 0;
}

struct dead_ctx {
  struct cairn_store *s;
  char (*keys)[64];
  size_t n, cap;
};

static int
dead_visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct dead_ctx *d = arg;

  if (key.len >= 64 || session_alive (d->s, key.data, key.len))
    return 0;
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 16;
    char (*k)[64] = realloc (d->keys, d->cap * sizeof *k);
    if (!k)
      return -ENOMEM;
    d->keys = k;
  }
  memcpy (d->keys[d->n], key.data, key.len);
  d->keys[d->n][key.len] = '\0';
  d->n++;
  return 0;
}

int
cairn_sessions_cleanup (struct cairn_store *s)
{
  struct dead_ctx d = { s, NULL, 0, 0 };
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_SESSIONS, "", 0, NULL, 0,
                               dead_visit, &d);
  for (size_t i = 0; r >= 0 && i < d.n; i++) {
    char path[4096];
    r = TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_SESSIONS, d.keys[i],
                                   strlen (d.keys[i]));
    if (session_lock_path (s, d.keys[i], strlen (d.keys[i]), path,
                           sizeof path))
      unlink (path);
  }
  free (d.keys);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    return r;
  }
  return cairn_txn_commit (s, txn);
}
