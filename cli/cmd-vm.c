/* cmd-vm.c: cairn vm run | commit | restore | branch | ls | stop |
 * console | guest.
 *
 * Arguments and output only: the VMs themselves are qemu-glue's (vm.h).
 * Data (commit ids, listings, JSON) goes to stdout, what happened to
 * stderr, so that `id=$(cairn vm commit NAME)` works and a person still
 * sees the pause.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "qemu-glue/vm.h"

struct vm_command {
  const char *name;
  const char *synopsis;
  int (*run) (struct cli *cli, int argc, char **argv);
};

static void
print_json (struct json_object *o)
{
  puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY
                                        | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put (o);
}

static void
short_id (const struct cairn_id *id, char *buf)
{
  char hex[CAIRN_HEX_SIZE + 1];
  cairn_id_to_hex (id, hex);
  snprintf (buf, 13, "%.12s", hex);
}

/* ------------------------------------------------------------------ */

static int
vm_cmd_run (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "branch", required_argument, NULL, 'b' },
    { "memory", required_argument, NULL, 'm' },
    { "cpus", required_argument, NULL, 'c' },
    { "kernel", required_argument, NULL, 'k' },
    { "initrd", required_argument, NULL, 'i' },
    { "append", required_argument, NULL, 'a' },
    { "accel", required_argument, NULL, 'A' },
    { NULL },
  };
  struct vm_run_options o = { 0 };
  struct cairn_store *s;
  struct vm_record rec;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "b:m:c:", opts,
                          NULL,
          "Boots VM NAME with branch BRANCH as its disk (served by nbdkit\n"
          "cairn unless `cairn serve` already serves the store), RAM in a\n"
          "file on tmpfs, a QMP socket and the serial console in a log.\n"
          "Returns once QEMU runs; the guest boots on its own.\n"
          "  --memory SIZE   guest RAM (default 256M)\n"
          "  --cpus N        vCPUs (default 1)\n"
          "  --kernel K --initrd I --append A\n"
          "                  boot files (default: the guest that\n"
          "                  qemu-glue/guest/build-guest.sh builds, built\n"
          "                  on first use; see cairn vm guest)\n"
          "  --accel tcg|kvm|auto   auto is tcg (a /dev/kvm that opens may\n"
          "                  still not run guests); default auto\n")) != -1) {
    switch (c) {
    case 'b': o.branch = optarg; break;
    case 'k': o.kernel = optarg; break;
    case 'i': o.initrd = optarg; break;
    case 'a': o.append = optarg; break;
    case 'A': o.accel = optarg; break;
    case 'm':
      if ((r = cli_parse_size (cli, "memory", optarg, &o.memory)))
        return r;
      if (o.memory < (16ULL << 20))
        return cli_usage (cli, "--memory must be at least 16M");
      break;
    case 'c': {
      char *end;
      long n = strtol (optarg, &end, 10);
      if (*end || n < 1 || n > 64)
        return cli_usage (cli, "--cpus takes 1 to 64");
      o.cpus = n;
      break;
    }
    }
  }
  if (argc - optind != 1)
    return cli_usage (cli, "vm run needs NAME");
  if (!o.branch)
    return cli_usage (cli, "vm run needs --branch BRANCH");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = vm_run (s, argv[optind], &o, &rec);
  if (r < 0) {
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }
  char mem[32];
  cairn_format_bytes (rec.machine.memory, mem, sizeof mem);
  fprintf (stderr, "cairn: VM %s runs on branch %s (QEMU pid %d, %s RAM, "
           "%u vCPU, %s); see its console with: cairn vm console %s\n",
           rec.name, rec.branch, (int) rec.qemu.pid, mem, rec.machine.cpus,
           rec.machine.accel, rec.name);
  vm_record_free (&rec);
  cairn_store_close (s);
  return 0;
}

/* ------------------------------------------------------------------ */

