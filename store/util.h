/* util.h: ids, hashing, time, sizes and durable-file helpers of libcairn,
 * and the priority of background threads.
 *
 * Everything here is small, pure or nearly so, and shared by every module
 * and adapter.  Functions return 0 or a negative errno and never print.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* An object id: the SHA-256 of the object's bytes.  The all-zero id is
 * reserved: it names the all-zero chunk (a hole) and the empty tree, which
 * are never stored. */
#define CAIRN_ID_SIZE 32
#define CAIRN_HEX_SIZE (2 * CAIRN_ID_SIZE)
/* The shortest id prefix a user may type. */
#define CAIRN_MIN_PREFIX 4

struct cairn_id {
  uint8_t bytes[CAIRN_ID_SIZE];
};

extern const struct cairn_id cairn_zero_id;

static inline bool
cairn_id_is_zero (const struct cairn_id *id)
{
  static const uint8_t zero[CAIRN_ID_SIZE];
  return __builtin_memcmp (id->bytes, zero, CAIRN_ID_SIZE) == 0;
}

static inline bool
cairn_id_equal (const struct cairn_id *a, const struct cairn_id *b)
{
  return __builtin_memcmp (a->bytes, b->bytes, CAIRN_ID_SIZE) == 0;
}

/* Background threads (the branch sealer, a big commit's capture) run at
 * nice NICE, and their pure computing - hashing and compressing, between
 * cairn_compute_begin and _end - at SCHED_IDLE: a thread that serves a
 * guest's I/O then never waits for it to give up a CPU (a nice value
 * only shortens its turns).  But SCHED_IDLE gets next to no CPU while
 * others want it all, so a background thread computes idle only
 *
 *   - before the monotonic time given to cairn_compute_idle_until (at
 *     first: for ever),
 *   - after cairn_compute_idle_fed (UNTIL, PCT): before the monotonic
 *     time UNTIL, and after it for as long as the thread has had at
 *     least PCT percent of a CPU since the call; once it had less, it
 *     computes at its nice from then on, and
 *   - while *URGENT (if not NULL) is 0: somebody waiting for a lock the
 *     thread holds sets it, and calls cairn_thread_hurry on the thread's
 *     cairn_thread_id to end the computing in progress at SCHED_IDLE.
 *
 * Coming back from SCHED_IDLE needs CAP_SYS_NICE or RLIMIT_NICE room for
 * NICE; without it computing stays at the nice value (and
 * cairn_thread_background returns false).  In any other
 * thread cairn_compute_begin and _end do nothing. */
bool cairn_thread_background (int nice, const atomic_int *urgent);
void cairn_compute_idle_until (int64_t mono_ns);
void cairn_compute_idle_fed (int64_t until_ns, unsigned pct);
void cairn_compute_begin (void);
void cairn_compute_end (void);
int cairn_thread_id (void);
void cairn_thread_hurry (int tid);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t cairn_mono_ns (void);

/* SHA-256 of LEN bytes at DATA. */
void cairn_sha256 (const void *data, size_t len, struct cairn_id *out);
/* cairn_sha256 of N messages DATA[i] of LEN bytes each, into OUT[i]:
 * several at once in vector lanes where the CPU has them and lacks the
 * SHA extensions (sha256x.c), up to CAIRN_HASH_BATCH at a time: callers
 * that read chunks to hash read that many before they hash. */
#define CAIRN_HASH_BATCH 16
void cairn_sha256_many (const void *const *data, size_t n, size_t len,
                        struct cairn_id *out);
/* The same with at most MAX lanes (tests: 0 is OpenSSL alone); returns
 * the lanes used, fewer where the CPU has no unit as wide. */
unsigned cairn_sha256_many_lanes (unsigned max, const void *const *data,
                                  size_t n, size_t len, struct cairn_id *out);

/* Writes the 64 lowercase hex digits of ID and a NUL into OUT. */
void cairn_id_to_hex (const struct cairn_id *id, char out[CAIRN_HEX_SIZE + 1]);

/* Parses exactly 64 hex digits.  -EINVAL on anything else. */
int cairn_id_from_hex (const char *hex, struct cairn_id *out);

/* True if S is 4..64 hex digits: something that could name an id. */
bool cairn_is_hex_prefix (const char *s);

/* An id with a time (ns), for sorting commits. */
struct cairn_dated {
  struct cairn_id id;
  int64_t time;
};

/* qsort order of struct cairn_dated: newest first, equal times by id. */
int cairn_dated_newest_first (const void *a, const void *b);

