/* prune.h: applying retention to a store.
 *
 * retention.h decides, as pure logic, which commits a policy keeps.  This
 * is the thin step around it: policies stored per branch in the store,
 * and cairn_prune(), which reads every branch's first-parent chain, runs
 * the selection, and turns the commits nothing keeps into tombstones
 * (store.h, cairn_commit_prune: the text stays, so history stays
 * walkable; gc then reclaims the data).
 *
 * Stored policy, table "retention":
 *
 *   key    the branch name, as text, no terminator
 *   value  the text form whose lines the table at
 *          cairn_retention_policy_to_text() in retention.h lists
 *
 * A branch with no record has the empty policy: it keeps every commit.
 *
 * Errors: 0 or a negative errno / CAIRN_E* code, with a sentence in
 * cairn_last_error().
 */
#ifndef CAIRN_RETENTION_PRUNE_H
#define CAIRN_RETENTION_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "retention/retention.h"
#include "store/store.h"

/* The policy of BRANCH: 0, or -ENOENT if it has none (then *POLICY is
 * the empty policy), or -EBADMSG if the stored one is corrupt. */
int cairn_retention_get (struct cairn_store *s, struct cairn_txn *txn,
                         const char *branch,
                         struct cairn_retention_policy *policy);

/* Stores POLICY for BRANCH, replacing any.  CAIRN_ENOREF if there is no
 * such branch; -EINVAL if POLICY is invalid. */
int cairn_retention_set (struct cairn_store *s, const char *branch,
                         const struct cairn_retention_policy *policy);

/* Forgets BRANCH's policy (the branch need not exist any more).
 * CAIRN_ENOREF if it had none. */
int cairn_retention_clear (struct cairn_store *s, const char *branch);

/* Calls FN for every stored policy, by branch name.  A corrupt record is
 * -EBADMSG. */
typedef int (*cairn_retention_policy_fn) (
  const char *branch, const struct cairn_retention_policy *p, void *arg);
int cairn_retention_list (struct cairn_store *s, struct cairn_txn *txn,
                          cairn_retention_policy_fn fn, void *arg);

/* Commits that only another component knows must be kept (qemu-glue: the
 * commits VMs run from).  The hook calls ADD for each, with a reason
 * ("vm web") that prune shows.  The same shape as gc.h's
 * cairn_extra_roots_fn, so that one function serves both. */
typedef int (*cairn_retention_add_fn) (void *ctx,
                                       const struct cairn_id *commit,
                                       const char *why);
typedef int (*cairn_retention_keep_fn) (struct cairn_store *s,
                                        struct cairn_txn *txn,
                                        cairn_retention_add_fn add,
                                        void *ctx, void *arg);

struct cairn_prune_options {
  /* The branch whose commits may be pruned; NULL: every branch, and the
   * commits nothing reaches any more (below). */
  const char *branch;
  bool dry_run;                 /* decide and report, change nothing */
  cairn_retention_keep_fn keep;
  void *keep_arg;
};

struct cairn_prune_result {
  /* One decision per commit of the branch's first-parent chain (every
   * branch's, without a branch), tombstones left out, newest first.
   * Reasons are prefixed with the branch that keeps: "main: hourly
   * 2026-11-21T10", "main: tag v1", "dev: base of branch dev". */
  struct cairn_retention_result *verdicts;
  /* Without a branch: commits that are not tombstones and that no
   * branch, tag, lease or keep hook reaches through any parent link
   * (a deleted branch's history).  They are pruned too. */
  size_t n_unreachable;
  struct cairn_id *unreachable;
  int64_t *unreachable_time;
  size_t n_pruned;              /* tombstones made (dry: would be made) */
};

/* Applies retention, as one write transaction (a read transaction when
 * dry), so that it sees and changes one consistent state: a tag or a
 * commit made meanwhile is either seen or comes after.
 *
 * Always kept, besides what the policies keep: every tagged commit ("tag
 * NAME"), every branch's base ("base of branch NAME", and "live branch
 * NAME" while a process serves it), and what the keep hook names.  A
 * commit shared by several branches is pruned only if none keeps it
 * (cairn_retention_union); commits off every first-parent chain (merged
 * side history) are never pruned except as unreachable.
 *
 * CAIRN_ENOREF if BRANCH does not exist. */
int cairn_prune (struct cairn_store *s, const struct cairn_prune_options *o,
                 struct cairn_prune_result *result);
void cairn_prune_result_free (struct cairn_prune_result *result);

#endif /* CAIRN_RETENTION_PRUNE_H */
