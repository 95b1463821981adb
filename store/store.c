/* store.c: creating and opening stores, the config file, transactions.
 *
 * STORE/config is text, written once by init (format: see store.h).
 *
 * The default compression is zstd level 1, like restic's "auto" and ZFS's
 * lz4 choice: commits and imports sit on the hot path, and level 1 keeps
 * compression near memory speed while still shrinking VM images well.
 *
 * init creates config last: a directory with a config file is a complete
 * store, one without is not a store at all (a crashed init is retried).
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

static const char *const store_dirs[] = { "index", "packs", "branches",
                                          "run" };

void
cairn_default_store_path (char *buf, size_t len)
{
  const char *env = getenv ("CAIRN_STORE");
  const char *xdg = getenv ("XDG_DATA_HOME");
  const char *home = getenv ("HOME");

  if (env && *env)
    snprintf (buf, len, "%s", env);
  else if (geteuid () == 0)
    snprintf (buf, len, "/var/lib/cairn");
  else if (xdg && *xdg)
    snprintf (buf, len, "%s/cairn", xdg);
  else
    snprintf (buf, len, "%s/.local/share/cairn", home ? home : ".");
}

static bool
dir_is_empty (const char *path)
{
  DIR *d = opendir (path);
  struct dirent *e;
  bool empty = true;

  if (!d)
    return true;
  while ((e = readdir (d)) != NULL)
    if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
      empty = false;
      break;
    }
  closedir (d);
  return empty;
}

int
cairn_store_init (const char *path, const struct cairn_store_options *opts)
{
  char p[4096], config[512], when[CAIRN_TIME_SIZE], comp[32];
  uint32_t cs = opts && opts->chunk_size ? opts->chunk_size
    : CAIRN_DEFAULT_CHUNK_SIZE;
  int level = opts && opts->compress_level ? opts->compress_level
    : CAIRN_DEFAULT_ZSTD_LEVEL;
  struct stat st;
  int r;

  if (cs < CAIRN_MIN_CHUNK_SIZE || cs > CAIRN_MAX_CHUNK_SIZE
      || (cs & (cs - 1)) != 0)
    return cairn_error (-EINVAL, "chunk size %u is not a power of two "
                        "between 4 KiB and 1 MiB", cs);
  if (level != -1 && (level < 1 || level > 19))
    return cairn_error (-EINVAL, "zstd level %d is not between 1 and 19",
                        level);
  snprintf (p, sizeof p, "%s/config", path);
  if (stat (p, &st) == 0)
    return cairn_error (-EEXIST, "%s is already a cairn store", path);
  /* Files left by an init that crashed before writing config are ours to
   * reuse; anything else is somebody's data. */
  snprintf (p, sizeof p, "%s/index", path);
  if (stat (path, &st) == 0 && !dir_is_empty (path) && stat (p, &st) != 0)
    return cairn_error (-EEXIST, "%s exists and is not empty", path);

  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (store_dirs); i++) {
    snprintf (p, sizeof p, "%s/%s", path, store_dirs[i]);
    if ((r = cairn_mkdir_p (p)) < 0)
      return cairn_error (r, "%s: %s", p, strerror (-r));
  }

  /* Create the index so that open never has to. */
  struct cairn_backend *b;
  r = cairn_backend_local_open (path, false, &b);
  if (r < 0)
    return cairn_error (r, "%s/index: %s", path, cairn_strerror (r));
  struct cairn_btxn *t;
  r = b->ops->txn_begin (b, true, &t);
  if (r == 0) {
    uint8_t v[4];
    cairn_put_le32 (v, 1);
    r = b->ops->record_put (t, CAIRN_TABLE_META, "format", 6, v, 4);
    if (r == 0)
      r = b->ops->txn_commit (t);
    else
      b->ops->txn_abort (t);
  }
  b->ops->close (b);
  if (r < 0)
    return cairn_error (r, "%s/index: %s", path, cairn_strerror (r));

  cairn_time_format (cairn_time_now (), when);
  if (level < 0)
    snprintf (comp, sizeof comp, "none");
  else
    snprintf (comp, sizeof comp, "zstd:%d", level);
  int n = snprintf (config, sizeof config,
                    "cairn-store 2\nchunk-size %u\ncompress %s\ncreated %s\n",
                    cs, comp, when);
  snprintf (p, sizeof p, "%s/config", path);
  r = cairn_write_file_atomic (p, config, n);
  if (r < 0)
    return cairn_error (r, "%s: %s", p, strerror (-r));
  return 0;
}

static int
parse_config (struct cairn_store *s, char *text)
{
  bool version = false;
  char *save, *line;

  s->chunk_size = 0;
  s->compress_level = -1;
  for (line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char key[64], value[256];
    if (sscanf (line, "%63s %255s", key, value) != 2)
      return -EBADMSG;
    if (strcmp (key, "cairn-store") == 0) {
      if (strcmp (value, "1") == 0)
        return -EPROTO;
      if (strcmp (value, "2") != 0)
        return CAIRN_EVERSION;
      version = true;
    }
    else if (strcmp (key, "chunk-size") == 0)
      s->chunk_size = strtoul (value, NULL, 10);
    else if (strcmp (key, "compress") == 0) {
      if (strcmp (value, "none") == 0)
        s->compress_level = -1;
      else if (sscanf (value, "zstd:%d", &s->compress_level) != 1)
        return -EBADMSG;
    }
    /* Unknown keys (e.g. "created") are informational. */
  }
  if (!version || s->chunk_size < CAIRN_MIN_CHUNK_SIZE
      || s->chunk_size > CAIRN_MAX_CHUNK_SIZE
      || (s->chunk_size & (s->chunk_size - 1)) != 0)
    return -EBADMSG;
  return 0;
}

