/* retention.c: retention policies and the selection of commits to keep.
 *
 * Design notes.
 *
 * Selection is restic's `forget` algorithm (internal/restic/
 * snapshot_policy.go, ApplyPolicy), run on the first-parent chain of one
 * branch.  Commits are sorted newest first.  Each count rule is a bucket
 * holding the period of the last commit it kept and how many commits it
 * may still keep; walking the commits, a rule keeps a commit whose period
 * differs from that last one, and, if it still has counts left, the oldest
 * commit as well (restic 0.16; the reason then says "oldest", as restic's
 * does since its pull request #5039).  keep-last is the same bucket with
 * every commit in a period of its own.  Because the walk only ever sees
 * periods that have a commit, empty periods cost nothing and a rule
 * reaches as far back as it needs to keep N commits.  Periods are compared
 * by the names reasons show ("2026-W47"): two times share a period exactly
 * when their names are equal.
 *
 * Where cairn differs from restic, deliberately:
 *  - keep-minutely exists (borg has it): commits here can be minutes apart;
 *  - durations are exact: "m" is a minute (a month in restic), "y" is 365
 *    days, "w" 7 days; restic adds calendar years, months and days;
 *  - keep-within measures from the newest commit even if its time lies in
 *    the future; restic skips snapshots newer than the clock.  This module
 *    reads no clock, so that selection is a pure function of its input;
 *  - restic's --keep-tag is the caller's always-keep reasons, which name
 *    anything that pins a commit (tags, branch bases, live VMs);
 *  - the --keep-within-<period> rules are not implemented.
 *
 * Memory: a result owns every byte it points to (decisions, reason arrays,
 * reason strings, including copies of the caller's always-keep strings),
 * so the caller may free its input as soon as a call returns, and frees
 * the result with cairn_retention_result_free() alone.  A result under
 * construction is always consistent (n_reasons counts only the strings
 * already stored), so every error path frees it with that same function.
 *
 * Cost: O(n log n) time for n commits, and O(n) small allocations.
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "retention/retention.h"

#define NS_PER_SECOND INT64_C(1000000000)

/* The count rules, in the order of the stored form and of reasons. */
static const struct count_rule {
  const char *option;           /* the option and stored line name */
  const char *reason;           /* the reason's first word */
  const char *period;           /* strftime format naming a commit's period;
                                 * NULL: every commit is a period of its own */
  size_t offset;                /* of the count in the policy */
} count_rules[] = {
  { "keep-last", "last", NULL,
    offsetof (struct cairn_retention_policy, keep_last) },
  { "keep-minutely", "minutely", "%Y-%m-%dT%H:%M",
    offsetof (struct cairn_retention_policy, keep_minutely) },
  { "keep-hourly", "hourly", "%Y-%m-%dT%H",
    offsetof (struct cairn_retention_policy, keep_hourly) },
  { "keep-daily", "daily", "%Y-%m-%d",
    offsetof (struct cairn_retention_policy, keep_daily) },
  { "keep-weekly", "weekly", "%G-W%V",
    offsetof (struct cairn_retention_policy, keep_weekly) },
  { "keep-monthly", "monthly", "%Y-%m",
    offsetof (struct cairn_retention_policy, keep_monthly) },
  { "keep-yearly", "yearly", "%Y",
    offsetof (struct cairn_retention_policy, keep_yearly) },
};
#define N_COUNT_RULES CAIRN_ARRAY_SIZE (count_rules)

#define WITHIN_OPTION "keep-within"

/* Duration units, largest first: the formatter picks the first that
 * divides a duration exactly. */
static const struct duration_unit {
  char name;
  int64_t seconds;
} duration_units[] = {
  { 'y', 365 * 86400 },
  { 'w', 7 * 86400 },
  { 'd', 86400 },
  { 'h', 3600 },
  { 'm', 60 },
  { 's', 1 },
};

/* Large enough for a period name, a rank or a formatted value. */
#define KEY_SIZE 32

