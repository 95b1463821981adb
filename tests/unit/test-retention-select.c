/* test-retention-select: which commits of one branch a policy keeps.
 *
 * A table of hand-computed cases.  Each names its policy, lists the
 * branch's commits in the order they are handed to selection (some
 * deliberately out of time order) and, for each commit, the reasons it is
 * kept for, or that it is pruned.  Every commit of every case is one TAP
 * check comparing the keep flag and the exact reason strings.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "retention/retention.h"
#include "tap.h"

#define PRUNED NULL
#define MAX_COMMITS 12
#define MAX_ALWAYS 3

struct commit_spec {
  const char *time;             /* ISO 8601 UTC; NULL ends the list */
  const char *want;             /* the reasons joined by "; ", or PRUNED */
  const char *always[MAX_ALWAYS]; /* always-keep reasons, NULL-terminated */
  unsigned id;                  /* the commit id's first byte; 0: position + 1 */
};

struct select_case {
  const char *name;
  const char *options[8][2];
  struct commit_spec commits[MAX_COMMITS];
};

/* A commit pruned, kept for REASONS, or kept and pinned by the caller's
 * always-keep reasons; _ID forces the id's first byte. */
#define PRUNE(time) { time, PRUNED, { NULL }, 0 }
#define PRUNE_ID(time, id) { time, PRUNED, { NULL }, id }
#define KEPT(time, reasons) { time, reasons, { NULL }, 0 }
#define KEPT_ID(time, reasons, id) { time, reasons, { NULL }, id }
#define PINNED(time, reasons, ...) { time, reasons, { __VA_ARGS__ }, 0 }

