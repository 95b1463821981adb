/* common.c: helpers every subcommand uses (see cli.h). */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int
cli_open_store (struct cli *cli, unsigned flags, struct cairn_store **s)
{
  char path[4096];

  if (cli->store_path)
    snprintf (path, sizeof path, "%s", cli->store_path);
  else
    cairn_default_store_path (path, sizeof path);
  int r = cairn_store_open (path, flags, s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

int
cli_fail (const char *fmt, ...)
{
  va_list ap;

  fputs ("cairn: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return 1;
}

int
cli_fail_code (int code, const char *what)
{
  const char *msg = cairn_error_for (code);

  if (what)
    return cli_fail ("%s: %s", what, msg);
  return cli_fail ("%s", msg);
}

int
cli_usage (struct cli *cli, const char *fmt, ...)
{
  va_list ap;

  fputs ("cairn: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "; usage: cairn %s\n", cli->command);
  return EXIT_USAGE;
}

/* The usage error for the option getopt_long refused at ARGV[OPTIND - 1]
 * (opterr is off, so that the error is one line). */
static int
bad_option (struct cli *cli, char **argv, const char *shortopts)
{
  const char *arg = argv[optind - 1];

  if (strncmp (arg, "--", 2) == 0) {
    size_t n = strcspn (arg, "=");
    if (optopt && arg[n])
      return cli_usage (cli, "option '%.*s' takes no value", (int) n, arg);
    if (optopt)
      return cli_usage (cli, "option '%.*s' needs a value", (int) n, arg);
    return cli_usage (cli, "unknown or ambiguous option '%.*s'", (int) n, arg);
  }
  if (optopt && optopt != ':' && strchr (shortopts, optopt))
    return cli_usage (cli, "option '-%c' needs a value", optopt);
  return cli_usage (cli, "unknown option '-%c'", optopt);
}

int
cli_getopt (struct cli *cli, int argc, char **argv, const char *shortopts,
            const struct option *longopts, int *index, const char *help)
{
  opterr = 0;
  for (;;) {
    int c = getopt_long (argc, argv, shortopts, longopts, index);
    switch (c) {
    case 'h':
      printf ("usage: cairn %s\n\n%s", cli->command, help);
      exit (0);
    case 'S':
      cli->store_path = optarg;
      continue;
    case '?':
      exit (bad_option (cli, argv, shortopts));
    default:
      return c;
    }
  }
}

int
cli_parse_size (struct cli *cli, const char *what, const char *arg,
                uint64_t *v)
{
  int r = cairn_parse_size (arg, v);
  if (r == -ERANGE)
    return cli_usage (cli, "%s '%s' is too large", what, arg);
  if (r < 0)
    return cli_usage (cli, "%s '%s' is not a size (a number of bytes, "
                      "optionally with K, M, G or T)", what, arg);
  return 0;
}

void
cli_print_id (const struct cairn_id *id)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (id, hex);
  puts (hex);
}

static int64_t
mono_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
progress_init (struct progress *p, const char *label)
{
  p->label = label;
  p->tty = isatty (2);
  p->start = mono_ms ();
  p->last = 0;
}

void
progress_update (void *arg, uint64_t done, uint64_t total)
{
  struct progress *p = arg;
  int64_t now = mono_ms ();
  char d[32], t[32], rate[32];

  if (!p->tty || (now - p->last < 100 && done < total))
    return;
  p->last = now;
  int pct = total ? (int) (done * 100 / total) : 100;
  int width = 30, fill = pct * width / 100;
  cairn_format_bytes (done, d, sizeof d);
  cairn_format_bytes (total, t, sizeof t);
  double secs = (now - p->start) / 1000.0;
  cairn_format_bytes (secs > 0 ? (uint64_t) (done / secs) : 0, rate,
                      sizeof rate);
  fprintf (stderr, "\r%s [%.*s%*s] %3d%% %s / %s, %s/s ", p->label, fill,
           "##############################", width - fill, "", pct, d, t,
           rate);
  fflush (stderr);
}

void
progress_done (struct progress *p)
{
  if (p->tty && p->last)
    fputs ("\r\033[K", stderr);
}

int
cli_split_ref (const char *spec, char *ref, size_t rlen, char *volume,
               size_t vlen)
{
  const char *colon = strrchr (spec, ':');
  size_t n = colon ? (size_t) (colon - spec) : strlen (spec);

  if (n == 0 || n >= rlen)
    return -EINVAL;
  memcpy (ref, spec, n);
  ref[n] = '\0';
  snprintf (volume, vlen, "%s", colon ? colon + 1 : "disk");
  return *volume ? 0 : -EINVAL;
}

void
cli_push (const char ***list, size_t *n, const char *item)
{
  const char **l = realloc (*list, (*n + 2) * sizeof *l);
  if (!l) {
    perror ("cairn");
    exit (1);
  }
  l[(*n)++] = item;
  l[*n] = NULL;
  *list = l;
}