static struct json_object *
commit_json (const struct vm_commit_result *res)
{
  struct json_object *o = json_object_new_object ();
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_id_to_hex (&res->id, hex);
  json_object_object_add (o, "id", json_object_new_string (hex));
  json_object_object_add (o, "pause_ms",
                          json_object_new_double (res->pause_ms));
  json_object_object_add (o, "total_ms",
                          json_object_new_double (res->total_ms));
  json_object_object_add (o, "stop_ms", json_object_new_double (res->stop_ms));
  json_object_object_add (o, "save_ms", json_object_new_double (res->save_ms));
  json_object_object_add (o, "scan_ms", json_object_new_double (res->scan_ms));
  json_object_object_add (o, "vmstate_ms",
                          json_object_new_double (res->vmstate_ms));
  json_object_object_add (o, "store_ms",
                          json_object_new_double (res->store_ms));
  json_object_object_add (o, "commit_ms",
                          json_object_new_double (res->commit_ms));
  json_object_object_add (o, "cont_ms", json_object_new_double (res->cont_ms));
  json_object_object_add (o, "memory_chunks",
                          json_object_new_int64 (res->memory_chunks));
  json_object_object_add (o, "changed_chunks",
                          json_object_new_int64 (res->changed_chunks));
  json_object_object_add (o, "paused_chunks",
                          json_object_new_int64 (res->paused_chunks));
  json_object_object_add (o, "stored_bytes",
                          json_object_new_int64 (res->stored_bytes));
  json_object_object_add (o, "vmstate_bytes",
                          json_object_new_int64 (res->vmstate_bytes));
  return o;
}

static void
commit_report (const char *name, const struct vm_commit_result *res)
{
  char id[13], stored[32];

  short_id (&res->id, id);
  cairn_format_bytes (res->stored_bytes, stored, sizeof stored);
  fprintf (stderr, "cairn: committed VM %s as %s: paused %.1f ms; %llu of "
           "its %llu RAM chunks changed (%llu while paused), %s stored\n",
           name, id, res->pause_ms,
           (unsigned long long) res->changed_chunks,
           (unsigned long long) res->memory_chunks,
           (unsigned long long) res->paused_chunks, stored);
}

/* Options of vm commit and vm branch: -m, --label, --json, --branch. */
struct commit_args {
  struct vm_commit_options co;
  struct vm_restore_options ro;
  const char **labels;
  size_t nlabels;
  bool json;
};

/* What parse_commit_args accepts beyond commit's options. */
#define WITH_BRANCH 1
#define WITH_EAGER 2

static int
parse_commit_args (struct cli *cli, int argc, char **argv, const char *help,
                   int with, struct commit_args *a)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "message", required_argument, NULL, 'm' },
    { "label", required_argument, NULL, 'l' },
    { "json", no_argument, NULL, 'j' },
    { "branch", required_argument, NULL, 'b' },
    { "eager", no_argument, NULL, 'e' },
    { NULL },
  };
  int c;

  memset (a, 0, sizeof *a);
  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "m:", opts, NULL,
                          help)) != -1) {
    switch (c) {
    case 'm': a->co.message = optarg; break;
    case 'l':
      if (!strchr (optarg, '='))
        return cli_usage (cli, "--label takes KEY=VALUE");
      cli_push (&a->labels, &a->nlabels, optarg);
      break;
    case 'j': a->json = true; break;
    case 'b':
      if (!(with & WITH_BRANCH))
        return cli_usage (cli, "unknown option --branch");
      a->ro.branch = optarg;
      break;
    case 'e':
      if (!(with & WITH_EAGER))
        return cli_usage (cli, "unknown option --eager");
      a->ro.eager = true;
      break;
    }
  }
  a->co.labels = a->labels;
  return -1;
}

/* Checks that NARGS operands follow the options (else USAGE) and opens
 * the store; on failure lets go of A's labels and returns the status. */
static int
commit_args_open (struct cli *cli, int argc, int nargs, const char *usage,
                  struct commit_args *a, struct cairn_store **s)
{
  int r = argc - optind != nargs ? cli_usage (cli, "%s", usage)
    : cli_open_store (cli, 0, s);

  if (r)
    free (a->labels);
  return r;
}

static int
vm_cmd_commit (struct cli *cli, int argc, char **argv)
{
  struct vm_commit_result res;
  struct commit_args a;
  struct cairn_store *s;
  int r = parse_commit_args (cli, argc, argv,
          "Commits VM NAME whole, in one commit of its branch: the disk\n"
          "(through the branch's server), RAM (only the chunks that changed\n"
          "since its last commit are stored), device state, kernel, initrd\n"
          "and the machine restore needs.  The guest is paused for the\n"
          "device state and a last comparison of RAM.  Prints the commit id;\n"
          "the pause goes to stderr (--json: both, and more, to stdout).\n"
          "  -m MSG, --label K=V, --json\n", 0, &a);

  if (r >= 0
      || (r = commit_args_open (cli, argc, 1, "vm commit needs NAME", &a,
                                &s)))
    return r;
  r = vm_commit (s, argv[optind], &a.co, &res);
  cairn_store_close (s);
  free (a.labels);
  if (r < 0)
    return cli_fail_code (r, NULL);
  if (a.json)
    print_json (commit_json (&res));
  else
    cli_print_id (&res.id);
  commit_report (argv[optind], &res);
  return 0;
}