static const struct select_case cases[] = {
  { "minute boundary, ns precise (input out of order)",
    { { "keep-minutely", "2" } },
    { PRUNE ("2026-11-21T10:05:00Z"),
      KEPT ("2026-11-21T10:06:00Z", "minutely 2026-11-21T10:06"),
      PRUNE ("2026-11-21T10:04:00Z"),  /* oldest, but no count left */
      KEPT ("2026-11-21T10:05:59.999999999Z", "minutely 2026-11-21T10:05") } },

  { "hour boundary 10:59:59 vs 11:00:00",
    { { "keep-hourly", "3" } },
    { KEPT ("2026-11-21T11:00:00Z", "hourly 2026-11-21T11"),
      KEPT ("2026-11-21T10:59:59Z", "hourly 2026-11-21T10"),
      PRUNE ("2026-11-21T10:00:00Z"),
      KEPT ("2026-11-21T09:59:59Z", "hourly 2026-11-21T09"),
      PRUNE ("2026-11-21T09:00:00Z") } },

  { "day boundary at midnight UTC",
    { { "keep-daily", "2" } },
    { KEPT ("2026-11-22T00:00:00Z", "daily 2026-11-22"),
      KEPT ("2026-11-21T23:59:59.999999999Z", "daily 2026-11-21"),
      PRUNE ("2026-11-21T00:00:00Z") } },

  { "times with a zone offset count in UTC",
    { { "keep-daily", "2" } },
    { KEPT ("2026-11-22T00:30:00+01:00", "daily 2026-11-21"),  /* 23:30 UTC */
      KEPT ("2026-11-21T01:00:00+02:00", "daily 2026-11-20"),  /* 23:00 UTC */
      PRUNE ("2026-11-20T12:00:00Z") } },

  { "ISO week over a year change: 2020-12-31 is 2020-W53",
    { { "keep-weekly", "3" } },
    { KEPT ("2021-01-04T00:00:00Z", "weekly 2021-W01"),      /* Monday */
      KEPT ("2021-01-03T23:59:59Z", "weekly 2020-W53"),      /* Sunday */
      PRUNE ("2021-01-01T12:00:00Z"),
      PRUNE ("2020-12-31T12:00:00Z"),
      PRUNE ("2020-12-28T00:00:00Z"),                        /* Monday */
      KEPT ("2020-12-27T23:59:59Z", "weekly 2020-W52"),
      PRUNE ("2020-12-21T12:00:00Z") } },

  { "ISO week ahead of the calendar year: 2019-12-30 is 2020-W01",
    { { "keep-weekly", "2" } },
    { KEPT ("2020-01-01T00:00:00Z", "weekly 2020-W01"),
      PRUNE ("2019-12-30T00:00:00Z"),
      KEPT ("2019-12-29T23:59:59Z", "weekly 2019-W52"),
      PRUNE ("2019-12-23T00:00:00Z") } },

  { "monthly and yearly over New Year",
    { { "keep-monthly", "2" }, { "keep-yearly", "2" } },
    { KEPT ("2026-01-15T00:00:00Z", "monthly 2026-01; yearly 2026"),
      KEPT ("2025-12-31T23:59:59Z", "monthly 2025-12; yearly 2025"),
      PRUNE ("2025-12-01T00:00:00Z"),
      PRUNE ("2025-06-01T00:00:00Z"),
      PRUNE ("2024-03-01T00:00:00Z") } },

  { "a 5-day gap: keep-daily 7 keeps 7 distinct days further back",
    { { "keep-daily", "7" } },
    { KEPT ("2026-11-21T18:00:00Z", "daily 2026-11-21"),
      PRUNE ("2026-11-21T09:00:00Z"),
      KEPT ("2026-11-20T12:00:00Z", "daily 2026-11-20"),
      /* nothing on the 15th to the 19th */
      KEPT ("2026-11-14T12:00:00Z", "daily 2026-11-14"),
      KEPT ("2026-11-13T12:00:00Z", "daily 2026-11-13"),
      KEPT ("2026-11-12T12:00:00Z", "daily 2026-11-12"),
      KEPT ("2026-11-11T12:00:00Z", "daily 2026-11-11"),
      KEPT ("2026-11-10T12:00:00Z", "daily 2026-11-10"),
      PRUNE ("2026-11-09T12:00:00Z"),
      PRUNE ("2026-11-08T12:00:00Z") } },

  { "the oldest commit is kept while a rule has counts left (restic 0.16)",
    { { "keep-daily", "7" } },
    { KEPT ("2026-11-21T12:00:00Z", "daily 2026-11-21"),
      KEPT ("2026-11-20T18:00:00Z", "daily 2026-11-20"),
      PRUNE ("2026-11-20T12:00:00Z"),
      KEPT ("2026-11-20T06:00:00Z", "oldest daily 2026-11-20") } },

  { "keep-within counts from the newest commit, not from now",
    { { "keep-within", "2d" } },
    { KEPT ("2020-03-10T12:00:00Z", "within 2d"),
      KEPT ("2020-03-09T00:00:00Z", "within 2d"),
      KEPT ("2020-03-08T12:00:00.000000001Z", "within 2d"),
      PRUNE ("2020-03-08T12:00:00Z"),  /* exactly 2d: not younger */
      PRUNE ("2020-03-01T00:00:00Z") } },

  { "keep-within echoes a compound duration canonically",
    { { "keep-within", "1d12h" } },
    { KEPT ("2020-03-10T12:00:00Z", "within 36h"),
      KEPT ("2020-03-09T00:00:01Z", "within 36h"),
      PRUNE ("2020-03-09T00:00:00Z") } },

  { "keep-last combined with keep-hourly",
    { { "keep-last", "2" }, { "keep-hourly", "2" } },
    { KEPT ("2026-11-21T10:50:00Z", "last 1; hourly 2026-11-21T10"),
      KEPT ("2026-11-21T10:40:00Z", "last 2"),
      PRUNE ("2026-11-21T10:30:00Z"),
      KEPT ("2026-11-21T09:45:00Z", "hourly 2026-11-21T09"),
      PRUNE ("2026-11-21T09:15:00Z"),
      PRUNE ("2026-11-21T08:00:00Z") } },

  { "every rule at once",
    { { "keep-last", "1" }, { "keep-minutely", "1" }, { "keep-hourly", "1" },
      { "keep-daily", "1" }, { "keep-weekly", "1" }, { "keep-monthly", "1" },
      { "keep-yearly", "1" }, { "keep-within", "1h" } },
    { PINNED ("2026-11-21T10:05:30Z",
              "last 1; minutely 2026-11-21T10:05; hourly 2026-11-21T10; "
              "daily 2026-11-21; weekly 2026-W47; monthly 2026-11; "
              "yearly 2026; within 1h; tag v2",
              "tag v2"),
      KEPT ("2026-11-21T09:30:00Z", "within 1h"),
      PRUNE ("2026-11-21T09:05:30Z") } },

  { "a tagged old commit",
    { { "keep-daily", "2" } },
    { PINNED ("2026-11-21T12:00:00Z", "daily 2026-11-21; base of branch main",
              "base of branch main"),
      KEPT ("2026-11-20T12:00:00Z", "daily 2026-11-20"),
      PRUNE ("2026-11-19T12:00:00Z"),
      PINNED ("2026-11-01T12:00:00Z", "tag v1", "tag v1"),
      PRUNE ("2026-10-31T12:00:00Z") } },

  { "a branch base older than every window",
    { { "keep-last", "1" }, { "keep-within", "1d" } },
    { KEPT ("2026-11-21T10:00:00Z", "last 1; within 1d"),
      KEPT ("2026-11-21T09:00:00Z", "within 1d"),
      PRUNE ("2026-11-19T09:00:00Z"),
      PINNED ("2026-01-05T09:00:00Z", "base of branch dev; vm web",
              "base of branch dev", "vm web"),
      PRUNE ("2025-12-31T09:00:00Z") } },

  { "keep-last unlimited keeps every commit",
    { { "keep-last", "unlimited" } },
    { KEPT ("2026-11-21T10:00:00Z", "last 1"),
      KEPT ("2026-11-21T09:00:00Z", "last 2"),
      KEPT ("2020-01-01T00:00:00Z", "last 3") } },

  { "keep-hourly unlimited keeps every hour, and the oldest",
    { { "keep-hourly", "-1" } },
    { KEPT ("2026-11-21T10:50:00Z", "hourly 2026-11-21T10"),
      PRUNE ("2026-11-21T10:10:00Z"),
      KEPT ("2026-11-21T09:30:00Z", "hourly 2026-11-21T09"),
      KEPT ("2026-11-21T08:59:00Z", "hourly 2026-11-21T08"),
      KEPT ("2026-11-21T08:10:00Z", "oldest hourly 2026-11-21T08") } },

  { "the empty policy keeps everything",
    { { NULL } },
    { KEPT ("2026-11-21T10:00:00Z", "empty policy"),
      PINNED ("2020-01-01T00:00:00Z", "empty policy; tag v1", "tag v1"),
      KEPT ("1999-12-31T23:59:59Z", "empty policy") } },

  { "duplicate times: the first in input order counts as newer, not the "
    "smaller id",
    { { "keep-last", "1" } },
    { PRUNE_ID ("2026-11-21T09:00:00Z", 5),
      KEPT_ID ("2026-11-21T10:00:00Z", "last 1", 9),
      PRUNE_ID ("2026-11-21T10:00:00Z", 1) } },

  { "duplicate times in one hour",
    { { "keep-hourly", "2" } },
    { KEPT ("2026-11-21T10:00:00Z", "hourly 2026-11-21T10"),
      PRUNE ("2026-11-21T10:00:00Z"),
      KEPT ("2026-11-21T09:00:00Z", "hourly 2026-11-21T09") } },

  { "duplicate times as the oldest commits",
    { { "keep-hourly", "2" } },
    { KEPT ("2026-11-21T10:00:00Z", "hourly 2026-11-21T10"),
      KEPT ("2026-11-21T10:00:00Z", "oldest hourly 2026-11-21T10") } },

  { "before 1970",
    { { "keep-daily", "2" } },
    { KEPT ("1969-12-31T23:59:59.5Z", "daily 1969-12-31"),
      PRUNE ("1969-12-31T00:00:00Z"),
      KEPT ("1969-12-30T23:59:59Z", "daily 1969-12-30") } },
};

