/* cmd-branch.c: init, create, branch, commit, tag. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"

int
cmd_init (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "chunk-size", required_argument, NULL, 'c' },
    { "compress", required_argument, NULL, 'z' },
    { NULL },
  };
  struct cairn_store_options o = { 0 };
  uint64_t cs;
  char path[4096];
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Creates an empty store.  --chunk-size is a power of two from 4K\n"
          "to 1M (default 64K); --compress is zstd:LEVEL (1-19, default 1)\n"
          "or none.\n")) != -1) {
    if (c == 'c') {
      if ((r = cli_parse_size (cli, "chunk size", optarg, &cs)))
        return r;
      if (cs < CAIRN_MIN_CHUNK_SIZE || cs > CAIRN_MAX_CHUNK_SIZE
          || (cs & (cs - 1)))
        return cli_usage (cli, "chunk size must be a power of two from 4K "
                          "to 1M");
      o.chunk_size = cs;
    }
    else if (c == 'z') {
      if (strcmp (optarg, "none") == 0)
        o.compress_level = -1;
      else if (sscanf (optarg, "zstd:%d", &o.compress_level) != 1
               || o.compress_level < 1 || o.compress_level > 19)
        return cli_usage (cli, "--compress takes zstd:LEVEL (1-19) or none");
    }
  }
  if (optind != argc)
    return cli_usage (cli, "init takes no arguments");
  if (cli->store_path)
    snprintf (path, sizeof path, "%s", cli->store_path);
  else
    cairn_default_store_path (path, sizeof path);
  r = cairn_store_init (path, &o);
  if (r < 0)
    return cli_fail_code (r, NULL);
  fprintf (stderr, "Initialized an empty cairn store in %s\n", path);
  return 0;
}

int
cmd_create (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "volume", required_argument, NULL, 'v' },
    { NULL },
  };
  const char *volume = NULL;
  struct cairn_store *s;
  uint64_t size;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "v:", opts, NULL,
          "Creates branch BRANCH with an empty, sparse volume of SIZE bytes\n"
          "(a multiple of 512; K, M, G, T suffixes).  With --volume on an\n"
          "existing branch, adds that volume to it.\n")) != -1) {
    if (c == 'v')
      volume = optarg;
  }
  if (argc - optind != 2)
    return cli_usage (cli, "create needs BRANCH and SIZE");
  if ((r = cli_parse_size (cli, "size", argv[optind + 1], &size)))
    return r;
  if (size == 0 || size % CAIRN_SECTOR)
    return cli_fail ("size %s is not a positive multiple of 512 bytes",
                     argv[optind + 1]);
  if ((r = cli_open_store (cli, 0, &s)))
    return r;

  const char *name = argv[optind];
  struct cairn_txn *txn;
  struct cairn_branch_info info;
  bool exists = false, has_volume = false;
  if (cairn_txn_begin (s, false, &txn) == 0) {
    exists = cairn_branch_info_get (txn, name, &info) == 0;
    for (size_t i = 0; exists && volume && i < info.nvolumes; i++)
      has_volume |= strcmp (info.volumes[i].name, volume) == 0;
    if (exists)
      cairn_branch_info_free (&info);
    cairn_txn_abort (s, txn);
  }
  cairn_clear_error ();
  if (has_volume)       /* refused before the branch is opened for writing */
    r = cairn_error (-EEXIST, "branch '%s' already has a volume '%s'", name,
                     volume);
  else if (exists && volume) {
    struct cairn_branch *b;
    r = cairn_branch_open (s, name, CAIRN_BRANCH_WRITE, &b);
    if (r == 0) {
      r = cairn_branch_add_volume (b, volume, size);
      cairn_branch_close (b);
    }
  }
  else
    r = cairn_branch_create_empty (s, name, volume ? volume : "disk", size);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

/* Parses -m, --label and --time into O; LABELS grows. */
static int
commit_option (struct cli *cli, int c, struct cairn_commit_options *o,
               const char ***labels, size_t *nlabels)
{
  switch (c) {
  case 'm':
    o->message = optarg;
    return 0;
  case 'l':
    if (!strchr (optarg, '=') || optarg[0] == '=')
      return cli_usage (cli, "--label takes KEY=VALUE, not '%s'", optarg);
    cli_push (labels, nlabels, optarg);
    o->labels = *labels;
    return 0;
  case 't':
    if (cairn_time_parse (optarg, &o->time) < 0)
      return cli_usage (cli, "--time '%s' is not an ISO-8601 time such as "
                        "2026-11-21T10:00:00Z", optarg);
    return 0;
  }
  return -1;
}

