/* cairn.c: nbdkit-cairn-plugin, a cairn store over NBD.
 *
 *   nbdkit cairn store=PATH [export=REF[:VOLUME]] [cache=SIZE]
 *
 * Exports.  The export name is REF[:VOLUME], VOLUME "disk" by default.  A
 * branch name (or heads/NAME) is served read-write: writes go to the
 * branch's working state.  A tag, a commit id or a unique prefix of one,
 * or any REF~N or REF^, is served read-only, as a view of the commit's
 * tree that a lease keeps from gc while the connection lasts; nbdkit
 * refuses writes to it (EROFS).  Names are resolved at .open, so the
 * branches, tags and commits made while nbdkit runs are exportable at
 * once, without a restart.
 *
 * Read-only branches.  With nbdkit -r a branch is served as its last
 * commit (its base), like a tag, and its writer lock is not taken: the
 * working state of whoever writes it stays invisible.  This is the only
 * way to read a branch another process writes.  (NBD has no way for a
 * client to ask for read-only on its own.)
 *
 * Sharing, and why multi-conn is true.  Every connection to a branch
 * uses one open branch per process (writers.c): one in-memory overlay
 * serves all their reads and writes, so a write is visible to every
 * connection as soon as it is acknowledged, and a flush (or FUA) makes
 * the acknowledged writes of all connections durable before it replies.
 * That is what NBD_FLAG_CAN_MULTI_CONN promises.  Read-only exports never
 * change, so it holds for them trivially.
 *
 * Commit while serving.  The open branch listens on its control socket,
 * STORE/run/NAME.sock, through which `cairn commit NAME` (and `cairn
 * branch NEW NAME`) get a commit holding every write acknowledged before
 * the request.  store/branch.c freezes the overlay under a short lock and
 * captures it while clients go on writing: nobody is disconnected.
 *
 * Threads and processes.  PARALLEL: the store and an open branch are
 * thread-safe, and the only lock here, writers_lock (writers.c), is taken
 * only when a connection opens or closes.  The store, and with it the
 * LMDB environment, is opened in .after_fork, since LMDB must not cross a
 * fork; .get_ready opens and closes it once so that a wrong store= is
 * reported on the terminal, before nbdkit forks.
 *
 * Data path:
 *   pread        cairn_bvol_read, or cairn_view_read
 *   pwrite       cairn_bvol_write; with FUA, then a flush of the branch
 *   flush        cairn_branch_flush: the scratch files' fdatasync, then
 *                one transaction naming what they hold
 *   trim, zero   cairn_bvol_zero: whole chunks become holes, the partial
 *                chunks at either end are written with zeros.  Either way
 *                it reads back as zeros, so MAY_TRIM changes nothing, and
 *                FAST_ZERO never fails: it is never slower than a write.
 *   extents      holes (chunks never written, zeroed, or sealed to all
 *                zeros) are HOLE|ZERO, the rest is data; REQ_ONE stops
 *                after the first extent
 *   cache        reads the range, which warms the chunk cache
 *   block_size   any alignment is served; the preferred size is the
 *                chunk size, which needs no read-modify-write
 *
 * Not done, on purpose: a branch held by another process is not waited
 * for (the error names the holder's pid); the branch is only closed, not
 * committed, when its last client leaves.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "store/store.h"
#include "nbd-plugin/writers.h"

/* nbdkit refuses reads and writes larger than this itself. */
#define MAX_REQUEST (64 * 1024 * 1024)

static char *store_path;        /* store= */
static char *default_export;    /* export= */
static int64_t cache_size = -1; /* cache=; -1: libcairn's default */

static struct cairn_store *store;

/* Reports the failure CODE of libcairn in OP, with the store's own
 * sentence, and chooses the errno the client sees: corrupt or missing
 * data is EIO, as for a disk. */
static int
cairn_failed (const char *op, int code)
{
  const char *msg = cairn_last_error ();

  nbdkit_error ("%s: %s", op, *msg ? msg : cairn_strerror (code));
  switch (code) {
  case -ENOSPC: case -EDQUOT: case -ENOMEM: case -EROFS: case -EINVAL:
  case -ENOTSUP: case -ESHUTDOWN:
    nbdkit_set_error (-code);
    break;
  default:
    nbdkit_set_error (EIO);
  }
  return -1;
}

