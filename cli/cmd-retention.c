/* cmd-retention.c: retention set / show / clear, and prune. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "qemu-glue/vm.h"
#include "retention/prune.h"

/* Commits only qemu-glue knows must stay: those VMs run from (vm.h). */
static const cairn_retention_keep_fn vm_keep = vm_keep_commits;

static void
print_json (struct json_object *j)
{
  puts (json_object_to_json_string_ext (j, JSON_C_TO_STRING_PRETTY
                                        | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- retention set ------------------------------------------------------ */

static const char retention_set_help[] =
  "Stores the retention policy of BRANCH, replacing any it had.  Rules\n"
  "(restic's semantics, UTC):\n"
  "  --keep-last N       the N newest commits\n"
  "  --keep-minutely N   the newest commit of each of the N newest minutes\n"
  "  --keep-hourly N     ... hours     --keep-daily N    ... days\n"
  "  --keep-weekly N     ... ISO weeks --keep-monthly N  ... months\n"
  "  --keep-yearly N     ... years\n"
  "  --keep-within D     every commit within D (90m, 36h, 7d, 2w) of the\n"
  "                      branch's newest commit\n"
  "N may be 'unlimited'.  A commit is kept if any rule keeps it; tagged\n"
  "commits, branch bases and commits a live branch or VM needs are always\n"
  "kept.  A branch without a policy keeps every commit.  'cairn prune'\n"
  "applies the policies.\n"
  "\n"
  "'cairn retention show [BRANCH] [--json]' prints the policies;\n"
  "'cairn retention clear BRANCH' removes one.\n";

static int
retention_set (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "keep-last", required_argument, NULL, 1 },
    { "keep-minutely", required_argument, NULL, 1 },
    { "keep-hourly", required_argument, NULL, 1 },
    { "keep-daily", required_argument, NULL, 1 },
    { "keep-weekly", required_argument, NULL, 1 },
    { "keep-monthly", required_argument, NULL, 1 },
    { "keep-yearly", required_argument, NULL, 1 },
    { "keep-within", required_argument, NULL, 1 },
    { NULL },
  };
  struct cairn_retention_policy policy = { 0 };
  char text[CAIRN_RETENTION_TEXT_MAX];
  struct cairn_store *s;
  int c, r, index;
  bool any = false;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, &index,
                          retention_set_help)) != -1) {
    const char *name = opts[index].name;
    r = cairn_retention_policy_set (&policy, name, optarg);
    if (r == -ERANGE)
      return cli_usage (cli, "--%s '%s' is too large", name, optarg);
    if (r < 0 && strcmp (name, "keep-within") == 0)
      return cli_usage (cli, "--keep-within takes a duration with a unit "
                        "(90m, 36h, 7d, 2w), not '%s'", optarg);
    if (r < 0)
      return cli_usage (cli, "--%s takes a count or 'unlimited', not '%s'",
                        name, optarg);
    any = true;
  }
  if (argc - optind != 1)
    return cli_usage (cli, "retention set needs one BRANCH");
  if (!any)
    return cli_usage (cli, "retention set needs at least one --keep-* rule "
                      "('cairn retention clear' removes a policy)");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = cairn_retention_set (s, argv[optind], &policy);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  cairn_retention_policy_describe (&policy, text, sizeof text);
  fprintf (stderr, "retention of branch '%s': %s\n", argv[optind], text);
  return 0;
}

/* ---- retention show ----------------------------------------------------- */

struct shown {
  const char *only;             /* one branch, or NULL for all */
  bool json;
  struct json_object *arr;
  struct cairn_store *s;
  struct cairn_txn *txn;
  size_t count;
};

/* The rules of P as a JSON object: "keep-hourly": 24, "keep-within":
 * "7d", "keep-last": "unlimited". */
static struct json_object *
policy_json (const struct cairn_retention_policy *p)
{
  struct json_object *o = json_object_new_object ();
  char text[CAIRN_RETENTION_TEXT_MAX], *save = NULL;

  cairn_retention_policy_to_text (p, text, sizeof text);
  for (char *line = strtok_r (text, "\n", &save); line;
       line = strtok_r (NULL, "\n", &save)) {
    char *sp = strchr (line, ' ');
    if (!sp || strncmp (line, "cairn-retention", 15) == 0)
      continue;
    *sp = '\0';
    const char *v = sp + 1;
    json_object_object_add (o, line,
                            strspn (v, "0123456789") == strlen (v)
                            ? json_object_new_int64 (atoll (v))
                            : json_object_new_string (v));
  }
  return o;
}

