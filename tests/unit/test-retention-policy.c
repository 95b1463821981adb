/* test-retention-policy: parsing, storing and showing retention policies.
 *
 * Options as the CLI passes them, the canonical stored text and its
 * strict parser, and the form `cairn retention show` prints.
 */
#include <config.h>

#include <errno.h>
#include <string.h>

#include "retention/retention.h"
#include "tap.h"

#define NS(seconds) ((int64_t) (seconds) * INT64_C(1000000000))
#define MINUTE 60
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static bool
policy_equal (const struct cairn_retention_policy *a,
              const struct cairn_retention_policy *b)
{
  return a->keep_last == b->keep_last && a->keep_minutely == b->keep_minutely
    && a->keep_hourly == b->keep_hourly && a->keep_daily == b->keep_daily
    && a->keep_weekly == b->keep_weekly && a->keep_monthly == b->keep_monthly
    && a->keep_yearly == b->keep_yearly && a->keep_within == b->keep_within
    && a->keep_within_unit == b->keep_within_unit;
}

/* Options that are accepted, and the field each one sets. */
static const struct {
  const char *name, *value;
  size_t offset;                /* of an int count, or -1 for keep_within */
  int64_t want;                 /* the count, or keep_within in ns */
  char want_unit;
} good_options[] = {
#define COUNT(field) offsetof (struct cairn_retention_policy, field)
#define WITHIN ((size_t) -1)
  { "keep-last", "5", COUNT (keep_last), 5, 0 },
  { "keep-minutely", "60", COUNT (keep_minutely), 60, 0 },
  { "keep-hourly", "24", COUNT (keep_hourly), 24, 0 },
  { "keep-daily", "7", COUNT (keep_daily), 7, 0 },
  { "keep-weekly", "4", COUNT (keep_weekly), 4, 0 },
  { "keep-monthly", "12", COUNT (keep_monthly), 12, 0 },
  { "keep-yearly", "unlimited", COUNT (keep_yearly), -1, 0 },
  { "keep-daily", "-1", COUNT (keep_daily), -1, 0 },
  { "keep-hourly", "0", COUNT (keep_hourly), 0, 0 },
  { "keep-hourly", "2147483647", COUNT (keep_hourly), 2147483647, 0 },
  { "keep-within", "90m", WITHIN, NS (90 * MINUTE), 'm' },
  { "keep-within", "36h", WITHIN, NS (36 * HOUR), 'h' },
  { "keep-within", "7d", WITHIN, NS (7 * DAY), 'd' },
  { "keep-within", "2w", WITHIN, NS (14 * DAY), 'w' },
  { "keep-within", "1y", WITHIN, NS (365 * DAY), 'y' },
  { "keep-within", "30s", WITHIN, NS (30), 's' },
  { "keep-within", "1d12h", WITHIN, NS (36 * HOUR), 'h' },
  { "keep-within", "6d24h", WITHIN, NS (7 * DAY), 'w' },
  { "keep-within", "0", WITHIN, 0, 0 },
};

static void
test_set_accepts (void)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (good_options); i++) {
    struct cairn_retention_policy p = { .keep_hourly = 99, .keep_within = NS (1),
                                        .keep_within_unit = 's' };
    const char *name = good_options[i].name, *value = good_options[i].value;
    int r = cairn_retention_policy_set (&p, name, value);

    is_int (r, 0, "set %s %s", name, value);
    if (good_options[i].offset == WITHIN) {
      is_int (p.keep_within, good_options[i].want, "%s %s: keep_within", name, value);
      is_int (p.keep_within_unit, good_options[i].want_unit,
              "%s %s: keep_within_unit", name, value);
    }
    else {
      int got;
      memcpy (&got, (char *) &p + good_options[i].offset, sizeof got);
      is_int (got, good_options[i].want, "%s %s: count", name, value);
    }
  }
}

