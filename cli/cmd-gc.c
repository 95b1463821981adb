/* cmd-gc.c: gc and fsck. */
#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "gc/gc.h"
#include "qemu-glue/vm.h"

/* Commits only qemu-glue knows must keep their data: those VMs run from
 * (vm.h). */
static const cairn_extra_roots_fn vm_roots = vm_keep_commits;

static void
print_json (struct json_object *j)
{
  puts (json_object_to_json_string_ext (j, JSON_C_TO_STRING_PRETTY
                                        | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void
add_u64 (struct json_object *o, const char *key, uint64_t v)
{
  json_object_object_add (o, key, json_object_new_int64 ((int64_t) v));
}

static void
add_seconds (struct json_object *o, const char *key, int64_t ns)
{
  json_object_object_add (o, key, json_object_new_double (ns / 1e9));
}

/* ---- gc ----------------------------------------------------------------- */

struct gc_progress {
  bool tty;
  const char *last;
};

static void
gc_step (void *arg, const char *phase)
{
  struct gc_progress *p = arg;

  if (!p->tty || (p->last && strcmp (p->last, phase) == 0))
    return;
  p->last = phase;
  fprintf (stderr, "\r\033[Kgc: %s ...", phase);
  fflush (stderr);
}

static void
print_gc_json (const struct cairn_gc_report *g)
{
  struct json_object *o = json_object_new_object ();

  json_object_object_add (o, "dry_run", json_object_new_boolean (g->dry_run));
  add_u64 (o, "epoch", g->epoch);
  add_u64 (o, "root_commits", g->root_commits);
  add_u64 (o, "nodes_marked", g->nodes_marked);
  add_u64 (o, "chunks_marked", g->chunks_marked);
  add_u64 (o, "chunk_refs", g->chunk_refs);
  add_u64 (o, "nodes_swept", g->nodes_swept);
  add_u64 (o, "node_bytes_swept", g->node_bytes_swept);
  add_u64 (o, "chunks_swept", g->chunks_swept);
  add_u64 (o, "chunk_bytes_swept", g->chunk_bytes_swept);
  add_u64 (o, "young_kept", g->young_kept);
  add_u64 (o, "packs_before", g->packs_before);
  add_u64 (o, "pack_bytes_before", g->pack_bytes_before);
  add_u64 (o, "packs_after", g->packs_after);
  add_u64 (o, "pack_bytes_after", g->pack_bytes_after);
  add_u64 (o, "packs_busy", g->packs_busy);
  add_u64 (o, "packs_compacted", g->packs_compacted);
  add_u64 (o, "packs_emptied", g->packs_emptied);
  add_u64 (o, "packs_deferred", g->packs_deferred);
  add_u64 (o, "packs_written", g->packs_written);
  add_u64 (o, "bytes_copied", g->bytes_copied);
  add_u64 (o, "reclaimed_bytes", g->reclaimed_bytes);
  add_u64 (o, "index_bytes_freed", g->index_bytes_freed);
  add_u64 (o, "txns", g->txns);
  add_seconds (o, "longest_txn_seconds", g->longest_txn_ns);
  json_object_object_add (o, "longest_txn_phase", g->longest_txn_phase
                          ? json_object_new_string (g->longest_txn_phase)
                          : NULL);
  add_seconds (o, "mark_seconds", g->mark_ns);
  add_seconds (o, "sweep_seconds", g->sweep_ns);
  add_seconds (o, "compact_seconds", g->compact_ns);
  add_seconds (o, "total_seconds", g->total_ns);
  print_json (o);
  json_object_put (o);
}

static void
print_gc (const struct cairn_gc_report *g)
{
  const char *would = g->dry_run ? "would be " : "";
  char a[32], b[32], c[32];

  printf ("marked %llu tree nodes and %llu chunks from %llu commits "
          "in %.2f s\n", (unsigned long long) g->nodes_marked,
          (unsigned long long) g->chunks_marked,
          (unsigned long long) g->root_commits, g->mark_ns / 1e9);
  cairn_format_bytes (g->node_bytes_swept, a, sizeof a);
  cairn_format_bytes (g->chunk_bytes_swept, b, sizeof b);
  printf ("%llu tree nodes (%s) and %llu chunks (%s) %sswept in %.2f s",
          (unsigned long long) g->nodes_swept, a,
          (unsigned long long) g->chunks_swept, b,
          g->dry_run ? "would be " : "", g->sweep_ns / 1e9);
  if (g->young_kept)
    printf ("; %llu unreachable objects are too new to go",
            (unsigned long long) g->young_kept);
  putchar ('\n');
  cairn_format_bytes (g->bytes_copied, a, sizeof a);
  printf ("%llu packs %scompacted (%s copied into %llu new), "
          "%llu empty packs %sremoved", (unsigned long long)
          g->packs_compacted, would, a, (unsigned long long) g->packs_written,
          (unsigned long long) g->packs_emptied, would);
  if (g->packs_busy)
    printf (", %llu packs in use left alone",
            (unsigned long long) g->packs_busy);
  if (g->packs_deferred)
    printf (", %llu packs left for the next gc (old readers)",
            (unsigned long long) g->packs_deferred);
  printf (" in %.2f s\n", g->compact_ns / 1e9);
  cairn_format_bytes (g->reclaimed_bytes, a, sizeof a);
  cairn_format_bytes (g->pack_bytes_before, b, sizeof b);
  cairn_format_bytes (g->pack_bytes_after, c, sizeof c);
  printf ("%s %sreclaimed (packs: %s in %llu files -> %s in %llu files)",
          a, g->dry_run ? "would be " : "", b,
          (unsigned long long) g->packs_before, c,
          (unsigned long long) g->packs_after);
  cairn_format_bytes (g->index_bytes_freed, a, sizeof a);
  printf (", %s of index space %sfreed for reuse\n", a, would);
}

/* gc is background work: it gives the CPU and the disk to what serves
 * and commits branches beside it (nice 10, the sealer's; the lowest
 * best-effort I/O priority, where the I/O scheduler honours one).  A
 * failure to lower them changes nothing else. */
#define GC_NICE 10
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_WHO_PROCESS 1

static void
gc_yield (void)
{
  setpriority (PRIO_PROCESS, 0, GC_NICE);
  syscall (SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
           IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT | 7);
}

int
cmd_gc (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "dry-run", no_argument, NULL, 'n' },
    { "compact-below", required_argument, NULL, 'c' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct gc_progress progress = { .tty = isatty (2) };
  struct cairn_gc_options o = {
    .extra_roots = vm_roots,
    .step = gc_step, .step_arg = &progress,
  };
  struct cairn_gc_report report;
  struct cairn_store *s;
  bool json = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT "n", opts, NULL,
          "Reclaims the space of what nothing reaches any more: marks every\n"
          "tree node and chunk reachable from the commits that are not\n"
          "tombstones, branches (bases and working state), tags and live\n"
          "readers; deletes the rest; then rewrites the packs whose live\n"
          "fraction is below --compact-below (default 0.8; 0: never) and\n"
          "removes packs with nothing live.  Prints what it reclaimed.\n"
          "\n"
          "gc runs while branches are served, written and committed: it\n"
          "never deletes anything written or reused after it started, and\n"
          "holds the store's write lock only a few milliseconds at a time.\n"
          "It runs at nice 10 and the lowest best-effort I/O priority.\n"
          "kill -9 at any moment leaves a consistent store.  --dry-run\n"
          "reports what would be reclaimed and changes nothing.  Pruning\n"
          "('cairn prune') is what makes old commits reclaimable.\n")) != -1) {
    if (c == 'n')
      o.dry_run = true;
    else if (c == 'j')
      json = true;
    else if (c == 'c') {
      char *end;
      double v = strtod (optarg, &end);
      if (*end || end == optarg || v < 0 || v > 1)
        return cli_usage (cli, "--compact-below takes a fraction from 0 to "
                          "1, not '%s'", optarg);
      o.compact_below = v == 0 ? -1 : v;
    }
  }
  if (optind != argc)
    return cli_usage (cli, "gc takes no arguments");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  gc_yield ();
  r = cairn_gc (s, &o, &report);
  if (progress.last)
    fputs ("\r\033[K", stderr);
  cairn_store_close (s);
  if (r < 0)
    return cli_fail_code (r, NULL);
  if (json)
    print_gc_json (&report);
  else
    print_gc (&report);
  return 0;
}

