/* ref.c: names, refs (branches and tags), resolution, the writer lock.
 *
 * Refs live in the "refs" table (record formats: see store.h, Refs).  One
 * name is either a branch or a tag, never both, so a bare name always
 * means one thing.
 *
 * The writer lock of branch NAME is flock(LOCK_EX) on STORE/run/NAME.lock
 * ('/' in names escaped as "%2F"), holding the holder's pid as text so a
 * refused writer can say who holds it.  flock dies with its process, so a
 * kill -9 never leaves a branch locked.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store/internal.h"

#define BRANCH_MAGIC "brn1"
#define BRANCH_HEADER 56
#define BRANCH_VOLUME_FIXED 53

bool
cairn_ref_name_valid (const char *name)
{
  size_t n = strlen (name);

  if (n == 0 || n > CAIRN_NAME_MAX || name[0] == '-' || name[0] == '.'
      || name[0] == '/' || name[n - 1] == '/' || strstr (name, "..")
      || strstr (name, "//")
      || (n >= 5 && strcmp (name + n - 5, ".lock") == 0))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum ((unsigned char) name[i]) && !strchr ("._/-", name[i]))
      return false;
  /* Names made of hex digits ("cafe", "b100") are allowed: resolution
   * tries branches and tags before id prefixes, as git does. */
  return strncmp (name, "heads/", 6) != 0 && strncmp (name, "tags/", 5) != 0;
}

bool
cairn_volume_name_valid (const char *name)
{
  size_t n = strlen (name);

  if (n == 0 || n > CAIRN_VOLUME_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!islower ((unsigned char) name[i]) && !isdigit ((unsigned char) name[i])
        && name[i] != '_' && name[i] != '-')
      return false;
  return true;
}

void
branch_file_name (const char *name, char *buf, size_t len)
{
  size_t o = 0;

  for (const char *p = name; *p && o + 4 < len; p++) {
    if (*p == '/') {
      memcpy (buf + o, "%2F", 3);
      o += 3;
    }
    else
      buf[o++] = *p;
  }
  buf[o] = '\0';
}

void
branch_ref_key (const char *name, char *key, size_t len)
{
  snprintf (key, len, "heads/%s", name);
}

static void
tag_ref_key (const char *name, char *key, size_t len)
{
  snprintf (key, len, "tags/%s", name);
}

/* The record of branch or tag NAME into V (0, -ENOENT or an error). */
static int
ref_lookup (struct cairn_txn *txn, bool tag, const char *name,
            struct cairn_val *v)
{
  char key[CAIRN_NAME_MAX + 16];

  (tag ? tag_ref_key : branch_ref_key) (name, key, sizeof key);
  return TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_REFS, key, strlen (key),
                                 v);
}

/* Same, with "no branch/tag NAME" (CAIRN_ENOREF) when there is none. */
static int
ref_get (struct cairn_txn *txn, bool tag, const char *name,
         struct cairn_val *v)
{
  int r = ref_lookup (txn, tag, name, v);
  if (r == -ENOENT)
    return cairn_error (CAIRN_ENOREF, "no %s '%s'", tag ? "tag" : "branch",
                        name);
  return r;
}

int
meta_get_u64 (struct cairn_txn *txn, const char *name, uint64_t *v)
{
  struct cairn_val val;
  int r = TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_META, name,
                                  strlen (name), &val);
  if (r == -ENOENT) {
    *v = 0;
    return 0;
  }
  if (r < 0)
    return r;
  *v = val.len == 8 ? cairn_le64 (val.data)
    : val.len == 4 ? cairn_le32 (val.data) : 0;
  return 0;
}

int
meta_put_u64 (struct cairn_txn *txn, const char *name, uint64_t v)
{
  uint8_t buf[8];
  cairn_put_le64 (buf, v);
  return TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_META, name,
                                 strlen (name), buf, sizeof buf);
}

