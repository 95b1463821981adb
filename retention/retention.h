/* retention.h: which commits of a branch to keep, as pure logic.
 *
 * A retention policy is a set of restic/borg-style rules ("keep the newest
 * commit of each of the last 24 hours that have one").  This module parses
 * and stores policies and, given the commits of one branch, decides which
 * of them to keep.  It never touches the store: the caller reads the
 * branch's first-parent chain, calls cairn_retention_select() per branch,
 * merges the branches with cairn_retention_union(), and then turns the
 * commits nothing keeps into tombstones.
 *
 * Every function returns 0 or a negative errno and never prints or exits.
 */
#ifndef CAIRN_RETENTION_H
#define CAIRN_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/util.h"

/* A count rule set to this keeps every period ("unlimited", as in restic). */
#define CAIRN_RETENTION_UNLIMITED (-1)

/* The rules of one branch.  An all-zero struct is the empty policy, which
 * keeps every commit: a branch without a policy is never pruned.
 *
 * Each keep_<period> is a count: 0 turns the rule off, N > 0 keeps the
 * newest commit of each of the N newest periods that have a commit, and
 * CAIRN_RETENTION_UNLIMITED keeps the newest commit of every period.
 * Periods are UTC calendar minutes, hours, days, ISO 8601 weeks, months
 * and years.  keep_last counts commits instead of periods.
 *
 * keep_within is a duration in nanoseconds (0 = off, else a positive whole
 * number of seconds): every commit younger than it, measured from the
 * branch's newest commit, is kept.  keep_within_unit is only how the
 * duration is shown: 's', 'm', 'h', 'd', 'w' or 'y', the unit the user
 * wrote ("14d" stays "14d", not "2w"), or 0 to show it in the largest unit
 * that divides it exactly.  It never changes which commits are kept.
 */
struct cairn_retention_policy {
  int keep_last;
  int keep_minutely;
  int keep_hourly;
  int keep_daily;
  int keep_weekly;
  int keep_monthly;
  int keep_yearly;
  int64_t keep_within;
  char keep_within_unit;
};

/* Large enough for cairn_retention_policy_to_text() and
 * cairn_retention_policy_describe() of any valid policy. */
#define CAIRN_RETENTION_TEXT_MAX 512

/** Sets one rule of POLICY from a command-line option name and value.
 *
 * NAME is the option without its dashes: "keep-last", "keep-minutely",
 * "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly",
 * "keep-yearly" or "keep-within".  For the counts VALUE is a decimal
 * number ("24"), "0" to turn the rule off, or "unlimited" (also "-1").
 * For keep-within VALUE is one or more terms of a number and a unit,
 * s m h d w y (second, minute, hour, day, 7 days, 365 days: "90m", "36h",
 * "7d", "2w", "1y", "1d12h"), or "0" to turn the rule off.  A bare number is
 * refused because its unit would be a guess.
 *
 * On error POLICY is unchanged.
 * @return 0 on success, or
 *   -ENOENT  NAME is not a retention option;
 *   -EINVAL  VALUE is malformed ("abc", "-3", "5x", "", "0d", "7");
 *   -ERANGE  VALUE is a well-formed number too large to hold.
 */
int cairn_retention_policy_set (struct cairn_retention_policy *policy,
                                const char *name, const char *value);

/** True if POLICY has no rule on: it keeps every commit. */
bool cairn_retention_policy_is_empty (const struct cairn_retention_policy *policy);

/** Checks that every field of POLICY holds a value the rules define.
 *
 * Policies built with cairn_retention_policy_set() or parsed with
 * cairn_retention_policy_from_text() always pass; this is for policies
 * filled in by hand.
 * @return 0 if valid, -EINVAL if a count is below -1, keep_within is
 *   negative or not a whole number of seconds, or keep_within_unit is not
 *   one of 0 s m h d w y.
 */
int cairn_retention_policy_validate (const struct cairn_retention_policy *policy);

/** Writes the canonical stored form of POLICY into BUF (NUL-terminated).
 *
 * The form is small text, one line per rule that is on, always in the
 * order of the table below, each line ending in "\n":
 *
 *   LINE                    VALUE                  MEANING
 *   cairn-retention 1       format version         always the first line
 *   keep-last N             N >= 1 or "unlimited"  the N newest commits
 *   keep-minutely N         same                   N newest UTC minutes
 *   keep-hourly N           same                   N newest UTC hours
 *   keep-daily N            same                   N newest UTC days
 *   keep-weekly N           same                   N newest ISO 8601 weeks
 *   keep-monthly N          same                   N newest UTC months
 *   keep-yearly N           same                   N newest UTC years
 *   keep-within D           duration, one term     younger than D from
 *                           with a unit: "7d"      the newest commit
 *
 * Numbers are decimal without sign or leading zeros; fields are separated
 * by exactly one space.  The empty policy is the version line alone.
 * The same policy always gives the same bytes.
 * @return 0 on success, or
 *   -EINVAL  POLICY fails cairn_retention_policy_validate();
 *   -ENOBUFS LEN is too small (CAIRN_RETENTION_TEXT_MAX always suffices).
 */
int cairn_retention_policy_to_text (const struct cairn_retention_policy *policy,
                                    char *buf, size_t len);

/** Parses the stored form written by cairn_retention_policy_to_text().
 *
 * TEXT holds LEN bytes and need not be NUL-terminated (an LMDB value).
 * Parsing is strict: the bytes must be exactly what
 * cairn_retention_policy_to_text() writes for the resulting policy, so
 * unknown rules, repeated or reordered lines, zero counts, extra spaces,
 * "\r", a missing final newline and non-canonical numbers are all refused.
 * On error POLICY is unchanged.
 * @return 0 on success, or
 *   -EINVAL   TEXT is not a valid stored policy;
 *   -ENOTSUP  TEXT is a stored policy of a newer format version.
 */