/* ---- fsck --------------------------------------------------------------- */

static void
print_fsck_json (struct cairn_store *s, const struct cairn_fsck_report *f)
{
  struct json_object *o = json_object_new_object ();
  struct json_object *a;
  char hex[CAIRN_HEX_SIZE + 1];

  json_object_object_add (o, "ok", json_object_new_boolean (f->n_problems
                                                            == 0));
  add_u64 (o, "branches", f->checked_branches);
  add_u64 (o, "tags", f->checked_tags);
  add_u64 (o, "commits", f->checked_commits);
  add_u64 (o, "tombstones", f->tombstones);
  add_u64 (o, "nodes", f->nodes);
  add_u64 (o, "chunks", f->chunks);
  add_u64 (o, "chunk_bytes", f->chunk_bytes);
  add_u64 (o, "chunks_read", f->chunks_read);
  a = json_object_new_array ();
  for (size_t i = 0; i < f->n_problems; i++)
    json_object_array_add (a, json_object_new_string (f->problems[i]));
  json_object_object_add (o, "problems", a);
  a = json_object_new_array ();
  for (size_t i = 0; i < f->n_commits; i++) {
    cairn_id_to_hex (&f->commits[i], hex);
    json_object_array_add (a, json_object_new_string (hex));
  }
  json_object_object_add (o, "affected_commits", a);
  a = json_object_new_array ();
  for (size_t i = 0; i < f->n_branches; i++)
    json_object_array_add (a, json_object_new_string (f->branches[i]));
  json_object_object_add (o, "affected_branches", a);
  a = json_object_new_array ();
  for (size_t i = 0; i < f->n_tags; i++)
    json_object_array_add (a, json_object_new_string (f->tags[i]));
  json_object_object_add (o, "affected_tags", a);
  a = json_object_new_array ();
  for (size_t i = 0; i < f->n_notes; i++)
    json_object_array_add (a, json_object_new_string (f->notes[i]));
  json_object_object_add (o, "notes", a);
  add_u64 (o, "unreachable_nodes", f->unreachable_nodes);
  add_u64 (o, "unreachable_node_bytes", f->unreachable_node_bytes);
  add_u64 (o, "unreachable_chunks", f->unreachable_chunks);
  add_u64 (o, "unreachable_chunk_bytes", f->unreachable_chunk_bytes);
  add_u64 (o, "packs", f->packs);
  add_u64 (o, "pack_bytes", f->pack_bytes);
  add_u64 (o, "pack_garbage_bytes", f->pack_garbage_bytes);
  add_u64 (o, "empty_packs", f->empty_packs);
  print_json (o);
  json_object_put (o);
}