int
branch_new_wid (struct cairn_txn *txn, uint64_t *wid)
{
  uint64_t v;
  int r = meta_get_u64 (txn, "next-wid", &v);

  if (r < 0)
    return r;
  *wid = v + 1;
  return meta_put_u64 (txn, "next-wid", v + 1);
}

int
work_delete_all (struct cairn_txn *txn, uint64_t wid)
{
  uint8_t prefix[8];
  cairn_put_be64 (prefix, wid);
  return TOPS (txn)->record_delete_prefix (txn->bt, CAIRN_TABLE_WORK, prefix,
                                           sizeof prefix);
}

int
branch_info_decode (const void *data, size_t len,
                    struct cairn_branch_info *info)
{
  const uint8_t *p = data;

  memset (info, 0, sizeof *info);
  if (len < BRANCH_HEADER || memcmp (p, BRANCH_MAGIC, 4) != 0)
    return -EBADMSG;
  uint32_t n = cairn_le32 (p + 4);
  memcpy (info->base.bytes, p + 8, CAIRN_ID_SIZE);
  info->seq = cairn_le64 (p + 40);
  info->created = (int64_t) cairn_le64 (p + 48);
  info->volumes = calloc (n ? n : 1, sizeof *info->volumes);
  if (!info->volumes)
    return -ENOMEM;
  size_t at = BRANCH_HEADER;
  for (uint32_t i = 0; i < n; i++) {
    struct cairn_branch_volume *v = &info->volumes[i];
    if (at + BRANCH_VOLUME_FIXED > len)
      goto bad;
    unsigned nl = p[at + 52];
    if (nl == 0 || nl > CAIRN_VOLUME_NAME_MAX
        || at + BRANCH_VOLUME_FIXED + nl > len)
      goto bad;
    v->wid = cairn_le64 (p + at);
    v->size = cairn_le64 (p + at + 8);
    v->chunk_size = cairn_le32 (p + at + 16);
    memcpy (v->root.bytes, p + at + 20, CAIRN_ID_SIZE);
    memcpy (v->name, p + at + BRANCH_VOLUME_FIXED, nl);
    v->name[nl] = '\0';
    at += BRANCH_VOLUME_FIXED + nl;
  }
  if (at + 8 == len) {
    info->absorbed = cairn_le64 (p + at);
    at += 8;
  }
  if (at != len)
    goto bad;
  info->nvolumes = n;
  return 0;

 bad:
  free (info->volumes);
  info->volumes = NULL;
  return -EBADMSG;
}

int
branch_info_encode (const struct cairn_branch_info *info, void **data,
                    size_t *len)
{
  size_t size = BRANCH_HEADER + 8;

  for (size_t i = 0; i < info->nvolumes; i++)
    size += BRANCH_VOLUME_FIXED + strlen (info->volumes[i].name);
  uint8_t *p = malloc (size);
  if (!p)
    return -ENOMEM;
  memcpy (p, BRANCH_MAGIC, 4);
  cairn_put_le32 (p + 4, info->nvolumes);
  memcpy (p + 8, info->base.bytes, CAIRN_ID_SIZE);
  cairn_put_le64 (p + 40, info->seq);
  cairn_put_le64 (p + 48, (uint64_t) info->created);
  size_t at = BRANCH_HEADER;
  for (size_t i = 0; i < info->nvolumes; i++) {
    const struct cairn_branch_volume *v = &info->volumes[i];
    size_t nl = strlen (v->name);
    cairn_put_le64 (p + at, v->wid);
    cairn_put_le64 (p + at + 8, v->size);
    cairn_put_le32 (p + at + 16, v->chunk_size);
    memcpy (p + at + 20, v->root.bytes, CAIRN_ID_SIZE);
    p[at + 52] = nl;
    memcpy (p + at + BRANCH_VOLUME_FIXED, v->name, nl);
    at += BRANCH_VOLUME_FIXED + nl;
  }
  cairn_put_le64 (p + at, info->absorbed);
  *data = p;
  *len = size;
  return 0;
}

