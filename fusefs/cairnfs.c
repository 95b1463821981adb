/* cairnfs.c: cairnfs STORE MOUNTPOINT, the program.
 *
 * Life of a mount:
 *
 *   1. Parse options (ours: cache, readahead, timeout; libfuse's: -f, -d,
 *      -s, -o allow_other, max_threads ...).  Every mount is "ro"; "rw" is
 *      refused.  allow_other is off unless given.
 *   2. Unless -f, fork.  The parent waits for the child to report and
 *      exits with its status, so "cairnfs STORE MNT" returns once the
 *      store is open and the mount is up, and fails with the child's
 *      message on stderr if either is not.  (libfuse's fuse_daemonize
 *      lets the parent exit 0 before the child has opened anything.)
 *   3. Open the store, in the child: LMDB must be opened after fork.  It is
 *      opened read-only with leases (store.h, lease.c); where the store
 *      cannot be written at all (read-only media) without.
 *   4. Mount, report success, detach from the terminal (messages go to
 *      syslog from then on), serve requests on libfuse's thread pool.
 *   5. The loop ends on unmount (fusermount3 -u, umount) or on SIGTERM,
 *      SIGINT or SIGHUP, after which cairnfs unmounts itself (lazily: a
 *      reader still blocked in read gets ENOTCONN, not a hang).  Then it
 *      ends every lease and closes the store; exit status 0.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fusefs/cairnfs.h"

#define FUSE_SUPER_MAGIC 0x65735546

#define DEFAULT_READAHEAD (4ULL << 20)
#define DEFAULT_TIMEOUT 1.0
#define WATCH_INTERVAL_MS 1000
#define MAX_READAHEAD_THREADS 8

/* Options of our own, as given. */
struct config {
  char *store;
  char *cache;
  char *readahead;
  char *timeout;
};

enum { KEY_RW };

static const struct fuse_opt config_opts[] = {
  { "cache=%s", offsetof (struct config, cache), 0 },
  { "--cache=%s", offsetof (struct config, cache), 0 },
  { "--cache %s", offsetof (struct config, cache), 0 },
  { "readahead=%s", offsetof (struct config, readahead), 0 },
  { "timeout=%s", offsetof (struct config, timeout), 0 },
  FUSE_OPT_KEY ("rw", KEY_RW),
  FUSE_OPT_END
};

static bool log_to_syslog;

static void
log_line (enum fuse_log_level level, const char *fmt, va_list ap)
{
  if (log_to_syslog) {
    vsyslog (LOG_DAEMON | (int) level, fmt, ap);
    return;
  }
  fputs ("cairnfs: ", stderr);
  vfprintf (stderr, fmt, ap);
}

static void
usage (FILE *f)
{
  fprintf (f,
           "usage: cairnfs [OPTIONS] STORE MOUNTPOINT\n"
           "\n"
           "Shows the cairn store STORE read-only at MOUNTPOINT:\n"
           "commits/<id>/{commit,<volume>.img}, branches/, tags/, by-time/.\n"
           "\n"
           "cairnfs options:\n"
           "    -o cache=SIZE, --cache SIZE\n"
           "                           cache of decompressed chunks (%llu MiB)\n"
           "    -o readahead=SIZE      read ahead of sequential readers\n"
           "                           (%llu MiB, at most a quarter of the\n"
           "                           cache; 0: off)\n"
           "    -o timeout=SECONDS     how long the kernel may cache names\n"
           "                           of branches and tags (%g)\n"
           "\n",
           CAIRN_DEFAULT_CACHE_SIZE >> 20, DEFAULT_READAHEAD >> 20,
           DEFAULT_TIMEOUT);
}

/* The first argument that is not an option is the store; the next one,
 * the mount point, is left for fuse_parse_cmdline. */
