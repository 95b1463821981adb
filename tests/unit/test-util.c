/* test-util: ids, time, sizes, durations and background threads of
 * store/util.c. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/util.h"
#include "tap.h"

static void
test_hex (void)
{
  struct cairn_id id, back;
  char hex[CAIRN_HEX_SIZE + 1];

  cairn_sha256 ("abc", 3, &id);
  cairn_id_to_hex (&id, hex);
  is_str (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          "sha256 of abc, printed as lowercase hex");
  ok (cairn_id_from_hex (hex, &back) == 0 && cairn_id_equal (&id, &back),
      "hex round trip");
  ok (cairn_id_from_hex ("abc", &back) == -EINVAL, "short hex refused");
  hex[10] = 'g';
  ok (cairn_id_from_hex (hex, &back) == -EINVAL, "non-hex digit refused");
  ok (cairn_is_hex_prefix ("ab12"), "4 hex digits are a prefix");
  ok (!cairn_is_hex_prefix ("ab1"), "3 digits are too short");
  ok (!cairn_is_hex_prefix ("main"), "a name is not a prefix");
  ok (cairn_id_is_zero (&cairn_zero_id), "zero id is zero");
  ok (!cairn_id_is_zero (&id), "a hash is not zero");
}

static void
test_zero (void)
{
  static char buf[65536];

  ok (cairn_is_zero (buf, sizeof buf), "zero buffer");
  buf[65535] = 1;
  ok (!cairn_is_zero (buf, sizeof buf), "last byte set");
  buf[65535] = 0;
  buf[3] = 1;
  ok (!cairn_is_zero (buf, sizeof buf), "early byte set");
  ok (!cairn_is_zero (buf, 7), "short buffer with a byte set");
  buf[3] = 0;
}

static void
test_time (void)
{
  char buf[CAIRN_TIME_SIZE];
  int64_t ns;

  ok (cairn_time_parse ("2026-11-21T10:00:00.123456789Z", &ns) == 0,
      "parse full time");
  cairn_time_format (ns, buf);
  is_str (buf, "2026-11-21T10:00:00.123456789Z", "format round trip");
  ok (cairn_time_parse ("2026-11-21T11:30:00+01:30", &ns) == 0,
      "parse an offset");
  cairn_time_format (ns, buf);
  is_str (buf, "2026-11-21T10:00:00.000000000Z", "offset applied");
  ok (cairn_time_parse ("2026-11-21", &ns) == 0, "a date alone");
  cairn_time_format_seconds (ns, buf);
  is_str (buf, "2026-11-21T00:00:00Z", "date means midnight UTC");
  ok (cairn_time_parse ("2026-02-30T00:00:00Z", &ns) == -EINVAL,
      "30 February refused");
  ok (cairn_time_parse ("2026-11-21T25:00:00Z", &ns) == -EINVAL,
      "hour 25 refused");
  ok (cairn_time_parse ("yesterday", &ns) == -EINVAL, "words refused");
  ok (cairn_time_parse ("2026-11-21T10:00:00Zjunk", &ns) == -EINVAL,
      "trailing junk refused");
  ok (cairn_time_parse ("1969-12-31T23:59:59.5Z", &ns) == 0 && ns == -500000000,
      "before the epoch");
  cairn_time_format (ns, buf);
  is_str (buf, "1969-12-31T23:59:59.500000000Z", "negative time formats");

  /* The calendar arithmetic against gmtime_r, over the whole range of
   * int64 nanoseconds (1677 to 2262) and around the days that test it. */
  static const char *const edges[] = {
    "1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2000-03-01T00:00:00Z",
    "2100-02-28T12:00:00Z", "2100-03-01T00:00:00Z", "1900-02-28T00:00:00Z",
    "1900-03-01T00:00:00Z", "2024-12-31T23:59:59Z",
  };
  int64_t when[1000 + 3 * sizeof edges / sizeof *edges];
  size_t n = 0, wrong = 0;
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
    if (cairn_time_parse (edges[i], &ns) < 0)
      wrong++;
    else
      for (int d = -1; d <= 1; d++)
        when[n++] = ns + d * 86400LL * 1000000000;
  when[n++] = INT64_MIN;
  when[n++] = INT64_MAX;
  while (n < sizeof when / sizeof *when) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    when[n++] = (int64_t) x;
  }
  for (size_t i = 0; i < n; i++) {
    char want[CAIRN_TIME_SIZE], secs[CAIRN_TIME_SIZE];
    time_t sec = when[i] / 1000000000;
    long frac = when[i] % 1000000000;
    struct tm tm;
    if (frac < 0) {
      frac += 1000000000;
      sec--;
    }
    gmtime_r (&sec, &tm);
    snprintf (want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
              tm.tm_min, tm.tm_sec, frac);
    cairn_time_format (when[i], buf);
    cairn_time_format_seconds (when[i], secs);
    if (strcmp (buf, want) != 0 || strncmp (secs, want, 19) != 0
        || strcmp (secs + 19, "Z") != 0) {
      if (wrong++ == 0)
        diag ("%" PRId64 ": %s and %s, gmtime_r says %s", when[i], buf,
              secs, want);
    }
  }
  ok (wrong == 0,
      "%zu times format as gmtime_r has them", n);
}

