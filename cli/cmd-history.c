/* cmd-history.c: log, show, cat, diff, du. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"

/* ---- refs pointing at commits, for decorations ---------------------- */

struct deco {
  struct cairn_ref *refs;
  size_t n;
};

static int
add_deco (const struct cairn_ref *ref, void *arg)
{
  struct deco *d = arg;
  struct cairn_ref *p = realloc (d->refs, (d->n + 1) * sizeof *p);
  if (!p)
    return -ENOMEM;
  p[d->n++] = *ref;
  d->refs = p;
  return 0;
}

static int
load_deco (struct cairn_txn *txn, struct deco *d)
{
  int r = cairn_ref_list (txn, CAIRN_REF_BRANCH, add_deco, d);
  return r < 0 ? r : cairn_ref_list (txn, CAIRN_REF_TAG, add_deco, d);
}

/* "main, tag: v1" for commit ID, into BUF. */
static void
deco_text (const struct deco *d, const struct cairn_id *id, char *buf,
           size_t len)
{
  size_t at = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < d->n && at < len; i++)
    if (cairn_id_equal (&d->refs[i].commit, id))
      at += snprintf (buf + at, len - at, "%s%s%s", at ? ", " : "",
                      d->refs[i].kind == CAIRN_REF_TAG ? "tag: " : "",
                      d->refs[i].name);
}

static struct json_object *
deco_json (const struct deco *d, const struct cairn_id *id)
{
  struct json_object *a = json_object_new_array ();
  char buf[CAIRN_NAME_MAX + 8];

  for (size_t i = 0; i < d->n; i++)
    if (cairn_id_equal (&d->refs[i].commit, id)) {
      snprintf (buf, sizeof buf, "%s%s",
                d->refs[i].kind == CAIRN_REF_TAG ? "tags/" : "heads/",
                d->refs[i].name);
      json_object_array_add (a, json_object_new_string (buf));
    }
  return a;
}

static struct json_object *
commit_json (struct cairn_txn *txn, const struct cairn_commit *c,
             const struct deco *d)
{
  struct json_object *o = json_object_new_object ();
  struct json_object *parents = json_object_new_array ();
  struct json_object *labels = json_object_new_object ();
  struct json_object *vols = json_object_new_array ();
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE];

  cairn_id_to_hex (&c->id, hex);
  cairn_time_format (c->time, when);
  json_object_object_add (o, "id", json_object_new_string (hex));
  json_object_object_add (o, "time", json_object_new_string (when));
  for (size_t i = 0; i < c->nparents; i++) {
    cairn_id_to_hex (&c->parents[i], hex);
    json_object_array_add (parents, json_object_new_string (hex));
  }
  json_object_object_add (o, "parents", parents);
  json_object_object_add (o, "message", json_object_new_string (c->message));
  for (size_t i = 0; i < c->nlabels; i++) {
    char *eq = strchr (c->labels[i], '=');
    char key[256];
    snprintf (key, sizeof key, "%.*s", (int) (eq - c->labels[i]),
              c->labels[i]);
    json_object_object_add (labels, key, json_object_new_string (eq + 1));
  }
  json_object_object_add (o, "labels", labels);
  bool pruned = cairn_commit_pruned (txn, &c->id);
  json_object_object_add (o, "pruned", json_object_new_boolean (pruned));
  for (size_t i = 0; i < c->nvolumes; i++) {
    struct json_object *v = json_object_new_object ();
    cairn_id_to_hex (&c->volumes[i].root, hex);
    json_object_object_add (v, "name",
                            json_object_new_string (c->volumes[i].name));
    json_object_object_add (v, "size",
                            json_object_new_int64 (c->volumes[i].size));
    json_object_object_add (v, "chunk_size",
                            json_object_new_int64 (c->volumes[i].chunk_size));
    json_object_object_add (v, "root", json_object_new_string (hex));
    json_object_array_add (vols, v);
  }
  json_object_object_add (o, "volumes", vols);
  json_object_object_add (o, "vm", c->vm ? json_object_new_string (c->vm)
                          : NULL);
  json_object_object_add (o, "refs", deco_json (d, &c->id));
  return o;
}