void
cairn_branch_info_free (struct cairn_branch_info *info)
{
  free (info->volumes);
  info->volumes = NULL;
  info->nvolumes = 0;
}

uint64_t
work_record_epoch (const void *value, size_t len)
{
  const uint8_t *p = value;

  if (len < 12 || !(p[1] & WORK_HAS_EPOCH))
    return 1;
  return cairn_le64 (p + len - 8);
}

/* 1 (stop) at the first record that is not stale. */
static int
any_record (struct cairn_val key, struct cairn_val value, void *arg)
{
  const uint64_t *absorbed = arg;
  return work_record_epoch (value.data, value.len) > *absorbed;
}

int
cairn_branch_info_get (struct cairn_txn *txn, const char *name,
                       struct cairn_branch_info *info)
{
  struct cairn_val v;
  int r = ref_get (txn, false, name, &v);

  if (r < 0)
    return r;
  r = branch_info_decode (v.data, v.len, info);
  if (r < 0)
    return cairn_error (r, "the record of branch '%s' is corrupt", name);

  info->dirty = cairn_id_is_zero (&info->base);
  for (size_t i = 0; i < info->nvolumes && !info->dirty; i++) {
    uint8_t prefix[8];
    cairn_put_be64 (prefix, info->volumes[i].wid);
    r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_WORK, prefix,
                                 sizeof prefix, NULL, 0, any_record,
                                 &info->absorbed);
    if (r < 0) {
      cairn_branch_info_free (info);
      return r;
    }
    info->dirty = r > 0;
  }
  return 0;
}

/* -EEXIST (with a message) if NAME is a branch or a tag already. */
static int
name_free (struct cairn_txn *txn, const char *name)
{
  struct cairn_val v;

  if (ref_lookup (txn, false, name, &v) == 0)
    return cairn_error (-EEXIST, "branch '%s' already exists", name);
  if (ref_lookup (txn, true, name, &v) == 0)
    return cairn_error (-EEXIST, "a tag named '%s' already exists", name);
  return 0;
}

static int
check_ref_name (const char *name)
{
  if (!cairn_ref_name_valid (name))
    return cairn_error (CAIRN_EBADNAME,
                        "'%s' is not a valid name (use letters, digits, "
                        "'.', '_', '-' and '/'; not a hex id)", name);
  return 0;
}

/* Puts ref KEY, which must not exist: refs change only by compare and
 * swap, so that a backend shared by several hosts can order them. */
static int
new_ref_put (struct cairn_txn *txn, const char *key, const void *data,
             size_t len)
{
  return TOPS (txn)->record_cas (txn->bt, CAIRN_TABLE_REFS, key, strlen (key),
                                 NULL, &(struct cairn_val) { data, len });
}

/* Deletes ref NAME (a tag if TAG) by compare and swap of its record as
 * read now: 0, -ENOENT if there is none, -EEXIST if it changed between. */
static int
ref_delete (struct cairn_txn *txn, bool tag, const char *name)
{
  char key[CAIRN_NAME_MAX + 16];
  struct cairn_val cur;
  int r = ref_lookup (txn, tag, name, &cur);

  (tag ? tag_ref_key : branch_ref_key) (name, key, sizeof key);
  if (r == 0)
    r = TOPS (txn)->record_cas (txn->bt, CAIRN_TABLE_REFS, key, strlen (key),
                                &cur, NULL);
  return r;
}

static int
put_branch (struct cairn_txn *txn, const char *name,
            const struct cairn_branch_info *info)
{
  char key[CAIRN_NAME_MAX + 16];
  void *data;
  size_t len;
  int r = branch_info_encode (info, &data, &len);

  if (r < 0)
    return r;
  branch_ref_key (name, key, sizeof key);
  r = new_ref_put (txn, key, data, len);
  free (data);
  return r == -EEXIST
    ? cairn_error (r, "branch '%s' already exists", name) : r;
}

/* Begins the write transaction that makes NAME, which must be a valid
 * name no branch or tag has, a new ref to commit ID (*C gets it). */
