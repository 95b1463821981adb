/* cairn_sha256_many against OpenSSL's SHA-256, one message at a time:
 * every count of messages around the lane widths, and lengths that leave
 * the padding one block or two, or none of a full block; with each unit
 * this CPU has (16 lanes of AVX-512, 8 of AVX2, OpenSSL alone). */

#include "config.h"

#include <openssl/sha.h>

#include "store/util.h"
#include "tests/tap.h"

#define MOST 33
#define LONGEST 65536

static const size_t lengths[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 128,
                                  1000, 4096, 65536 };
static const size_t counts[] = { 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33 };

static uint8_t *buf;

/* N messages of LEN bytes, hashed with at most LANES lanes. */
static void
check (unsigned lanes, size_t n, size_t len)
{
  const void *data[MOST];
  struct cairn_id got[MOST];
  bool same = true;

  /* Messages at different offsets, so no two lanes read alike. */
  for (size_t i = 0; i < n; i++)
    data[i] = buf + i * LONGEST + (i * 13) % (LONGEST - len + 1);
  memset (got, 0, sizeof got);
  if (cairn_sha256_many_lanes (lanes, data, n, len, got) != lanes) {
    skip (1, "this CPU has no unit of that many lanes");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    uint8_t want[32];
    SHA256 (data[i], len, want);
    same &= memcmp (want, got[i].bytes, 32) == 0;
  }
  ok (same, "%u lanes: %zu messages of %zu bytes hash as OpenSSL's SHA-256",
      lanes, n, len);
}

int
main (void)
{
  static const unsigned units[] = { 16, 8, 0 };
  const void *data[17];
  struct cairn_id got[17];
  uint8_t a[32], b[32];

  buf = malloc (MOST * LONGEST);
  if (!buf)
    return 1;
  srandom (7);
  for (size_t i = 0; i < MOST * LONGEST; i++)
    buf[i] = (uint8_t) random ();
  for (size_t u = 0; u < sizeof units / sizeof *units; u++)
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++)
      for (size_t c = 0; c < sizeof counts / sizeof *counts; c++)
        check (units[u], counts[c], lengths[l]);

  /* One message in many lanes and another in the last: no lane reads
   * its neighbour's. */
  for (size_t i = 0; i < 16; i++)
    data[i] = buf;
  data[16] = buf + LONGEST;
  cairn_sha256_many (data, 17, 4096, got);
  SHA256 (buf, 4096, a);
  SHA256 (buf + LONGEST, 4096, b);
  ok (memcmp (got[3].bytes, a, 32) == 0 && memcmp (got[16].bytes, b, 32) == 0,
      "repeated and distinct messages in one call");
  free (buf);
  done_testing ();
}