static void
show_one (struct shown *sh, const char *branch,
          const struct cairn_retention_policy *p, bool exists)
{
  char text[CAIRN_RETENTION_TEXT_MAX];

  sh->count++;
  if (sh->json) {
    struct json_object *o = json_object_new_object ();
    json_object_object_add (o, "branch", json_object_new_string (branch));
    json_object_object_add (o, "exists", json_object_new_boolean (exists));
    json_object_object_add (o, "policy", policy_json (p));
    json_object_array_add (sh->arr, o);
    return;
  }
  if (cairn_retention_policy_is_empty (p))
    snprintf (text, sizeof text, "none (keeps every commit)");
  else
    cairn_retention_policy_describe (p, text, sizeof text);
  printf ("%s: %s%s\n", branch, text, exists ? "" : " (no such branch)");
}

static int
show_branch (const struct cairn_ref *ref, void *arg)
{
  struct shown *sh = arg;
  struct cairn_retention_policy p;
  int r = cairn_retention_get (sh->s, sh->txn, ref->name, &p);

  if (r < 0 && r != -ENOENT)
    return r;
  show_one (sh, ref->name, &p, true);
  return 0;
}

/* Policies left by branches that were deleted. */
static int
show_orphan (const char *branch, const struct cairn_retention_policy *p,
             void *arg)
{
  struct shown *sh = arg;
  struct cairn_branch_info info;

  if (cairn_branch_info_get (sh->txn, branch, &info) == 0) {
    cairn_branch_info_free (&info);
    return 0;
  }
  cairn_clear_error ();
  show_one (sh, branch, p, false);
  return 0;
}

static int
retention_show (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct shown sh = { 0 };
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Prints the retention policy of BRANCH, or of every branch (and\n"
          "policies left by deleted branches).  A branch without a policy\n"
          "keeps every commit.\n")) != -1) {
    if (c == 'j')
      sh.json = true;
  }
  if (argc - optind > 1)
    return cli_usage (cli, "retention show takes at most one BRANCH");
  sh.only = optind < argc ? argv[optind] : NULL;
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &sh.s)))
    return r;
  sh.arr = sh.json ? json_object_new_array () : NULL;
  r = cairn_txn_begin (sh.s, false, &sh.txn);
  if (r == 0) {
    if (sh.only) {
      struct cairn_retention_policy p;
      struct cairn_branch_info info;
      bool exists = cairn_branch_info_get (sh.txn, sh.only, &info) == 0;
      if (exists)
        cairn_branch_info_free (&info);
      r = cairn_retention_get (sh.s, sh.txn, sh.only, &p);
      if (r == -ENOENT && !exists)
        r = cairn_error (CAIRN_ENOREF, "no branch '%s'", sh.only);
      else if (r == -ENOENT || r == 0) {
        cairn_clear_error ();
        r = 0;
        show_one (&sh, sh.only, &p, exists);
      }
    }
    else {
      r = cairn_ref_list (sh.txn, CAIRN_REF_BRANCH, show_branch, &sh);
      if (r == 0)
        r = cairn_retention_list (sh.s, sh.txn, show_orphan, &sh);
    }
    cairn_txn_abort (sh.s, sh.txn);
  }
  if (r == 0 && sh.json)
    print_json (sh.arr);
  json_object_put (sh.arr);
  cairn_store_close (sh.s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

/* ---- retention clear ---------------------------------------------------- */

static int
retention_clear (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { NULL },
  };
  struct cairn_store *s;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Removes the retention policy of BRANCH: it keeps every commit\n"
          "from then on.  Works for a deleted branch's policy too.\n")) != -1)
    continue;
  if (argc - optind != 1)
    return cli_usage (cli, "retention clear needs one BRANCH");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = cairn_retention_clear (s, argv[optind]);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

int
cmd_retention (struct cli *cli, int argc, char **argv)
{
  if (argc >= 2 && (strcmp (argv[1], "--help") == 0
                    || strcmp (argv[1], "-h") == 0)) {
    printf ("usage: cairn %s\n\n%s", cli->command, retention_set_help);
    return 0;
  }
  if (argc < 2)
    return cli_usage (cli, "retention needs set, show or clear");
  if (strcmp (argv[1], "set") == 0)
    return retention_set (cli, argc - 1, argv + 1);
  if (strcmp (argv[1], "show") == 0)
    return retention_show (cli, argc - 1, argv + 1);
  if (strcmp (argv[1], "clear") == 0)
    return retention_clear (cli, argc - 1, argv + 1);
  return cli_usage (cli, "unknown retention command '%s' (set, show, clear)",
                    argv[1]);
}

/* ---- prune -------------------------------------------------------------- */

void
cli_prune_hooks (struct cairn_prune_options *o)
{
  o->keep = vm_keep;
  o->keep_arg = NULL;
}