static int
count_get (const struct cairn_retention_policy *policy,
           const struct count_rule *rule)
{
  int count;

  memcpy (&count, (const char *) policy + rule->offset, sizeof count);
  return count;
}

static void
count_put (struct cairn_retention_policy *policy,
           const struct count_rule *rule, int count)
{
  memcpy ((char *) policy + rule->offset, &count, sizeof count);
}

static const struct duration_unit *
duration_unit_find (char name)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (duration_units); i++)
    if (duration_units[i].name == name)
      return &duration_units[i];
  return NULL;
}

/* Parses a count: digits, or "unlimited" / "-1". */
static int
parse_count (const char *s, int *count)
{
  int v = 0;

  if (strcmp (s, "unlimited") == 0 || strcmp (s, "-1") == 0) {
    *count = CAIRN_RETENTION_UNLIMITED;
    return 0;
  }
  if (*s == '\0' || strspn (s, "0123456789") != strlen (s))
    return -EINVAL;
  for (; *s; s++) {
    int digit = *s - '0';
    if (v > (INT_MAX - digit) / 10)
      return -ERANGE;
    v = v * 10 + digit;
  }
  *count = v;
  return 0;
}

/* The largest unit that divides a whole number of seconds NS exactly. */
static const struct duration_unit *
duration_unit_largest (int64_t ns)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (duration_units) - 1; i++)
    if (ns % (duration_units[i].seconds * NS_PER_SECOND) == 0)
      return &duration_units[i];
  return &duration_units[CAIRN_ARRAY_SIZE (duration_units) - 1];
}

/* Parses a positive duration, one or more terms of digits and a unit
 * ("90m", "1d12h").  *UNIT is the unit of a single term as written, or
 * for several terms the largest unit that divides their sum.
 * store/util.c's cairn_parse_duration() is not used: it takes a bare
 * number as seconds, which a retention window must not guess, and it does
 * not report the unit written. */
static int
parse_duration (const char *s, int64_t *ns, char *unit)
{
  int64_t total = 0;
  unsigned terms = 0;
  char written = 0;

  if (*s == '\0')
    return -EINVAL;
  while (*s) {
    const char *digits_end = s + strspn (s, "0123456789");
    const struct duration_unit *u;
    int64_t v = 0;

    if (digits_end == s || (u = duration_unit_find (*digits_end)) == NULL)
      return -EINVAL;
    for (; s < digits_end; s++) {
      int digit = *s - '0';
      if (v > (INT64_MAX - digit) / 10)
        return -ERANGE;
      v = v * 10 + digit;
    }
    int64_t unit_ns = u->seconds * NS_PER_SECOND;
    if (v > (INT64_MAX - total) / unit_ns)
      return -ERANGE;
    total += v * unit_ns;
    written = u->name;
    terms++;
    s++;                        /* the unit */
  }
  if (total == 0)
    return -EINVAL;
  *ns = total;
  *unit = terms == 1 ? written : duration_unit_largest (total)->name;
  return 0;
}

/* Formats a valid duration in one term: in UNIT if it divides NS exactly,
 * else in the largest unit that does. */
static void
format_duration (int64_t ns, char unit, char buf[KEY_SIZE])
{
  const struct duration_unit *u = unit ? duration_unit_find (unit) : NULL;

  if (u == NULL || ns % (u->seconds * NS_PER_SECOND) != 0)
    u = duration_unit_largest (ns);
  snprintf (buf, KEY_SIZE, "%" PRId64 "%c",
            ns / (u->seconds * NS_PER_SECOND), u->name);
}

static void
format_count (int count, char buf[KEY_SIZE])
{
  if (count == CAIRN_RETENTION_UNLIMITED)
    snprintf (buf, KEY_SIZE, "unlimited");
  else
    snprintf (buf, KEY_SIZE, "%d", count);
}

