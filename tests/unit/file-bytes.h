/* file-bytes.h: looking at and damaging the bytes of a store's files,
 * for the unit tests that check an on-disk format or what a reader does
 * with a corrupt file. */
#ifndef CAIRN_FILE_BYTES_H
#define CAIRN_FILE_BYTES_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/util.h"

/* The size of PATH, or -1 if it cannot be stat'ed. */
static inline int64_t
file_size (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 ? (int64_t) st.st_size : -1;
}

/* Whether the LEN bytes at OFF of PATH are WANT. */
static inline bool
file_bytes_are (const char *path, uint64_t off, const void *want, size_t len)
{
  uint8_t *got = malloc (len ? len : 1);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  bool same = got && fd >= 0 && cairn_pread_all (fd, got, len, off) == 0
    && memcmp (got, want, len) == 0;

  if (fd >= 0)
    close (fd);
  free (got);
  return same;
}

/* Inverts every bit of the byte at OFF of PATH (a second call puts it
 * back).  False if the file cannot be changed there. */
static inline bool
file_flip (const char *path, uint64_t off)
{
  uint8_t b;
  int fd = open (path, O_RDWR | O_CLOEXEC);
  bool done = fd >= 0 && cairn_pread_all (fd, &b, 1, off) == 0
    && (b ^= 0xff, cairn_pwrite_all (fd, &b, 1, off) == 0);

  if (fd >= 0)
    close (fd);
  return done;
}

#endif /* CAIRN_FILE_BYTES_H */
