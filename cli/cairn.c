/* cairn.c: the cairn command: global options and dispatch.
 *
 * Each subcommand lives in a cmd-*.c file and owns its options; this file
 * only finds it.  No storage logic lives in cli/: it all goes through
 * libcairn (store/) and the component libraries.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct command commands[] = {
  { "init", "init [--chunk-size SIZE] [--compress zstd:LEVEL|none]",
    cmd_init },
  { "create", "create BRANCH SIZE [--volume NAME]", cmd_create },
  { "import", "import BRANCH FILE [--volume NAME] [--format raw|qcow2] "
    "[-m MSG] [--label K=V]... [--time ISO]", cmd_import },
  { "export", "export REF[:VOLUME] FILE [--format raw|qcow2]", cmd_export },
  { "branch", "branch | branch NEW FROM | branch -d BRANCH", cmd_branch },
  { "commit", "commit BRANCH [-m MSG] [--label K=V]... [--time ISO]",
    cmd_commit },
  { "tag", "tag | tag NAME REF | tag -d NAME", cmd_tag },
  { "log", "log [REF] [--graph] [--all] [--json] [-n N]", cmd_log },
  { "show", "show REF [--json]", cmd_show },
  { "cat", "cat ID", cmd_cat },
  { "diff", "diff REF REF [--volume NAME] [--json]", cmd_diff },
  { "du", "du [REF] [--json]", cmd_du },
  { "mount", "mount MOUNTPOINT [-f] [-o OPTIONS] [--cache SIZE]",
    cmd_mount },
  { "retention", "retention set BRANCH --keep-RULE N... | show [BRANCH] | "
    "clear BRANCH", cmd_retention },
  { "prune", "prune [BRANCH] [--dry-run] [--json]", cmd_prune },
  { "autocommit", "autocommit BRANCH --every DURATION [--prune]",
    cmd_autocommit },
  { "gc", "gc [--dry-run] [--compact-below FRACTION] [--json]", cmd_gc },
  { "fsck", "fsck [--read-data] [--json]", cmd_fsck },
  { "serve", "serve [--socket PATH] [--export REF] [-- NBDKIT-ARGS]",
    cmd_serve },
  { "vm", "vm run|commit|restore|branch|ls|stop|console|guest ...  "
    "(cairn vm --help)", cmd_vm },
};

static void
usage (void)
{
  printf ("usage: cairn [-S STORE] COMMAND [ARGS]\n"
          "\n"
          "cairn keeps the whole state of virtual machines (disks, memory,\n"
          "device state) as content-addressed commits and branches.\n"
          "\n"
          "Commands:\n");
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (commands); i++)
    printf ("  cairn %s\n", commands[i].synopsis);
  printf ("\n"
          "The store is -S STORE, else $CAIRN_STORE, else /var/lib/cairn\n"
          "(root) or $XDG_DATA_HOME/cairn.  'cairn COMMAND --help' tells\n"
          "more; man cairn(1) tells everything.\n");
}

int
main (int argc, char **argv)
{
  struct cli cli = { 0 };
  int i = 1;

  /* Global options come before the command. */
  while (i < argc && argv[i][0] == '-') {
    if (strcmp (argv[i], "-S") == 0 || strcmp (argv[i], "--store") == 0) {
      if (i + 1 >= argc) {
        fprintf (stderr, "cairn: %s needs a path\n", argv[i]);
        return EXIT_USAGE;
      }
      cli.store_path = argv[i + 1];
      i += 2;
    }
    else if (strncmp (argv[i], "--store=", 8) == 0)
      cli.store_path = argv[i++] + 8;
    else if (strcmp (argv[i], "-h") == 0 || strcmp (argv[i], "--help") == 0) {
      usage ();
      return 0;
    }
    else if (strcmp (argv[i], "--version") == 0) {
      printf ("cairn %s\n", PACKAGE_VERSION);
      return 0;
    }
    else {
      fprintf (stderr, "cairn: unknown option '%s' (see 'cairn --help')\n",
               argv[i]);
      return EXIT_USAGE;
    }
  }
  if (i >= argc) {
    fprintf (stderr, "cairn: no command given (see 'cairn --help')\n");
    return EXIT_USAGE;
  }
  for (size_t k = 0; k < CAIRN_ARRAY_SIZE (commands); k++)
    if (strcmp (argv[i], commands[k].name) == 0) {
      char label[64];
      snprintf (label, sizeof label, "cairn %s", commands[k].name);
      cli.command = commands[k].synopsis;
      optind = 1;
      return commands[k].run (&cli, argc - i, argv + i);
    }
  fprintf (stderr, "cairn: unknown command '%s' (see 'cairn --help')\n",
           argv[i]);
  return EXIT_USAGE;
}