/* Options that are refused, with the error. */
static const struct {
  const char *name, *value;
  int error;
} bad_options[] = {
  { "keep-hourly", "-3", -EINVAL },
  { "keep-hourly", "-2", -EINVAL },
  { "keep-hourly", "abc", -EINVAL },
  { "keep-hourly", "", -EINVAL },
  { "keep-hourly", " 5", -EINVAL },
  { "keep-hourly", "5 ", -EINVAL },
  { "keep-hourly", "+5", -EINVAL },
  { "keep-hourly", "5h", -EINVAL },
  { "keep-hourly", "Unlimited", -EINVAL },
  { "keep-hourly", "2147483648", -ERANGE },
  { "keep-last", "99999999999999999999", -ERANGE },
  { "keep-within", "5x", -EINVAL },
  { "keep-within", "7", -EINVAL },
  { "keep-within", "", -EINVAL },
  { "keep-within", "0d", -EINVAL },
  { "keep-within", "0h0m", -EINVAL },
  { "keep-within", "d", -EINVAL },
  { "keep-within", "-7d", -EINVAL },
  { "keep-within", "7d ", -EINVAL },
  { "keep-within", "1.5h", -EINVAL },
  { "keep-within", "7D", -EINVAL },
  { "keep-within", "7d3", -EINVAL },
  { "keep-within", "unlimited", -EINVAL },
  { "keep-within", "293y", -ERANGE },
  { "keep-within", "292y292y", -ERANGE },
  { "keep-within", "99999999999999999999s", -ERANGE },
  { "keep-fortnightly", "2", -ENOENT },
  { "--keep-hourly", "24", -ENOENT },
  { "keep_hourly", "24", -ENOENT },
  { "", "24", -ENOENT },
};

static void
test_set_rejects (void)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (bad_options); i++) {
    struct cairn_retention_policy p = { .keep_last = 3, .keep_hourly = 24,
                                        .keep_within = NS (DAY),
                                        .keep_within_unit = 'd' };
    const struct cairn_retention_policy before = p;
    const char *name = bad_options[i].name, *value = bad_options[i].value;

    is_int (cairn_retention_policy_set (&p, name, value), bad_options[i].error,
            "set \"%s\" \"%s\" is refused", name, value);
    ok (policy_equal (&p, &before), "set \"%s\" \"%s\" leaves the policy alone",
        name, value);
  }
}

static void
test_is_empty (void)
{
  struct cairn_retention_policy p = { 0 };

  ok (cairn_retention_policy_is_empty (&p), "the zero policy is empty");
  cairn_retention_policy_set (&p, "keep-within", "1h");
  ok (!cairn_retention_policy_is_empty (&p), "keep-within alone is not empty");
  cairn_retention_policy_set (&p, "keep-within", "0");
  ok (cairn_retention_policy_is_empty (&p), "keep-within 0 turns it off");
  cairn_retention_policy_set (&p, "keep-yearly", "unlimited");
  ok (!cairn_retention_policy_is_empty (&p), "keep-yearly unlimited is not empty");
  cairn_retention_policy_set (&p, "keep-yearly", "0");
  ok (cairn_retention_policy_is_empty (&p), "keep-yearly 0 turns it off");
}