/* ------------------------------------------------------------------ */

static struct json_object *
restore_json (const char *name, const struct vm_restore_result *res)
{
  struct json_object *o = json_object_new_object ();
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_id_to_hex (&res->commit, hex);
  json_object_object_add (o, "name", json_object_new_string (name));
  json_object_object_add (o, "branch", json_object_new_string (res->branch));
  json_object_object_add (o, "commit", json_object_new_string (hex));
  json_object_object_add (o, "total_ms",
                          json_object_new_double (res->total_ms));
  json_object_object_add (o, "verify_ms",
                          json_object_new_double (res->verify_ms));
  json_object_object_add (o, "qemu_ms", json_object_new_double (res->qemu_ms));
  json_object_object_add (o, "load_ms", json_object_new_double (res->load_ms));
  json_object_object_add (o, "running_ms",
                          json_object_new_double (res->running_ms));
  json_object_object_add (o, "running_at_ms",
                          json_object_new_double (res->running_at_ms));
  json_object_object_add (o, "lazy", json_object_new_boolean (res->lazy));
  json_object_object_add (o, "spare", json_object_new_boolean (res->spare));
  json_object_object_add (o, "memory_bytes",
                          json_object_new_int64 (res->memory_bytes));
  json_object_object_add (o, "pages_asked",
                          json_object_new_int64 (res->pages_asked));
  return o;
}

static void
restore_report (const char *name, const struct vm_restore_result *res,
                bool from_store)
{
  char id[13];

  short_id (&res->commit, id);
  if (res->lazy)
    fprintf (stderr, "cairn: VM %s runs from commit %s on branch %s, "
             "resumed in %.0f ms (state read and verified in %.0f ms, %s "
             "in %.0f ms, device state loaded and resumed in %.1f ms); "
             "its RAM was all in after %.0f ms (%.1f MiB, %llu pages asked "
             "for by the guest first)\n", name, id, res->branch,
             res->running_ms, res->verify_ms,
             res->spare ? "a spare QEMU ready" : "QEMU up", res->qemu_ms,
             res->load_ms, res->total_ms, res->memory_bytes / 1048576.0,
             (unsigned long long) res->pages_asked);
  else
    fprintf (stderr, "cairn: VM %s runs from commit %s on branch %s, "
             "resumed in %.0f ms (state %s in %.0f ms, QEMU up in %.0f ms, "
             "device state loaded and resumed in %.1f ms)\n", name, id,
             res->branch, res->total_ms,
             from_store ? "read and verified" : "copied", res->verify_ms,
             res->qemu_ms, res->load_ms);
}

static int
vm_cmd_restore (struct cli *cli, int argc, char **argv)
{
  struct vm_restore_result res;
  struct commit_args a;
  struct cairn_store *s;
  int r = parse_commit_args (cli, argc, argv,
          "Restores COMMIT (a commit id or prefix, tag, or branch: its last\n"
          "commit) as a new VM NAME, on a new branch made from the commit\n"
          "(--branch BRANCH, default NAME); the guest continues where it\n"
          "was committed.  Device state, kernel and initrd are read out of\n"
          "the store and verified before QEMU starts.  The guest runs as\n"
          "soon as its device state is loaded, its RAM coming in behind it\n"
          "(a page it touches first), every chunk verified before the\n"
          "guest sees it; the command returns once all of RAM is in.\n"
          "--eager reads and verifies all of RAM before QEMU starts.  A\n"
          "commit made by another QEMU major.minor is refused.\n"
          "  --branch BRANCH, --eager, --json\n", WITH_BRANCH | WITH_EAGER,
          &a);

  if (r >= 0
      || (r = commit_args_open (cli, argc, 2,
                                "vm restore needs COMMIT and NAME", &a, &s)))
    return r;
  free (a.labels);
  r = vm_restore (s, argv[optind], argv[optind + 1], &a.ro, &res);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  if (a.json)
    print_json (restore_json (argv[optind + 1], &res));
  restore_report (argv[optind + 1], &res, true);
  return 0;
}

