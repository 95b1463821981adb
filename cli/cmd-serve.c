/* cmd-serve.c: cairn serve, nbdkit with the cairn plugin in the foreground.
 *
 * serve prints the NBD URI of every branch (or of the chosen export) and
 * then becomes nbdkit: exec, so that signals, the exit status and the
 * process id a supervisor sees are nbdkit's own.  The socket defaults to
 * STORE/run/nbd.sock, beside the branches' locks and control sockets.
 *
 * $CAIRN_NBDKIT names the nbdkit program (default: the one configure
 * found) and $CAIRN_PLUGIN the plugin (default: the installed "cairn"):
 * the tests point them at the build tree.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* Prints S with every byte but unreserved URI characters and '/'
 * percent-encoded: the socket path goes into a URI query. */
static void
print_uri_encoded (const char *s)
{
  for (; *s; s++) {
    unsigned char c = *s;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || strchr ("-._~/", c))
      putchar (c);
    else
      printf ("%%%02X", c);
  }
}

static void
print_uri (const char *export, const char *socket)
{
  printf ("nbd+unix:///%s?socket=", export);
  print_uri_encoded (socket);
  putchar ('\n');
}

static int
print_branch_uri (const struct cairn_ref *ref, void *arg)
{
  print_uri (ref->name, arg);
  return 0;
}

int
cmd_serve (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "socket", required_argument, NULL, 's' },
    { "export", required_argument, NULL, 'e' },
    { NULL },
  };
  const char *socket = NULL, *export = NULL;
  char store_path[PATH_MAX], socket_path[PATH_MAX], cwd[PATH_MAX];
  struct cairn_store *s;
  struct cairn_txn *txn = NULL;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Runs nbdkit with the cairn plugin in the foreground on a Unix\n"
          "socket (default STORE/run/nbd.sock), serving every branch\n"
          "read-write and every tag and commit read-only, and prints the\n"
          "NBD URI of every branch first.  --export makes REF what clients\n"
          "get that name no export.  Arguments after -- go to nbdkit, for\n"
          "example -- -r (read-only), -v, cache=1G.  See\n"
          "nbdkit-cairn-plugin(1).\n")) != -1) {
    if (c == 's')
      socket = optarg;
    else if (c == 'e')
      export = optarg;
  }

  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  if (!realpath (cairn_store_path (s), store_path)) {
    r = cli_fail ("%s: %s", cairn_store_path (s), strerror (errno));
    cairn_store_close (s);
    return r;
  }
  int len;
  if (!socket)
    len = snprintf (socket_path, sizeof socket_path, "%s/run/nbd.sock",
                    store_path);
  else if (socket[0] == '/' || !getcwd (cwd, sizeof cwd))
    len = snprintf (socket_path, sizeof socket_path, "%s", socket);
  else
    len = snprintf (socket_path, sizeof socket_path, "%s/%s", cwd, socket);
  if (len >= (int) sizeof socket_path) {
    cairn_store_close (s);
    return cli_fail ("the socket path is too long");
  }

  /* Name the URIs before nbdkit takes over stdout. */
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0 && export) {
    char ref[CAIRN_NAME_MAX + 16], volume[CAIRN_VOLUME_NAME_MAX + 1];
    struct cairn_ref found;
    if (cli_split_ref (export, ref, sizeof ref, volume, sizeof volume) < 0)
      r = cairn_error (-EINVAL, "--export '%s' is not REF[:VOLUME]", export);
    else
      r = cairn_resolve (txn, ref, &found);
    if (r == 0)
      print_uri (export, socket_path);
  }
  else if (r == 0)
    r = cairn_ref_list (txn, CAIRN_REF_BRANCH, print_branch_uri, socket_path);
  if (txn)
    cairn_txn_abort (s, txn);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  fflush (stdout);

  const char *nbdkit = getenv ("CAIRN_NBDKIT");
  const char *plugin = getenv ("CAIRN_PLUGIN");
  if (!nbdkit || !*nbdkit)
    nbdkit = NBDKIT_PATH;
  if (!plugin || !*plugin)
    plugin = "cairn";
  size_t n = 0, extra = argc - optind;
  const char **args = calloc (8 + extra, sizeof *args);
  char *store_arg, *export_arg = NULL;
  if (!args || asprintf (&store_arg, "store=%s", store_path) < 0
      || (export && asprintf (&export_arg, "export=%s", export) < 0))
    return cli_fail ("out of memory");
  args[n++] = nbdkit;
  args[n++] = "--foreground";
  args[n++] = "--unix";
  args[n++] = socket_path;
  args[n++] = plugin;
  args[n++] = store_arg;
  if (export_arg)
    args[n++] = export_arg;
  for (int i = optind; i < argc; i++)
    args[n++] = argv[i];
  args[n] = NULL;
  execvp (nbdkit, (char **) args);
  return cli_fail ("cannot run %s: %s", nbdkit, strerror (errno));
}