/* Option lists and the stored text and description they must give. */
static const struct {
  const char *options[8][2];
  const char *text;
  const char *description;
} formats[] = {
  { { { NULL } },
    "cairn-retention 1\n",
    "none" },
  { { { "keep-within", "7d" }, { "keep-hourly", "24" }, { "keep-last", "5" } },
    "cairn-retention 1\nkeep-last 5\nkeep-hourly 24\nkeep-within 7d\n",
    "keep-last 5, keep-hourly 24, keep-within 7d" },
  { { { "keep-yearly", "3" }, { "keep-monthly", "12" }, { "keep-weekly", "4" },
      { "keep-daily", "7" }, { "keep-hourly", "24" }, { "keep-minutely", "60" },
      { "keep-last", "2" }, { "keep-within", "36h" } },
    "cairn-retention 1\nkeep-last 2\nkeep-minutely 60\nkeep-hourly 24\n"
    "keep-daily 7\nkeep-weekly 4\nkeep-monthly 12\nkeep-yearly 3\n"
    "keep-within 36h\n",
    "keep-last 2, keep-minutely 60, keep-hourly 24, keep-daily 7, "
    "keep-weekly 4, keep-monthly 12, keep-yearly 3, keep-within 36h" },
  { { { "keep-daily", "unlimited" }, { "keep-last", "-1" } },
    "cairn-retention 1\nkeep-last unlimited\nkeep-daily unlimited\n",
    "keep-last unlimited, keep-daily unlimited" },
  { { { "keep-hourly", "024" } },
    "cairn-retention 1\nkeep-hourly 24\n",
    "keep-hourly 24" },
  /* keep-within echoes the unit the user wrote ... */
  { { { "keep-within", "14d" } },
    "cairn-retention 1\nkeep-within 14d\n", "keep-within 14d" },
  { { { "keep-within", "2w" } },
    "cairn-retention 1\nkeep-within 2w\n", "keep-within 2w" },
  { { { "keep-within", "60m" } },
    "cairn-retention 1\nkeep-within 60m\n", "keep-within 60m" },
  { { { "keep-within", "007d" } },
    "cairn-retention 1\nkeep-within 7d\n", "keep-within 7d" },
  /* ... and a compound one in the largest unit that divides it. */
  { { { "keep-within", "1d12h" } },
    "cairn-retention 1\nkeep-within 36h\n", "keep-within 36h" },
  { { { "keep-within", "1h30m" } },
    "cairn-retention 1\nkeep-within 90m\n", "keep-within 90m" },
  { { { "keep-within", "6d24h" } },
    "cairn-retention 1\nkeep-within 1w\n", "keep-within 1w" },
  { { { "keep-within", "1m30s" } },
    "cairn-retention 1\nkeep-within 90s\n", "keep-within 90s" },
};

static void
test_formats (void)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (formats); i++) {
    struct cairn_retention_policy p = { 0 }, back = { .keep_daily = 1 };
    char text[CAIRN_RETENTION_TEXT_MAX], again[CAIRN_RETENTION_TEXT_MAX];
    char description[CAIRN_RETENTION_TEXT_MAX];
    int r = 0;

    for (size_t j = 0; j < 8 && formats[i].options[j][0]; j++)
      r |= cairn_retention_policy_set (&p, formats[i].options[j][0],
                                       formats[i].options[j][1]);
    is_int (r, 0, "format %zu: the options are accepted", i);
    is_int (cairn_retention_policy_to_text (&p, text, sizeof text), 0,
            "format %zu: to_text", i);
    is_str (text, formats[i].text, "format %zu: stored text", i);
    is_int (cairn_retention_policy_describe (&p, description, sizeof description),
            0, "format %zu: describe", i);
    is_str (description, formats[i].description, "format %zu: description", i);

    is_int (cairn_retention_policy_from_text (text, strlen (text), &back), 0,
            "format %zu: the stored text parses", i);
    ok (policy_equal (&back, &p), "format %zu: and gives the same policy", i);
    cairn_retention_policy_to_text (&back, again, sizeof again);
    is_str (again, text, "format %zu: which stores the same bytes", i);
  }
}

