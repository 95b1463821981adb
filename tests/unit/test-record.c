/* test-record: the records of adapter tables (store/record.c), through
 * cairn_record_* on a real store.
 *
 * A record put is got back byte for byte (binary keys, an empty value, a
 * value larger than a page), replaced by the next put, gone after a
 * delete; an aborted put leaves nothing, a committed one survives the
 * store's reopening.  Writes reach CAIRN_TABLE_VMS only: every table
 * libcairn owns refuses them with -EPERM and keeps what it holds; a
 * read-only transaction refuses them with -EROFS; a table that does not
 * exist is -EINVAL to readers.  A scan visits exactly the keys with its
 * prefix, in byte order, and stops where its callback says.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "scratch-store.h"
#include "tap.h"

static struct cairn_store *s;
static struct cairn_txn *txn;

static int
put (const char *key, const char *value)
{
  return cairn_record_put (txn, CAIRN_TABLE_VMS, key, strlen (key), value,
                           strlen (value));
}

/* Whether KEY of TABLE holds the LEN bytes WANT (NULL: is absent). */
static bool
holds_in (enum cairn_table table, const void *key, size_t klen,
          const void *want, size_t len)
{
  struct cairn_val v;
  int r = cairn_record_get (txn, table, key, klen, &v);

  if (!want)
    return r == -ENOENT;
  return r == 0 && v.len == len && memcmp (v.data, want, len) == 0;
}

static bool
holds (const char *key, const char *want)
{
  return holds_in (CAIRN_TABLE_VMS, key, strlen (key), want,
                   want ? strlen (want) : 0);
}

/* Commits TXN and begins another (a read-only one if READONLY). */
static void
next_txn (bool readonly)
{
  if (cairn_txn_commit (s, txn) < 0
      || cairn_txn_begin (s, !readonly, &txn) < 0) {
    printf ("Bail out! %s\n", cairn_last_error ());
    exit (1);
  }
}

struct seen {
  char keys[16][32];
  size_t n;
  int stop_at;                  /* return STOP when visiting this one */
  int stop;
};

static int
visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct seen *seen = arg;

  (void) value;
  if (seen->n < 16 && key.len < 32) {
    memcpy (seen->keys[seen->n], key.data, key.len);
    seen->keys[seen->n][key.len] = '\0';
  }
  return ++seen->n == (size_t) seen->stop_at ? seen->stop : 0;
}

static void
put_get_delete (void)
{
  static const char bin_key[] = { 'v', 0, 'm', (char) 0xff };
  static char big[100000];

  ok (holds ("vm1", NULL), "a record never put: -ENOENT");
  ok (put ("vm1", "running pid=42") == 0 && holds ("vm1", "running pid=42"),
      "put, then get: the same bytes");
  ok (put ("vm1", "stopped") == 0 && holds ("vm1", "stopped"),
      "put again, shorter: the new value, all of it and nothing more");
  ok (cairn_record_put (txn, CAIRN_TABLE_VMS, bin_key, sizeof bin_key,
                        "", 0) == 0
      && holds_in (CAIRN_TABLE_VMS, bin_key, sizeof bin_key, "", 0)
      && holds_in (CAIRN_TABLE_VMS, bin_key, 2, NULL, 0),
      "a key with NUL and 0xff bytes, an empty value: its own record");
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = (char) (i * 7 + i / 4096);
  ok (cairn_record_put (txn, CAIRN_TABLE_VMS, "big", 3, big, sizeof big) == 0
      && holds_in (CAIRN_TABLE_VMS, "big", 3, big, sizeof big),
      "a value of 100,000 bytes, many pages: got back whole");

  char long_key[600];
  memset (long_key, 'k', sizeof long_key);
  ok (cairn_record_put (txn, CAIRN_TABLE_VMS, long_key, sizeof long_key,
                        "v", 1) == -EINVAL
      && holds_in (CAIRN_TABLE_VMS, long_key, 511, NULL, 0)
      && holds ("vm1", "stopped"),
      "a key longer than the index takes (511 bytes): -EINVAL (not a disk "
      "error), the other records untouched");

  ok (cairn_record_delete (txn, CAIRN_TABLE_VMS, "vm1", 3) == 0
      && holds ("vm1", NULL), "delete: gone");
  is_int (cairn_record_delete (txn, CAIRN_TABLE_VMS, "vm1", 3), -ENOENT,
          "delete what is gone: -ENOENT");
}

/* Writes to every table but VMS are refused, and change nothing. */
static void
libcairn_tables (void)
{
  static const enum cairn_table owned[] = {
    CAIRN_TABLE_META, CAIRN_TABLE_REFS, CAIRN_TABLE_WORK,
    CAIRN_TABLE_TOMBSTONES, CAIRN_TABLE_RETENTION, CAIRN_TABLE_SESSIONS,
  };
  static const uint8_t format_1[4] = { 1, 0, 0, 0 };
  bool refused = true;

  ok (holds_in (CAIRN_TABLE_META, "format", 6, format_1, 4),
      "get reads a table libcairn owns: META's format is 1");
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (owned); i++) {
    int r = cairn_record_put (txn, owned[i], "k", 1, "v", 1);
    if (r != -EPERM || !holds_in (owned[i], "k", 1, NULL, 0)) {
      diag ("  table %d: put gave %d", owned[i], r);
      refused = false;
    }
  }
  ok (refused, "put to each table libcairn owns: -EPERM, nothing written");
  ok (cairn_record_delete (txn, CAIRN_TABLE_META, "format", 6) == -EPERM
      && holds_in (CAIRN_TABLE_META, "format", 6, format_1, 4),
      "delete from one: -EPERM, the record stays");

  struct cairn_val v;
  struct seen seen = { 0 };
  ok (cairn_record_put (txn, CAIRN_TABLES, "k", 1, "v", 1) == -EPERM
      && cairn_record_delete (txn, CAIRN_TABLES, "k", 1) == -EPERM,
      "put and delete in a table that does not exist: -EPERM");
  ok (cairn_record_get (txn, CAIRN_TABLES, "k", 1, &v) == -EINVAL
      && cairn_record_get (txn, (enum cairn_table) -1, "k", 1, &v) == -EINVAL
      && cairn_record_scan (txn, CAIRN_TABLES, "", 0, visit, &seen) == -EINVAL
      && cairn_record_scan (txn, (enum cairn_table) -1, "", 0, visit,
                            &seen) == -EINVAL
      && seen.n == 0,
      "get and scan of a table that does not exist: -EINVAL");
}