static void
print_json (struct json_object *j)
{
  puts (json_object_to_json_string_ext (j, JSON_C_TO_STRING_PRETTY
                                        | JSON_C_TO_STRING_SPACED
                                        | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The full, git-like form of a commit. */
static void
print_commit (struct cairn_txn *txn, const struct cairn_commit *c,
              const struct deco *d, bool volumes)
{
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE], refs[512];

  cairn_id_to_hex (&c->id, hex);
  cairn_time_format (c->time, when);
  deco_text (d, &c->id, refs, sizeof refs);
  printf ("commit %s%s%s%s%s\n", hex, *refs ? " (" : "", refs,
          *refs ? ")" : "",
          cairn_commit_pruned (txn, &c->id) ? " [pruned]" : "");
  for (size_t i = 1; i < c->nparents; i++) {
    cairn_id_to_hex (&c->parents[i], hex);
    printf ("Parent: %s\n", hex);
  }
  printf ("Time:   %s\n", when);
  for (size_t i = 0; i < c->nlabels; i++)
    printf ("Label:  %s\n", c->labels[i]);
  if (c->vm)
    printf ("VM:     %s\n", c->vm);
  if (volumes)
    for (size_t i = 0; i < c->nvolumes; i++) {
      char size[32];
      cairn_format_bytes (c->volumes[i].size, size, sizeof size);
      cairn_id_to_hex (&c->volumes[i].root, hex);
      printf ("Volume: %-10s %10s  root %s\n", c->volumes[i].name, size,
              hex);
    }
  putchar ('\n');
  if (*c->message) {
    const char *p = c->message;
    while (*p) {
      const char *nl = strchr (p, '\n');
      int n = nl ? (int) (nl - p) : (int) strlen (p);
      printf ("    %.*s\n", n, p);
      p += n + (nl ? 1 : 0);
    }
    putchar ('\n');
  }
}

/* ---- graph: lanes of commits still expected, like git log --graph ---- */

struct graph {
  struct cairn_id *lanes;
  size_t n;
};

static void
graph_row (struct graph *g, size_t col, const char *mark)
{
  for (size_t i = 0; i < g->n; i++)
    printf ("%s ", i == col ? mark : "|");
}

/* Prints the graph prefix for commit C and updates the lanes. */
static void
graph_commit (struct graph *g, const struct cairn_commit *c)
{
  size_t col = g->n;

  for (size_t i = 0; i < g->n; i++)
    if (cairn_id_equal (&g->lanes[i], &c->id)) {
      col = i;
      break;
    }
  if (col == g->n) {
    g->lanes = realloc (g->lanes, (g->n + 1) * sizeof *g->lanes);
    g->lanes[g->n++] = c->id;
  }
  /* Other lanes waiting for this commit join it: a branch point. */
  for (size_t j = g->n; j-- > col + 1;)
    if (cairn_id_equal (&g->lanes[j], &c->id)) {
      /* Lane J moves left into the lane before it ("/"), and every lane
       * after it moves left too. */
      for (size_t i = 0; i < g->n; i++)
        if (i != j)
          printf ("%s", i + 1 == j ? "|/" : i < j ? "| " : " /");
      putchar ('\n');
      memmove (&g->lanes[j], &g->lanes[j + 1],
               (g->n - j - 1) * sizeof *g->lanes);
      g->n--;
    }
  graph_row (g, col, "*");
  if (c->nparents == 0) {
    memmove (&g->lanes[col], &g->lanes[col + 1],
             (g->n - col - 1) * sizeof *g->lanes);
    g->n--;
    return;
  }
  g->lanes[col] = c->parents[0];
  for (size_t p = 1; p < c->nparents; p++) {
    g->lanes = realloc (g->lanes, (g->n + 1) * sizeof *g->lanes);
    g->lanes[g->n++] = c->parents[p];
  }
}

/* A count of commits: decimal digits only, so that "abc", "-3" or "5x"
 * is a usage error and not a silently empty or unlimited log. */
static int
parse_count (const char *arg, long *count)
{
  char *end;

  if (*arg < '0' || *arg > '9')
    return -EINVAL;
  errno = 0;
  *count = strtol (arg, &end, 10);
  return errno || *end ? -EINVAL : 0;
}

int
cmd_log (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "graph", no_argument, NULL, 'g' },
    { "all", no_argument, NULL, 'a' },
    { "json", no_argument, NULL, 'j' },
    { "oneline", no_argument, NULL, 'o' },
    { "first-parent", no_argument, NULL, 'f' },
    { "max-count", required_argument, NULL, 'n' },
    { NULL },
  };
  bool graph = false, all = false, json = false, oneline = false;
  bool first_parent = false;
  long max = -1;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "n:", opts, NULL,
          "Shows the history of REF (a branch, tag or commit), newest first\n"
          "but each commit before its parents, so a head dated back by\n"
          "--time still comes first; with --all or without REF, of every\n"
          "branch and tag.  -n N shows the first N.  --graph\n"
          "draws the branches, --json prints a JSON array of commits with\n"
          "id, time, parents, message, labels, pruned, volumes and refs.\n"))
         != -1) {
    switch (c) {
    case 'g': graph = true; break;
    case 'a': all = true; break;
    case 'j': json = true; break;
    case 'o': oneline = true; break;
    case 'f': first_parent = true; break;
    case 'n':
      if (parse_count (optarg, &max) < 0)
        return cli_usage (cli, "-n takes a count, not '%s'", optarg);
      break;
    }
  }
  if (argc - optind > 1)
    return cli_usage (cli, "log takes at most one REF");
  if (optind == argc)
    all = true;

  struct cairn_store *s;
  struct cairn_txn *txn;
  struct deco d = { 0 };
  struct cairn_id *heads = NULL, *ids = NULL;
  size_t nheads = 0, n = 0;
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0) {
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }
  r = load_deco (txn, &d);
  if (r == 0 && optind < argc) {
    struct cairn_ref ref;
    r = cairn_resolve (txn, argv[optind], &ref);
    if (r == 0) {
      heads = malloc (sizeof *heads);
      heads[nheads++] = ref.commit;
    }
  }
  if (r == 0 && all) {
    heads = realloc (heads, (nheads + d.n) * sizeof *heads);
    for (size_t i = 0; i < d.n; i++)
      heads[nheads++] = d.refs[i].commit;
  }
  if (r == 0)
    r = cairn_history (txn, heads, nheads, first_parent, &ids, &n);
  if (r < 0) {
    cairn_txn_abort (s, txn);
    cairn_store_close (s);
    free (heads);
    free (d.refs);
    return cli_fail_code (r, NULL);
  }
  if (max >= 0 && (size_t) max < n)
    n = max;

  struct json_object *arr = json ? json_object_new_array () : NULL;
  struct graph g = { 0 };
  for (size_t i = 0; i < n && r == 0; i++) {
    struct cairn_commit *cm;
    r = cairn_commit_read (txn, &ids[i], &cm);
    if (r < 0)
      break;
    if (json)
      json_object_array_add (arr, commit_json (txn, cm, &d));
    else if (graph || oneline) {
      char hex[CAIRN_HEX_SIZE + 1], refs[512], when[CAIRN_TIME_SIZE];
      if (graph)
        graph_commit (&g, cm);
      cairn_id_to_hex (&cm->id, hex);
      cairn_time_format_seconds (cm->time, when);
      deco_text (&d, &cm->id, refs, sizeof refs);
      const char *nl = strchr (cm->message, '\n');
      /* Ids are whole unless --oneline asks for short lines. */
      printf ("%.*s %s%s%s%s%s %.*s\n", oneline ? 12 : CAIRN_HEX_SIZE, hex,
              when, *refs ? " (" : "", refs,
              *refs ? ")" : "",
              cairn_commit_pruned (txn, &cm->id) ? " [pruned]" : "",
              nl ? (int) (nl - cm->message) : (int) strlen (cm->message),
              cm->message);
    }
    else
      print_commit (txn, cm, &d, false);
    cairn_commit_free (cm);
  }
  if (json) {
    print_json (arr);
    json_object_put (arr);
  }
  cairn_txn_abort (s, txn);
  cairn_store_close (s);
  free (g.lanes);
  free (heads);
  free (ids);
  free (d.refs);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