static void
test_hand_built_policies (void)
{
  struct cairn_retention_policy p = { .keep_within = NS (DAY) };
  char text[CAIRN_RETENTION_TEXT_MAX];

  cairn_retention_policy_to_text (&p, text, sizeof text);
  is_str (text, "cairn-retention 1\nkeep-within 1d\n",
          "no unit: the largest one that divides");
  p.keep_within = NS (HOUR);
  p.keep_within_unit = 'd';
  cairn_retention_policy_to_text (&p, text, sizeof text);
  is_str (text, "cairn-retention 1\nkeep-within 1h\n",
          "a unit that does not divide is not used");

  static const struct cairn_retention_policy invalid[] = {
    { .keep_hourly = -3 },
    { .keep_last = -2 },
    { .keep_within = -NS (DAY) },
    { .keep_within = NS (DAY) + 1 },
    { .keep_within = NS (DAY), .keep_within_unit = 'x' },
  };
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (invalid); i++) {
    is_int (cairn_retention_policy_validate (&invalid[i]), -EINVAL,
            "invalid policy %zu fails validate", i);
    is_int (cairn_retention_policy_to_text (&invalid[i], text, sizeof text),
            -EINVAL, "invalid policy %zu is not stored", i);
    is_int (cairn_retention_policy_describe (&invalid[i], text, sizeof text),
            -EINVAL, "invalid policy %zu is not described", i);
  }
  struct cairn_retention_policy valid = { .keep_last = -1, .keep_within = NS (1) };
  is_int (cairn_retention_policy_validate (&valid), 0, "unlimited and 1s are valid");
}

static void
test_buffer_sizes (void)
{
  struct cairn_retention_policy p = { 0 };
  const char *want = "cairn-retention 1\nkeep-hourly 24\n";
  char buf[CAIRN_RETENTION_TEXT_MAX];

  cairn_retention_policy_set (&p, "keep-hourly", "24");
  is_int (cairn_retention_policy_to_text (&p, buf, strlen (want) + 1), 0,
          "to_text fits a buffer of exactly its size");
  is_str (buf, want, "and writes it whole");
  is_int (cairn_retention_policy_to_text (&p, buf, strlen (want)), -ENOBUFS,
          "to_text refuses a buffer one byte short");
  is_int (cairn_retention_policy_to_text (&p, buf, 0), -ENOBUFS,
          "to_text refuses an empty buffer");
  is_int (cairn_retention_policy_describe (&p, buf, strlen ("keep-hourly 24")),
          -ENOBUFS, "describe refuses a buffer one byte short");
  p.keep_hourly = 0;
  is_int (cairn_retention_policy_describe (&p, buf, 4), -ENOBUFS,
          "describe of the empty policy needs room for \"none\"");
  is_int (cairn_retention_policy_describe (&p, buf, 5), 0, "and fits in 5 bytes");

  /* The longest policy there is still fits the advertised size. */
  struct cairn_retention_policy longest = {
    INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX, INT32_MAX,
    INT64_MAX / INT64_C(1000000000) * INT64_C(1000000000), 's'
  };
  is_int (cairn_retention_policy_to_text (&longest, buf, sizeof buf), 0,
          "the longest policy fits CAIRN_RETENTION_TEXT_MAX");
  is_int (cairn_retention_policy_describe (&longest, buf, sizeof buf), 0,
          "and so does its description");
}

/* A literal with NULs inside: its length is not strlen's. */
#define WITH_NUL(literal) literal, sizeof (literal) - 1

