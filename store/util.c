/* util.c: ids, hashing, time, sizes and durable-file helpers, and the
 * priority of background threads. */
#include <config.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "store/util.h"

const struct cairn_id cairn_zero_id;

static _Thread_local bool background, idle;
static _Thread_local int64_t idle_until;
static _Thread_local int64_t fed_from, fed_until, fed_cpu0;  /* idle_fed */
static _Thread_local unsigned fed_pct;                     /* 0: none */
static _Thread_local const atomic_int *urgent_flag;
static bool idle_allowed;       /* see idle_probe */
static atomic_int probe_nice;   /* the nice idle_probe tries */
static pthread_once_t idle_once = PTHREAD_ONCE_INIT;

static int64_t
clock_ns (clockid_t clock)
{
  struct timespec ts;
  clock_gettime (clock, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
cairn_mono_ns (void)
{
  return clock_ns (CLOCK_MONOTONIC);
}

int
cairn_thread_id (void)
{
  return (int) syscall (SYS_gettid);
}

/* Whether a thread at SCHED_IDLE may go back to SCHED_OTHER, tried in a
 * thread of its own (that would stay idle if it may not). */
static void *
idle_try (void *arg)
{
  static const struct sched_param param = { 0 };
  bool *ok = arg;

  setpriority (PRIO_PROCESS, (id_t) cairn_thread_id (),
               atomic_load (&probe_nice));
  *ok = sched_setscheduler (0, SCHED_IDLE, &param) == 0
    && sched_setscheduler (0, SCHED_OTHER, &param) == 0;
  return NULL;
}

static void
idle_probe (void)
{
  pthread_t t;
  bool ok = false;

  if (pthread_create (&t, NULL, idle_try, &ok) == 0
      && pthread_join (t, NULL) == 0)
    idle_allowed = ok;
}

bool
cairn_thread_background (int nice, const atomic_int *urgent)
{
  /* One probe per process, at the first caller's nice: every caller
   * passes the sealer's. */
  atomic_store (&probe_nice, nice);
  pthread_once (&idle_once, idle_probe);
  /* Linux: this thread only.  Failing changes nothing else. */
  setpriority (PRIO_PROCESS, (id_t) cairn_thread_id (), nice);
  background = idle_allowed;
  idle_until = INT64_MAX;
  urgent_flag = urgent;
  return idle_allowed;
}

void
cairn_thread_hurry (int tid)
{
  static const struct sched_param param = { 0 };
  /* Nothing to do unless it is idle; allowed if its going idle was. */
  if (idle_allowed && sched_getscheduler (tid) == SCHED_IDLE)
    (void) sched_setscheduler (tid, SCHED_OTHER, &param);
}

void
cairn_compute_idle_until (int64_t mono_ns)
{
  idle_until = mono_ns;
  fed_pct = 0;
}

/* The CPU time this thread has had. */
static int64_t
thread_cpu_ns (void)
{
  return clock_ns (CLOCK_THREAD_CPUTIME_ID);
}

void
cairn_compute_idle_fed (int64_t until_ns, unsigned pct)
{
  idle_until = INT64_MAX;
  fed_from = cairn_mono_ns ();
  fed_until = until_ns;
  fed_pct = pct;
  fed_cpu0 = thread_cpu_ns ();
}

void
cairn_compute_begin (void)
{
  static const struct sched_param param = { 0 };
  int64_t now = cairn_mono_ns ();
  if (fed_pct && now >= fed_until
      && (thread_cpu_ns () - fed_cpu0) * 100 < (now - fed_from) * fed_pct) {
    idle_until = 0;             /* starved: at its nice from now on */
    fed_pct = 0;
  }
  idle = background && now < idle_until
    && !(urgent_flag && atomic_load (urgent_flag) > 0)
    && sched_setscheduler (0, SCHED_IDLE, &param) == 0;
}

void
cairn_compute_end (void)
{
  static const struct sched_param param = { 0 };
  if (idle)                     /* back to SCHED_OTHER, at its nice */
    (void) sched_setscheduler (0, SCHED_OTHER, &param);
  idle = false;
}

/* OpenSSL 3's SHA256() looks the algorithm up on every call, which cost
 * more than hashing a 2 KiB tree node: look it up once. */
static EVP_MD *sha256_md;

static void
sha256_fetch (void)
{
  sha256_md = EVP_MD_fetch (NULL, "SHA256", NULL);
}

void
cairn_sha256 (const void *data, size_t len, struct cairn_id *out)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;

  pthread_once (&once, sha256_fetch);
  if (!sha256_md || !EVP_Digest (data, len, out->bytes, NULL, sha256_md,
                                 NULL))
    SHA256 (data, len, out->bytes);
}

void
cairn_id_to_hex (const struct cairn_id *id, char out[CAIRN_HEX_SIZE + 1])
{
  static const char digits[] = "0123456789abcdef";

  for (size_t i = 0; i < CAIRN_ID_SIZE; i++) {
    out[2 * i] = digits[id->bytes[i] >> 4];
    out[2 * i + 1] = digits[id->bytes[i] & 15];
  }
  out[CAIRN_HEX_SIZE] = '\0';
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int
cairn_id_from_hex (const char *hex, struct cairn_id *out)
{
  if (strlen (hex) != CAIRN_HEX_SIZE)
    return -EINVAL;
  for (size_t i = 0; i < CAIRN_ID_SIZE; i++) {
    int hi = hex_value (hex[2 * i]), lo = hex_value (hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    out->bytes[i] = hi << 4 | lo;
  }
  return 0;
}

bool
cairn_is_hex_prefix (const char *s)
{
  size_t n = strlen (s);

  if (n < CAIRN_MIN_PREFIX || n > CAIRN_HEX_SIZE)
    return false;
  for (size_t i = 0; i < n; i++)
    if (hex_value (s[i]) < 0)
      return false;
  return true;
}

int
cairn_dated_newest_first (const void *a, const void *b)
{
  const struct cairn_dated *x = a, *y = b;

  if (x->time != y->time)
    return x->time > y->time ? -1 : 1;
  return memcmp (x->id.bytes, y->id.bytes, CAIRN_ID_SIZE);
}

bool
cairn_is_zero (const void *data, size_t len)
{
  const uint8_t *p = data;

  /* Check a short head byte by byte, then compare the buffer with itself
   * shifted by that head: memcmp is vectorised, a loop here is not. */
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i])
      return false;
  if (len <= 16)
    return true;
  return memcmp (p, p + 16, len - 16) == 0;
}

int64_t
cairn_time_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
split_ns (int64_t ns, time_t *sec, long *frac)
{
  *sec = ns / 1000000000;
  *frac = ns % 1000000000;
  if (*frac < 0) {
    *frac += 1000000000;
    (*sec)--;
  }
}

/* Writes V as N decimal digits at P; returns the end. */
static char *
put_digits (char *p, long v, int n)
{
  for (int i = n - 1; i >= 0; i--, v /= 10)
    p[i] = '0' + v % 10;
  return p + n;
}

/* "YYYY-MM-DDTHH:MM:SS" of NS (UTC) at BUF, and the nanoseconds past it
 * in *FRAC; returns the end.  The calendar by days (Hinnant's
 * civil_from_days), not gmtime_r and snprintf: a commit formats its
 * time, and those two cost it several microseconds. */
static char *
format_seconds (int64_t ns, char *buf, long *frac)
{
  time_t sec;
  split_ns (ns, &sec, frac);
  int64_t days = sec / 86400, rem = sec % 86400;
  if (rem < 0) {
    rem += 86400;
    days--;
  }
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2);
  char *p = buf;

  p = put_digits (p, year, 4);
  *p++ = '-';
  p = put_digits (p, month, 2);
  *p++ = '-';
  p = put_digits (p, day, 2);
  *p++ = 'T';
  p = put_digits (p, rem / 3600, 2);
  *p++ = ':';
  p = put_digits (p, rem / 60 % 60, 2);
  *p++ = ':';
  return put_digits (p, rem % 60, 2);
}