int
cmd_show (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  bool json = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Shows commit REF: parents, time, labels, the VM it holds, its\n"
          "volumes with their sizes and tree roots, and its message.\n"))
         != -1) {
    if (c == 'j')
      json = true;
  }
  if (argc - optind != 1)
    return cli_usage (cli, "show takes one REF");

  struct cairn_store *s;
  struct cairn_txn *txn;
  struct cairn_ref ref;
  struct cairn_commit *cm = NULL;
  struct deco d = { 0 };
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0) {
    r = cairn_resolve (txn, argv[optind], &ref);
    if (r == 0 && cairn_id_is_zero (&ref.commit))
      r = cairn_error (-ENOENT, "branch '%s' has no commit yet", ref.name);
    if (r == 0)
      r = cairn_commit_read (txn, &ref.commit, &cm);
    if (r == 0)
      r = load_deco (txn, &d);
    if (r == 0 && json) {
      struct json_object *j = commit_json (txn, cm, &d);
      print_json (j);
      json_object_put (j);
    }
    else if (r == 0) {
      char hex[CAIRN_HEX_SIZE + 1];
      print_commit (txn, cm, &d, true);
      if (cm->nparents) {
        cairn_id_to_hex (&cm->parents[0], hex);
        printf ("Parent: %s\n", hex);
      }
    }
    cairn_txn_abort (s, txn);
  }
  cairn_commit_free (cm);
  free (d.refs);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

