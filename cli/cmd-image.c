/* cmd-image.c: import and export of disk images. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/image.h"

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
cmd_import (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "volume", required_argument, NULL, 'v' },
    { "format", required_argument, NULL, 'f' },
    { "message", required_argument, NULL, 'm' },
    { "label", required_argument, NULL, 'l' },
    { "time", required_argument, NULL, 't' },
    { NULL },
  };
  const char *volume = "disk", *format = NULL;
  struct cairn_commit_options o = { 0 };
  const char **labels = NULL;
  size_t nlabels = 0;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "v:f:m:", opts,
                          NULL,
          "Stores the image FILE (raw, or qcow2 and other formats through\n"
          "qemu-nbd) as volume --volume (default disk) of BRANCH and commits\n"
          "it, printing the commit id.  A new branch is created; into an\n"
          "existing one the volume is replaced and only chunks the store\n"
          "does not have yet are written.\n")) != -1) {
    switch (c) {
    case 'v': volume = optarg; break;
    case 'f': format = optarg; break;
    case 'm': o.message = optarg; break;
    case 'l':
      if (!strchr (optarg, '=') || optarg[0] == '=')
        return cli_usage (cli, "--label takes KEY=VALUE, not '%s'", optarg);
      cli_push (&labels, &nlabels, optarg);
      o.labels = labels;
      break;
    case 't':
      if (cairn_time_parse (optarg, &o.time) < 0)
        return cli_usage (cli, "--time '%s' is not an ISO-8601 time", optarg);
      break;
    }
  }
  if (argc - optind != 2)
    return cli_usage (cli, "import needs BRANCH and FILE");
  const char *branch = argv[optind], *file = argv[optind + 1];
  if (!cairn_ref_name_valid (branch))
    return cli_fail ("'%s' is not a valid branch name", branch);
  if (!cairn_volume_name_valid (volume))
    return cli_fail ("'%s' is not a valid volume name", volume);

  /* Open the file before touching the store: a missing or unreadable
   * file changes nothing. */
  struct image *img;
  r = image_open_read (file, format, &img);
  if (r < 0)
    return cli_fail_code (r, NULL);
  struct cairn_store *s;
  if ((r = cli_open_store (cli, 0, &s))) {
    image_close (img);
    return r;
  }

  struct cairn_import_source src;
  struct cairn_import_stats st;
  struct progress p;
  struct cairn_id id;
  double t0 = now_s ();
  image_source (img, &src);
  progress_init (&p, "import");
  r = cairn_import (s, branch, volume, &src, &o, progress_update, &p, &id,
                    &st);
  progress_done (&p);
  image_close (img);
  if (r == 0) {
    char total[32], stored[32];
    cairn_format_bytes (src.size, total, sizeof total);
    cairn_format_bytes (st.stored_bytes, stored, sizeof stored);
    cli_print_id (&id);
    fprintf (stderr, "imported %s in %.1f s: %llu chunks, %llu holes, "
             "%llu new, %s stored\n", total, now_s () - t0,
             (unsigned long long) st.chunks, (unsigned long long) st.holes,
             (unsigned long long) st.new_chunks, stored);
  }
  else
    r = cli_fail_code (r, NULL);
  cairn_store_close (s);
  free (labels);
  return r;
}

/* Chunks export reads at a time: cairn_view_read verifies them together. */
#define EXPORT_CHUNKS CAIRN_HASH_BATCH

struct export_ctx {
  struct cairn_view *view;
  struct image *img;
  char *buf;
  uint64_t done, total;
  struct progress *p;
  bool fill_holes;              /* stdout, a device: holes are written */
};