/* The policy, and items pointing into SPEC, of one case. */
static size_t
build_case (const struct select_case *c, struct cairn_retention_policy *policy,
            struct cairn_retention_item items[MAX_COMMITS])
{
  size_t n;

  *policy = (struct cairn_retention_policy) { 0 };
  for (size_t i = 0; i < 8 && c->options[i][0]; i++)
    if (cairn_retention_policy_set (policy, c->options[i][0], c->options[i][1]) < 0)
      diag ("%s: bad option %s %s", c->name, c->options[i][0], c->options[i][1]);
  for (n = 0; n < MAX_COMMITS && c->commits[n].time; n++) {
    const struct commit_spec *spec = &c->commits[n];
    struct cairn_retention_item *item = &items[n];

    *item = (struct cairn_retention_item) { 0 };
    item->id.bytes[0] = spec->id ? spec->id : n + 1;
    if (cairn_time_parse (spec->time, &item->time) < 0)
      diag ("%s: bad time %s", c->name, spec->time);
    item->always_keep = spec->always;
    while (item->n_always_keep < MAX_ALWAYS && spec->always[item->n_always_keep])
      item->n_always_keep++;
  }
  return n;
}

static const struct cairn_retention_decision *
find_decision (const struct cairn_retention_result *result,
               const struct cairn_id *id)
{
  for (size_t i = 0; i < result->n_decisions; i++)
    if (cairn_id_equal (&result->decisions[i].id, id))
      return &result->decisions[i];
  return NULL;
}