/* "main, tag: v1": the refs naming commit ID. */
struct refs_of {
  const struct cairn_id *id;
  char buf[512];
  size_t at;
};

static int
ref_of (const struct cairn_ref *ref, void *arg)
{
  struct refs_of *ro = arg;

  if (cairn_id_equal (&ref->commit, ro->id) && ro->at < sizeof ro->buf)
    ro->at += snprintf (ro->buf + ro->at, sizeof ro->buf - ro->at, "%s%s%s",
                        ro->at ? ", " : "",
                        ref->kind == CAIRN_REF_TAG ? "tag: " : "", ref->name);
  return 0;
}

static void
print_fsck (struct cairn_store *s, const struct cairn_fsck_report *f,
            bool read_data)
{
  char a[32], b[32], c[32];
  struct cairn_txn *txn = NULL;

  cairn_format_bytes (f->chunk_bytes, a, sizeof a);
  printf ("checked %llu branches, %llu tags, %llu commits (%llu pruned), "
          "%llu tree nodes and %llu chunks (%s stored)%s\n",
          (unsigned long long) f->checked_branches,
          (unsigned long long) f->checked_tags,
          (unsigned long long) f->checked_commits,
          (unsigned long long) f->tombstones,
          (unsigned long long) f->nodes, (unsigned long long) f->chunks, a,
          read_data ? ", every chunk read and re-hashed" : "");
  for (size_t i = 0; i < f->n_problems; i++)
    printf ("damage: %s\n", f->problems[i]);
  if (f->n_commits) {
    printf ("affected commits:\n");
    if (cairn_txn_begin (s, false, &txn) < 0)
      txn = NULL;
  }
  for (size_t i = 0; i < f->n_commits; i++) {
    char hex[CAIRN_HEX_SIZE + 1], when[CAIRN_TIME_SIZE] = "?";
    struct refs_of ro = { .id = &f->commits[i] };
    struct cairn_commit *cm;
    if (txn && cairn_commit_read (txn, &f->commits[i], &cm) == 0) {
      cairn_time_format_seconds (cm->time, when);
      cairn_commit_free (cm);
    }
    if (txn) {
      cairn_ref_list (txn, CAIRN_REF_BRANCH, ref_of, &ro);
      cairn_ref_list (txn, CAIRN_REF_TAG, ref_of, &ro);
    }
    cairn_id_to_hex (&f->commits[i], hex);
    printf ("  %s %s%s%s%s\n", hex, when, ro.at ? " (" : "", ro.buf,
            ro.at ? ")" : "");
  }
  if (txn)
    cairn_txn_abort (s, txn);
  if (f->n_branches) {
    printf ("affected branches:");
    for (size_t i = 0; i < f->n_branches; i++)
      printf (" %s", f->branches[i]);
    putchar ('\n');
  }
  if (f->n_tags) {
    printf ("affected tags:");
    for (size_t i = 0; i < f->n_tags; i++)
      printf (" %s", f->tags[i]);
    putchar ('\n');
  }
  for (size_t i = 0; i < f->n_notes; i++)
    printf ("note: %s\n", f->notes[i]);
  cairn_format_bytes (f->unreachable_chunk_bytes, a, sizeof a);
  cairn_format_bytes (f->unreachable_node_bytes, b, sizeof b);
  cairn_format_bytes (f->pack_garbage_bytes, c, sizeof c);
  printf ("unreachable: %llu chunks (%s) and %llu tree nodes (%s); "
          "%s of pack garbage, %llu empty packs (cairn gc reclaims them)\n",
          (unsigned long long) f->unreachable_chunks, a,
          (unsigned long long) f->unreachable_nodes, b, c,
          (unsigned long long) f->empty_packs);
  printf (f->n_problems ? "the store is DAMAGED\n" : "the store is intact\n");
}