static int
new_ref_begin (struct cairn_store *s, const char *name,
               const struct cairn_id *id, struct cairn_txn **txn,
               struct cairn_commit **c)
{
  int r = check_ref_name (name);

  if (r < 0 || (r = cairn_txn_begin (s, true, txn)) < 0)
    return r;
  r = name_free (*txn, name);
  if (r == 0)
    r = cairn_commit_read (*txn, id, c);
  if (r < 0)
    cairn_txn_abort (s, *txn);
  return r;
}

/* Sets INFO's volumes to the N volumes VOLS, each with a new working-state
 * id. */
static int
branch_volumes (struct cairn_txn *txn, const struct cairn_volume *vols,
                size_t n, struct cairn_branch_info *info)
{
  int r = 0;

  info->nvolumes = n;
  info->volumes = calloc (n ? n : 1, sizeof *info->volumes);
  if (!info->volumes)
    return -ENOMEM;
  for (size_t i = 0; r == 0 && i < n; i++) {
    struct cairn_branch_volume *v = &info->volumes[i];
    strcpy (v->name, vols[i].name);
    v->size = vols[i].size;
    v->chunk_size = vols[i].chunk_size;
    v->root = vols[i].root;
    r = branch_new_wid (txn, &v->wid);
  }
  return r;
}

int
cairn_branch_create_empty (struct cairn_store *s, const char *name,
                           const char *volume, uint64_t size)
{
  struct cairn_branch_volume vol = { .size = size,
                                     .chunk_size = s->chunk_size };
  struct cairn_branch_info info = { .created = cairn_time_now (),
                                    .nvolumes = 1, .volumes = &vol };
  struct cairn_txn *txn;
  int r;

  if ((r = check_ref_name (name)) < 0)
    return r;
  if (!cairn_volume_name_valid (volume))
    return cairn_error (CAIRN_EBADNAME, "'%s' is not a valid volume name "
                        "(use a-z, 0-9, '_' and '-')", volume);
  if (size == 0 || size % CAIRN_SECTOR != 0)
    return cairn_error (-EINVAL, "size %llu is not a positive multiple of "
                        "%d bytes", (unsigned long long) size, CAIRN_SECTOR);
  strcpy (vol.name, volume);
  r = cairn_txn_begin (s, true, &txn);
  if (r < 0)
    return r;
  r = name_free (txn, name);
  if (r == 0)
    r = branch_new_wid (txn, &vol.wid);
  if (r == 0)
    r = put_branch (txn, name, &info);
  return cairn_txn_end (s, txn, r);
}

int
cairn_branch_create_from (struct cairn_store *s, const char *name,
                          const struct cairn_id *from)
{
  struct cairn_branch_info info = { .created = cairn_time_now (),
                                    .base = *from };
  struct cairn_commit *c;
  struct cairn_txn *txn;
  int r = new_ref_begin (s, name, from, &txn, &c);

  if (r < 0)
    return r;
  if (cairn_commit_pruned (txn, from)) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (from, hex);
    r = cairn_error (-ENOENT, "commit %s was pruned: its data is gone", hex);
  }
  if (r == 0)
    r = branch_volumes (txn, c->volumes, c->nvolumes, &info);
  if (r == 0)
    r = put_branch (txn, name, &info);
  free (info.volumes);
  cairn_commit_free (c);
  return cairn_txn_end (s, txn, r);
}

