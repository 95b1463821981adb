/* cli.h: what the cairn subcommands share.
 *
 * Conventions: stdout carries data (ids, listings, JSON), stderr carries
 * messages and progress.  Exit 0 on success, 1 on an error the user can
 * fix (one line "cairn: ..." on stderr), 2 on a usage error.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define EXIT_USAGE 2

struct cli {
  const char *store_path;       /* -S, or NULL for the default */
  const char *command;          /* for messages: "cairn import" */
};

/* A subcommand: its name, a one-line synopsis, and its function, called
 * with argv[0] = the subcommand name. */
struct command {
  const char *name;
  const char *synopsis;
  int (*run) (struct cli *cli, int argc, char **argv);
};

/* Opens the store (-S, $CAIRN_STORE, or the default).  On failure prints
 * the error and returns nonzero (the exit status). */
int cli_open_store (struct cli *cli, unsigned flags, struct cairn_store **s);

/* Prints "cairn: MESSAGE" and returns 1. */
int cli_fail (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Prints libcairn's last error (or the code's description), prefixed by
 * WHAT if not NULL, and returns 1. */
int cli_fail_code (int code, const char *what);
/* Prints a usage error and the synopsis, on one line; returns 2. */
int cli_usage (struct cli *cli, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

/* getopt_long for a subcommand, handling the options every command has:
 * --help prints HELP and exits 0, -S sets the store, an unknown option
 * (or one without its value) is a usage error: exit 2.  Returns the next
 * other option, or -1 at the end of the options. */
int cli_getopt (struct cli *cli, int argc, char **argv, const char *shortopts,
                const struct option *longopts, int *index, const char *help);
#define CLI_COMMON_LONG_OPTIONS \
  { "help", no_argument, NULL, 'h' }, \
  { "store", required_argument, NULL, 'S' }
#define CLI_COMMON_SHORT "hS:"

/* Parses a size argument, printing a usage error. */
int cli_parse_size (struct cli *cli, const char *what, const char *arg,
                    uint64_t *v);

/* Prints an id as 64 hex digits and a newline. */
void cli_print_id (const struct cairn_id *id);

/* Progress bar on stderr when it is a terminal. */
struct progress {
  const char *label;
  bool tty;
  int64_t start, last;
};
void progress_init (struct progress *p, const char *label);
void progress_update (void *p, uint64_t done, uint64_t total);
void progress_done (struct progress *p);

/* Splits "REF:VOLUME" (VOLUME defaults to "disk") into REF and VOLUME. */
int cli_split_ref (const char *spec, char *ref, size_t rlen, char *volume,
                   size_t vlen);

/* Appends to a NULL-terminated growing array of strings. */
void cli_push (const char ***list, size_t *n, const char *item);

/* The subcommands. */
int cmd_init (struct cli *, int, char **);
int cmd_create (struct cli *, int, char **);
int cmd_import (struct cli *, int, char **);
int cmd_export (struct cli *, int, char **);
int cmd_branch (struct cli *, int, char **);
int cmd_commit (struct cli *, int, char **);
int cmd_tag (struct cli *, int, char **);
int cmd_log (struct cli *, int, char **);
int cmd_show (struct cli *, int, char **);
int cmd_cat (struct cli *, int, char **);
int cmd_diff (struct cli *, int, char **);
int cmd_du (struct cli *, int, char **);
int cmd_serve (struct cli *, int, char **);
int cmd_mount (struct cli *, int, char **);
int cmd_vm (struct cli *, int, char **);
int cmd_retention (struct cli *, int, char **);
int cmd_prune (struct cli *, int, char **);
int cmd_autocommit (struct cli *, int, char **);
int cmd_gc (struct cli *, int, char **);
int cmd_fsck (struct cli *, int, char **);

/* Sets the hooks of prune options (cmd-retention.c): what only other
 * components know must be kept. */
struct cairn_prune_options;
void cli_prune_hooks (struct cairn_prune_options *o);

#endif /* CAIRN_CLI_H */