static int
config_opt (void *data, const char *arg, int key, struct fuse_args *outargs)
{
  struct config *conf = data;

  switch (key) {
  case KEY_RW:
    fuse_log (FUSE_LOG_ERR, "the mount is read-only: 'rw' is refused\n");
    return -1;
  case FUSE_OPT_KEY_NONOPT:
    if (conf->store)
      return 1;
    conf->store = strdup (arg);
    return conf->store ? 0 : -1;
  default:
    return 1;
  }
}

static int
parse_size (const char *what, const char *arg, uint64_t *v)
{
  if (cairn_parse_size (arg, v) < 0) {
    fuse_log (FUSE_LOG_ERR, "%s: '%s' is not a size\n", what, arg);
    return -1;
  }
  return 0;
}

static int
apply_config (const struct config *conf, struct cairnfs *fs,
              uint64_t *cache)
{
  *cache = CAIRN_DEFAULT_CACHE_SIZE;
  fs->readahead_window = DEFAULT_READAHEAD;
  fs->timeout = DEFAULT_TIMEOUT;
  if (conf->cache && parse_size ("cache", conf->cache, cache) < 0)
    return -1;
  if (conf->readahead
      && parse_size ("readahead", conf->readahead,
                     &fs->readahead_window) < 0)
    return -1;
  if (conf->timeout) {
    char *end;
    fs->timeout = strtod (conf->timeout, &end);
    if (*end || end == conf->timeout || !(fs->timeout >= 0)) {
      fuse_log (FUSE_LOG_ERR, "timeout: '%s' is not a number of seconds\n",
                conf->timeout);
      return -1;
    }
  }
  fs->readahead_window = CAIRN_MIN (fs->readahead_window, *cache / 4);
  return 0;
}

/* Mount options every cairnfs mount has. */
static int
add_mount_options (struct fuse_args *args, const char *store)
{
  char *opts = NULL;
  int r = fuse_opt_add_opt (&opts, "ro,default_permissions,subtype=cairnfs");

  if (r == 0)
    r = fuse_opt_add_opt (&opts, "fsname=");
  /* The store's path, with the commas and backslashes in it escaped. */
  if (r == 0) {
    char *escaped = NULL;
    r = fuse_opt_add_opt_escaped (&escaped, store);
    if (r == 0) {
      char *joined = malloc (strlen (opts) + strlen (escaped) + 1);
      if (joined) {
        strcpy (joined, opts);
        strcat (joined, escaped);
        free (opts);
        opts = joined;
      }
      else
        r = -1;
    }
    free (escaped);
  }
  if (r == 0)
    r = fuse_opt_add_arg (args, "-o");
  if (r == 0)
    r = fuse_opt_add_arg (args, opts);
  free (opts);
  return r;
}

/* Forks.  The child returns with *REPORT, where it writes its status
 * byte once it serves the mount (or has failed).  The parent exits with
 * that status, or 1 if the child died without one. */
static int
background (int *report)
{
  int p[2];
  pid_t pid;
  unsigned char status;

  if (pipe2 (p, O_CLOEXEC) == -1) {
    fuse_log (FUSE_LOG_ERR, "pipe: %s\n", strerror (errno));
    return -1;
  }
  pid = fork ();
  if (pid == -1) {
    fuse_log (FUSE_LOG_ERR, "fork: %s\n", strerror (errno));
    return -1;
  }
  if (pid == 0) {
    close (p[0]);
    setsid ();
    *report = p[1];
    return 0;
  }
  close (p[1]);
  if (read (p[0], &status, 1) != 1) {
    waitpid (pid, NULL, 0);
    _exit (1);
  }
  _exit (status);
}