/* Stored texts that must be refused. */
static const struct {
  const char *why;
  const char *text;
  size_t len;                   /* 0: strlen (text) */
  int error;
} bad_texts[] = {
  { "nothing", "", 0, -EINVAL },
  { "no version line", "keep-hourly 24\n", 0, -EINVAL },
  { "version line without newline", "cairn-retention 1", 0, -EINVAL },
  { "version with a leading zero", "cairn-retention 01\n", 0, -EINVAL },
  { "version not a number", "cairn-retention one\n", 0, -EINVAL },
  { "version 0", "cairn-retention 0\n", 0, -EINVAL },
  { "other magic", "cairn-retain 1\nkeep-hourly 24\n", 0, -EINVAL },
  { "a newer version", "cairn-retention 2\nkeep-hourly 24\n", 0, -ENOTSUP },
  { "no final newline", "cairn-retention 1\nkeep-hourly 24", 0, -EINVAL },
  { "CRLF", "cairn-retention 1\nkeep-hourly 24\r\n", 0, -EINVAL },
  { "two spaces", "cairn-retention 1\nkeep-hourly  24\n", 0, -EINVAL },
  { "leading space", "cairn-retention 1\n keep-hourly 24\n", 0, -EINVAL },
  { "trailing space", "cairn-retention 1\nkeep-hourly 24 \n", 0, -EINVAL },
  { "tab", "cairn-retention 1\nkeep-hourly\t24\n", 0, -EINVAL },
  { "no value", "cairn-retention 1\nkeep-hourly\n", 0, -EINVAL },
  { "empty line", "cairn-retention 1\n\n", 0, -EINVAL },
  { "leading zero", "cairn-retention 1\nkeep-hourly 024\n", 0, -EINVAL },
  { "zero count", "cairn-retention 1\nkeep-hourly 0\n", 0, -EINVAL },
  { "-1 for unlimited", "cairn-retention 1\nkeep-hourly -1\n", 0, -EINVAL },
  { "negative count", "cairn-retention 1\nkeep-hourly -3\n", 0, -EINVAL },
  { "not a number", "cairn-retention 1\nkeep-hourly abc\n", 0, -EINVAL },
  { "too large", "cairn-retention 1\nkeep-hourly 2147483648\n", 0, -EINVAL },
  { "unknown rule", "cairn-retention 1\nkeep-fortnightly 2\n", 0, -EINVAL },
  { "repeated rule", "cairn-retention 1\nkeep-hourly 24\nkeep-hourly 24\n", 0,
    -EINVAL },
  { "wrong order", "cairn-retention 1\nkeep-hourly 24\nkeep-last 5\n", 0,
    -EINVAL },
  { "compound duration", "cairn-retention 1\nkeep-within 1d12h\n", 0, -EINVAL },
  { "bad unit", "cairn-retention 1\nkeep-within 5x\n", 0, -EINVAL },
  { "bare number", "cairn-retention 1\nkeep-within 7\n", 0, -EINVAL },
  { "within 0", "cairn-retention 1\nkeep-within 0\n", 0, -EINVAL },
  { "version twice", "cairn-retention 1\ncairn-retention 1\n", 0, -EINVAL },
  { "a NUL inside", WITH_NUL ("cairn-retention 1\nkeep-hourly 24\n\0"), -EINVAL },
  { "a NUL in a line", WITH_NUL ("cairn-retention 1\nkeep-hourly 2\0004\n"),
    -EINVAL },
  { "uppercase", "cairn-retention 1\nKEEP-HOURLY 24\n", 0, -EINVAL },
  { "long line", "cairn-retention 1\nkeep-hourly "
    "00000000000000000000000000000000000000000000000000000000000000024\n", 0,
    -EINVAL },
};

static void
test_from_text_rejects (void)
{
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (bad_texts); i++) {
    struct cairn_retention_policy p = { .keep_weekly = 4 };
    size_t len = bad_texts[i].len ? bad_texts[i].len : strlen (bad_texts[i].text);

    is_int (cairn_retention_policy_from_text (bad_texts[i].text, len, &p),
            bad_texts[i].error, "stored text refused: %s", bad_texts[i].why);
    ok (p.keep_weekly == 4 && p.keep_hourly == 0 && p.keep_last == 0,
        "and the policy is unchanged: %s", bad_texts[i].why);
  }
}

static void
test_from_text_is_length_bounded (void)
{
  /* An LMDB value is not NUL-terminated: whatever follows is not read. */
  const char value[] = "cairn-retention 1\nkeep-daily 7\nGARBAGE";
  struct cairn_retention_policy p = { 0 };

  is_int (cairn_retention_policy_from_text (value, strlen (value) - 7, &p), 0,
          "from_text reads LEN bytes only");
  is_int (p.keep_daily, 7, "and parses them");
  is_int (cairn_retention_policy_from_text (value, strlen (value) - 8, &p),
          -EINVAL, "one byte less loses the final newline");
}

int
main (void)
{
  test_set_accepts ();
  test_set_rejects ();
  test_is_empty ();
  test_formats ();
  test_hand_built_policies ();
  test_buffer_sizes ();
  test_from_text_rejects ();
  test_from_text_is_length_bounded ();
  return done_testing ();
}
