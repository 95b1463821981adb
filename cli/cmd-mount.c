/* cmd-mount.c: cairn mount, the store shown read-only as files.
 *
 * The filesystem is the cairnfs program (fusefs/), a daemon that outlives
 * this command, so cairn mount does not link it: it runs it with the
 * store and the options.  cairnfs returns once it has mounted (or with -f
 * serves in the foreground until unmounted), and so does cairn mount.
 * The program is $CAIRN_CAIRNFS if set (the tests run the build tree's),
 * else the installed one.
 */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int
cmd_mount (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "foreground", no_argument, NULL, 'f' },
    { "options", required_argument, NULL, 'o' },
    { "cache", required_argument, NULL, 'c' },
    { NULL },
  };
  const char *program = getenv ("CAIRN_CAIRNFS");
  const char **args = NULL;
  size_t nargs = 0;
  char store[4096], cache[64];
  uint64_t size;
  int c, r;

  if (!program || !*program)
    program = CAIRNFS_PATH;
  cli_push (&args, &nargs, "cairnfs");
  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "fo:", opts, NULL,
          "Mounts the store read-only at MOUNTPOINT with cairnfs(1):\n"
          "commits/<id>/{commit,<volume>.img}, branches/, tags/ and\n"
          "by-time/<branch>/.  Returns once mounted; -f serves in the\n"
          "foreground until unmounted (fusermount3 -u MOUNTPOINT).\n"
          "-o passes cairnfs and FUSE options (cache=SIZE, readahead=SIZE,\n"
          "timeout=SECONDS, allow_other); --cache SIZE sets the cache of\n"
          "decompressed chunks (default 64M).\n")) != -1) {
    switch (c) {
    case 'f':
      cli_push (&args, &nargs, "-f");
      break;
    case 'o':
      cli_push (&args, &nargs, "-o");
      cli_push (&args, &nargs, optarg);
      break;
    case 'c':
      if ((r = cli_parse_size (cli, "cache size", optarg, &size))) {
        free (args);
        return r;
      }
      snprintf (cache, sizeof cache, "cache=%llu", (unsigned long long) size);
      cli_push (&args, &nargs, "-o");
      cli_push (&args, &nargs, cache);
      break;
    }
  }
  if (optind + 1 != argc) {
    free (args);
    return cli_usage (cli, "mount takes one MOUNTPOINT");
  }
  if (cli->store_path)
    snprintf (store, sizeof store, "%s", cli->store_path);
  else
    cairn_default_store_path (store, sizeof store);
  cli_push (&args, &nargs, store);
  cli_push (&args, &nargs, argv[optind]);

  execv (program, (char **) args);
  r = errno;
  free (args);
  return cli_fail ("cannot run %s: %s", program, strerror (r));
}