int
cmd_commit (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "message", required_argument, NULL, 'm' },
    { "label", required_argument, NULL, 'l' },
    { "time", required_argument, NULL, 't' },
    { NULL },
  };
  struct cairn_commit_options o = { 0 };
  const char **labels = NULL;
  size_t nlabels = 0;
  struct cairn_store *s;
  struct cairn_id id;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "m:", opts, NULL,
          "Freezes the branch's current state into a new commit and prints\n"
          "its id.  A branch served by nbdkit is committed by the serving\n"
          "process, with every write acknowledged so far.  --time sets the\n"
          "commit's time (for importing a historical series).\n")) != -1)
    if ((r = commit_option (cli, c, &o, &labels, &nlabels)) > 0) {
      free (labels);
      return r;
    }
  if (argc - optind != 1)
    return cli_usage (cli, "commit needs one BRANCH");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = cairn_commit_branch (s, argv[optind], &o, &id);
  if (r == 0)
    cli_print_id (&id);
  else
    r = cli_fail_code (r, NULL);
  cairn_store_close (s);
  free (labels);
  return r;
}

struct branch_row {
  char name[CAIRN_NAME_MAX + 1];
  struct cairn_id base;
};

struct branch_rows {
  struct branch_row *rows;
  size_t n;
};

static int
collect_ref (const struct cairn_ref *ref, void *arg)
{
  struct branch_rows *br = arg;
  struct branch_row *p = realloc (br->rows, (br->n + 1) * sizeof *p);
  if (!p)
    return -ENOMEM;
  br->rows = p;
  strcpy (p[br->n].name, ref->name);
  p[br->n].base = ref->commit;
  br->n++;
  return 0;
}

static int
branch_list (struct cli *cli, bool json)
{
  struct cairn_store *s;
  struct cairn_txn *txn;
  struct branch_rows br = { 0 };
  int r;

  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0) {
    r = cairn_ref_list (txn, CAIRN_REF_BRANCH, collect_ref, &br);
    cairn_txn_abort (s, txn);
  }
  if (r < 0) {
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }
  struct json_object *arr = json ? json_object_new_array () : NULL;
  for (size_t i = 0; i < br.n; i++) {
    struct cairn_branch_info info = { 0 };
    struct cairn_commit *c = NULL;
    char hex[CAIRN_HEX_SIZE + 1] = "", when[CAIRN_TIME_SIZE] = "";
    int pid;
    bool live = cairn_branch_is_held (s, br.rows[i].name, &pid);
    if (cairn_txn_begin (s, false, &txn) == 0) {
      cairn_branch_info_get (txn, br.rows[i].name, &info);
      if (!cairn_id_is_zero (&info.base)
          && cairn_commit_read (txn, &info.base, &c) == 0)
        cairn_time_format_seconds (c->time, when);
      cairn_txn_abort (s, txn);
    }
    if (!cairn_id_is_zero (&info.base))
      cairn_id_to_hex (&info.base, hex);
    if (json) {
      struct json_object *o = json_object_new_object (), *vols;
      json_object_object_add (o, "name",
                              json_object_new_string (br.rows[i].name));
      json_object_object_add (o, "base", *hex ? json_object_new_string (hex)
                              : NULL);
      json_object_object_add (o, "time", *when ? json_object_new_string (when)
                              : NULL);
      json_object_object_add (o, "dirty", json_object_new_boolean (info.dirty));
      json_object_object_add (o, "live", json_object_new_boolean (live));
      json_object_object_add (o, "pid", live && pid
                              ? json_object_new_int (pid) : NULL);
      vols = json_object_new_array ();
      for (size_t k = 0; k < info.nvolumes; k++) {
        struct json_object *v = json_object_new_object ();
        json_object_object_add (v, "name",
                                json_object_new_string (info.volumes[k].name));
        json_object_object_add (v, "size",
                                json_object_new_int64 (info.volumes[k].size));
        json_object_array_add (vols, v);
      }
      json_object_object_add (o, "volumes", vols);
      json_object_array_add (arr, o);
    }
    else {
      char sizes[256] = "";
      size_t at = 0;
      for (size_t k = 0; k < info.nvolumes && at < sizeof sizes; k++) {
        char b[32];
        cairn_format_bytes (info.volumes[k].size, b, sizeof b);
        at += snprintf (sizes + at, sizeof sizes - at, "%s%s %s",
                        k ? ", " : "", info.volumes[k].name, b);
      }
      printf ("%-20s %-64s %-20s %s%s%s\n", br.rows[i].name,
              *hex ? hex : "(no commit)", when, sizes,
              info.dirty && !cairn_id_is_zero (&info.base)
              ? "  [uncommitted changes]" : "",
              live ? "  [live]" : "");
    }
    cairn_commit_free (c);
    cairn_branch_info_free (&info);
  }
  if (json) {
    puts (json_object_to_json_string_ext (arr, JSON_C_TO_STRING_PRETTY
                                               | JSON_C_TO_STRING_SPACED
                                          | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (arr);
  }
  free (br.rows);
  cairn_store_close (s);
  return 0;
}

int
cmd_branch (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "delete", required_argument, NULL, 'd' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  const char *del = NULL;
  bool json = false;
  struct cairn_store *s;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "d:", opts, NULL,
          "Without arguments, lists branches.  NEW FROM makes branch NEW\n"
          "start at FROM, a commit, tag or branch (a live branch is\n"
          "committed first, so NEW has every write it acknowledged).\n"
          "-d deletes a branch (its commits stay, by id and tag).\n")) != -1) {
    if (c == 'd')
      del = optarg;
    else if (c == 'j')
      json = true;
  }
  if (del) {
    if (optind != argc)
      return cli_usage (cli, "-d takes one branch");
    if ((r = cli_open_store (cli, 0, &s)))
      return r;
    r = cairn_branch_delete (s, del);
    cairn_store_close (s);
    return r < 0 ? cli_fail_code (r, NULL) : 0;
  }
  if (optind == argc)
    return branch_list (cli, json);
  if (argc - optind != 2)
    return cli_usage (cli, "branch takes NEW and FROM");

  const char *name = argv[optind], *from = argv[optind + 1];
  struct cairn_txn *txn;
  struct cairn_ref ref;
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0) {
    r = cairn_resolve (txn, from, &ref);
    cairn_txn_abort (s, txn);
  }
  int pid;
  if (r == 0 && ref.kind == CAIRN_REF_BRANCH && strcmp (ref.name, from) == 0
      && cairn_branch_is_held (s, ref.name, &pid)) {
    char msg[CAIRN_NAME_MAX + 32];
    snprintf (msg, sizeof msg, "branch point for %s", name);
    struct cairn_commit_options o = { .message = msg };
    r = cairn_commit_branch (s, ref.name, &o, &ref.commit);
  }
  if (r == 0 && cairn_id_is_zero (&ref.commit))
    r = cairn_error (-ENOENT, "branch '%s' has no commit yet: commit it "
                     "first", from);
  if (r == 0)
    r = cairn_branch_create_from (s, name, &ref.commit);
  if (r == 0) {
    char hex[CAIRN_HEX_SIZE + 1];
    cairn_id_to_hex (&ref.commit, hex);
    fprintf (stderr, "Branch %s starts at %s\n", name, hex);
  }
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