static void
cairn_unload (void)
{
  free (store_path);
  free (default_export);
}

static int
cairn_config (const char *key, const char *value)
{
  if (strcmp (key, "store") == 0) {
    free (store_path);
    store_path = nbdkit_absolute_path (value);
    if (!store_path)
      return -1;
  }
  else if (strcmp (key, "export") == 0) {
    free (default_export);
    default_export = strdup (value);
    if (!default_export) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
  }
  else if (strcmp (key, "cache") == 0) {
    cache_size = nbdkit_parse_size (value);
    if (cache_size == -1)
      return -1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
cairn_config_complete (void)
{
  if (!store_path) {
    char path[4096];
    cairn_default_store_path (path, sizeof path);
    store_path = nbdkit_absolute_path (path);
    if (!store_path)
      return -1;
  }
  return 0;
}

#define cairn_config_help \
  "[store=]PATH          The cairn store (default: $CAIRN_STORE, else\n" \
  "                      /var/lib/cairn for root).\n" \
  "export=REF[:VOLUME]   What a client gets that names no export.\n" \
  "cache=SIZE            Cache of decompressed chunks (default 64M)."

static void
cairn_dump_plugin (void)
{
  printf ("cairn_version=%s\n", PACKAGE_VERSION);
  printf ("cairn_default_chunk_size=%d\n", CAIRN_DEFAULT_CHUNK_SIZE);
  printf ("cairn_default_cache_size=%llu\n", CAIRN_DEFAULT_CACHE_SIZE);
}

/* Checks the store before nbdkit forks, where errors are still seen. */
static int
cairn_get_ready (void)
{
  struct cairn_store *s;
  int r = cairn_store_open (store_path, 0, &s);

  if (r < 0)
    return cairn_failed ("store", r);
  cairn_store_close (s);
  return 0;
}

static int
cairn_after_fork (void)
{
  /* One malloc arena per CPU, not glibc's eight: every nbdkit thread
   * would otherwise get its own, and freed chunk buffers and commit
   * batches fragment them into tens of MiB beyond what is in use. */
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  mallopt (M_ARENA_MAX, ncpu > 0 ? (int) ncpu : 1);

  int r = cairn_store_open (store_path, 0, &store);

  if (r < 0)
    return cairn_failed ("store", r);
  if (cache_size >= 0)
    cairn_store_set_cache_size (store, cache_size);
  return 0;
}

static void
cairn_cleanup (void)
{
  writers_close_all ();
  cairn_store_close (store);
  store = NULL;
}

/* Adds the export of volume VOLUME of ref NAME: NAME for "disk", else
 * NAME:VOLUME, described as WHAT. */
static int
add_volume_export (struct nbdkit_exports *exports, const char *name,
                   const char *volume, const char *what)
{
  char export[CAIRN_NAME_MAX + CAIRN_VOLUME_NAME_MAX + 2];
  char desc[CAIRN_NAME_MAX + 128];

  if (strcmp (volume, "disk") == 0)
    snprintf (export, sizeof export, "%s", name);
  else
    snprintf (export, sizeof export, "%s:%s", name, volume);
  snprintf (desc, sizeof desc, "%s, volume %s", what, volume);
  return nbdkit_add_export (exports, export, desc) == -1 ? -EIO : 0;
}

struct list_ctx {
  struct cairn_txn *txn;
  struct nbdkit_exports *exports;
};

static int
list_branch (const struct cairn_ref *ref, void *arg)
{
  struct list_ctx *l = arg;
  struct cairn_branch_info info;
  int r = cairn_branch_info_get (l->txn, ref->name, &info);

  if (r < 0)
    return r;
  for (size_t i = 0; r == 0 && i < info.nvolumes; i++)
    r = add_volume_export (l->exports, ref->name, info.volumes[i].name,
                           "branch, read-write");
  cairn_branch_info_free (&info);
  return r;
}

static int
list_tag (const struct cairn_ref *ref, void *arg)
{
  struct list_ctx *l = arg;
  struct cairn_commit *c;
  char what[64], hex[CAIRN_HEX_SIZE + 1];
  int r = cairn_commit_read (l->txn, &ref->commit, &c);

  if (r < 0)
    return r;
  cairn_id_to_hex (&ref->commit, hex);
  snprintf (what, sizeof what, "tag of commit %.12s, read-only", hex);
  for (size_t i = 0; r == 0 && i < c->nvolumes; i++)
    r = add_volume_export (l->exports, ref->name, c->volumes[i].name, what);
  cairn_commit_free (c);
  return r;
}

/* Lists branches and tags (commits are too many to list). */
static int
cairn_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  struct list_ctx l = { .exports = exports };
  int r = cairn_txn_begin (store, false, &l.txn);

  if (r < 0)
    return cairn_failed ("list exports", r);
  r = cairn_ref_list (l.txn, CAIRN_REF_BRANCH, list_branch, &l);
  if (r == 0)
    r = cairn_ref_list (l.txn, CAIRN_REF_TAG, list_tag, &l);
  cairn_txn_abort (store, l.txn);
  if (r < 0)
    return cairn_failed ("list exports", r);
  return 0;
}

/* A client that names no export gets export=, or "", which .open refuses
 * with a message saying what to do. */
static const char *
cairn_default_export (int readonly, int is_tls)
{
  return default_export ? default_export : "";
}

/* Per-connection code begins here. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

struct handle {
  struct writer *writer;        /* a branch served read-write, or NULL */
  struct cairn_bvol *vol;       /*   its volume */
  struct cairn_view view;       /* else a committed volume, read-only */
  struct cairn_lease *lease;    /*   keeping that commit from gc */
  char description[CAIRN_NAME_MAX + 96];
};

