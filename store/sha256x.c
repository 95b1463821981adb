/* SHA-256 of many messages of one length at once.
 *
 * Hashing, not compressing, is most of what sealing a chunk costs: on a
 * CPU without the SHA extensions, OpenSSL's SHA-256 runs at about
 * 200 MB/s a core, zstd -1 at about 550.  But a commit, a sealer pass, an
 * import and a restore hash many chunks of the same size at a time, and
 * SHA-256 of separate messages is data-parallel: lane L of each vector
 * holds message L's state.  With AVX-512 that is 16 messages a pass, and
 * the rotates are single instructions.
 *
 * The code is written once with GCC's vector extensions and compiled per
 * instruction set by inlining it into functions with a target attribute;
 * cairn_sha256_many picks one at run time and falls back to OpenSSL, one
 * message after another, where no wide unit exists or where the CPU has
 * the SHA extensions. */

#include "config.h"

#include <stdint.h>
#include <string.h>

#include "store/util.h"

static const uint32_t k256[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
  0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
  0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t h256[8] = {
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

#define LANES 16
#define LANED(name) name##_16
#include "store/sha256x-lanes.h"
#undef LANES
#undef LANED

#define LANES 8
#define LANED(name) name##_8
#include "store/sha256x-lanes.h"
#undef LANES
#undef LANED

#define MAX_LANES CAIRN_HASH_BATCH

/* Hashes a full set of lanes: MSG[L] of LEN bytes into OUT[L]. */
typedef void lanes_fn (const uint8_t *const *msg, size_t len,
                       struct cairn_id *out);

__attribute__ ((target ("avx512f"))) static void
hash_lanes_avx512 (const uint8_t *const *msg, size_t len,
                   struct cairn_id *out)
{
  hash_lanes_16 (msg, len, out);
}

__attribute__ ((target ("avx2"))) static void
hash_lanes_avx2 (const uint8_t *const *msg, size_t len, struct cairn_id *out)
{
  hash_lanes_8 (msg, len, out);
}

/* The widest unit this CPU has of at most MAX lanes (lanes 0: none,
 * OpenSSL then). */
struct unit {
  lanes_fn *fn;
  unsigned lanes;
};

static struct unit
pick (unsigned max)
{
  __builtin_cpu_init ();
  if (max >= 16 && __builtin_cpu_supports ("avx512f"))
    return (struct unit) { hash_lanes_avx512, 16 };
  if (max >= 8 && __builtin_cpu_supports ("avx2"))
    return (struct unit) { hash_lanes_avx2, 8 };
  return (struct unit) { NULL, 0 };
}

/* A pass of the lanes costs about as much as this many messages one at
 * a time (measured: 16 lanes of AVX-512 hash 4.5 times as fast as
 * OpenSSL here, 8 of AVX2 2.2 times): fewer go to OpenSSL. */
#define FEWEST_FOR_LANES 4

unsigned
cairn_sha256_many_lanes (unsigned max, const void *const *data, size_t n,
                         size_t len, struct cairn_id *out)
{
  struct unit unit = pick (max);
  size_t i = 0;

  while (unit.lanes && n - i >= FEWEST_FOR_LANES) {
    const uint8_t *msg[MAX_LANES];
    struct cairn_id ids[MAX_LANES];
    size_t m = n - i < unit.lanes ? n - i : unit.lanes;
    for (size_t l = 0; l < unit.lanes; l++)
      msg[l] = data[i + (l < m ? l : 0)];      /* spare lanes repeat one */
    unit.fn (msg, len, ids);
    memcpy (out + i, ids, m * sizeof *ids);
    i += m;
  }
  for (; i < n; i++)
    cairn_sha256 (data[i], len, &out[i]);
  return unit.lanes;
}

void
cairn_sha256_many (const void *const *data, size_t n, size_t len,
                   struct cairn_id *out)
{
  static int sha_ext = -1;
  int ext = __atomic_load_n (&sha_ext, __ATOMIC_RELAXED);

  /* With the SHA extensions, OpenSSL uses them and hashes one message
   * several times faster than without.  No such CPU was at hand to
   * measure the lanes against: leave it to OpenSSL there. */
  if (ext < 0) {
    __builtin_cpu_init ();
    ext = __builtin_cpu_supports ("sha") != 0;
    __atomic_store_n (&sha_ext, ext, __ATOMIC_RELAXED);
  }
  cairn_sha256_many_lanes (ext ? 0 : MAX_LANES, data, n, len, out);
}