/* True if LEN bytes at DATA are all zero. */
bool cairn_is_zero (const void *data, size_t len);

/* Time is kept as nanoseconds since the Unix epoch, UTC. */
int64_t cairn_time_now (void);

/* ISO-8601 UTC with nanoseconds, "2026-11-21T10:00:00.123456789Z".
 * BUF must hold CAIRN_TIME_SIZE bytes. */
#define CAIRN_TIME_SIZE 64
void cairn_time_format (int64_t ns, char *buf);

/* The same, to the second: "2026-11-21T10:00:00Z" (for file names). */
void cairn_time_format_seconds (int64_t ns, char *buf);

/* Parses ISO-8601: "2026-11-21T10:00:00Z", with optional fraction of a
 * second and a "Z", "+hh:mm" or "-hh:mm" zone ("T" may be a space; a date
 * alone means midnight UTC).  -EINVAL if malformed. */
int cairn_time_parse (const char *s, int64_t *ns);

/* Parses a byte size: a decimal number with an optional binary suffix
 * K, M, G, T, P, E (also KiB, KB, k ...; all powers of 1024).
 * -EINVAL if malformed, -ERANGE if it overflows. */
int cairn_parse_size (const char *s, uint64_t *bytes);

/* Parses a duration: a positive number with a unit s, m, h, d, w, y
 * ("90m", "36h", "7d", "2w"); a bare number means seconds.  Compound
 * forms like "1h30m" are accepted.  Stores nanoseconds. */
int cairn_parse_duration (const char *s, int64_t *ns);

/* Formats a byte count for people: "1.5 GiB", "512 B". */
void cairn_format_bytes (uint64_t bytes, char *buf, size_t len);

/* mkdir -p with mode 0755.  0 if it exists already. */
int cairn_mkdir_p (const char *path);

/* fsync the directory that holds PATH (or PATH itself if a directory). */
int cairn_fsync_dir (const char *dir);

/* Writes LEN bytes to PATH durably and atomically: a temporary file in the
 * same directory, fsync, rename over PATH, fsync the directory. */
int cairn_write_file_atomic (const char *path, const void *data, size_t len);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
int cairn_read_file (const char *path, char **data, size_t *len);

/* Grows the buffer *P of *CAP bytes to hold at least NEED, to twice its
 * size or NEED + STEP, whichever is more.  0 or -ENOMEM (*P unchanged). */
int cairn_reserve (void *p, size_t *cap, size_t need, size_t step);

/* pread/pwrite that loop over short transfers and EINTR.  A read past the
 * end of the file returns -EIO (callers know the sizes they expect). */
int cairn_pread_all (int fd, void *buf, size_t len, uint64_t off);
int cairn_pwrite_all (int fd, const void *buf, size_t len, uint64_t off);

/* Removes a directory tree (like rm -rf).  0 if it does not exist. */
int cairn_remove_tree (const char *path);

/* Cleanup helpers, for __attribute__((cleanup)). */
static inline void cairn_freep (void *p) { free (*(void **) p); }
static inline void cairn_closep (int *fd) { if (*fd >= 0) close (*fd); }
#define CLEANUP_FREE __attribute__ ((cleanup (cairn_freep)))
#define CLEANUP_CLOSE __attribute__ ((cleanup (cairn_closep)))

#define CAIRN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CAIRN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CAIRN_ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

/* Little-endian loads and stores of on-disk fields. */
static inline uint32_t
cairn_le32 (const void *p)
{
  const uint8_t *b = p;
  return (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16
    | (uint32_t) b[3] << 24;
}

static inline uint64_t
cairn_le64 (const void *p)
{
  const uint8_t *b = p;
  return (uint64_t) cairn_le32 (b) | (uint64_t) cairn_le32 (b + 4) << 32;
}

static inline void
cairn_put_le32 (void *p, uint32_t v)
{
  uint8_t *b = p;
  b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24;
}

static inline void
cairn_put_le64 (void *p, uint64_t v)
{
  cairn_put_le32 (p, (uint32_t) v);
  cairn_put_le32 ((uint8_t *) p + 4, (uint32_t) (v >> 32));
}

/* Big-endian 64-bit, for LMDB keys that must sort numerically. */
static inline void
cairn_put_be64 (void *p, uint64_t v)
{
  uint8_t *b = p;
  for (int i = 7; i >= 0; i--, v >>= 8)
    b[i] = v & 0xff;
}

static inline uint64_t
cairn_be64 (const void *p)
{
  const uint8_t *b = p;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | b[i];
  return v;
}

#endif /* CAIRN_UTIL_H */