/* Splits export name "REF[:VOLUME]".  Names of refs and volumes have no
 * ':' in them, so the last one separates them. */
static int
export_split (const char *name, char *ref, char *volume)
{
  const char *colon = strrchr (name, ':');
  size_t n = colon ? (size_t) (colon - name) : strlen (name);

  if (n == 0 || n >= CAIRN_NAME_MAX + 16) {
    nbdkit_error ("export '%s' is not REF[:VOLUME]", name);
    return -1;
  }
  memcpy (ref, name, n);
  ref[n] = '\0';
  strcpy (volume, colon ? colon + 1 : "disk");
  if (!cairn_volume_name_valid (volume)) {
    nbdkit_error ("export '%s': '%s' is not a volume name", name, volume);
    return -1;
  }
  return 0;
}

/* Serves branch NAME read-write. */
static int
open_writer (struct handle *h, const char *name, const char *volume)
{
  int r = writer_acquire (store, name, &h->writer);

  if (r == CAIRN_EHELD) {
    nbdkit_error ("%s (serve it read-only with nbdkit -r, or export one "
                  "of its commits)", cairn_last_error ());
    return -1;
  }
  if (r < 0)
    return cairn_failed (name, r);
  h->vol = cairn_branch_volume (h->writer->branch, volume);
  if (!h->vol) {
    nbdkit_error ("branch '%s' has no volume '%s'", name, volume);
    writer_release (h->writer);
    h->writer = NULL;
    return -1;
  }
  snprintf (h->description, sizeof h->description,
            "branch %s, volume %s, read-write", name, volume);
  return 0;
}

/* A view of the last commit of branch NAME, as its record says: also a
 * branch with no commit yet (all zeros). */
static int
view_branch (struct handle *h, struct cairn_txn *txn, const char *name,
             const char *volume, struct cairn_id *commit)
{
  struct cairn_branch_info info;
  int r = cairn_branch_info_get (txn, name, &info);

  if (r < 0)
    return cairn_failed (name, r);
  r = -1;
  for (size_t i = 0; i < info.nvolumes; i++) {
    const struct cairn_branch_volume *bv = &info.volumes[i];
    if (strcmp (bv->name, volume) != 0)
      continue;
    struct cairn_volume vol = { .size = bv->size,
                                .chunk_size = bv->chunk_size,
                                .root = bv->root };
    strcpy (vol.name, bv->name);
    cairn_view_init (store, &vol, &h->view);
    r = 0;
  }
  *commit = info.base;
  cairn_branch_info_free (&info);
  if (r < 0)
    nbdkit_error ("branch '%s' has no volume '%s'", name, volume);
  return r;
}