void
cairn_time_format (int64_t ns, char *buf)
{
  long frac;
  char *p = format_seconds (ns, buf, &frac);

  *p++ = '.';
  p = put_digits (p, frac, 9);
  memcpy (p, "Z", 2);
}

void
cairn_time_format_seconds (int64_t ns, char *buf)
{
  long frac;

  memcpy (format_seconds (ns, buf, &frac), "Z", 2);
}

/* Reads exactly N decimal digits. */
static int
digits (const char **s, int n, int *out)
{
  int v = 0;

  for (int i = 0; i < n; i++, (*s)++) {
    if (!isdigit ((unsigned char) **s))
      return -EINVAL;
    v = v * 10 + (**s - '0');
  }
  *out = v;
  return 0;
}

int
cairn_time_parse (const char *s, int64_t *ns)
{
  struct tm tm = { 0 };
  int year, mon, day, hour = 0, min = 0, sec = 0;
  int64_t frac = 0, offset = 0;

  if (digits (&s, 4, &year) || *s++ != '-' || digits (&s, 2, &mon)
      || *s++ != '-' || digits (&s, 2, &day))
    return -EINVAL;
  if (*s == 'T' || *s == 't' || *s == ' ') {
    s++;
    if (digits (&s, 2, &hour) || *s++ != ':' || digits (&s, 2, &min))
      return -EINVAL;
    if (*s == ':') {
      s++;
      if (digits (&s, 2, &sec))
        return -EINVAL;
      if (*s == '.' || *s == ',') {
        int64_t scale = 100000000;
        s++;
        if (!isdigit ((unsigned char) *s))
          return -EINVAL;
        for (; isdigit ((unsigned char) *s); s++, scale /= 10)
          frac += (*s - '0') * scale;
      }
    }
    if (*s == 'Z' || *s == 'z')
      s++;
    else if (*s == '+' || *s == '-') {
      int sign = *s++ == '-' ? -1 : 1, oh, om = 0;
      if (digits (&s, 2, &oh))
        return -EINVAL;
      if (*s == ':')
        s++;
      if (*s && digits (&s, 2, &om))
        return -EINVAL;
      if (oh > 23 || om > 59)
        return -EINVAL;
      offset = sign * (int64_t) (oh * 3600 + om * 60);
    }
  }
  if (*s != '\0')
    return -EINVAL;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59
      || sec > 60)
    return -EINVAL;

  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm (&tm);
  /* timegm normalises 31 February into March: refuse that. */
  struct tm check;
  gmtime_r (&t, &check);
  if (check.tm_mday != day || check.tm_mon != mon - 1)
    return -EINVAL;
  *ns = ((int64_t) t - offset) * 1000000000 + frac;
  return 0;
}