static int
vm_cmd_branch (struct cli *cli, int argc, char **argv)
{
  struct vm_commit_result cres;
  struct vm_restore_result rres;
  struct commit_args a;
  struct cairn_store *s;
  int r = parse_commit_args (cli, argc, argv,
          "Forks VM NAME: commits it (as vm commit) and restores that commit\n"
          "as a new VM NEW on a new branch (--branch BRANCH, default NEW).\n"
          "Both VMs then run on independently.  Prints the commit id.\n"
          "  -m MSG, --label K=V, --branch BRANCH, --json\n", WITH_BRANCH,
          &a);

  if (r >= 0
      || (r = commit_args_open (cli, argc, 2, "vm branch needs NAME and NEW",
                                &a, &s)))
    return r;
  r = vm_branch (s, argv[optind], argv[optind + 1], &a.co, &a.ro, &cres,
                 &rres);
  cairn_store_close (s);
  free (a.labels);
  if (r < 0)
    return cli_fail_code (r, NULL);
  if (a.json) {
    struct json_object *o = json_object_new_object ();
    json_object_object_add (o, "commit", commit_json (&cres));
    json_object_object_add (o, "restore",
                            restore_json (argv[optind + 1], &rres));
    json_object_object_add (o, "total_ms",
                            json_object_new_double (rres.total_ms));
    print_json (o);
  }
  else
    cli_print_id (&cres.id);
  commit_report (argv[optind], &cres);
  restore_report (argv[optind + 1], &rres, false);
  return 0;
}

/* ------------------------------------------------------------------ */

struct ls_ctx {
  bool json;
  struct json_object *arr;
};

static int
ls_one (const struct vm_record *r, void *arg)
{
  struct ls_ctx *l = arg;
  char state[32], base[13] = "-", mem[32], hex[CAIRN_HEX_SIZE + 1];

  vm_state (r, state, sizeof state);
  if (!cairn_id_is_zero (&r->base))
    short_id (&r->base, base);
  cairn_format_bytes (r->machine.memory, mem, sizeof mem);
  if (!l->json) {
    printf ("%-16s %-12s %-20s %-12s %9s %4u %7d\n", r->name, state,
            r->branch, base, mem, r->machine.cpus, (int) r->qemu.pid);
    return 0;
  }
  struct json_object *o = json_object_new_object ();
  json_object_object_add (o, "name", json_object_new_string (r->name));
  json_object_object_add (o, "state", json_object_new_string (state));
  json_object_object_add (o, "branch", json_object_new_string (r->branch));
  if (cairn_id_is_zero (&r->base))
    hex[0] = '\0';
  else
    cairn_id_to_hex (&r->base, hex);
  json_object_object_add (o, "base", json_object_new_string (hex));
  json_object_object_add (o, "memory",
                          json_object_new_int64 (r->machine.memory));
  json_object_object_add (o, "cpus", json_object_new_int (r->machine.cpus));
  json_object_object_add (o, "accel",
                          json_object_new_string (r->machine.accel));
  json_object_object_add (o, "qemu_pid", json_object_new_int (r->qemu.pid));
  json_object_object_add (o, "nbdkit_pid",
                          json_object_new_int (r->nbdkit.pid));
  json_object_object_add (o, "dir", json_object_new_string (r->dir));
  json_object_object_add (o, "ram", json_object_new_string (r->ram));
  json_object_array_add (l->arr, o);
  return 0;
}

static int
vm_cmd_ls (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct ls_ctx l = { 0 };
  struct cairn_store *s;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Lists the VMs: name, state (running, paused, dead: its QEMU\n"
          "exited, busy: another command is talking to it), branch, the\n"
          "commit it runs from, RAM, vCPUs, QEMU's pid.\n"
          "  --json\n")) != -1) {
    if (c == 'j')
      l.json = true;
  }
  if (argc != optind)
    return cli_usage (cli, "vm ls takes no arguments");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  if (l.json)
    l.arr = json_object_new_array ();
  else
    printf ("%-16s %-12s %-20s %-12s %9s %4s %7s\n", "NAME", "STATE",
            "BRANCH", "BASE", "MEMORY", "CPUS", "PID");
  r = vm_record_list (s, ls_one, &l);
  cairn_store_close (s);
  if (l.json) {
    if (r == 0)
      print_json (l.arr);
    else
      json_object_put (l.arr);
  }
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