static void *
cairn_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  char ref[CAIRN_NAME_MAX + 16], volume[CAIRN_VOLUME_NAME_MAX + 1];
  char hex[CAIRN_HEX_SIZE + 1];
  struct cairn_ref found;
  struct cairn_txn *txn;
  struct handle *h;
  int r;

  if (!name || !*name) {
    nbdkit_error ("no export named and no export= default: name a branch, "
                  "tag or commit (nbdinfo --list shows them)");
    return NULL;
  }
  if (strlen (name) > CAIRN_NAME_MAX + CAIRN_VOLUME_NAME_MAX + 16) {
    nbdkit_error ("export name too long");
    return NULL;
  }
  if (export_split (name, ref, volume) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (!h) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }

  r = cairn_txn_begin (store, false, &txn);
  if (r < 0) {
    cairn_failed (name, r);
    goto err;
  }
  r = cairn_resolve (txn, ref, &found);
  if (r < 0) {
    cairn_txn_abort (store, txn);
    cairn_failed (name, r);
    goto err;
  }
  bool branch = found.kind == CAIRN_REF_BRANCH && !strpbrk (ref, "~^");
  if (branch && !readonly) {
    cairn_txn_abort (store, txn);
    if (open_writer (h, found.name, volume) == -1)
      goto err;
    return h;
  }
  if (branch)
    r = view_branch (h, txn, found.name, volume, &found.commit);
  else {
    r = cairn_view_open (store, txn, &found.commit, volume, &h->view);
    if (r < 0)
      r = cairn_failed (name, r);
  }
  cairn_txn_abort (store, txn);
  if (r < 0)
    goto err;

  if (!cairn_id_is_zero (&found.commit)) {
    r = cairn_lease_begin (store, &found.commit, &h->lease);
    if (r < 0) {
      cairn_failed (name, r);
      goto err;
    }
  }
  cairn_id_to_hex (&found.commit, hex);
  snprintf (h->description, sizeof h->description,
            "%s%s%s commit %.12s, volume %s, read-only",
            found.kind == CAIRN_REF_BRANCH ? "branch "
            : found.kind == CAIRN_REF_TAG ? "tag " : "", found.name,
            found.kind == CAIRN_REF_COMMIT ? "" : ",", hex, volume);
  return h;

 err:
  free (h);
  return NULL;
}

static void
cairn_close (void *handle)
{
  struct handle *h = handle;
  int r = h->writer ? writer_release (h->writer) : 0;

  if (r < 0)
    cairn_failed ("flush at close", r);
  cairn_lease_end (h->lease);
  free (h);
}

static const char *
cairn_export_description (void *handle)
{
  struct handle *h = handle;
  return h->description;
}

static int64_t
cairn_get_size (void *handle)
{
  struct handle *h = handle;
  return h->writer ? cairn_bvol_size (h->vol) : h->view.vol.size;
}

static int
cairn_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                  uint32_t *maximum)
{
  *minimum = 1;
  *preferred = cairn_store_chunk_size (store);
  *maximum = MAX_REQUEST;
  return 0;
}

static int
cairn_can_write (void *handle)
{
  struct handle *h = handle;
  return h->writer != NULL;
}

/* Writable exports flush, trim, zero and FUA; read-only ones never get
 * those requests (nbdkit refuses them for a handle that cannot write). */
static int
cairn_can_flush (void *handle)
{
  return cairn_can_write (handle);
}