static int
export_extent (uint64_t off, uint64_t len, bool hole, void *arg)
{
  struct export_ctx *x = arg;
  uint32_t cs = x->view->vol.chunk_size;

  if (hole && !x->fill_holes) {
    x->done += len;
    return 0;
  }
  while (len > 0) {
    size_t n = CAIRN_MIN (len, (uint64_t) EXPORT_CHUNKS * cs - off % cs);
    int r = hole ? (memset (x->buf, 0, n), 0)
      : cairn_view_read (x->view, x->buf, n, off);
    if (r == 0)
      r = image_write (x->img, x->buf, n, off);
    if (r < 0)
      return r;
    off += n;
    len -= n;
    x->done += n;
    progress_update (x->p, x->done, x->total);
  }
  return 0;
}

int
cmd_export (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "format", required_argument, NULL, 'f' },
    { NULL },
  };
  const char *format = "raw";
  char ref[CAIRN_NAME_MAX + 80], volume[CAIRN_VOLUME_NAME_MAX + 8];
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "f:", opts, NULL,
          "Writes volume VOLUME (default disk) of REF - a commit, tag or\n"
          "branch (its last commit) - to FILE: raw and sparse, or any format\n"
          "qemu-img writes (--format qcow2).  FILE - writes raw to stdout.\n"))
         != -1) {
    if (c == 'f')
      format = optarg;
  }
  if (argc - optind != 2)
    return cli_usage (cli, "export needs REF[:VOLUME] and FILE");
  if (cli_split_ref (argv[optind], ref, sizeof ref, volume, sizeof volume) < 0)
    return cli_usage (cli, "'%s' is not REF or REF:VOLUME", argv[optind]);
  const char *file = argv[optind + 1];
  if (strcmp (file, "-") == 0 && strcmp (format, "raw") != 0)
    return cli_usage (cli, "only raw can be written to stdout");

  struct cairn_store *s;
  struct cairn_txn *txn;
  struct cairn_ref res;
  struct cairn_view view;
  if ((r = cli_open_store (cli, CAIRN_OPEN_READONLY, &s)))
    return r;
  r = cairn_txn_begin (s, false, &txn);
  if (r == 0) {
    r = cairn_resolve (txn, ref, &res);
    if (r == 0 && cairn_id_is_zero (&res.commit))
      r = cairn_error (-ENOENT, "branch '%s' has no commit yet", ref);
    if (r == 0)
      r = cairn_view_open (s, txn, &res.commit, volume, &view);
    cairn_txn_abort (s, txn);
  }
  if (r < 0) {
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }

  /* A regular file is written beside FILE and renamed over it once
   * whole, so that a failed export leaves FILE as it was; a device (or
   * stdout) is written in place. */
  struct stat st;
  char *tmp = NULL;
  bool exists = stat (file, &st) == 0;
  if (exists && S_ISDIR (st.st_mode))
    r = cairn_error (-EISDIR, "%s is a directory", file);
  else if (strcmp (file, "-") != 0 && (!exists || S_ISREG (st.st_mode))
           && asprintf (&tmp, "%s.cairn-export-%d", file, (int) getpid ()) < 0)
    r = -ENOMEM;
  struct image *img;
  if (r == 0)
    r = image_create (tmp ? tmp : file, format, view.vol.size, &img);
  if (r < 0) {
    free (tmp);
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }
  struct progress p;
  struct export_ctx x = { .view = &view, .img = img,
                          .buf = malloc ((size_t) EXPORT_CHUNKS
                                         * view.vol.chunk_size),
                          .total = view.vol.size, .p = &p,
                          .fill_holes = image_fills_holes (img) };
  progress_init (&p, "export");
  r = x.buf ? cairn_view_extents (&view, 0, view.vol.size, export_extent, &x)
    : -ENOMEM;
  progress_done (&p);
  int rc = image_close (img);
  if (r == 0)
    r = rc;
  if (r == 0 && tmp && rename (tmp, file) == -1)
    r = cairn_error (-errno, "%s: %m", file);
  if (r < 0 && tmp)
    unlink (tmp);               /* no half-written image left behind */
  free (tmp);
  free (x.buf);
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}