int
cairn_retention_policy_set (struct cairn_retention_policy *policy,
                            const char *name, const char *value)
{
  int r;

  if (strcmp (name, WITHIN_OPTION) == 0) {
    int64_t ns = 0;
    char unit = 0;

    if (strcmp (value, "0") != 0 && (r = parse_duration (value, &ns, &unit)) < 0)
      return r;
    policy->keep_within = ns;
    policy->keep_within_unit = unit;
    return 0;
  }
  for (size_t i = 0; i < N_COUNT_RULES; i++) {
    int count;

    if (strcmp (name, count_rules[i].option) != 0)
      continue;
    if ((r = parse_count (value, &count)) < 0)
      return r;
    count_put (policy, &count_rules[i], count);
    return 0;
  }
  return -ENOENT;
}

bool
cairn_retention_policy_is_empty (const struct cairn_retention_policy *policy)
{
  for (size_t i = 0; i < N_COUNT_RULES; i++)
    if (count_get (policy, &count_rules[i]) != 0)
      return false;
  return policy->keep_within == 0;
}

int
cairn_retention_policy_validate (const struct cairn_retention_policy *policy)
{
  for (size_t i = 0; i < N_COUNT_RULES; i++)
    if (count_get (policy, &count_rules[i]) < CAIRN_RETENTION_UNLIMITED)
      return -EINVAL;
  if (policy->keep_within < 0 || policy->keep_within % NS_PER_SECOND != 0)
    return -EINVAL;
  if (policy->keep_within_unit != 0
      && duration_unit_find (policy->keep_within_unit) == NULL)
    return -EINVAL;
  return 0;
}

/* A bounded string builder: appends until BUF is full, then remembers
 * that it overflowed. */
struct text {
  char *buf;
  size_t len;
  size_t used;
  bool overflow;
};

static void
text_append (struct text *t, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (t->overflow)
    return;
  va_start (ap, fmt);
  n = vsnprintf (t->buf + t->used, t->len - t->used, fmt, ap);
  va_end (ap);
  if (n < 0 || (size_t) n >= t->len - t->used)
    t->overflow = true;
  else
    t->used += n;
}

/* Writes "keep-NAME VALUE" for each rule that is on, in stored order,
 * each preceded by SEPARATOR but the first and followed by TERMINATOR. */
static int
format_rules (const struct cairn_retention_policy *policy,
              const char *header, const char *separator,
              const char *terminator, char *buf, size_t len)
{
  struct text t = { buf, len, 0, len == 0 };
  char value[KEY_SIZE];
  const char *sep = "";

  if (cairn_retention_policy_validate (policy) < 0)
    return -EINVAL;
  text_append (&t, "%s", header);
  for (size_t i = 0; i < N_COUNT_RULES; i++) {
    int count = count_get (policy, &count_rules[i]);
    if (count == 0)
      continue;
    format_count (count, value);
    text_append (&t, "%s%s %s%s", sep, count_rules[i].option, value,
                 terminator);
    sep = separator;
  }
  if (policy->keep_within != 0) {
    format_duration (policy->keep_within, policy->keep_within_unit, value);
    text_append (&t, "%s%s %s%s", sep, WITHIN_OPTION, value, terminator);
  }
  return t.overflow ? -ENOBUFS : 0;
}

/* The stored form: the format table is at cairn_retention_policy_to_text()
 * in retention.h. */
#define TEXT_MAGIC "cairn-retention "
#define TEXT_VERSION 1

int
cairn_retention_policy_to_text (const struct cairn_retention_policy *policy,
                                char *buf, size_t len)
{
  char header[KEY_SIZE];

  snprintf (header, sizeof header, "%s%d\n", TEXT_MAGIC, TEXT_VERSION);
  return format_rules (policy, header, "", "\n", buf, len);
}