static int
vm_cmd_stop (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = { CLI_COMMON_LONG_OPTIONS, { NULL } };
  struct vm_stop_result res;
  struct cairn_store *s;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Stops VM NAME: QEMU quits (or is killed after 5 s), the nbdkit\n"
          "cairn started for it ends, its RAM and run files are removed.\n"
          "What it wrote to its disk stays in its branch; what is only in\n"
          "its RAM is lost unless committed.  A VM whose QEMU died is\n"
          "cleaned up the same way.\n")) != -1)
    continue;
  if (argc - optind != 1)
    return cli_usage (cli, "vm stop needs NAME");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  r = vm_stop (s, argv[optind], &res);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  fprintf (stderr, "cairn: VM %s %s\n", argv[optind],
           !res.was_alive ? "was not running (its QEMU had exited); cleaned up"
           : res.forced ? "stopped (it had to be killed)" : "stopped");
  return 0;
}

static int
spare_ls_one (const struct vm_spare_info *i, void *arg)
{
  struct json_object *arr = arg;

  if (arr) {
    struct json_object *o = json_object_new_object ();
    json_object_object_add (o, "id", json_object_new_string (i->id));
    json_object_object_add (o, "shape", json_object_new_string (i->shape));
    json_object_object_add (o, "pid", json_object_new_int (i->pid));
    json_object_object_add (o, "nbdkit_pid",
                            json_object_new_int (i->nbdkit_pid));
    json_object_object_add (o, "alive", json_object_new_boolean (i->alive));
    json_object_array_add (arr, o);
  }
  else
    printf ("%-16s %-5s %7d %s\n", i->id, i->alive ? "ready" : "dead",
            (int) i->pid, i->shape);
  return 0;
}

static int
vm_cmd_spare (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "count", required_argument, NULL, 'n' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct cairn_store *s;
  unsigned long count = 1;
  bool json = false, have_count = false;
  const char *what;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "QEMUs started ahead of restores.  A restore spends most of its\n"
          "time to a running guest in starting QEMU; a spare is one started\n"
          "already, for the machine of a VM commit (QEMU, machine type,\n"
          "accelerator, CPU model, vCPUs, memory), with no guest yet.\n"
          "vm restore of a commit of that machine takes one and starts\n"
          "another in its place.\n"
          "  start REF [--count N]   start N (default 1) for REF's machine\n"
          "  ls [--json]             the spares: id, state, pid, machine\n"
          "  stop                    end them all\n")) != -1) {
    if (c == 'j')
      json = true;
    else if (c == 'n') {
      char *end;
      count = strtoul (optarg, &end, 10);
      if (*end || *optarg == '-' || count < 1 || count > 16)
        return cli_usage (cli, "--count takes 1 to 16");
      have_count = true;
    }
  }
  what = optind < argc ? argv[optind] : "";
  bool start = strcmp (what, "start") == 0, ls = strcmp (what, "ls") == 0;
  if (start) {
    if (argc - optind != 2 || json)
      return cli_usage (cli, "vm spare start needs REF (and takes --count)");
  }
  else if (ls || strcmp (what, "stop") == 0) {
    if (argc - optind != 1 || have_count || (json && !ls))
      return cli_usage (cli, "vm spare %s takes no arguments%s", what,
                        ls ? " (but --json)" : "");
  }
  else
    return cli_usage (cli, "vm spare takes start, ls or stop");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  if (start) {
    r = vm_spare_start (s, argv[optind + 1], count);
    if (r == 0)
      fprintf (stderr, "cairn: started %lu spare QEMU%s for the machine "
               "of %s\n", count, count > 1 ? "s" : "", argv[optind + 1]);
  }
  else if (ls) {
    struct json_object *arr = json ? json_object_new_array () : NULL;
    if (!json)
      printf ("%-16s %-5s %7s %s\n", "ID", "STATE", "PID", "MACHINE");
    r = vm_spare_list (s, spare_ls_one, arr);
    if (arr && r == 0)
      print_json (arr);
    else if (arr)
      json_object_put (arr);
  }
  else {
    unsigned stopped;
    r = vm_spare_stop (s, &stopped);
    if (r == 0)
      fprintf (stderr, "cairn: stopped %u spare QEMU%s\n", stopped,
               stopped == 1 ? "" : "s");
  }
  cairn_store_close (s);
  return r < 0 ? cli_fail_code (r, NULL) : 0;
}

/* Copies the log from *OFF to stdout. */
static void
copy_log (int fd, off_t *off)
{
  char buf[65536];
  ssize_t n;

  while ((n = pread (fd, buf, sizeof buf, *off)) > 0) {
    fwrite (buf, 1, n, stdout);
    *off += n;
  }
  fflush (stdout);
}