int
cairn_store_open (const char *path, unsigned flags, struct cairn_store **out)
{
  char p[4096];
  char *text;
  int r;

  snprintf (p, sizeof p, "%s/config", path);
  r = cairn_read_file (p, &text, NULL);
  if (r == -ENOENT || r == -ENOTDIR)
    return cairn_error (CAIRN_ENOTSTORE, "%s is not a cairn store (run "
                        "'cairn init' to make one)", path);
  if (r < 0)
    return cairn_error (r, "%s: %s", p, strerror (-r));

  struct cairn_store *s = calloc (1, sizeof *s);
  if (!s) {
    free (text);
    return -ENOMEM;
  }
  r = parse_config (s, text);
  free (text);
  if (r == CAIRN_EVERSION) {
    free (s);
    return cairn_error (r, "%s was made by a newer cairn", path);
  }
  if (r == -EPROTO) {
    free (s);
    return cairn_error (CAIRN_EVERSION, "%s was made by an older cairn "
                        "(store format 1): export its branches with that "
                        "cairn and import them into a new store", path);
  }
  if (r < 0) {
    free (s);
    return cairn_error (CAIRN_ENOTSTORE, "%s: damaged config file", p);
  }
  s->readonly = flags & CAIRN_OPEN_READONLY;
  s->path = strdup (path);
  s->cache = chunk_cache_new (CAIRN_DEFAULT_CACHE_SIZE, s->chunk_size);
  if (!s->path || !s->cache) {
    r = -ENOMEM;
    goto err;
  }
  /* A read-only store that takes leases writes their records, and only
   * those: the backend is writable, the store refuses the rest. */
  r = cairn_backend_local_open (path,
                                s->readonly && !(flags & CAIRN_OPEN_LEASES),
                                &s->backend);
  if (r < 0) {
    cairn_error (r, "%s/index: %s", path, cairn_strerror (r));
    goto err;
  }
  *out = s;
  return 0;

 err:
  chunk_cache_free (s->cache);
  free (s->path);
  free (s);
  return r;
}

void
cairn_store_close (struct cairn_store *s)
{
  if (!s)
    return;
  BOPS (s)->close (BE (s));
  chunk_cache_free (s->cache);
  free (s->path);
  free (s);
}

const char *
cairn_store_path (const struct cairn_store *s)
{
  return s->path;
}

uint32_t
cairn_store_chunk_size (const struct cairn_store *s)
{
  return s->chunk_size;
}

int
cairn_store_compress_level (const struct cairn_store *s)
{
  return s->compress_level;
}

struct cairn_backend *
cairn_store_backend (struct cairn_store *s)
{
  return s->backend;
}

void
cairn_store_set_cache_size (struct cairn_store *s, uint64_t bytes)
{
  chunk_cache_set_capacity (s->cache, bytes);
}

int
cairn_txn_begin (struct cairn_store *s, bool write, struct cairn_txn **out)
{
  if (write && s->readonly)
    return -EROFS;
  return txn_begin_session (s, write, out);
}

int
txn_begin_session (struct cairn_store *s, bool write, struct cairn_txn **out)
{
  struct cairn_txn *txn = malloc (sizeof *txn);
  if (!txn)
    return -ENOMEM;
  txn->s = s;
  txn->write = write;
  txn->checkpoint_nodes = txn->nodes_put = 0;
  int r = BOPS (s)->txn_begin (BE (s), write, &txn->bt);
  if (r < 0) {
    free (txn);
    return r;
  }
  *out = txn;
  return 0;
}

/* Commits backend transaction BT, naming a full disk. */
static int
btxn_commit (struct cairn_store *s, struct cairn_btxn *bt)
{
  int r = BOPS (s)->txn_commit (bt);
  if (r == -ENOSPC)
    return cairn_error (r, "the disk is full: nothing was changed");
  return r;
}

int
cairn_txn_commit (struct cairn_store *s, struct cairn_txn *txn)
{
  struct cairn_btxn *bt = txn->bt;

  free (txn);
  return bt ? btxn_commit (s, bt) : -EIO;  /* NULL: a checkpoint failed */
}

void
cairn_txn_abort (struct cairn_store *s, struct cairn_txn *txn)
{
  if (!txn)
    return;
  if (txn->bt)
    BOPS (s)->txn_abort (txn->bt);
  free (txn);
}

int
store_housekeep (struct cairn_store *s)
{
  return BOPS (s)->housekeep ? BOPS (s)->housekeep (BE (s)) : 0;
}

int
txn_checkpoint (struct cairn_txn *txn)
{
  struct cairn_store *s = txn->s;
  int r = btxn_commit (s, txn->bt);

  txn->bt = NULL;
  txn->nodes_put = 0;
  return r < 0 ? r : BOPS (s)->txn_begin (BE (s), true, &txn->bt);
}

int
cairn_txn_end (struct cairn_store *s, struct cairn_txn *txn, int r)
{
  if (!txn)
    return r;
  if (r == 0)
    return cairn_txn_commit (s, txn);
  cairn_txn_abort (s, txn);
  return r;
}

int
cairn_object_get (struct cairn_txn *txn, enum cairn_object_type type,
                  const struct cairn_id *id, struct cairn_val *data)
{
  return TOPS (txn)->object_get (txn->bt, type, id, data, NULL);
}

/* ---- For gc: the backend transaction under a store transaction ---- */

struct cairn_btxn *
cairn_txn_backend (struct cairn_txn *txn)
{
  return txn->bt;
}