int
cairn_branch_delete (struct cairn_store *s, const char *name)
{
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  char file[3 * CAIRN_NAME_MAX + 1], path[4096];
  int lock_fd, r;

  r = branch_known (s, name);
  if (r < 0)
    return r;
  r = branch_lock (s, name, &lock_fd);
  if (r < 0)
    return r;
  r = cairn_txn_begin (s, true, &txn);
  if (r < 0)
    goto unlock;
  r = cairn_branch_info_get (txn, name, &info);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    goto unlock;
  }
  /* The ref goes first, while the record just read is still where LMDB
   * put it (other writes of this transaction can move it). */
  r = ref_delete (txn, false, name);
  if (r == -EEXIST)
    r = cairn_error (r, "branch '%s' changed while it was deleted", name);
  for (size_t i = 0; r == 0 && i < info.nvolumes; i++)
    r = work_delete_all (txn, info.volumes[i].wid);
  cairn_branch_info_free (&info);
  if (r == 0)
    r = TOPS (txn)->record_delete (txn->bt, CAIRN_TABLE_RETENTION, name,
                                   strlen (name));
  if (r == -ENOENT)
    r = 0;
  if (r < 0) {
    cairn_txn_abort (s, txn);
    goto unlock;
  }
  r = cairn_txn_commit (s, txn);
  if (r == 0) {
    branch_file_name (name, file, sizeof file);
    snprintf (path, sizeof path, "%s/branches/%s", s->path, file);
    cairn_remove_tree (path);
  }
 unlock:
  branch_unlock (lock_fd);
  return r;
}

int
branch_known (struct cairn_store *s, const char *name)
{
  struct cairn_branch_info info;
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, false, &txn);

  if (r < 0)
    return r;
  r = cairn_branch_info_get (txn, name, &info);
  cairn_txn_abort (s, txn);
  if (r == 0)
    cairn_branch_info_free (&info);
  return r;
}

int
branch_lock (struct cairn_store *s, const char *name, int *fd_out)
{
  char file[3 * CAIRN_NAME_MAX + 1], path[4096], pid[32];

  branch_file_name (name, file, sizeof file);
  snprintf (path, sizeof path, "%s/run/%s.lock", s->path, file);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd == -1)
    return cairn_error (-errno, "%s: %m", path);
  if (flock (fd, LOCK_EX | LOCK_NB) == -1) {
    int holder = 0;
    if (errno == EWOULDBLOCK) {
      ssize_t n = pread (fd, pid, sizeof pid - 1, 0);
      if (n > 0) {
        pid[n] = '\0';
        holder = atoi (pid);
      }
    }
    close (fd);
    if (holder > 0)
      return cairn_error (CAIRN_EHELD, "branch '%s' is held by another "
                          "writer (pid %d)", name, holder);
    return cairn_error (CAIRN_EHELD, "branch '%s' is held by another writer",
                        name);
  }
  int n = snprintf (pid, sizeof pid, "%d\n", (int) getpid ());
  if (ftruncate (fd, 0) == 0 && pwrite (fd, pid, n, 0) == n) {
    /* The pid is informational only: the lock is the flock. */
  }
  *fd_out = fd;
  return 0;
}

void
branch_unlock (int fd)
{
  if (fd < 0)
    return;
  /* Leave the file: unlinking a lock file races with its next opener. */
  if (ftruncate (fd, 0) == -1) { /* pid text only */ }
  close (fd);
}

bool
cairn_branch_is_held (struct cairn_store *s, const char *name, int *pid)
{
  int fd;

  *pid = 0;
  if (branch_lock (s, name, &fd) == 0) {
    branch_unlock (fd);
    return false;
  }
  const char *msg = cairn_last_error (), *p = strstr (msg, "(pid ");
  if (p)
    *pid = atoi (p + 5);
  cairn_clear_error ();
  return true;
}

int
cairn_tag_get (struct cairn_txn *txn, const char *name, struct cairn_id *id)
{
  struct cairn_val v;
  int r = ref_get (txn, true, name, &v);

  if (r < 0)
    return r;
  if (v.len != CAIRN_ID_SIZE)
    return cairn_error (-EBADMSG, "tag '%s' is corrupt", name);
  memcpy (id->bytes, v.data, CAIRN_ID_SIZE);
  return 0;
}