static int
vm_cmd_console (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "follow", no_argument, NULL, 'f' },
    { "send", required_argument, NULL, 's' },
    { NULL },
  };
  const char *send = NULL;
  bool follow = false;
  struct cairn_store *s;
  struct vm_record rec;
  char path[PATH_MAX];
  int c, r, fd;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "f", opts, NULL,
          "Prints what VM NAME printed on its serial console so far.\n"
          "  -f, --follow   then keeps printing, until the VM ends or ^C\n"
          "  --send LINE    types LINE and Enter on the console instead\n"))
         != -1) {
    if (c == 'f')
      follow = true;
    else if (c == 's')
      send = optarg;
  }
  if (argc - optind != 1)
    return cli_usage (cli, "vm console needs NAME");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  if (send) {
    r = vm_console_send (s, argv[optind], send);
    cairn_store_close (s);
    return r < 0 ? cli_fail_code (r, NULL) : 0;
  }
  r = vm_record_get (s, argv[optind], &rec);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  snprintf (path, sizeof path, "%s/console.log", rec.dir);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r = cli_fail ("%s: %s", path, strerror (errno));
    vm_record_free (&rec);
    return r;
  }
  off_t off = 0;
  copy_log (fd, &off);
  /* Like tail -f, it ends on ^C or SIGTERM by their default action:
   * there is nothing to clean up. */
  while (follow && vm_process_alive (&rec.qemu)) {
    nanosleep (&(struct timespec) { 0, 100 * 1000000L }, NULL);
    copy_log (fd, &off);
  }
  copy_log (fd, &off);          /* what it printed as it ended */
  close (fd);
  vm_record_free (&rec);
  return 0;
}

static int
vm_cmd_guest (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = { CLI_COMMON_LONG_OPTIONS, { NULL } };
  char dir[PATH_MAX];
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Prints the directory of the default guest (vmlinuz, initrd.img,\n"
          "root.img, cmdline), building it there first if it is not yet:\n"
          "$CAIRN_GUEST_DIR, else /var/cache/cairn/guest for root, else\n"
          "$XDG_CACHE_HOME/cairn/guest.  Building needs root and the Debian\n"
          "archive.  `cairn import BRANCH DIR/root.img` makes a branch of\n"
          "its disk.\n")) != -1)
    continue;
  if (argc != optind)
    return cli_usage (cli, "vm guest takes no arguments");
  if ((r = vm_guest_dir (dir, sizeof dir)) < 0
      || (r = vm_guest_ensure (dir)) < 0)
    return cli_fail_code (r, NULL);
  puts (dir);
  return 0;
}

static const struct vm_command vm_commands[] = {
  { "run", "vm run NAME --branch BRANCH [--memory SIZE] [--cpus N] "
    "[--kernel K --initrd I --append A] [--accel tcg|kvm|auto]", vm_cmd_run },
  { "commit", "vm commit NAME [-m MSG] [--label K=V]... [--json]",
    vm_cmd_commit },
  { "restore", "vm restore COMMIT NAME [--branch BRANCH] [--eager] [--json]",
    vm_cmd_restore },
  { "branch", "vm branch NAME NEW [-m MSG] [--branch BRANCH] [--json]",
    vm_cmd_branch },
  { "ls", "vm ls [--json]", vm_cmd_ls },
  { "stop", "vm stop NAME", vm_cmd_stop },
  { "spare", "vm spare start REF [--count N] | ls [--json] | stop",
    vm_cmd_spare },
  { "console", "vm console NAME [--follow] [--send LINE]", vm_cmd_console },
  { "guest", "vm guest", vm_cmd_guest },
};

static void
vm_usage (void)
{
  printf ("usage:\n");
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (vm_commands); i++)
    printf ("  cairn %s\n", vm_commands[i].synopsis);
}

int
cmd_vm (struct cli *cli, int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "cairn: vm needs a subcommand (see 'cairn vm --help')\n");
    return EXIT_USAGE;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) {
    printf ("cairn vm: QEMU microvm guests committed, restored and branched\n"
            "whole (disk, RAM, device state) through the store.\n\n");
    vm_usage ();
    return 0;
  }
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (vm_commands); i++)
    if (strcmp (argv[1], vm_commands[i].name) == 0) {
      cli->command = vm_commands[i].synopsis;
      optind = 1;
      return vm_commands[i].run (cli, argc - 1, argv + 1);
    }
  fprintf (stderr, "cairn: unknown vm subcommand '%s' (see 'cairn vm --help')\n",
           argv[1]);
  return EXIT_USAGE;
}