static void
test_size (void)
{
  uint64_t v;

  ok (cairn_parse_size ("8G", &v) == 0 && v == 8ULL << 30, "8G");
  ok (cairn_parse_size ("512", &v) == 0 && v == 512, "plain bytes");
  ok (cairn_parse_size ("64KiB", &v) == 0 && v == 65536, "64KiB");
  ok (cairn_parse_size ("1T", &v) == 0 && v == 1ULL << 40, "1T");
  ok (cairn_parse_size ("abc", &v) == -EINVAL, "words refused");
  ok (cairn_parse_size ("-5", &v) == -EINVAL, "negative refused");
  ok (cairn_parse_size ("5X", &v) == -EINVAL, "unknown suffix refused");
  ok (cairn_parse_size ("99999999999999999999", &v) == -ERANGE,
      "overflow refused");
  ok (cairn_parse_size ("16E", &v) == -ERANGE, "16 EiB overflows");
}

static void
test_duration (void)
{
  int64_t ns;

  ok (cairn_parse_duration ("90m", &ns) == 0 && ns == 5400LL * 1000000000,
      "90m");
  ok (cairn_parse_duration ("36h", &ns) == 0 && ns == 36LL * 3600000000000,
      "36h");
  ok (cairn_parse_duration ("2w", &ns) == 0
      && ns == 14LL * 86400 * 1000000000, "2w");
  ok (cairn_parse_duration ("1h30m", &ns) == 0
      && ns == 5400LL * 1000000000, "1h30m");
  ok (cairn_parse_duration ("5x", &ns) == -EINVAL, "unknown unit");
  ok (cairn_parse_duration ("", &ns) == -EINVAL, "empty");
  ok (cairn_parse_duration ("0s", &ns) == -EINVAL, "zero");
  ok (cairn_parse_duration ("292y292y", &ns) == -ERANGE,
      "sum overflow refused");
}

/* The policy and nice value of the calling thread: POLICY * 100 + NICE. */
static int
thread_sched (void)
{
  errno = 0;
  int nice = getpriority (PRIO_PROCESS, (id_t) syscall (SYS_gettid));
  return sched_getscheduler (0) * 100 + nice;
}

/* Spends MS ms of this thread's CPU time. */
static void
burn_cpu_ms (int ms)
{
  struct timespec t0, t;
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &t0);
  do
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000
         < ms);
}

struct background {
  atomic_int urgent;
  int tid;
  bool can_idle;
  int got[9];
  /* the test hurries the thread while it computes (steps 4-5) */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int step;
};

static void
background_step (struct background *bg, int step)
{
  pthread_mutex_lock (&bg->lock);
  bg->step = step;
  pthread_cond_broadcast (&bg->cond);
  while (bg->step == step)
    pthread_cond_wait (&bg->cond, &bg->lock);
  pthread_mutex_unlock (&bg->lock);
}