int
cairn_tag_create (struct cairn_store *s, const char *name,
                  const struct cairn_id *commit)
{
  char key[CAIRN_NAME_MAX + 16];
  struct cairn_commit *c;
  struct cairn_txn *txn;
  int r = new_ref_begin (s, name, commit, &txn, &c);

  if (r < 0)
    return r;
  cairn_commit_free (c);
  tag_ref_key (name, key, sizeof key);
  r = new_ref_put (txn, key, commit->bytes, CAIRN_ID_SIZE);
  if (r == -EEXIST)
    r = cairn_error (r, "a tag named '%s' already exists", name);
  return cairn_txn_end (s, txn, r);
}

int
cairn_tag_delete (struct cairn_store *s, const char *name)
{
  struct cairn_txn *txn;
  int r = cairn_txn_begin (s, true, &txn);

  if (r < 0)
    return r;
  r = ref_delete (txn, true, name);
  if (r == -ENOENT)
    r = cairn_error (CAIRN_ENOREF, "no tag '%s'", name);
  return cairn_txn_end (s, txn, r);
}

struct list_ctx {
  enum cairn_ref_kind kind;
  cairn_ref_fn fn;
  void *arg;
  size_t plen;
};

static int
list_visit (struct cairn_val key, struct cairn_val value, void *arg)
{
  struct list_ctx *lc = arg;
  struct cairn_ref ref = { .kind = lc->kind };
  size_t nl = key.len - lc->plen;

  if (nl > CAIRN_NAME_MAX)
    return 0;
  memcpy (ref.name, (const char *) key.data + lc->plen, nl);
  ref.name[nl] = '\0';
  if (lc->kind == CAIRN_REF_TAG) {
    if (value.len != CAIRN_ID_SIZE)
      return 0;
    memcpy (ref.commit.bytes, value.data, CAIRN_ID_SIZE);
  }
  else {
    if (value.len < BRANCH_HEADER)
      return 0;
    memcpy (ref.commit.bytes, (const uint8_t *) value.data + 8,
            CAIRN_ID_SIZE);
  }
  return lc->fn (&ref, lc->arg);
}

int
cairn_ref_list (struct cairn_txn *txn, enum cairn_ref_kind kind,
                cairn_ref_fn fn, void *arg)
{
  const char *prefix = kind == CAIRN_REF_TAG ? "tags/" : "heads/";
  struct list_ctx lc = { kind, fn, arg, strlen (prefix) };
  int r = TOPS (txn)->record_scan (txn->bt, CAIRN_TABLE_REFS, prefix,
                                   lc.plen, NULL, 0, list_visit, &lc);
  return r > 0 ? 0 : r;
}

/* Walks N first-parent steps back from REF->commit. */
static int
ancestor (struct cairn_txn *txn, struct cairn_ref *ref, unsigned long n,
          const char *spec)
{
  for (unsigned long i = 0; i < n; i++) {
    struct cairn_commit *c;
    if (cairn_id_is_zero (&ref->commit))
      return cairn_error (CAIRN_ENOREF, "%s: no such ancestor", spec);
    int r = cairn_commit_read (txn, &ref->commit, &c);
    if (r < 0)
      return r;
    ref->commit = c->nparents ? c->parents[0] : cairn_zero_id;
    cairn_commit_free (c);
  }
  if (cairn_id_is_zero (&ref->commit))
    return cairn_error (CAIRN_ENOREF, "%s: no such ancestor", spec);
  return 0;
}