static void
join_reasons (const struct cairn_retention_decision *d, char *buf, size_t len)
{
  buf[0] = '\0';
  for (size_t i = 0; i < d->n_reasons; i++)
    snprintf (buf + strlen (buf), len - strlen (buf), "%s%s",
              i ? "; " : "", d->reasons[i]);
}

/* True if D is what SPEC wants: pruned with no reason, or kept for
 * exactly the reasons listed. */
static bool
decision_matches (const struct commit_spec *spec,
                  const struct cairn_retention_decision *d)
{
  char got[1024];

  if (d == NULL)
    return false;
  join_reasons (d, got, sizeof got);
  if (spec->want == PRUNED)
    return !d->keep && d->n_reasons == 0;
  return d->keep && strcmp (got, spec->want) == 0;
}

static void
test_case (const struct select_case *c)
{
  struct cairn_retention_policy policy;
  struct cairn_retention_item items[MAX_COMMITS];
  struct cairn_retention_result *result = NULL;
  size_t n = build_case (c, &policy, items), want_keep = 0;
  char got[1024];

  if (!ok (cairn_retention_select (&policy, items, n, &result) == 0,
           "%s: select", c->name))
    return;
  for (size_t i = 0; i < n; i++) {
    const struct commit_spec *spec = &c->commits[i];
    const struct cairn_retention_decision *d = find_decision (result, &items[i].id);

    want_keep += spec->want != PRUNED;
    if (!ok (decision_matches (spec, d), "%s: %s %s%s", c->name, spec->time,
             spec->want ? "kept: " : "pruned", spec->want ? spec->want : "")) {
      if (d)
        join_reasons (d, got, sizeof got);
      diag ("  got %s: \"%s\"", d == NULL ? "no decision"
            : d->keep ? "kept" : "pruned", d ? got : "");
    }
  }

  bool newest_first = result->n_decisions == n;
  for (size_t i = 1; i < result->n_decisions; i++)
    newest_first &= result->decisions[i - 1].time >= result->decisions[i].time;
  ok (newest_first, "%s: one decision per commit, newest first", c->name);
  is_int (result->n_keep, want_keep, "%s: n_keep", c->name);
  cairn_retention_result_free (result);
}

/* The checks above can fail: a wrong expectation is noticed. */
static void
test_mismatch_is_noticed (void)
{
  const struct select_case *c = &cases[1];      /* the hour boundary */
  struct cairn_retention_policy policy;
  struct cairn_retention_item items[MAX_COMMITS];
  struct cairn_retention_result *result = NULL;
  size_t n = build_case (c, &policy, items);

  cairn_retention_select (&policy, items, n, &result);
  const struct cairn_retention_decision *kept = find_decision (result, &items[0].id);
  const struct cairn_retention_decision *pruned = find_decision (result, &items[2].id);
  struct commit_spec wrong_reason = KEPT ("", "hourly 2026-11-21T10");
  struct commit_spec extra_reason = KEPT ("", "hourly 2026-11-21T11; last 1");
  struct commit_spec wrong_prune = PRUNE ("");
  struct commit_spec wrong_keep = KEPT ("", "hourly 2026-11-21T10");

  ok (decision_matches (&c->commits[0], kept), "the right expectation matches");
  ok (!decision_matches (&wrong_reason, kept), "a wrong reason is noticed");
  ok (!decision_matches (&extra_reason, kept), "a missing reason is noticed");
  ok (!decision_matches (&wrong_prune, kept), "a wrong prune is noticed");
  ok (!decision_matches (&wrong_keep, pruned), "a wrong keep is noticed");
  ok (!decision_matches (&c->commits[0], NULL), "a missing decision is noticed");
  cairn_retention_result_free (result);
}

static void
test_no_commits (void)
{
  struct cairn_retention_policy policy = { .keep_daily = 7 };
  struct cairn_retention_result *result = NULL;

  is_int (cairn_retention_select (&policy, NULL, 0, &result), 0,
          "a branch with no commits");
  ok (result && result->n_decisions == 0 && result->n_keep == 0,
      "gives an empty result");
  cairn_retention_result_free (result);
}