/* Tells the parent STATUS; on success, leaves the terminal for good. */
static void
report_status (int *report, unsigned char status)
{
  if (*report < 0)
    return;
  if (status == 0) {
    int null = open ("/dev/null", O_RDWR);
    if (chdir ("/") == -1)
      fuse_log (FUSE_LOG_WARNING, "chdir /: %s\n", strerror (errno));
    if (null >= 0) {
      dup2 (null, STDIN_FILENO);
      dup2 (null, STDOUT_FILENO);
      dup2 (null, STDERR_FILENO);
      if (null > STDERR_FILENO)
        close (null);
    }
    openlog ("cairnfs", LOG_PID, LOG_DAEMON);
    log_to_syslog = true;
  }
  if (write (*report, &status, 1) != 1)
    fuse_log (FUSE_LOG_ERR, "cannot report to the parent: %s\n",
              strerror (errno));
  close (*report);
  *report = -1;
}

static int
open_store (const char *path, struct cairn_store **s, bool *leases)
{
  int r = cairn_store_open (path, CAIRN_OPEN_READONLY | CAIRN_OPEN_LEASES, s);

  *leases = r == 0;
  if (r == -EACCES || r == -EROFS) {
    r = cairn_store_open (path, CAIRN_OPEN_READONLY, s);
    if (r == 0)
      fuse_log (FUSE_LOG_WARNING,
                "%s cannot be written: open files hold no lease, so a gc "
                "run elsewhere could reclaim a pruned commit being read\n",
                path);
  }
  if (r < 0) {
    const char *why = cairn_last_error ();
    fuse_log (FUSE_LOG_ERR, "%s\n", *why ? why : cairn_strerror (r));
  }
  return r;
}

static unsigned
readahead_threads (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : CAIRN_MIN (n, MAX_READAHEAD_THREADS);
}

static int
fs_init (struct cairnfs *fs, const char *store_path, uint64_t cache)
{
  bool leases;
  int r;

  pthread_mutex_init (&fs->handles_lock, NULL);
  r = open_store (store_path, &fs->store, &leases);
  if (r < 0)
    return r;
  cairn_store_set_cache_size (fs->store, cache);
  fs->uid = getuid ();
  fs->gid = getgid ();
  clock_gettime (CLOCK_REALTIME, &fs->mounted);
  fs->inodes = inode_table_new (NULL);
  fs->leases = lease_table_new (fs->store, leases);
  fs->timelines = timeline_cache_new ();
  if (!fs->inodes || !fs->leases || !fs->timelines)
    r = -ENOMEM;
  if (r == 0 && fs->readahead_window > 0)
    r = readahead_start (fs->store, readahead_threads (), &fs->readahead);
  if (r < 0)
    fuse_log (FUSE_LOG_ERR, "%s\n", strerror (-r));
  return r;
}

static void
fs_free (struct cairnfs *fs)
{
  readahead_stop (fs->readahead);
  cairnfs_release_all (fs);
  lease_table_free (fs->leases);
  timeline_cache_free (fs->timelines);
  inode_table_free (fs->inodes);
  pthread_mutex_destroy (&fs->handles_lock);
  cairn_store_close (fs->store);
}

static int
session_loop (struct fuse_session *se, const struct fuse_cmdline_opts *opts)
{
  struct fuse_loop_config *config;
  int r;

  if (opts->singlethread)
    return fuse_session_loop (se);
  config = fuse_loop_cfg_create ();
  if (!config)
    return -ENOMEM;
  fuse_loop_cfg_set_clone_fd (config, opts->clone_fd);
  fuse_loop_cfg_set_max_threads (config, opts->max_threads);
  r = fuse_session_loop_mt (se, config);
  fuse_loop_cfg_destroy (config);
  return r;
}

/* Whether no FUSE file system is mounted on MOUNTPOINT any more (one
 * whose connection was aborted answers ENOTCONN). */
static bool
unmounted (const char *mountpoint)
{
  struct statfs st;

  return statfs (mountpoint, &st) == 0 && st.f_type != FUSE_SUPER_MAGIC;
}