int
cmd_cat (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { NULL },
  };
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Prints object ID (any unique prefix of 4 or more digits): a\n"
          "commit's text, a tree node's children, or a chunk's raw bytes.\n"))
         != -1)
    continue;
  if (argc - optind != 1)
    return cli_usage (cli, "cat takes one ID");
  const char *spec = argv[optind];

  struct cairn_store *s;
  struct cairn_txn *txn;
  struct cairn_id id;
  struct cairn_val v;
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    goto out;
  enum cairn_object_type type;
  r = cairn_object_find_prefix (txn, spec, &id, &type);
  if (r == 0 && type == CAIRN_OBJECT_COMMIT) {
    r = cairn_object_get (txn, CAIRN_OBJECT_COMMIT, &id, &v);
    if (r == 0)
      fwrite (v.data, 1, v.len, stdout);
  }
  else if (r == 0 && type == CAIRN_OBJECT_NODE) {
    struct cairn_id children[CAIRN_TREE_FANOUT];
    unsigned level;
    if ((r = cairn_tree_node_read (txn, &id, &level, children)) == 0) {
      printf ("tree node, level %u\n", level);
      for (int i = 0; i < CAIRN_TREE_FANOUT; i++)
        if (!cairn_id_is_zero (&children[i])) {
          char hex[CAIRN_HEX_SIZE + 1];
          cairn_id_to_hex (&children[i], hex);
          printf ("%3d %s\n", i, hex);
        }
    }
  }
  else if (r == 0) {
    char *buf = malloc (cairn_store_chunk_size (s));
    r = buf ? cairn_chunk_read (s, &id, buf) : -ENOMEM;
    if (r == 0)
      fwrite (buf, 1, cairn_store_chunk_size (s), stdout);
    free (buf);
  }
  cairn_txn_abort (s, txn);
 out:
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

/* ---- diff ----------------------------------------------------------- */

struct range_out {
  const char *volume;
  struct json_object *arr;
  uint64_t start, len;          /* pending range */
  uint64_t count, bytes;
};

static void
range_flush (struct range_out *o)
{
  if (o->len == 0)
    return;
  if (o->arr) {
    struct json_object *j = json_object_new_object ();
    json_object_object_add (j, "volume", json_object_new_string (o->volume));
    json_object_object_add (j, "offset", json_object_new_int64 (o->start));
    json_object_object_add (j, "length", json_object_new_int64 (o->len));
    json_object_array_add (o->arr, j);
  }
  else
    printf ("%s %llu %llu\n", o->volume, (unsigned long long) o->start,
            (unsigned long long) o->len);
  o->count++;
  o->bytes += o->len;
  o->len = 0;
}

static void
range_add (struct range_out *o, uint64_t start, uint64_t len)
{
  if (o->len && o->start + o->len == start) {
    o->len += len;
    return;
  }
  range_flush (o);
  o->start = start;
  o->len = len;
}

struct diff_ctx {
  struct cairn_store *s;
  struct range_out *out;
  uint32_t cs;
  uint64_t size;                /* compare up to here */
  char *a, *b;
};

static int
diff_chunk (uint64_t index, const struct cairn_id *ia,
            const struct cairn_id *ib, void *arg)
{
  struct diff_ctx *x = arg;
  uint64_t base = index * x->cs;
  if (base >= x->size)
    return 0;
  size_t n = CAIRN_MIN ((uint64_t) x->cs, x->size - base);
  int r = cairn_chunk_read (x->s, ia, x->a);
  if (r == 0)
    r = cairn_chunk_read (x->s, ib, x->b);
  if (r < 0)
    return r;
  for (size_t i = 0; i < n;) {
    if (x->a[i] == x->b[i]) {
      i++;
      continue;
    }
    size_t j = i + 1;
    while (j < n && x->a[j] != x->b[j])
      j++;
    range_add (x->out, base + i, j - i);
    i = j;
  }
  return 0;
}