static int
print_tag (const struct cairn_ref *ref, void *arg)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (&ref->commit, hex);
  printf ("%-20s %s\n", ref->name, hex);
  return 0;
}

int
cmd_tag (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "delete", required_argument, NULL, 'd' },
    { NULL },
  };
  const char *del = NULL;
  struct cairn_store *s;
  struct cairn_txn *txn;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "d:", opts, NULL,
          "NAME REF names the commit REF resolves to (tags are immutable and\n"
          "keep their commit from retention).  -d NAME deletes a tag.\n"
          "Without arguments, lists tags.\n")) != -1) {
    if (c == 'd')
      del = optarg;
  }
  if (del) {
    if (optind != argc)
      return cli_usage (cli, "-d takes one tag");
    if ((r = cli_open_store (cli, 0, &s)))
      return r;
    r = cairn_tag_delete (s, del);
    cairn_store_close (s);
    return r < 0 ? cli_fail_code (r, NULL) : 0;
  }
  if (optind == argc) {
    if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
      return r;
    r = cairn_txn_begin (s, false, &txn);
    if (r == 0) {
      r = cairn_ref_list (txn, CAIRN_REF_TAG, print_tag, NULL);
      cairn_txn_abort (s, txn);
    }
    cairn_store_close (s);
    return r < 0 ? cli_fail_code (r, NULL) : 0;
  }
  if (argc - optind != 2)
    return cli_usage (cli, "tag takes NAME and REF");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  struct cairn_ref ref;
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0) {
    r = cairn_resolve (txn, argv[optind + 1], &ref);
    cairn_txn_abort (s, txn);
  }
  if (r == 0 && cairn_id_is_zero (&ref.commit))
    r = cairn_error (-ENOENT, "'%s' has no commit yet", argv[optind + 1]);
  if (r == 0)
    r = cairn_tag_create (s, argv[optind], &ref.commit);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}
