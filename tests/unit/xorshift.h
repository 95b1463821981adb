/* xorshift.h: a small, fast, seedable random generator (Marsaglia's
 * xorshift64), so that a test's random cases are the same on every run. */
#ifndef CAIRN_XORSHIFT_H
#define CAIRN_XORSHIFT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The next number of the sequence in *STATE (never 0). */
static inline uint64_t
xorshift64 (uint64_t *state)
{
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

/* Fills LEN bytes at BUF with the sequence of SEED: bytes that no
 * compressor shrinks, and that differ at every place for another SEED. */
static inline void
xorshift_fill (void *buf, size_t len, uint64_t seed)
{
  uint64_t state = (seed + 1) * 0x9e3779b97f4a7c15ULL | 1;

  for (size_t at = 0; at < len; at += sizeof state) {
    uint64_t word = xorshift64 (&state);
    memcpy ((char *) buf + at, &word,
            len - at < sizeof word ? len - at : sizeof word);
  }
}

#endif /* CAIRN_XORSHIFT_H */
