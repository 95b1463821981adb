/* commit.c: commit objects and tombstones (formats: see store.h). */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"

#define COMMIT_HEADER "cairn-commit 1\n"

void
cairn_commit_free (struct cairn_commit *c)
{
  if (!c)
    return;
  free (c->parents);
  free (c->volumes);
  free (c->vm);
  for (size_t i = 0; i < c->nlabels; i++)
    free (c->labels[i]);
  free (c->labels);
  free (c->message);
  free (c);
}

static bool
label_valid (const char *l)
{
  const char *eq = strchr (l, '=');

  if (!eq || eq == l)
    return false;
  for (const char *p = l; p < eq; p++)
    if (!isalnum ((unsigned char) *p) && !strchr ("_.-", *p))
      return false;
  return strchr (l, '\n') == NULL;
}

static int
volume_cmp (const void *a, const void *b)
{
  return strcmp (((const struct cairn_volume *) a)->name,
                 ((const struct cairn_volume *) b)->name);
}

/* The commit text as it is built: a buffer that grows, and the first
 * error.  A commit formats on every commit, so no stdio streams. */
struct text {
  char *buf;
  size_t len, cap;
  int err;
};

static void
put (struct text *t, const char *s, size_t n)
{
  if (t->err == 0 && cairn_reserve (&t->buf, &t->cap, t->len + n + 1, 512) < 0)
    t->err = -ENOMEM;
  if (t->err)
    return;
  memcpy (t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

/* KEY, then the strings up to NULL, then a newline. */
static void
put_line (struct text *t, const char *key, ...)
{
  va_list ap;

  put (t, key, strlen (key));
  va_start (ap, key);
  for (const char *s; (s = va_arg (ap, const char *));)
    put (t, s, strlen (s));
  va_end (ap);
  put (t, "\n", 1);
}

int
cairn_commit_format (const struct cairn_commit *c, char **text, size_t *len)
{
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE], size[24], chunk[24];
  struct text t = { 0 };
  struct cairn_volume *vols = NULL;

  if (c->vm && strchr (c->vm, '\n'))
    return -EINVAL;
  for (size_t i = 0; i < c->nlabels; i++)
    if (!label_valid (c->labels[i]))
      return -EINVAL;
  vols = malloc ((c->nvolumes + 1) * sizeof *vols);
  if (!vols)
    return -ENOMEM;
  if (c->nvolumes > 0)          /* no volumes: VOLUMES may be NULL */
    memcpy (vols, c->volumes, c->nvolumes * sizeof *vols);
  qsort (vols, c->nvolumes, sizeof *vols, volume_cmp);
  for (size_t i = 0; i < c->nvolumes; i++)
    if (!cairn_volume_name_valid (vols[i].name)
        || (i > 0 && strcmp (vols[i - 1].name, vols[i].name) == 0)) {
      free (vols);
      return -EINVAL;
    }

  put (&t, COMMIT_HEADER, strlen (COMMIT_HEADER));
  for (size_t i = 0; i < c->nparents; i++) {
    cairn_id_to_hex (&c->parents[i], hex);
    put_line (&t, "parent ", hex, NULL);
  }
  cairn_time_format (c->time, when);
  put_line (&t, "time ", when, NULL);
  for (size_t i = 0; i < c->nvolumes; i++) {
    cairn_id_to_hex (&vols[i].root, hex);
    snprintf (size, sizeof size, "%" PRIu64, vols[i].size);
    snprintf (chunk, sizeof chunk, "%" PRIu32, vols[i].chunk_size);
    put_line (&t, "volume ", vols[i].name, " size=", size, " chunk=", chunk,
              " root=", hex, NULL);
  }
  if (c->vm)
    put_line (&t, "vm ", c->vm, NULL);
  for (size_t i = 0; i < c->nlabels; i++)
    put_line (&t, "label ", c->labels[i], NULL);
  put (&t, "\n", 1);
  if (c->message && *c->message) {
    put (&t, c->message, strlen (c->message));
    if (c->message[strlen (c->message) - 1] != '\n')
      put (&t, "\n", 1);
  }
  free (vols);
  if (t.err) {
    free (t.buf);
    return t.err;
  }
  *text = t.buf;
  *len = t.len;
  return 0;
}

/* A strict decimal number, all of S. */
static bool
parse_u64 (const char *s, uint64_t *v)
{
  char *end;

  if (!isdigit ((unsigned char) *s) || (s[0] == '0' && s[1]))
    return false;
  errno = 0;
  *v = strtoull (s, &end, 10);
  return errno == 0 && *end == '\0';
}

static int
parse_volume (char *line, struct cairn_volume *v)
{
  char *save, *name = strtok_r (line, " ", &save);
  char *size = strtok_r (NULL, " ", &save);
  char *chunk = strtok_r (NULL, " ", &save);
  char *root = strtok_r (NULL, " ", &save);
  uint64_t n;

  if (!name || !size || !chunk || !root || strtok_r (NULL, " ", &save)
      || strlen (name) > CAIRN_VOLUME_NAME_MAX
      || !cairn_volume_name_valid (name)
      || strncmp (size, "size=", 5) != 0 || !parse_u64 (size + 5, &v->size)
      || strncmp (chunk, "chunk=", 6) != 0 || !parse_u64 (chunk + 6, &n)
      || n < CAIRN_MIN_CHUNK_SIZE || n > CAIRN_MAX_CHUNK_SIZE
      || (n & (n - 1)) != 0 || v->size == 0
      || strncmp (root, "root=", 5) != 0
      || cairn_id_from_hex (root + 5, &v->root) < 0)
    return -EBADMSG;
  strcpy (v->name, name);
  v->chunk_size = n;
  return 0;
}

static int
push (void **array, size_t *n, size_t size, const void *item)
{
  void *p = realloc (*array, (*n + 1) * size);
  if (!p)
    return -ENOMEM;
  memcpy ((char *) p + *n * size, item, size);
  *array = p;
  (*n)++;
  return 0;
}

int
cairn_commit_parse (const char *text, size_t len, struct cairn_commit **out)
{
  struct cairn_commit *c = calloc (1, sizeof *c);
  char *copy = malloc (len + 1);
  int r = -EBADMSG;
  enum { PARENTS, TIME, VOLUMES, VM, LABELS } stage = PARENTS;

  if (!c || !copy) {
    r = -ENOMEM;
    goto out;
  }
  memcpy (copy, text, len);
  copy[len] = '\0';
  if (strlen (copy) != len || strncmp (copy, COMMIT_HEADER,
                                       strlen (COMMIT_HEADER)) != 0)
    goto out;
  cairn_sha256 (text, len, &c->id);

  char *p = copy + strlen (COMMIT_HEADER);
  for (;;) {
    char *nl = strchr (p, '\n');
    if (!nl)
      goto out;
    *nl = '\0';
    char *line = p;
    p = nl + 1;
    if (*line == '\0')
      break;
    if (strncmp (line, "parent ", 7) == 0 && stage == PARENTS) {
      struct cairn_id id;
      if (cairn_id_from_hex (line + 7, &id) < 0)
        goto out;
      if ((r = push ((void **) &c->parents, &c->nparents, sizeof id, &id)))
        goto out;
      r = -EBADMSG;
    }
    else if (strncmp (line, "time ", 5) == 0 && stage <= TIME) {
      if (cairn_time_parse (line + 5, &c->time) < 0)
        goto out;
      stage = VOLUMES;
    }
    else if (strncmp (line, "volume ", 7) == 0 && stage == VOLUMES) {
      struct cairn_volume v;
      if (parse_volume (line + 7, &v) < 0
          || (c->nvolumes > 0
              && strcmp (c->volumes[c->nvolumes - 1].name, v.name) >= 0))
        goto out;
      if ((r = push ((void **) &c->volumes, &c->nvolumes, sizeof v, &v)))
        goto out;
      r = -EBADMSG;
    }
    else if (strncmp (line, "vm ", 3) == 0 && stage == VOLUMES) {
      if (!(c->vm = strdup (line + 3))) {
        r = -ENOMEM;
        goto out;
      }
      stage = LABELS;
    }
    else if (strncmp (line, "label ", 6) == 0
             && (stage == VOLUMES || stage == LABELS)) {
      char *l = line + 6;
      if (!label_valid (l))
        goto out;
      char *dup = strdup (l);
      if (!dup || push ((void **) &c->labels, &c->nlabels, sizeof dup,
                        &dup)) {
        free (dup);
        r = -ENOMEM;
        goto out;
      }
      stage = LABELS;
    }
    else
      goto out;
  }
  if (stage < VOLUMES)
    goto out;                   /* no time line */
  size_t mlen = strlen (p);
  if (mlen > 0 && p[mlen - 1] != '\n')
    goto out;
  if (mlen > 0)
    p[mlen - 1] = '\0';
  if (!(c->message = strdup (p))) {
    r = -ENOMEM;
    goto out;
  }
  *out = c;
  c = NULL;
  r = 0;

 out:
  free (copy);
  cairn_commit_free (c);
  return r;
}

int
cairn_commit_read (struct cairn_txn *txn, const struct cairn_id *id,
                   struct cairn_commit **c)
{
  char hex[CAIRN_HEX_SIZE + 1];
  struct cairn_val v;
  int r = TOPS (txn)->object_get (txn->bt, CAIRN_OBJECT_COMMIT, id, &v, NULL);

  cairn_id_to_hex (id, hex);
  if (r == -ENOENT)
    return cairn_error (CAIRN_ENOREF, "no commit %s", hex);
  if (r < 0)
    return r;
  r = cairn_commit_parse (v.data, v.len, c);
  if (r == 0 && !cairn_id_equal (&(*c)->id, id)) {
    cairn_commit_free (*c);
    r = -EBADMSG;
  }
  if (r == -EBADMSG)
    return cairn_error (r, "commit %s is corrupt", hex);
  return r;
}

int
commit_store (struct cairn_txn *txn, const struct cairn_commit *c,
              struct cairn_id *id)
{
  char *text;
  size_t len;
  int r = cairn_commit_format (c, &text, &len);

  if (r < 0)
    return r;
  cairn_sha256 (text, len, id);
  r = TOPS (txn)->object_put (txn->bt, CAIRN_OBJECT_COMMIT, id, text, len,
                              len, 0);
  free (text);
  return r < 0 ? r : 0;
}

const struct cairn_volume *
cairn_commit_volume (const struct cairn_commit *c, const char *name)
{
  for (size_t i = 0; i < c->nvolumes; i++)
    if (strcmp (c->volumes[i].name, name) == 0)
      return &c->volumes[i];
  return NULL;
}

const char *
cairn_commit_label (const struct cairn_commit *c, const char *key)
{
  size_t n = strlen (key);

  for (size_t i = 0; i < c->nlabels; i++)
    if (strncmp (c->labels[i], key, n) == 0 && c->labels[i][n] == '=')
      return c->labels[i] + n + 1;
  return NULL;
}

bool
cairn_commit_pruned (struct cairn_txn *txn, const struct cairn_id *id)
{
  struct cairn_val v;
  return TOPS (txn)->record_get (txn->bt, CAIRN_TABLE_TOMBSTONES, id->bytes,
                                 CAIRN_ID_SIZE, &v) == 0;
}

int
cairn_commit_prune (struct cairn_txn *txn, const struct cairn_id *id)
{
  uint8_t when[8];

  cairn_put_le64 (when, (uint64_t) cairn_time_now ());
  return TOPS (txn)->record_put (txn->bt, CAIRN_TABLE_TOMBSTONES, id->bytes,
                                 CAIRN_ID_SIZE, when, sizeof when);
}

struct commit_scan {
  cairn_commit_scan_fn fn;
  void *arg;
};

static int
commit_scan_visit (const struct cairn_id *id,
                   const struct cairn_object_info *info, void *arg)
{
  struct commit_scan *cs = arg;
  return cs->fn (id, cs->arg);
}

int
cairn_commit_scan (struct cairn_txn *txn, const struct cairn_id *start,
                   cairn_commit_scan_fn fn, void *arg)
{
  struct commit_scan cs = { fn, arg };

  return TOPS (txn)->object_scan (txn->bt, CAIRN_OBJECT_COMMIT, start,
                                  commit_scan_visit, &cs);
}

struct prefix_search {
  char prefix[CAIRN_HEX_SIZE + 1];      /* lower case */
  size_t n;
  int found;
  struct cairn_id id;
};

static int
prefix_visit (const struct cairn_id *id, const struct cairn_object_info *info,
              void *arg)
{
  struct prefix_search *ps = arg;
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_id_to_hex (id, hex);
  if (strncmp (hex, ps->prefix, ps->n) != 0)
    return 1;                   /* past the prefix: ids are sorted */
  if (ps->found++ == 0)
    ps->id = *id;
  return ps->found > 1 ? 1 : 0;
}

/* Counts the objects of the types in MASK (bits 1 << type) whose ids
 * start with the hex digits PREFIX (at most 64), into PS, stopping at
 * two; *TYPE gets the first one's type. */
static int
prefix_search (struct cairn_txn *txn, unsigned mask, const char *prefix,
               struct prefix_search *ps, enum cairn_object_type *type)
{
  struct cairn_id start = cairn_zero_id;
  size_t n = strlen (prefix);

  *ps = (struct prefix_search) { .n = n };
  for (size_t i = 0; i <= n; i++)
    ps->prefix[i] = tolower ((unsigned char) prefix[i]);
  for (size_t i = 0; i < n; i++) {
    unsigned v = isdigit ((unsigned char) ps->prefix[i]) ? ps->prefix[i] - '0'
      : ps->prefix[i] - 'a' + 10;
    start.bytes[i / 2] |= i % 2 ? v : v << 4;
  }
  for (int t = 0; t < CAIRN_OBJECT_TYPES && ps->found < 2; t++) {
    if (!(mask & 1u << t))
      continue;
    int before = ps->found;
    int r = TOPS (txn)->object_scan (txn->bt, t, &start, prefix_visit, ps);
    if (r < 0)
      return r;
    if (ps->found > before && before == 0)
      *type = t;
  }
  return 0;
}

/* The one object of the types in MASK whose id starts with PREFIX; WHAT
 * names them in errors. */
static int
find_prefix (struct cairn_txn *txn, unsigned mask, const char *what,
             const char *prefix, struct cairn_id *id,
             enum cairn_object_type *type)
{
  struct prefix_search ps;

  if (!cairn_is_hex_prefix (prefix))
    return cairn_error (CAIRN_ENOREF, "'%s' is not %s %s id (%d to %d hex "
                        "digits)", prefix, *what == 'o' ? "an" : "a", what,
                        CAIRN_MIN_PREFIX, CAIRN_HEX_SIZE);
  int r = prefix_search (txn, mask, prefix, &ps, type);
  if (r < 0)
    return r;
  if (ps.found == 0)
    return cairn_error (CAIRN_ENOREF, "no %s starts with %s", what, ps.prefix);
  if (ps.found > 1)
    return cairn_error (CAIRN_EAMBIGUOUS, "%s is ambiguous: several %ss "
                        "start with it; type more digits", ps.prefix, what);
  *id = ps.id;
  return 0;
}

int
cairn_commit_find_prefix (struct cairn_txn *txn, const char *prefix,
                          struct cairn_id *id)
{
  enum cairn_object_type type;
  return find_prefix (txn, 1u << CAIRN_OBJECT_COMMIT, "commit", prefix, id,
                      &type);
}

int
cairn_object_find_prefix (struct cairn_txn *txn, const char *prefix,
                          struct cairn_id *id, enum cairn_object_type *type)
{
  return find_prefix (txn, ~0u, "object", prefix, id, type);
}