static void
test_errors (void)
{
  struct cairn_retention_policy good = { .keep_daily = 7 };
  struct cairn_retention_policy bad = { .keep_daily = -3 };
  static struct cairn_retention_result sentinel;
  struct cairn_retention_result *result = &sentinel;
  const char *null_reason[] = { NULL };
  const char *empty_reason[] = { "" };
  struct cairn_retention_item items[2] = {
    { .id = { { 1 } }, .time = 2 },
    { .id = { { 2 } }, .time = 1 },
  };

  is_int (cairn_retention_select (&bad, items, 2, &result), -EINVAL,
          "an invalid policy is refused");
  items[1].id = items[0].id;
  is_int (cairn_retention_select (&good, items, 2, &result), -EINVAL,
          "two commits with one id are refused");
  items[1].id.bytes[0] = 2;
  items[1].always_keep = null_reason;
  items[1].n_always_keep = 1;
  is_int (cairn_retention_select (&good, items, 2, &result), -EINVAL,
          "a NULL always-keep reason is refused");
  items[1].always_keep = empty_reason;
  is_int (cairn_retention_select (&good, items, 2, &result), -EINVAL,
          "an empty always-keep reason is refused");
  items[1].always_keep = NULL;
  is_int (cairn_retention_select (&good, items, 2, &result), -EINVAL,
          "a count of always-keep reasons without the array is refused");
  ok (result == &sentinel, "errors leave *result alone");
}

static void
test_reasons_are_copied (void)
{
  struct cairn_retention_policy policy = { .keep_last = 1 };
  struct cairn_retention_result *result = NULL;
  char tag[] = "tag v1";
  const char *always[] = { tag };
  struct cairn_retention_item item = { .id = { { 1 } }, .time = 0,
                                       .always_keep = always, .n_always_keep = 1 };

  cairn_retention_select (&policy, &item, 1, &result);
  memset (tag, 'X', strlen (tag));
  ok (result && result->decisions[0].n_reasons == 2, "two reasons");
  is_str (result ? result->decisions[0].reasons[1] : NULL, "tag v1",
          "the result owns a copy of the caller's reason");
  cairn_retention_result_free (result);
  cairn_retention_result_free (NULL);
  ok (true, "freeing NULL is allowed");
}

/* A long chain: every day of 2025 hourly, a classic tiered policy. */
static void
test_long_chain (void)
{
  enum { N = 365 * 24 };
  static struct cairn_retention_item items[N];
  struct cairn_retention_policy policy = { 0 };
  struct cairn_retention_result *result = NULL;
  int64_t start;

  cairn_time_parse ("2025-12-31T23:00:00Z", &start);
  for (size_t i = 0; i < N; i++) {
    items[i].id.bytes[0] = i & 0xff;
    items[i].id.bytes[1] = i >> 8;
    items[i].time = start - (int64_t) i * 3600 * INT64_C(1000000000);
  }
  cairn_retention_policy_set (&policy, "keep-hourly", "24");
  cairn_retention_policy_set (&policy, "keep-daily", "7");
  cairn_retention_policy_set (&policy, "keep-weekly", "4");
  cairn_retention_policy_set (&policy, "keep-monthly", "12");
  is_int (cairn_retention_select (&policy, items, N, &result), 0,
          "a year of hourly commits");
  /* hourly: the 24 commits of Dec 31.  daily: the 23:00 commits of Dec
   * 31..25, 6 of them new.  weekly: Wed Dec 31 (2026-W01), then the 23:00
   * commits of Sundays Dec 28, 21 and 14, 2 of them new.  monthly: Dec 31,
   * then the last commit of each month back to Jan 31, 11 new.  The oldest,
   * Jan 1 00:00, is pruned: every rule has used its counts.
   * 24 + 6 + 2 + 11 = 43. */
  is_int (result ? result->n_keep : 0, 43, "keeps 43 commits");

  /* Pruning again prunes nothing more: select from the kept commits. */
  struct cairn_retention_result *again = NULL;
  size_t n_kept = 0;
  for (size_t i = 0; result && i < result->n_decisions; i++)
    if (result->decisions[i].keep)
      items[n_kept++] = (struct cairn_retention_item) {
        .id = result->decisions[i].id, .time = result->decisions[i].time };
  is_int (cairn_retention_select (&policy, items, n_kept, &again), 0,
          "select again from the kept commits");
  is_int (again ? again->n_keep : 0, 43, "keeps all 43 of them");
  cairn_retention_result_free (again);
  cairn_retention_result_free (result);
}

int
main (void)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (cases); i++)
    test_case (&cases[i]);
  test_mismatch_is_noticed ();
  test_no_commits ();
  test_errors ();
  test_reasons_are_copied ();
  test_long_chain ();
  return done_testing ();
}