int
cairn_retention_policy_describe (const struct cairn_retention_policy *policy,
                                 char *buf, size_t len)
{
  if (cairn_retention_policy_validate (policy) == 0
      && cairn_retention_policy_is_empty (policy)) {
    if (len < sizeof "none")
      return -ENOBUFS;
    memcpy (buf, "none", sizeof "none");
    return 0;
  }
  return format_rules (policy, "", ", ", "", buf, len);
}

/* Checks the version line at the start of TEXT and returns its length. */
static int
parse_text_header (const char *text, size_t len, size_t *header_len)
{
  size_t magic_len = strlen (TEXT_MAGIC);
  const char *newline = memchr (text, '\n', len);
  char version[KEY_SIZE];
  int v;

  if (newline == NULL || len < magic_len
      || memcmp (text, TEXT_MAGIC, magic_len) != 0)
    return -EINVAL;
  size_t version_len = newline - (text + magic_len);
  if (version_len == 0 || version_len >= sizeof version)
    return -EINVAL;
  memcpy (version, text + magic_len, version_len);
  version[version_len] = '\0';
  if (version[0] == '0' || parse_count (version, &v) < 0 || v <= 0)
    return -EINVAL;
  if (v != TEXT_VERSION)
    return -ENOTSUP;
  *header_len = newline + 1 - text;
  return 0;
}

int
cairn_retention_policy_from_text (const char *text, size_t len,
                                  struct cairn_retention_policy *policy)
{
  struct cairn_retention_policy parsed = { 0 };
  char canonical[CAIRN_RETENTION_TEXT_MAX];
  size_t pos;
  int r;

  if (len == 0 || memchr (text, '\0', len) != NULL)
    return -EINVAL;
  if ((r = parse_text_header (text, len, &pos)) < 0)
    return r;
  while (pos < len) {
    const char *line = text + pos;
    const char *newline = memchr (line, '\n', len - pos);
    char copy[KEY_SIZE * 2];

    if (newline == NULL || (size_t) (newline - line) >= sizeof copy)
      return -EINVAL;
    memcpy (copy, line, newline - line);
    copy[newline - line] = '\0';
    char *space = strchr (copy, ' ');
    if (space == NULL)
      return -EINVAL;
    *space = '\0';
    if (cairn_retention_policy_set (&parsed, copy, space + 1) < 0)
      return -EINVAL;
    pos = newline + 1 - text;
  }

  /* Whatever the lenient line parser let through (order, repeats, zeros,
   * leading zeros, compound durations) shows up as a difference from the
   * canonical form of what it parsed. */
  if (cairn_retention_policy_to_text (&parsed, canonical, sizeof canonical) < 0
      || strlen (canonical) != len || memcmp (canonical, text, len) != 0)
    return -EINVAL;
  *policy = parsed;
  return 0;
}

void
cairn_retention_result_free (struct cairn_retention_result *result)
{
  if (result == NULL)
    return;
  for (size_t i = 0; i < result->n_decisions; i++) {
    struct cairn_retention_decision *d = &result->decisions[i];
    for (size_t j = 0; j < d->n_reasons; j++)
      free (d->reasons[j]);
    free (d->reasons);
  }
  free (result->decisions);
  free (result);
}

/* A result with N decisions, all zero. */
static struct cairn_retention_result *
result_new (size_t n)
{
  struct cairn_retention_result *result = calloc (1, sizeof *result);

  if (result == NULL)
    return NULL;
  result->decisions = calloc (n ? n : 1, sizeof *result->decisions);
  if (result->decisions == NULL) {
    free (result);
    return NULL;
  }
  result->n_decisions = n;
  return result;
}

/* Appends a formatted reason to D, whose reasons array has room for it. */
static int
decision_add_reason (struct cairn_retention_decision *d, const char *fmt, ...)
{
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  if (n < 0)
    return -EINVAL;
  char *reason = malloc ((size_t) n + 1);
  if (reason == NULL)
    return -ENOMEM;
  va_start (ap, fmt);
  vsnprintf (reason, (size_t) n + 1, fmt, ap);
  va_end (ap);
  d->reasons[d->n_reasons++] = reason;
  return 0;
}