static int
cairn_can_fua (void *handle)
{
  return cairn_can_write (handle) ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

static int
cairn_can_fast_zero (void *handle)
{
  return 1;
}

static int
cairn_can_multi_conn (void *handle)
{
  return 1;
}

static int
cairn_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* Reads from the branch or the commit the handle serves. */
static int
handle_read (struct handle *h, void *buf, uint32_t count, uint64_t offset)
{
  return h->writer ? cairn_bvol_read (h->vol, buf, count, offset)
    : cairn_view_read (&h->view, buf, count, offset);
}

static int
cairn_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  int r = handle_read (handle, buf, count, offset);

  return r < 0 ? cairn_failed ("pread", r) : 0;
}

static int
cairn_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;
  int r = cairn_branch_flush (h->writer->branch);

  return r < 0 ? cairn_failed ("flush", r) : 0;
}

static int
cairn_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  struct handle *h = handle;
  int r = cairn_bvol_write (h->vol, buf, count, offset);

  if (r < 0)
    return cairn_failed ("pwrite", r);
  return flags & NBDKIT_FLAG_FUA ? cairn_flush (handle, 0) : 0;
}

static int
cairn_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  int r = cairn_bvol_zero (h->vol, count, offset);

  if (r < 0)
    return cairn_failed ("zero", r);
  return flags & NBDKIT_FLAG_FUA ? cairn_flush (handle, 0) : 0;
}

/* Trimmed ranges read back as zeros: trim is zero. */
static int
cairn_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return cairn_zero (handle, count, offset, flags);
}

struct extents_ctx {
  struct nbdkit_extents *extents;
  bool req_one;
  bool stopped;
};

static int
add_extent (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct extents_ctx *x = arg;

  /* After a stop the store may still offer runs: ignore them. */
  if (x->stopped)
    return 1;
  if (nbdkit_add_extent (x->extents, off, len,
                         hole ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0)
      == -1)
    return -errno;
  x->stopped = x->req_one;
  return x->stopped;
}

static int
cairn_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  struct extents_ctx x = { .extents = extents,
                           .req_one = flags & NBDKIT_FLAG_REQ_ONE };
  int r = h->writer
    ? cairn_bvol_extents (h->vol, offset, count, add_extent, &x)
    : cairn_view_extents (&h->view, offset, count, add_extent, &x);

  return r < 0 ? cairn_failed ("extents", r) : 0;
}

/* Reads the range chunk by chunk, so that its chunks are decompressed,
 * verified and cached before the client reads them. */
static int
cairn_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  uint32_t cs = cairn_store_chunk_size (store);
  CLEANUP_FREE char *buf = malloc (cs);
  int r = 0;

  if (!buf) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  while (r == 0 && count > 0) {
    uint32_t n = CAIRN_MIN (count, cs - offset % cs);
    r = handle_read (h, buf, n, offset);
    offset += n;
    count -= n;
  }
  return r < 0 ? cairn_failed ("cache", r) : 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "cairn",
  .longname           = "nbdkit cairn plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Serve the branches (read-write) and commits "
                        "(read-only) of a cairn store.",
  .unload             = cairn_unload,
  .config             = cairn_config,
  .config_complete    = cairn_config_complete,
  .config_help        = cairn_config_help,
  .magic_config_key   = "store",
  .dump_plugin        = cairn_dump_plugin,
  .get_ready          = cairn_get_ready,
  .after_fork         = cairn_after_fork,
  .cleanup            = cairn_cleanup,
  .list_exports       = cairn_list_exports,
  .default_export     = cairn_default_export,
  .open               = cairn_open,
  .close              = cairn_close,
  .export_description = cairn_export_description,
  .get_size           = cairn_get_size,
  .block_size         = cairn_block_size,
  .can_write          = cairn_can_write,
  .can_flush          = cairn_can_flush,
  .can_trim           = cairn_can_write,
  .can_zero           = cairn_can_write,
  .can_fua            = cairn_can_fua,
  .can_fast_zero      = cairn_can_fast_zero,
  .can_multi_conn     = cairn_can_multi_conn,
  .can_cache          = cairn_can_cache,
  .pread              = cairn_pread,
  .pwrite             = cairn_pwrite,
  .flush              = cairn_flush,
  .trim               = cairn_trim,
  .zero               = cairn_zero,
  .extents            = cairn_extents,
  .cache              = cairn_cache,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