/* Prints RES: one line per commit, or the JSON object. */
static void
print_prune (const struct cairn_prune_result *res, bool json, bool dry)
{
  const struct cairn_retention_result *v = res->verdicts;
  char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE];

  if (json) {
    struct json_object *o = json_object_new_object ();
    struct json_object *keep = json_object_new_array ();
    struct json_object *prune = json_object_new_array ();
    struct json_object *unreach = json_object_new_array ();
    for (size_t i = 0; i < v->n_decisions; i++) {
      const struct cairn_retention_decision *d = &v->decisions[i];
      cairn_id_to_hex (&d->id, hex);
      if (!d->keep) {
        json_object_array_add (prune, json_object_new_string (hex));
        continue;
      }
      struct json_object *k = json_object_new_object ();
      struct json_object *reasons = json_object_new_array ();
      cairn_time_format_seconds (d->time, when);
      json_object_object_add (k, "id", json_object_new_string (hex));
      json_object_object_add (k, "time", json_object_new_string (when));
      for (size_t j = 0; j < d->n_reasons; j++)
        json_object_array_add (reasons,
                               json_object_new_string (d->reasons[j]));
      json_object_object_add (k, "reasons", reasons);
      json_object_array_add (keep, k);
    }
    for (size_t i = 0; i < res->n_unreachable; i++) {
      cairn_id_to_hex (&res->unreachable[i], hex);
      json_object_array_add (prune, json_object_new_string (hex));
      json_object_array_add (unreach, json_object_new_string (hex));
    }
    json_object_object_add (o, "keep", keep);
    json_object_object_add (o, "prune", prune);
    json_object_object_add (o, "unreachable", unreach);
    json_object_object_add (o, "dry_run", json_object_new_boolean (dry));
    print_json (o);
    json_object_put (o);
    return;
  }
  for (size_t i = 0; i < v->n_decisions; i++) {
    const struct cairn_retention_decision *d = &v->decisions[i];
    cairn_id_to_hex (&d->id, hex);
    cairn_time_format_seconds (d->time, when);
    printf ("%-5s %s %s", d->keep ? "keep" : "prune", hex, when);
    for (size_t j = 0; j < d->n_reasons; j++)
      printf ("%s%s", j ? ", " : "  ", d->reasons[j]);
    putchar ('\n');
  }
  for (size_t i = 0; i < res->n_unreachable; i++) {
    cairn_id_to_hex (&res->unreachable[i], hex);
    cairn_time_format_seconds (res->unreachable_time[i], when);
    printf ("prune %s %s  (unreachable)\n", hex, when);
  }
}

int
cmd_prune (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "dry-run", no_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct cairn_prune_options o = { 0 };
  struct cairn_prune_result res;
  struct cairn_store *s;
  bool json = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "n", opts, NULL,
          "Applies the retention policies ('cairn retention'): each commit\n"
          "of BRANCH's first-parent chain (of every branch without BRANCH)\n"
          "is kept, with its reasons, or pruned: it becomes a tombstone.\n"
          "Its text stays, so 'cairn log' still shows it ([pruned]), and\n"
          "'cairn gc' reclaims its data.  Tagged commits, branch bases and\n"
          "commits a live branch or VM needs are always kept; a commit\n"
          "several branches share is pruned only if none keeps it.\n"
          "\n"
          "Without BRANCH, prune also tombstones the commits that nothing\n"
          "reaches any more (no branch, tag or reader): after 'cairn\n"
          "branch -d', this is how a deleted branch's space comes back.\n"
          "\n"
          "--dry-run decides and prints without changing anything.  --json\n"
          "prints {\"keep\": [{\"id\", \"time\", \"reasons\"}],\n"
          "\"prune\": [ids], \"unreachable\": [ids], \"dry_run\"}.\n")) != -1) {
    if (c == 'n')
      o.dry_run = true;
    else if (c == 'j')
      json = true;
  }
  if (argc - optind > 1)
    return cli_usage (cli, "prune takes at most one BRANCH");
  o.branch = optind < argc ? argv[optind] : NULL;
  cli_prune_hooks (&o);
  if ((r = cli_open_store (cli, o.dry_run ? CAIRN_OPEN_READONLY : 0, &s)))
    return r;
  r = cairn_prune (s, &o, &res);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  print_prune (&res, json, o.dry_run);
  fprintf (stderr, "%zu commits: %zu kept, %zu %s%s\n",
           res.verdicts->n_decisions + res.n_unreachable, res.verdicts->n_keep,
           res.n_pruned, o.dry_run ? "would be pruned" : "pruned",
           o.dry_run ? " (dry run: nothing changed)" : "");
  cairn_prune_result_free (&res);
  return 0;
}
