/* tap.h: a small Test Anything Protocol emitter for cairn's C unit tests.
 *
 * Each test program prints "1..N" (or calls done_testing() at the end),
 * one "ok N - name" / "not ok N - name" per check, and exits non-zero if
 * any check failed, so automake's tap-driver.sh and a person running the
 * program by hand both see the result.  Diagnostics go to stdout as "# ..."
 * lines, which the driver shows in the log.
 */
#ifndef CAIRN_TAP_H
#define CAIRN_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <time.h>

static int tap_count;
static int tap_failed;

static inline void
plan (int n)
{
  printf ("1..%d\n", n);
  fflush (stdout);
}

static inline void
skip_all (const char *why)
{
  printf ("1..0 # SKIP %s\n", why);
  exit (0);
}

/* The next N tests cannot run here, for WHY (TAP's "# SKIP"). */
static inline void
skip (int n, const char *why)
{
  for (int i = 0; i < n; i++)
    printf ("ok %d # SKIP %s\n", ++tap_count, why);
  fflush (stdout);
}

static inline void
diag (const char *fmt, ...)
{
  va_list ap;

  printf ("# ");
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  fflush (stdout);
}

static inline bool
ok_at (bool pass, const char *file, int line, const char *fmt, ...)
{
  va_list ap;

  tap_count++;
  printf ("%s %d - ", pass ? "ok" : "not ok", tap_count);
  va_start (ap, fmt);
  vprintf (fmt, ap);
  va_end (ap);
  printf ("\n");
  if (!pass) {
    tap_failed++;
    printf ("#   failed at %s:%d\n", file, line);
  }
  fflush (stdout);
  return pass;
}

#define ok(cond, ...) ok_at (!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                          \
  do {                                                                  \
    long long tap_g_ = (long long) (got), tap_w_ = (long long) (want);  \
    if (!ok (tap_g_ == tap_w_, __VA_ARGS__))                            \
      diag ("  got %lld, want %lld", tap_g_, tap_w_);                   \
  } while (0)

#define is_str(got, want, ...)                                          \
  do {                                                                  \
    const char *tap_g_ = (got), *tap_w_ = (want);                       \
    if (!ok (tap_g_ && tap_w_ && strcmp (tap_g_, tap_w_) == 0,          \
             __VA_ARGS__))                                              \
      diag ("  got \"%s\", want \"%s\"", tap_g_ ? tap_g_ : "(null)",   \
            tap_w_ ? tap_w_ : "(null)");                                \
  } while (0)

/* Ends a program that did not announce its plan up front. */
static inline int
done_testing (void)
{
  printf ("1..%d\n", tap_count);
  fflush (stdout);
  return tap_failed ? 1 : 0;
}

/* Ends a program that did announce its plan. */
static inline int
tap_exit_status (void)
{
  return tap_failed ? 1 : 0;
}

/* Sleeps MS milliseconds: the tests that race a writer against a commit
 * or the sealer use it to let one side get under way. */
static inline void
sleep_ms (long ms)
{
  nanosleep (&(struct timespec) { ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

#endif /* CAIRN_TAP_H */