static void *
background_thread (void *arg)
{
  struct background *bg = arg;

  bg->can_idle = cairn_thread_background (10, &bg->urgent);
  bg->tid = cairn_thread_id ();
  bg->got[0] = thread_sched ();
  cairn_compute_begin ();
  bg->got[1] = thread_sched ();
  background_step (bg, 1);      /* the test hurries it here */
  bg->got[2] = thread_sched ();
  cairn_compute_end ();
  bg->got[3] = thread_sched ();
  atomic_store (&bg->urgent, 1);
  cairn_compute_begin ();
  bg->got[4] = thread_sched ();
  cairn_compute_end ();
  atomic_store (&bg->urgent, 0);
  cairn_compute_idle_until (cairn_mono_ns ());
  cairn_compute_begin ();
  bg->got[5] = thread_sched ();
  cairn_compute_end ();
  /* Idle while fed: before the time given, whatever its share; after
   * it, while it had 5% of a CPU since the call, then never again. */
  cairn_compute_idle_fed (cairn_mono_ns () + 10000000000LL, 5);
  usleep (50000);
  cairn_compute_begin ();
  bg->got[6] = thread_sched ();
  cairn_compute_end ();
  cairn_compute_idle_fed (cairn_mono_ns (), 5);
  burn_cpu_ms (20);
  cairn_compute_begin ();
  bg->got[7] = thread_sched ();
  cairn_compute_end ();
  usleep (600000);              /* 20 ms of CPU in 620: 3% */
  cairn_compute_begin ();
  cairn_compute_end ();
  burn_cpu_ms (100);            /* 120 in 720: 17%, but too late */
  cairn_compute_begin ();
  bg->got[8] = thread_sched ();
  cairn_compute_end ();
  return NULL;
}

static void
test_background (void)
{
  static struct background bg = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
  int base = thread_sched (), other = SCHED_OTHER * 100 + 10;
  pthread_t t;

  cairn_compute_begin ();
  ok (thread_sched () == base, "computing in an ordinary thread changes "
      "nothing (%d)", thread_sched ());
  cairn_compute_end ();
  if (pthread_create (&t, NULL, background_thread, &bg) != 0)
    abort ();
  pthread_mutex_lock (&bg.lock);
  while (bg.step != 1)
    pthread_cond_wait (&bg.cond, &bg.lock);
  cairn_thread_hurry (bg.tid);
  bg.step = 2;
  pthread_cond_broadcast (&bg.cond);
  pthread_mutex_unlock (&bg.lock);
  if (pthread_join (t, NULL) != 0)
    abort ();
  ok (bg.got[0] == other, "a background thread runs at nice 10 (%d)",
      bg.got[0]);
  if (!bg.can_idle)
    skip (5, "this process may not come back from SCHED_IDLE");
  else {
    ok (bg.got[1] == SCHED_IDLE * 100 + 10, "and computes at SCHED_IDLE (%d)",
        bg.got[1]);
    ok (bg.got[2] == other, "hurried, it computes at nice 10 (%d)",
        bg.got[2]);
    ok (bg.got[3] == other, "then is back at nice 10 (%d)", bg.got[3]);
    ok (bg.got[6] == SCHED_IDLE * 100 + 10, "told to idle while fed, it "
        "computes at SCHED_IDLE before the time given, starved or not (%d)",
        bg.got[6]);
    ok (bg.got[7] == SCHED_IDLE * 100 + 10, "and after it while it has "
        "had its share of a CPU (%d)", bg.got[7]);
  }
  ok (bg.got[8] == other, "starved once, it computes at nice 10 from "
      "then on (%d)", bg.got[8]);
  ok (bg.got[4] == other, "while its urgent flag is set, it computes at "
      "nice 10 (%d)", bg.got[4]);
  ok (bg.got[5] == other, "past the time it was given, it computes at "
      "nice 10 (%d)", bg.got[5]);
  ok (thread_sched () == base, "the other threads are as they were (%d)",
      thread_sched ());
}

int
main (void)
{
  test_hex ();
  test_zero ();
  test_time ();
  test_size ();
  test_duration ();
  test_background ();
  return done_testing ();
}