static void
read_only (void)
{
  ok (put ("ro", "before") == 0, "a record put in a write transaction");
  next_txn (true);
  ok (put ("ro", "after") == -EROFS && holds ("ro", "before"),
      "put in a read-only transaction: -EROFS, the record unchanged");
  ok (cairn_record_delete (txn, CAIRN_TABLE_VMS, "ro", 2) == -EROFS
      && holds ("ro", "before"),
      "delete in a read-only transaction: -EROFS, the record stays");
  next_txn (false);
}

static void
durability (void)
{
  char path[4096];

  ok (put ("kept", "yes") == 0, "a record put");
  next_txn (false);
  ok (put ("dropped", "no") == 0 && holds ("dropped", "no"),
      "another, in a transaction that will abort");
  cairn_txn_abort (s, txn);
  snprintf (path, sizeof path, "%s", cairn_store_path (s));
  cairn_store_close (s);
  if (cairn_store_open (path, 0, &s) < 0
      || cairn_txn_begin (s, true, &txn) < 0) {
    printf ("Bail out! reopen: %s\n", cairn_last_error ());
    exit (1);
  }
  ok (holds ("kept", "yes") && holds ("dropped", NULL),
      "the store reopened: the committed record is there, the aborted not");
}

/* Scans VMS for PREFIX and whether it visits exactly WANT, in order
 * (NULL-terminated), and returns STOP at the STOP_AT-th. */
static bool
scan_visits (const char *prefix, int stop_at, int stop, int want_r,
             const char *const *want)
{
  struct seen seen = { .stop_at = stop_at, .stop = stop };
  int r = cairn_record_scan (txn, CAIRN_TABLE_VMS, prefix, strlen (prefix),
                             visit, &seen);
  size_t n = 0;
  bool same = r == want_r;

  for (; want[n]; n++)
    same &= n < seen.n && strcmp (seen.keys[n], want[n]) == 0;
  same &= seen.n == n;
  if (!same) {
    diag ("  scan \"%s\": %d, %zu keys:", prefix, r, seen.n);
    for (size_t i = 0; i < seen.n && i < 16; i++)
      diag ("    %s", seen.keys[i]);
  }
  return same;
}

static void
scan (void)
{
  static const char *const keys[] = {
    "web", "vm/b", "vm/a/x", "vm/a", "vm0", "v", "vm.",
  };

  /* The table is empty: the scan runs first. */
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (keys); i++)
    put (keys[i], "x");
  ok (scan_visits ("vm/", 0, 0, 0,
                   (const char *[]) { "vm/a", "vm/a/x", "vm/b", NULL }),
      "scan \"vm/\": the keys that start with it, in byte order");
  ok (scan_visits ("vm", 0, 0, 0,
                   (const char *[]) { "vm.", "vm/a", "vm/a/x", "vm/b", "vm0",
                                      NULL }),
      "scan \"vm\": \"vm.\" < \"vm/\" < \"vm0\", and not \"v\" or \"web\"");
  ok (scan_visits ("", 0, 0, 0,
                   (const char *[]) { "v", "vm.", "vm/a", "vm/a/x", "vm/b",
                                      "vm0", "web", NULL }),
      "scan \"\": every record");
  ok (scan_visits ("vm/c", 0, 0, 0, (const char *[]) { NULL })
      && scan_visits ("zzz", 0, 0, 0, (const char *[]) { NULL }),
      "a prefix no key has, inside the keys or past the last: nothing");
  ok (scan_visits ("vm/", 2, 7, 7,
                   (const char *[]) { "vm/a", "vm/a/x", NULL }),
      "the callback returns 7 at the second: the scan stops, returns 7");
  ok (scan_visits ("", 1, -EIO, -EIO, (const char *[]) { "v", NULL }),
      "the callback returns -EIO at the first: the scan aborts with it");

  struct seen seen = { 0 };
  ok (cairn_record_scan (txn, CAIRN_TABLE_META, "format", 6, visit,
                         &seen) == 0
      && seen.n == 1 && strcmp (seen.keys[0], "format") == 0,
      "scan reads a table libcairn owns");
}

int
main (void)
{
  char dir[] = "/tmp/cairn-test-record.XXXXXX";

  scratch_store (dir, &s, &txn);

  scan ();
  put_get_delete ();
  libcairn_tables ();
  read_only ();
  durability ();

  cairn_txn_abort (s, txn);
  cairn_store_close (s);
  cairn_remove_tree (dir);
  return done_testing ();
}