int
cmd_fsck (struct cli *cli, int argc, char **argv)
{
  static const struct option opts[] = {
    CLI_COMMON_LONG_OPTIONS,
    { "read-data", no_argument, NULL, 'r' },
    { "json", no_argument, NULL, 'j' },
    { NULL },
  };
  struct progress progress;
  struct cairn_fsck_options o = { .extra_roots = vm_roots };
  struct cairn_fsck_report report;
  struct cairn_store *s;
  bool json = false;
  int c, r;

  while ((c = cli_getopt (cli, argc, argv, CLI_COMMON_SHORT, opts, NULL,
          "Checks the store: every commit hashes to its id and parses, every\n"
          "branch and tag names a commit that exists, and every tree node\n"
          "and chunk reachable from them (and from branches' working state)\n"
          "exists, with its node bytes re-hashed.  --read-data also reads,\n"
          "decompresses and re-hashes every reachable chunk.  Damage is\n"
          "reported with the commits, branches and tags it affects, and the\n"
          "exit status is then 1.  Unreachable objects and pack garbage are\n"
          "reported as information ('cairn gc' reclaims them).\n")) != -1) {
    if (c == 'r')
      o.read_data = true;
    else if (c == 'j')
      json = true;
  }
  if (optind != argc)
    return cli_usage (cli, "fsck takes no arguments");
  if ((r = cli_open_store (cli, 0, &s)))
    return r;
  progress_init (&progress, "fsck");
  o.progress = progress_update;
  o.progress_arg = &progress;
  r = cairn_fsck (s, &o, &report);
  progress_done (&progress);
  if (r < 0) {
    cairn_store_close (s);
    return cli_fail_code (r, NULL);
  }
  if (json)
    print_fsck_json (s, &report);
  else
    print_fsck (s, &report, o.read_data);
  r = report.n_problems ? 1 : 0;
  cairn_fsck_report_free (&report);
  cairn_store_close (s);
  return r;
}
