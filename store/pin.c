/* pin.c: pins, which keep gc off objects a writer has stored but not yet
 * named from any commit or working state (an import half done, a VM's
 * memory being stored before its commit).
 *
 * A pin is a record in the "sessions" table plus a lock file that its
 * process holds with flock for as long as the pin lives:
 *
 *   "sessions"  key: "pin/<pid>/<n>" (text)
 *     OFFSET  SIZE  DESCRIPTION
 *          0     8  gc epoch when the pin began (LE)
 *
 *   STORE/run/pin-<pid>-<n>.lock   held with flock(LOCK_EX) by the owner
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

struct cairn_pin {
  struct cairn_store *s;
  char key[64];
  char path[4096];
  int fd;
};

static atomic_uint pin_counter;

int
cairn_pin_begin (struct cairn_store *s, struct cairn_pin **out)
{
  struct cairn_pin *pin = calloc (1, sizeof *pin);
  unsigned n = atomic_fetch_add (&pin_counter, 1);
  struct cairn_txn *txn;
  uint64_t epoch;
  uint8_t v[8];
  int r;

  if (!pin)
    return -ENOMEM;
  pin->s = s;
  snprintf (pin->key, sizeof pin->key, "pin/%d/%u", (int) getpid (), n);
  snprintf (pin->path, sizeof pin->path, "%s/run/pin-%d-%u.lock", s->path,
            (int) getpid (), n);
  pin->fd = open (pin->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (pin->fd == -1 || flock (pin->fd, LOCK_EX | LOCK_NB) == -1) {
    r = -errno;
    goto err;
  }
  r = cairn_txn_begin (s, true, &txn);
  if (r < 0)
    goto err;
  r = meta_get_u64 (txn, "epoch", &epoch);
  cairn_put_le64 (v, epoch);
  if (r == 0)
    r = TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_SESSIONS, pin->key,
                                strlen (pin->key), v, sizeof v);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    goto err;
  }
  r = cairn_txn_commit (s, txn);
  if (r < 0)
    goto err;
  *out = pin;
  return 0;

 err:
  if (pin->fd >= 0) {
    unlink (pin->path);
    close (pin->fd);
  }
  free (pin);
  return r;
}

void
cairn_pin_end (struct cairn_pin *pin)
{
  struct cairn_txn *txn;

  if (!pin)
    return;
  if (cairn_txn_begin (pin->s, true, &txn) == 0) {
    if (TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_SESSIONS, pin->key,
                                   strlen (pin->key)) == 0)
      cairn_txn_commit (pin->s, txn);
    else
      cairn_txn_abort (pin->s, txn);
  }
  /* A record left behind (a failed delete) is harmless: without the lock
   * held, gc treats it as dead. */
  unlink (pin->path);
  close (pin->fd);
  free (pin);
}

struct oldest_ctx {
  struct cairn_store *s;
  uint64_t oldest;
};

/* True if the pin's process still holds its lock file. */
static bool
pin_alive (struct cairn_store *s, const char *key, size_t klen)
{
  char k[64], path[4096];
  int pid;
  unsigned n;

  if (klen >= sizeof k)
    return false;
  memcpy (k, key, klen);
  k[klen] = '\0';
  if (sscanf (k, "pin/%d/%u", &pid, &n) != 2)
    return false;
  snprintf (path, sizeof path, "%s/run/pin-%d-%u.lock", s->path, pid, n);
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

  if (value.len == 8 && pin_alive (o->s, key.data, key.len)) {
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