/* Diffs volume NAME of commits A and B. */
static int
diff_volume (struct cairn_store *s, struct cairn_txn *txn,
             const struct cairn_volume *va, const struct cairn_volume *vb,
             const char *name, struct range_out *out)
{
  out->volume = name;
  if (!va || !vb) {
    const struct cairn_volume *v = va ? va : vb;
    range_add (out, 0, v->size);
    range_flush (out);
    return 0;
  }
  uint32_t cs = va->chunk_size;
  struct diff_ctx x = { s, out, cs, CAIRN_MIN (va->size, vb->size),
                        malloc (cs), malloc (cs) };
  int r = x.a && x.b ? 0 : -ENOMEM;
  if (r == 0)
    r = cairn_tree_diff (txn, &va->root, cairn_tree_levels (va->size, cs),
                         &vb->root, cairn_tree_levels (vb->size, cs),
                         diff_chunk, &x);
  if (r == 0 && va->size != vb->size)
    range_add (out, x.size, CAIRN_MAX (va->size, vb->size) - x.size);
  range_flush (out);
  free (x.a);
  free (x.b);
  return r;
}

int
cmd_diff (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "volume", required_argument, NULL, 'v' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  const char *volume = NULL;
  bool json = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "v:", opts, NULL,
          "Prints the byte ranges that differ between two commits, one per\n"
          "line as VOLUME OFFSET LENGTH (--json: an array of objects), for\n"
          "every volume or just --volume.  Unchanged subtrees are skipped\n"
          "by id, so the cost follows the change, not the volume size.\n"))
         != -1) {
    if (c == 'v')
      volume = optarg;
    else if (c == 'j')
      json = true;
  }
  if (argc - optind != 2)
    return cli_usage (cli, "diff takes two REFs");

  struct cairn_store *s;
  struct cairn_txn *txn = NULL;
  struct cairn_commit *ca = NULL, *cb = NULL;
  struct cairn_ref ra, rb;
  struct range_out out = { .arr = json ? json_object_new_array () : NULL };
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    txn = NULL;
  if (r == 0)
    r = cairn_resolve (txn, argv[optind], &ra);
  if (r == 0)
    r = cairn_resolve (txn, argv[optind + 1], &rb);
  if (r == 0
      && (cairn_id_is_zero (&ra.commit) || cairn_id_is_zero (&rb.commit)))
    r = cairn_error (-ENOENT, "a branch with no commit has nothing to diff");
  if (r == 0)
    r = cairn_commit_read (txn, &ra.commit, &ca);
  if (r == 0)
    r = cairn_commit_read (txn, &rb.commit, &cb);
  if (r == 0 && (cairn_commit_pruned (txn, &ra.commit)
                 || cairn_commit_pruned (txn, &rb.commit)))
    r = cairn_error (-ENOENT, "a pruned commit's data is gone");
  if (r == 0 && volume) {
    const struct cairn_volume *va = cairn_commit_volume (ca, volume);
    const struct cairn_volume *vb = cairn_commit_volume (cb, volume);
    if (!va && !vb)
      r = cairn_error (CAIRN_ENOVOLUME, "neither commit has a volume '%s'",
                       volume);
    else
      r = diff_volume (s, txn, va, vb, volume, &out);
  }
  else if (r == 0) {
    for (size_t i = 0; r == 0 && i < ca->nvolumes; i++)
      r = diff_volume (s, txn, &ca->volumes[i],
                       cairn_commit_volume (cb, ca->volumes[i].name),
                       ca->volumes[i].name, &out);
    for (size_t i = 0; r == 0 && i < cb->nvolumes; i++)
      if (!cairn_commit_volume (ca, cb->volumes[i].name))
        r = diff_volume (s, txn, NULL, &cb->volumes[i], cb->volumes[i].name,
                         &out);
  }
  if (txn)
    cairn_txn_abort (s, txn);
  if (r == 0 && json)
    print_json (out.arr);
  else if (r == 0 && isatty (1))
    fprintf (stderr, "%llu ranges, %llu bytes differ\n",
             (unsigned long long) out.count, (unsigned long long) out.bytes);
  json_object_put (out.arr);
  cairn_commit_free (ca);
  cairn_commit_free (cb);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

