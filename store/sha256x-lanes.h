/* sha256x-lanes.h: the lane code of sha256x.c, included there once per
 * lane count.  The includer defines LANES and LANED (a name with the
 * lane count appended). */

typedef uint32_t LANED (vec) __attribute__ ((vector_size (LANES * 4)));

/* The 64 rounds on one 64-byte block of each lane: BLOCK[L] is lane L's. */
static inline __attribute__ ((always_inline)) void
LANED (compress) (LANED (vec) state[8], const uint8_t *const block[LANES])
{
  uint32_t words[16][LANES] __attribute__ ((aligned (64)));
  LANED (vec) w[16], a = state[0], b = state[1], c = state[2], d = state[3],
    e = state[4], f = state[5], g = state[6], h = state[7];

  /* Transpose: word T of every lane into vector T. */
  for (unsigned l = 0; l < LANES; l++)
    for (unsigned t = 0; t < 16; t++) {
      uint32_t x;
      memcpy (&x, block[l] + 4 * t, 4);
      words[t][l] = __builtin_bswap32 (x);
    }
  for (unsigned t = 0; t < 64; t++) {
    LANED (vec) wt;
    if (t < 16) {
      memcpy (&w[t], words[t], sizeof w[t]);
      wt = w[t];
    }
    else {
      LANED (vec) w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
      LANED (vec) s0 = ROR (w15, 7) ^ ROR (w15, 18) ^ (w15 >> 3);
      LANED (vec) s1 = ROR (w2, 17) ^ ROR (w2, 19) ^ (w2 >> 10);
      wt = w[t & 15] += s0 + w[(t - 7) & 15] + s1;
    }
    LANED (vec) t1 = h + (ROR (e, 6) ^ ROR (e, 11) ^ ROR (e, 25))
      + ((e & f) ^ (~e & g)) + k256[t] + wt;
    LANED (vec) t2 = (ROR (a, 2) ^ ROR (a, 13) ^ ROR (a, 22))
      + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/* Hashes LANES messages MSG of LEN bytes each into OUT. */
static inline __attribute__ ((always_inline)) void
LANED (hash_lanes) (const uint8_t *const msg[LANES], size_t len,
                    struct cairn_id out[LANES])
{
  uint8_t tail[LANES][128];
  const uint8_t *block[LANES];
  size_t full = len / 64, rest = len % 64;
  size_t ntail = rest + 9 <= 64 ? 1 : 2;
  uint64_t bits = (uint64_t) len * 8;
  LANED (vec) state[8];

  for (unsigned i = 0; i < 8; i++)
    for (unsigned l = 0; l < LANES; l++)
      state[i][l] = h256[i];
  for (size_t n = 0; n < full; n++) {
    for (unsigned l = 0; l < LANES; l++)
      block[l] = msg[l] + 64 * n;
    LANED (compress) (state, block);
  }
  /* The padding: 0x80, zeros, the length in bits, big-endian. */
  for (unsigned l = 0; l < LANES; l++) {
    memset (tail[l], 0, sizeof tail[l]);
    memcpy (tail[l], msg[l] + 64 * full, rest);
    tail[l][rest] = 0x80;
    for (unsigned i = 0; i < 8; i++)
      tail[l][64 * ntail - 1 - i] = (uint8_t) (bits >> (8 * i));
  }
  for (size_t n = 0; n < ntail; n++) {
    for (unsigned l = 0; l < LANES; l++)
      block[l] = tail[l] + 64 * n;
    LANED (compress) (state, block);
  }
  for (unsigned l = 0; l < LANES; l++)
    for (unsigned i = 0; i < 8; i++) {
      uint32_t be = __builtin_bswap32 (state[i][l]);
      memcpy (out[l].bytes + 4 * i, &be, 4);
    }
}