int cairn_retention_policy_from_text (const char *text, size_t len,
                                      struct cairn_retention_policy *policy);

/** Writes POLICY for people into BUF: "keep-last 5, keep-hourly 24,
 * keep-within 7d" (the stored lines without the version, joined by ", "),
 * or "none" for the empty policy.
 * @return 0 on success, or -EINVAL / -ENOBUFS as
 *   cairn_retention_policy_to_text().
 */
int cairn_retention_policy_describe (const struct cairn_retention_policy *policy,
                                     char *buf, size_t len);

/* One commit of a branch, as the caller hands it to selection.  The
 * strings of always_keep are borrowed for the duration of the call only:
 * the result holds its own copies. */
struct cairn_retention_item {
  struct cairn_id id;               /* the commit; unique in one call */
  int64_t time;                     /* commit time, ns since the epoch, UTC */
  const char *const *always_keep;   /* why it must be kept whatever the policy,
                                     * e.g. "tag v1", "base of branch dev",
                                     * "live branch dev", "vm web"; or NULL */
  size_t n_always_keep;
};

/* The verdict on one commit.  reasons[] says why it is kept (empty when
 * it is pruned), in this order: "last N", "minutely 2026-11-21T10:05",
 * "hourly 2026-11-21T10", "daily 2026-11-21", "weekly 2026-W47",
 * "monthly 2026-11", "yearly 2026", "within 7d", then the caller's
 * always-keep strings verbatim.  A period reason may read "oldest daily
 * 2026-11-21" (see cairn_retention_select()); the empty policy gives
 * "empty policy".  After cairn_retention_union() each reason is prefixed
 * with its branch, "main: daily 2026-11-21". */
struct cairn_retention_decision {
  struct cairn_id id;
  int64_t time;
  bool keep;
  size_t n_reasons;
  char **reasons;
};

/* The verdicts on a set of commits, newest first.  Everything in it,
 * down to the reason strings, belongs to the result and is released by
 * cairn_retention_result_free() alone. */
struct cairn_retention_result {
  size_t n_decisions;
  size_t n_keep;                    /* how many decisions have keep set */
  struct cairn_retention_decision *decisions;
};

/** Decides which commits of ONE branch POLICY keeps.
 *
 * ITEMS are the N commits of the branch's first-parent chain, tombstones
 * already left out, in any order.  They are sorted newest first; commits
 * with equal times keep their order in ITEMS, so pass the chain from the
 * head backwards and a child counts as newer than its parent.  Then, as
 * in restic's `forget` (internal/restic/snapshot_policy.go):
 *
 *  - keep-last N keeps the N newest commits ("last 1" is the newest);
 *  - keep-<period> N walks from the newest commit to the oldest and keeps
 *    the first commit it meets in each new period, until N commits are
 *    kept; unlimited never stops.  Periods with no commit cost nothing, so
 *    a gap of days makes keep-daily reach further back;
 *  - as restic does since 0.16, the oldest commit is also kept by every
 *    period rule that still has counts left when it reaches it, even if
 *    its period already has a kept commit: the reason then reads "oldest
 *    daily 2026-11-21".  Unlimited rules always have counts left;
 *  - keep-within D keeps every commit strictly younger than D measured
 *    from the branch's newest commit (not from now: a branch idle for a
 *    month keeps its last D of history);
 *  - a commit with always-keep reasons is kept whatever the rules say;
 *  - the empty policy keeps every commit.
 *
 * A commit is kept if any rule keeps it.  Selecting again from the kept
 * commits keeps them all, so pruning twice prunes nothing more.
 * Selection sees one branch only:
 * a commit shared with other branches must be pruned only if no branch
 * keeps it, which cairn_retention_union() decides.
 *
 * On success *RESULT holds N decisions, newest first, and the caller frees
 * it with cairn_retention_result_free().  On error *RESULT is untouched.
 * @return 0 on success, or
 *   -EINVAL  POLICY fails cairn_retention_policy_validate(), two items
 *            share an id, or an always-keep string is NULL or empty;
 *   -ENOMEM  out of memory.
 */
int cairn_retention_select (const struct cairn_retention_policy *policy,
                            const struct cairn_retention_item *items, size_t n,
                            struct cairn_retention_result **result);

/** Merges the selections of several branches into one verdict per commit.
 *
 * RESULTS are N results of cairn_retention_select(), one per branch, and
 * BRANCHES their branch names (or NULL for no prefix).  A commit present
 * in several results is kept if ANY of them keeps it: a commit that one
 * branch's policy would drop survives while another branch that reaches it
 * keeps it.  Its reasons are those of every branch that keeps it, each
 * prefixed "BRANCH: ".  Commits in no result are absent: the caller must
 * never tombstone a commit it did not pass to selection.  Run selection
 * for every branch, those without a policy included (their empty policy
 * keeps everything), or their history is unprotected.
 *
 * On success *UNION_RESULT holds one decision per distinct commit, newest first
 * (equal times in order of first appearance), freed by the caller with
 * cairn_retention_result_free().  On error *UNION_RESULT is untouched.
 * @return 0 on success, or
 *   -EINVAL  one commit id appears with two different times;
 *   -ENOMEM  out of memory.
 */
int cairn_retention_union (const struct cairn_retention_result *const *results,
                           const char *const *branches, size_t n,
                           struct cairn_retention_result **union_result);

/** Frees RESULT and everything it holds.  NULL is allowed. */
void cairn_retention_result_free (struct cairn_retention_result *result);

#endif /* CAIRN_RETENTION_H */