/* ---- du --------------------------------------------------------------- */

int
cmd_du (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "json", no_argument, NULL, 'j' },
    { "bytes", no_argument, NULL, 'b' },
    { NULL },
  };
  bool json = false, bytes = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "b", opts, NULL,
          "For each commit of REF's history (or of every branch and tag),\n"
          "the stored bytes unique to it (what pruning it alone would free)\n"
          "and those it shares with other commits.  -b prints bytes.\n"))
         != -1) {
    if (c == 'j')
      json = true;
    else if (c == 'b')
      bytes = true;
  }
  if (argc - optind > 1)
    return cli_usage (cli, "du takes at most one REF");

  struct cairn_store *s;
  struct cairn_txn *txn = NULL;
  struct deco d = { 0 };
  struct cairn_id *heads = NULL, *ids = NULL;
  struct cairn_du_entry *du = NULL;
  size_t nheads = 0, n = 0;
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r < 0)
    txn = NULL;
  if (r == 0)
    r = load_deco (txn, &d);
  if (r == 0 && optind < argc) {
    struct cairn_ref ref;
    r = cairn_resolve (txn, argv[optind], &ref);
    heads = malloc (sizeof *heads);
    if (r == 0)
      heads[nheads++] = ref.commit;
  }
  else if (r == 0) {
    heads = malloc ((d.n + 1) * sizeof *heads);
    for (size_t i = 0; i < d.n; i++)
      heads[nheads++] = d.refs[i].commit;
  }
  if (r == 0)
    r = cairn_history (txn, heads, nheads, false, &ids, &n);
  if (r == 0) {
    du = calloc (n ? n : 1, sizeof *du);
    r = du ? cairn_du (txn, ids, n, du) : -ENOMEM;
  }
  if (r == 0) {
    struct json_object *arr = json ? json_object_new_array () : NULL;
    uint64_t tu = 0, packs = 0, npacks = 0;
    if (!json)
      printf ("%-64s %-20s %12s %12s %12s\n", "commit", "time", "unique",
              "shared", "referenced");
    for (size_t i = 0; i < n; i++) {
      char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE];
      char u[32], sh[32], ref[32];
      cairn_id_to_hex (&du[i].id, hex);
      cairn_time_format_seconds (du[i].time, when);
      tu += du[i].unique;
      if (json) {
        struct json_object *o = json_object_new_object ();
        json_object_object_add (o, "id", json_object_new_string (hex));
        json_object_object_add (o, "time", json_object_new_string (when));
        json_object_object_add (o, "pruned",
                                json_object_new_boolean (du[i].pruned));
        json_object_object_add (o, "unique",
                                json_object_new_int64 (du[i].unique));
        json_object_object_add (o, "shared",
                                json_object_new_int64 (du[i].shared));
        json_object_object_add (o, "referenced",
                                json_object_new_int64 (du[i].referenced));
        json_object_array_add (arr, o);
        continue;
      }
      if (bytes) {
        snprintf (u, sizeof u, "%llu", (unsigned long long) du[i].unique);
        snprintf (sh, sizeof sh, "%llu", (unsigned long long) du[i].shared);
        snprintf (ref, sizeof ref, "%llu",
                  (unsigned long long) du[i].referenced);
      }
      else {
        cairn_format_bytes (du[i].unique, u, sizeof u);
        cairn_format_bytes (du[i].shared, sh, sizeof sh);
        cairn_format_bytes (du[i].referenced, ref, sizeof ref);
      }
      printf ("%s %-20s %12s %12s %12s%s\n", hex, when, u, sh, ref,
              du[i].pruned ? "  [pruned]" : "");
    }
    struct cairn_backend *b = cairn_store_backend (s);
    b->ops->space (b, &packs, &npacks);
    if (json) {
      print_json (arr);
      json_object_put (arr);
    }
    else {
      char u[32], p[32];
      cairn_format_bytes (tu, u, sizeof u);
      cairn_format_bytes (packs, p, sizeof p);
      printf ("%zu commits, %s unique in all; packs hold %s in %llu files\n",
              n, u, p, (unsigned long long) npacks);
    }
  }
  if (txn)
    cairn_txn_abort (s, txn);
  cairn_store_close (s);
  free (heads);
  free (ids);
  free (du);
  free (d.refs);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}