int
cairn_parse_size (const char *s, uint64_t *bytes)
{
  char *end;
  unsigned shift = 0;

  if (!isdigit ((unsigned char) *s))
    return -EINVAL;
  errno = 0;
  uint64_t v = strtoull (s, &end, 10);
  if (errno == ERANGE)
    return -ERANGE;
  switch (*end) {
  case '\0': break;
  case 'b': case 'B': end++; break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  case 'p': case 'P': shift = 50; end++; break;
  case 'e': case 'E': shift = 60; end++; break;
  default: return -EINVAL;
  }
  if (shift && (strcmp (end, "iB") == 0 || strcmp (end, "B") == 0))
    end += strlen (end);
  if (*end != '\0')
    return -EINVAL;
  if (shift && v > (UINT64_MAX >> shift))
    return -ERANGE;
  *bytes = v << shift;
  return 0;
}

int
cairn_parse_duration (const char *s, int64_t *ns)
{
  int64_t total = 0;

  if (!*s)
    return -EINVAL;
  while (*s) {
    char *end;
    if (!isdigit ((unsigned char) *s))
      return -EINVAL;
    errno = 0;
    long long v = strtoll (s, &end, 10);
    if (errno == ERANGE)
      return -ERANGE;
    int64_t unit;
    switch (*end) {
    case '\0': unit = 1; break;
    case 's': unit = 1; end++; break;
    case 'm': unit = 60; end++; break;
    case 'h': unit = 3600; end++; break;
    case 'd': unit = 86400; end++; break;
    case 'w': unit = 7 * 86400; end++; break;
    case 'y': unit = 365 * 86400; end++; break;
    default: return -EINVAL;
    }
    if (v > INT64_MAX / 1000000000 / unit
        || total > INT64_MAX - v * unit * 1000000000)
      return -ERANGE;
    total += v * unit * 1000000000;
    s = end;
  }
  if (total <= 0)
    return -EINVAL;
  *ns = total;
  return 0;
}

