/* cmd-autocommit.c: commit a branch on a schedule.
 *
 * The "commit every minute" mode: a foreground loop that commits BRANCH
 * at every tick of --every, through its serving process if it is live
 * (cairn_commit_branch), else by opening it for the moment of the commit,
 * so a plugin may start or stop serving the branch between ticks.  With
 * --prune, retention is applied to the branch after each commit, so old
 * commits thin out as new ones come.
 *
 * Ticks are start + k * every on the monotonic clock; a tick missed
 * because a commit ran long is skipped, not made up in a burst.  SIGTERM
 * and SIGINT are blocked and only waited for between commits
 * (sigtimedwait), so a commit is never cut in half: the loop stops at the
 * next wait, prints a summary and exits 0.
 */
#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "retention/prune.h"

/* Waits up to NS for SIGTERM or SIGINT (blocked in SET): true if one came. */
static bool
wait_for_stop (const sigset_t *set, int64_t ns)
{
  if (ns <= 0)
    ns = 0;
  struct timespec ts = { ns / 1000000000, ns % 1000000000 };
  for (;;) {
    int sig = sigtimedwait (set, NULL, &ts);
    if (sig > 0)
      return true;
    if (errno != EINTR)
      return false;           /* EAGAIN: the time is up */
  }
}

int
cmd_autocommit (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "every", required_argument, NULL, 'e' },
    { "prune", no_argument, NULL, 'p' },
    { "count", required_argument, NULL, 'c' },
    { "message", required_argument, NULL, 'm' },
    { "label", required_argument, NULL, 'l' },
    { NULL },
  };
  struct cairn_commit_options co = { .message = "autocommit" };
  const char **labels = NULL;
  size_t nlabels = 0;
  int64_t every = 0;
  unsigned long long count = 0, made = 0, pruned = 0;
  bool prune = false;
  struct cairn_store *s;
  sigset_t stop;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "m:", opts, NULL,
          "Commits BRANCH every DURATION (30s, 1m, 1h, 1d12h), live or\n"
          "offline, and prints each new commit id.  With --prune, applies\n"
          "BRANCH's retention policy after each commit ('cairn retention\n"
          "set'), so that old commits thin out.  Runs in the foreground\n"
          "until SIGTERM or SIGINT (or --count commits), which stop it\n"
          "cleanly between two commits.  -m sets the message (default\n"
          "\"autocommit\"), --label adds labels.\n")) != -1) {
    switch (c) {
    case 'e':
      if (cairn_parse_duration (optarg, &every) < 0 || every <= 0)
        return cli_usage (cli, "--every takes a duration such as 30s, 1m or "
                          "1h, not '%s'", optarg);
      break;
    case 'p':
      prune = true;
      break;
    case 'c':
      count = strtoull (optarg, NULL, 10);
      if (count == 0)
        return cli_usage (cli, "--count takes a positive number");
      break;
    case 'm':
      co.message = optarg;
      break;
    case 'l':
      if (!strchr (optarg, '=') || optarg[0] == '=')
        return cli_usage (cli, "--label takes KEY=VALUE, not '%s'", optarg);
      cli_push (&labels, &nlabels, optarg);
      co.labels = labels;
      break;
    }
  }
  if (argc - optind != 1)
    return cli_usage (cli, "autocommit needs one BRANCH");
  if (every == 0)
    return cli_usage (cli, "autocommit needs --every DURATION");
  const char *branch = argv[optind];
  if ((r = cli_open_store (cli, 0, &s))) {
    free (labels);
    return r;
  }

  sigemptyset (&stop);
  sigaddset (&stop, SIGTERM);
  sigaddset (&stop, SIGINT);
  sigprocmask (SIG_BLOCK, &stop, NULL);
  setvbuf (stdout, NULL, _IOLBF, 0);

  int64_t start = cairn_mono_ns ();
  for (uint64_t tick = 0;; ) {
    struct cairn_id id;
    r = cairn_commit_branch (s, branch, &co, &id);
    if (r < 0) {
      r = cli_fail_code (r, "autocommit");
      break;
    }
    made++;
    cli_print_id (&id);
    if (prune) {
      struct cairn_prune_options po = { .branch = branch };
      cli_prune_hooks (&po);
      struct cairn_prune_result res;
      r = cairn_prune (s, &po, &res);
      if (r < 0) {
        r = cli_fail_code (r, "autocommit: prune");
        break;
      }
      pruned += res.n_pruned;
      cairn_prune_result_free (&res);
    }
    if (count && made >= count)
      break;
    /* The next tick still ahead. */
    int64_t now = cairn_mono_ns ();
    tick = CAIRN_MAX (tick + 1, (uint64_t) ((now - start) / every) + 1);
    if (wait_for_stop (&stop, start + (int64_t) tick * every - now))
      break;
  }
  fprintf (stderr, "autocommit: %llu commits of branch '%s'", made, branch);
  if (prune)
    fprintf (stderr, ", %llu pruned", pruned);
  fputc ('\n', stderr);
  cairn_store_close (s);
  free (labels);
  return r;
}