int
cairn_resolve (struct cairn_txn *txn, const char *spec, struct cairn_ref *ref)
{
  char name[CAIRN_NAME_MAX + 16];
  size_t n = strcspn (spec, "~^");
  unsigned long back = 0;
  int r;

  memset (ref, 0, sizeof *ref);
  if (n == 0 || n >= sizeof name)
    return cairn_error (CAIRN_ENOREF, "unknown ref '%s'", spec);
  memcpy (name, spec, n);
  name[n] = '\0';
  for (const char *p = spec + n; *p;) {
    if (*p == '^') {
      back++;
      p++;
    }
    else {
      char *end;
      p++;
      unsigned long k = isdigit ((unsigned char) *p) ? strtoul (p, &end, 10)
        : (end = (char *) p, 1);
      back += k;
      p = end;
      if (*p && *p != '~' && *p != '^')
        return cairn_error (CAIRN_ENOREF, "unknown ref '%s'", spec);
    }
  }

  const char *bare = name;
  bool want_branch = true, want_tag = true, want_commit = true;
  if (strncmp (name, "heads/", 6) == 0) {
    bare = name + 6;
    want_tag = want_commit = false;
  }
  else if (strncmp (name, "tags/", 5) == 0) {
    bare = name + 5;
    want_branch = want_commit = false;
  }

  if (want_branch && strlen (bare) <= CAIRN_NAME_MAX) {
    struct cairn_branch_info info;
    r = cairn_branch_info_get (txn, bare, &info);
    if (r == 0) {
      ref->kind = CAIRN_REF_BRANCH;
      strcpy (ref->name, bare);
      ref->commit = info.base;
      cairn_branch_info_free (&info);
      return back ? ancestor (txn, ref, back, spec) : 0;
    }
    if (r != CAIRN_ENOREF)
      return r;
  }
  if (want_tag && strlen (bare) <= CAIRN_NAME_MAX) {
    r = cairn_tag_get (txn, bare, &ref->commit);
    if (r == 0) {
      ref->kind = CAIRN_REF_TAG;
      strcpy (ref->name, bare);
      return back ? ancestor (txn, ref, back, spec) : 0;
    }
    if (r != CAIRN_ENOREF)
      return r;
  }
  if (want_commit && cairn_is_hex_prefix (bare)) {
    r = cairn_commit_find_prefix (txn, bare, &ref->commit);
    if (r < 0)
      return r;
    ref->kind = CAIRN_REF_COMMIT;
    return back ? ancestor (txn, ref, back, spec) : 0;
  }
  size_t len = strlen (bare);
  if (want_commit && len > 0 && len < CAIRN_MIN_PREFIX
      && strspn (bare, "0123456789abcdefABCDEF") == len)
    return cairn_error (CAIRN_ENOREF, "unknown ref '%s': no branch or tag by "
                        "that name, and an id prefix needs at least %d "
                        "digits", spec, CAIRN_MIN_PREFIX);
  return cairn_error (CAIRN_ENOREF, "unknown ref '%s': no branch, tag or "
                      "commit by that name", spec);
}

int
cairn_branch_create_with_commit (struct cairn_store *s, const char *name,
                                 const struct cairn_volume *volumes,
                                 size_t nvolumes,
                                 const struct cairn_commit_options *o,
                                 struct cairn_id *id)
{
  struct cairn_commit c = { 0 };
  struct cairn_branch_info info = { .created = cairn_time_now () };
  struct cairn_txn *txn;
  int r;

  if ((r = check_ref_name (name)) < 0)
    return r;
  c.nvolumes = nvolumes;
  c.volumes = (struct cairn_volume *) volumes;
  c.time = o && o->time ? o->time : cairn_time_now ();
  c.message = o && o->message ? (char *) o->message : "";
  c.vm = o ? (char *) o->vm : NULL;
  for (size_t i = 0; o && o->labels && o->labels[i]; i++)
    c.nlabels++;
  c.labels = o ? (char **) o->labels : NULL;
  c.nparents = o ? o->nextra_parents : 0;
  c.parents = o ? (struct cairn_id *) o->extra_parents : NULL;

  r = cairn_txn_begin (s, true, &txn);
  if (r < 0)
    return r;
  r = name_free (txn, name);
  if (r == 0) {
    r = commit_store (txn, &c, id);
    if (r == -EINVAL)
      r = cairn_error (r, "a label must be KEY=VALUE");
  }
  if (r == 0)
    r = branch_volumes (txn, volumes, nvolumes, &info);
  info.base = *id;
  if (r == 0)
    r = put_branch (txn, name, &info);
  r = cairn_txn_end (s, txn, r);
  free (info.volumes);
  return r;
}