void
cairn_format_bytes (uint64_t bytes, char *buf, size_t len)
{
  static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
  double v = bytes;
  size_t u = 0;

  while (v >= 1024 && u + 1 < CAIRN_ARRAY_SIZE (units)) {
    v /= 1024;
    u++;
  }
  if (u == 0)
    snprintf (buf, len, "%" PRIu64 " B", bytes);
  else
    snprintf (buf, len, "%.1f %s", v, units[u]);
}

int
cairn_mkdir_p (const char *path)
{
  char tmp[4096];
  size_t n = strlen (path);

  if (n == 0 || n >= sizeof tmp)
    return -ENAMETOOLONG;
  memcpy (tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir (tmp, 0755) == -1 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir (tmp, 0755) == -1 && errno != EEXIST)
    return -errno;
  return 0;
}

int
cairn_fsync_dir (const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1)
    return -errno;
  int r = fsync (fd) == -1 ? -errno : 0;
  close (fd);
  return r;
}

int
cairn_write_file_atomic (const char *path, const void *data, size_t len)
{
  char tmp[4096], dir[4096];
  int r;

  if (snprintf (tmp, sizeof tmp, "%s.tmp.%d", path, (int) getpid ())
      >= (int) sizeof tmp)
    return -ENAMETOOLONG;
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd == -1)
    return -errno;
  r = cairn_pwrite_all (fd, data, len, 0);
  if (r == 0 && fsync (fd) == -1)
    r = -errno;
  close (fd);
  if (r == 0 && rename (tmp, path) == -1)
    r = -errno;
  if (r < 0) {
    unlink (tmp);
    return r;
  }
  snprintf (dir, sizeof dir, "%s", path);
  char *slash = strrchr (dir, '/');
  if (slash)
    *slash = '\0';
  else
    strcpy (dir, ".");
  return cairn_fsync_dir (dir);
}

int
cairn_read_file (const char *path, char **data, size_t *len)
{
  CLEANUP_CLOSE int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;

  if (fd == -1 || fstat (fd, &st) == -1)
    return -errno;
  char *buf = malloc (st.st_size + 1);
  if (!buf)
    return -ENOMEM;
  int r = cairn_pread_all (fd, buf, st.st_size, 0);
  if (r < 0) {
    free (buf);
    return r;
  }
  buf[st.st_size] = '\0';
  *data = buf;
  if (len)
    *len = st.st_size;
  return 0;
}

int
cairn_reserve (void *p, size_t *cap, size_t need, size_t step)
{
  if (need <= *cap)
    return 0;
  size_t ncap = CAIRN_MAX (*cap * 2, need + step);
  void *np = realloc (*(void **) p, ncap);
  if (!np)
    return -ENOMEM;
  *(void **) p = np;
  *cap = ncap;
  return 0;
}

int
cairn_pread_all (int fd, void *buf, size_t len, uint64_t off)
{
  char *p = buf;

  while (len > 0) {
    ssize_t n = pread (fd, p, len, off);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0)
      return -EIO;
    p += n;
    len -= n;
    off += n;
  }
  return 0;
}

int
cairn_pwrite_all (int fd, const void *buf, size_t len, uint64_t off)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = pwrite (fd, p, len, off);
    if (n == -1) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= n;
    off += n;
  }
  return 0;
}

int
cairn_remove_tree (const char *path)
{
  struct stat st;

  if (lstat (path, &st) == -1)
    return errno == ENOENT ? 0 : -errno;
  if (S_ISDIR (st.st_mode)) {
    DIR *d = opendir (path);
    if (!d)
      return -errno;
    struct dirent *e;
    int r = 0;
    while (r == 0 && (e = readdir (d)) != NULL) {
      if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
        continue;
      char child[4096];
      if (snprintf (child, sizeof child, "%s/%s", path, e->d_name)
          >= (int) sizeof child)
        r = -ENAMETOOLONG;
      else
        r = cairn_remove_tree (child);
    }
    closedir (d);
    if (r < 0)
      return r;
    return rmdir (path) == -1 ? -errno : 0;
  }
  return unlink (path) == -1 ? -errno : 0;
}