/* Mounts and serves until unmounted or signalled: the exit status. */
static int
serve (struct cairnfs *fs, struct fuse_args *args,
       const struct fuse_cmdline_opts *opts, int *report)
{
  struct fuse_session *se;
  int r, status = 1;

  se = fuse_session_new (args, &cairnfs_ops, sizeof cairnfs_ops, fs);
  if (!se)
    goto out;
  if (fuse_set_signal_handlers (se) != 0)
    goto err_session;
  if (fuse_session_mount (se, opts->mountpoint) != 0)
    goto err_signals;
  fs->se = se;
  r = watch_start (fs, WATCH_INTERVAL_MS, &fs->watcher);
  if (r < 0) {
    fuse_log (FUSE_LOG_ERR, "watcher: %s\n", strerror (-r));
    goto err_mount;
  }
  report_status (report, 0);

  /* 0: unmounted; > 0: the signal that ended it; < 0: an error. */
  r = session_loop (se, opts);
  /* Once a lazily unmounted mount's last file is closed, the kernel
   * (6.18 here, now and then) fails the read of the device with
   * ECONNABORTED, which libfuse 3.14 reports as an error, rather than
   * ENODEV, which it takes for the unmount it is. */
  if (r == -ECONNABORTED && unmounted (opts->mountpoint))
    r = 0;
  status = r < 0;
  if (r < 0)
    fuse_log (FUSE_LOG_ERR, "%s: %s\n", opts->mountpoint, strerror (-r));
  watch_stop (fs->watcher);

 err_mount:
  fuse_session_unmount (se);
 err_signals:
  fuse_remove_signal_handlers (se);
 err_session:
  fuse_session_destroy (se);
 out:
  return status;
}

int
main (int argc, char *argv[])
{
  struct fuse_args args = FUSE_ARGS_INIT (argc, argv);
  struct fuse_cmdline_opts opts = { 0 };
  struct config conf = { 0 };
  struct cairnfs fs = { 0 };
  char store[PATH_MAX];
  uint64_t cache;
  int report = -1, status = 2;

  /* One malloc arena for every thread: the chunk cache's buffers are
   * allocated by whichever thread fetched them and freed by whichever
   * evicts them, which across per-thread arenas leaves the freed memory
   * stranded (RSS 135 MiB instead of 78 for a 64 MiB cache, after fio). */
  mallopt (M_ARENA_MAX, 1);
  fuse_set_log_func (log_line);
  if (fuse_opt_parse (&args, &conf, config_opts, config_opt) == -1
      || fuse_parse_cmdline (&args, &opts) != 0)
    goto out;
  if (opts.show_help) {
    usage (stdout);
    fuse_cmdline_help ();
    fuse_lowlevel_help ();
    status = 0;
    goto out;
  }
  if (opts.show_version) {
    printf ("cairnfs %s\n", PACKAGE_VERSION);
    fuse_lowlevel_version ();
    status = 0;
    goto out;
  }
  if (!conf.store || !opts.mountpoint) {
    usage (stderr);
    goto out;
  }
  if (apply_config (&conf, &fs, &cache) < 0)
    goto out;
  status = 1;
  /* Lock files of leases are found by the store's path: make it
   * absolute before the daemon leaves the working directory. */
  if (!realpath (conf.store, store)) {
    if (errno == ENOENT)
      fuse_log (FUSE_LOG_ERR, "%s is not a cairn store (run 'cairn init' "
                "to make one)\n", conf.store);
    else
      fuse_log (FUSE_LOG_ERR, "%s: %s\n", conf.store, strerror (errno));
    goto out;
  }
  if (add_mount_options (&args, store) != 0)
    goto out;
  if (!opts.foreground && background (&report) < 0)
    goto out;

  if (fs_init (&fs, store, cache) == 0)
    status = serve (&fs, &args, &opts, &report);
  report_status (&report, status);
  fs_free (&fs);

 out:
  free (opts.mountpoint);
  free (conf.store);
  free (conf.cache);
  free (conf.readahead);
  free (conf.timeout);
  fuse_opt_free_args (&args);
  return status;
}