static int
check_items (const struct cairn_retention_item *items, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (items[i].n_always_keep > 0 && items[i].always_keep == NULL)
      return -EINVAL;
    for (size_t j = 0; j < items[i].n_always_keep; j++)
      if (items[i].always_keep[j] == NULL || items[i].always_keep[j][0] == '\0')
        return -EINVAL;
  }
  return 0;
}

static int
compare_id_pointers (const void *a, const void *b)
{
  const struct cairn_id *const *x = a, *const *y = b;

  return memcmp ((*x)->bytes, (*y)->bytes, CAIRN_ID_SIZE);
}

/* -EINVAL if two items share an id. */
static int
check_unique_ids (const struct cairn_retention_item *items, size_t n)
{
  const struct cairn_id **ids;
  int r = 0;

  if (n < 2)
    return 0;
  ids = malloc (n * sizeof *ids);
  if (ids == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    ids[i] = &items[i].id;
  qsort (ids, n, sizeof *ids, compare_id_pointers);
  for (size_t i = 1; i < n && r == 0; i++)
    if (cairn_id_equal (ids[i - 1], ids[i]))
      r = -EINVAL;
  free (ids);
  return r;
}

struct ranked {
  int64_t time;
  size_t index;                 /* in the caller's items: breaks ties */
};

static int
compare_newest_first (const void *a, const void *b)
{
  const struct ranked *x = a, *y = b;

  if (x->time != y->time)
    return x->time > y->time ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

/* Fills ORDER with the indexes of ITEMS, newest first, stable on ties. */
static int
sort_newest_first (const struct cairn_retention_item *items, size_t n,
                   size_t **order)
{
  struct ranked *ranked = malloc ((n ? n : 1) * sizeof *ranked);
  size_t *out = malloc ((n ? n : 1) * sizeof *out);

  if (ranked == NULL || out == NULL) {
    free (ranked);
    free (out);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    ranked[i] = (struct ranked) { items[i].time, i };
  qsort (ranked, n, sizeof *ranked, compare_newest_first);
  for (size_t i = 0; i < n; i++)
    out[i] = ranked[i].index;
  free (ranked);
  *order = out;
  return 0;
}

/* The UTC calendar fields of a time in ns, rounding down to the second. */
static void
utc_calendar (int64_t ns, struct tm *tm)
{
  int64_t seconds = ns / NS_PER_SECOND;

  if (ns % NS_PER_SECOND < 0)
    seconds--;
  time_t t = (time_t) seconds;
  gmtime_r (&t, tm);
}

/* A count rule's state during the walk, as restic's buckets. */
struct bucket {
  int left;                     /* commits it may still keep; -1: no limit */
  bool started;                 /* has kept a commit: LAST is valid */
  char last[KEY_SIZE];          /* period of the last commit it kept */
};

/* Applies the count rules to the commit of rank RANK (0 = newest) of N. */
static int
apply_count_rules (struct bucket buckets[N_COUNT_RULES], size_t rank, size_t n,
                   struct cairn_retention_decision *d)
{
  struct tm tm;
  int r;

  utc_calendar (d->time, &tm);
  for (size_t i = 0; i < N_COUNT_RULES; i++) {
    const struct count_rule *rule = &count_rules[i];
    struct bucket *b = &buckets[i];
    char period[KEY_SIZE];

    if (b->left == 0)
      continue;
    if (rule->period)
      strftime (period, sizeof period, rule->period, &tm);
    else
      snprintf (period, sizeof period, "%zu", rank + 1);
    bool new_period = !b->started || strcmp (period, b->last) != 0;
    bool oldest = rank == n - 1;
    if (!new_period && !oldest)
      continue;
    r = decision_add_reason (d, "%s%s %s", new_period ? "" : "oldest ",
                             rule->reason, period);
    if (r < 0)
      return r;
    memcpy (b->last, period, sizeof period);
    b->started = true;
    if (b->left > 0)
      b->left--;
  }
  return 0;
}

/* Fills RESULT, whose decisions hold ids and times newest first. */
static int
apply_policy (const struct cairn_retention_policy *policy,
              const struct cairn_retention_item *items, const size_t *order,
              struct cairn_retention_result *result)
{
  size_t n = result->n_decisions;
  struct bucket buckets[N_COUNT_RULES];
  bool empty = cairn_retention_policy_is_empty (policy);
  int64_t cutoff = 0;
  bool all_within = false;
  char within[KEY_SIZE];
  int r;

  for (size_t i = 0; i < N_COUNT_RULES; i++)
    buckets[i] = (struct bucket) { .left = count_get (policy, &count_rules[i]) };
  /* Younger than the window means strictly after newest - D, as restic.
   * A window reaching back past the oldest representable time covers
   * every commit. */
  if (policy->keep_within != 0 && n > 0) {
    format_duration (policy->keep_within, policy->keep_within_unit, within);
    all_within = __builtin_sub_overflow (result->decisions[0].time,
                                         policy->keep_within, &cutoff);
  }

  for (size_t rank = 0; rank < n; rank++) {
    struct cairn_retention_decision *d = &result->decisions[rank];
    const struct cairn_retention_item *item = &items[order[rank]];

    if (empty && (r = decision_add_reason (d, "empty policy")) < 0)
      return r;
    if ((r = apply_count_rules (buckets, rank, n, d)) < 0)
      return r;
    if (policy->keep_within != 0 && (all_within || d->time > cutoff)
        && (r = decision_add_reason (d, "within %s", within)) < 0)
      return r;
    for (size_t j = 0; j < item->n_always_keep; j++)
      if ((r = decision_add_reason (d, "%s", item->always_keep[j])) < 0)
        return r;
    d->keep = d->n_reasons > 0;
  }
  return 0;
}

int
cairn_retention_select (const struct cairn_retention_policy *policy,
                        const struct cairn_retention_item *items, size_t n,
                        struct cairn_retention_result **result)
{
  struct cairn_retention_result *res;
  size_t *order;
  int r;

  if (cairn_retention_policy_validate (policy) < 0 || check_items (items, n) < 0)
    return -EINVAL;
  if ((r = check_unique_ids (items, n)) < 0)
    return r;
  if ((r = sort_newest_first (items, n, &order)) < 0)
    return r;
  res = result_new (n);
  if (res == NULL) {
    free (order);
    return -ENOMEM;
  }

  /* Room for every reason a commit can get: one per count rule, within,
   * "empty policy" and its always-keep strings. */
  for (size_t rank = 0; rank < n; rank++) {
    const struct cairn_retention_item *item = &items[order[rank]];
    struct cairn_retention_decision *d = &res->decisions[rank];

    d->id = item->id;
    d->time = item->time;
    d->reasons = calloc (N_COUNT_RULES + 2 + item->n_always_keep,
                         sizeof *d->reasons);
    if (d->reasons == NULL) {
      r = -ENOMEM;
      goto free_result;
    }
  }
  if ((r = apply_policy (policy, items, order, res)) < 0)
    goto free_result;

  for (size_t rank = 0; rank < n; rank++)
    res->n_keep += res->decisions[rank].keep;
  free (order);
  *result = res;
  return 0;

 free_result:
  cairn_retention_result_free (res);
  free (order);
  return r;
}

/* One branch's decision on a commit, during a union. */
struct vote {
  const struct cairn_retention_decision *decision;
  const char *branch;
  size_t seq;                   /* order of appearance across the inputs */
};

static int
compare_votes_by_id (const void *a, const void *b)
{
  const struct vote *x = a, *y = b;
  int c = memcmp (x->decision->id.bytes, y->decision->id.bytes, CAIRN_ID_SIZE);

  if (c != 0)
    return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A merged decision and where its commit first appeared. */
struct merged {
  struct cairn_retention_decision decision;
  size_t first_seq;
};

static int
compare_merged_newest_first (const void *a, const void *b)
{
  const struct merged *x = a, *y = b;

  if (x->decision.time != y->decision.time)
    return x->decision.time > y->decision.time ? -1 : 1;
  return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* Merges the COUNT votes on one commit into M. */
static int
merge_votes (const struct vote *votes, size_t count, struct merged *m)
{
  struct cairn_retention_decision *d = &m->decision;
  size_t n_reasons = 0;
  int r;

  d->id = votes[0].decision->id;
  d->time = votes[0].decision->time;
  m->first_seq = votes[0].seq;
  for (size_t i = 0; i < count; i++) {
    if (votes[i].decision->time != d->time)
      return -EINVAL;
    n_reasons += votes[i].decision->n_reasons;
  }
  d->reasons = calloc (n_reasons ? n_reasons : 1, sizeof *d->reasons);
  if (d->reasons == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < count; i++) {
    const struct cairn_retention_decision *v = votes[i].decision;
    const char *branch = votes[i].branch;
    for (size_t j = 0; j < v->n_reasons; j++) {
      r = decision_add_reason (d, "%s%s%s", branch ? branch : "",
                               branch ? ": " : "", v->reasons[j]);
      if (r < 0)
        return r;
    }
    d->keep |= v->keep;
  }
  return 0;
}

/* Sorts VOTES by commit and merges each commit's run into MERGED. */
static int
merge_all (struct vote *votes, size_t n_votes, struct merged *merged,
           size_t *n_merged)
{
  int r;

  qsort (votes, n_votes, sizeof *votes, compare_votes_by_id);
  *n_merged = 0;
  for (size_t start = 0, end; start < n_votes; start = end) {
    for (end = start + 1; end < n_votes; end++)
      if (!cairn_id_equal (&votes[start].decision->id, &votes[end].decision->id))
        break;
    /* Count it first: a half-merged decision must be freed too. */
    r = merge_votes (&votes[start], end - start, &merged[(*n_merged)++]);
    if (r < 0)
      return r;
  }
  return 0;
}

int
cairn_retention_union (const struct cairn_retention_result *const *results,
                       const char *const *branches, size_t n,
                       struct cairn_retention_result **union_result)
{
  struct cairn_retention_result *res = NULL;
  struct vote *votes;
  struct merged *merged;
  size_t n_votes = 0, n_merged = 0, seq = 0;
  int r;

  for (size_t i = 0; i < n; i++)
    n_votes += results[i]->n_decisions;
  votes = malloc ((n_votes ? n_votes : 1) * sizeof *votes);
  merged = calloc (n_votes ? n_votes : 1, sizeof *merged);
  if (votes == NULL || merged == NULL) {
    r = -ENOMEM;
    goto free_merged;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < results[i]->n_decisions; j++, seq++)
      votes[seq] = (struct vote) { &results[i]->decisions[j],
                                   branches ? branches[i] : NULL, seq };

  if ((r = merge_all (votes, n_votes, merged, &n_merged)) < 0)
    goto free_merged;
  qsort (merged, n_merged, sizeof *merged, compare_merged_newest_first);
  res = result_new (n_merged);
  if (res == NULL) {
    r = -ENOMEM;
    goto free_merged;
  }
  for (size_t i = 0; i < n_merged; i++) {
    res->decisions[i] = merged[i].decision;
    res->n_keep += merged[i].decision.keep;
  }
  free (merged);
  free (votes);
  *union_result = res;
  return 0;

 free_merged:
  for (size_t i = 0; merged && i < n_merged; i++) {
    for (size_t j = 0; j < merged[i].decision.n_reasons; j++)
      free (merged[i].decision.reasons[j]);
    free (merged[i].decision.reasons);
  }
  free (merged);
  free (votes);
  return r;
}
