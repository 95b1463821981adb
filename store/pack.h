/* pack.h: append-only pack files of compressed chunks.
 *
 * A pack is STORE/packs/pack-NNNNNNNN.pack (8 hex digits).  Chunks are
 * appended and never rewritten; gc compaction copies the live ones to a new
 * pack and unlinks the old file.  Each record repeats the chunk's id and
 * lengths so that a reader can tell a record from garbage, and an index
 * could be rebuilt from the packs alone.
 *
 * Pack file header (little-endian):
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     8  magic "cairnpk\n"
 *        8     4  format version, 1
 *       12     4  pack number (as in the file name)
 *       16        first record
 *
 * Record:
 *
 *   OFFSET  SIZE  DESCRIPTION
 *        0     4  magic "chk1"
 *        4     4  flags: bit 0 set = payload is one zstd frame, else raw
 *        8     4  stored length S of the payload
 *       12     4  raw length of the chunk (after decompression)
 *       16    32  chunk id: SHA-256 of the raw chunk
 *       48     S  payload
 *
 * Writers: one process appends to a pack at a time, holding flock(LOCK_EX)
 * on it; a pack that nobody holds and that is below the size limit may be
 * reused by the next writer, so short-lived commands do not leave a trail
 * of tiny packs.  Bytes past the last record the index names (a crash
 * mid-append) are garbage that compaction drops; appending after them is
 * safe because records are found through the index, never by scanning.
 *
 * Durability: pack_writer_sync() must return before any index transaction
 * names a record appended since the previous sync.
 */
#ifndef CAIRN_PACK_H
#define CAIRN_PACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define PACK_MAGIC "cairnpk\n"
#define PACK_HEADER_SIZE 16
#define PACK_RECORD_MAGIC "chk1"
#define PACK_RECORD_HEADER_SIZE 48
#define PACK_DEFAULT_LIMIT (256ULL << 20)

struct pack_writer {
  int fd;                       /* -1: no pack open */
  uint32_t number;
  uint64_t size;                /* append offset */
  bool unsynced;                /* records appended since the last sync */
  /* A pack we rolled away from that still has unsynced records. */
  int retired_fd;
};

/* A writer with no pack open. */
void pack_writer_init (struct pack_writer *w);

/* Formats DIR/pack-NNNNNNNN.pack into BUF. */
void pack_path (const char *dir, uint32_t number, char *buf, size_t len);

/* Parses a pack file name.  -EINVAL if NAME is not one. */
int pack_parse_name (const char *name, uint32_t *number);

/* Takes over an existing pack for appending if nobody holds it: 0, or
 * -EAGAIN if another writer holds it, or another negative errno. */
int pack_writer_adopt (struct pack_writer *w, const char *dir,
                       uint32_t number);

/* Creates pack NUMBER.  -EEXIST if the file exists. */
int pack_writer_create (struct pack_writer *w, const char *dir,
                        uint32_t number);
/* The same under file name NAME in DIR (gc makes its packs under a
 * temporary name, then links them in place). */
int pack_writer_create_named (struct pack_writer *w, const char *dir,
                              const char *name, uint32_t number);

/* Appends one record; returns its offset in *OFFSET.  On failure (ENOSPC)
 * the file is cut back to where it was. */
int pack_writer_append (struct pack_writer *w, const uint8_t id[32],
                        uint32_t flags, const void *payload,
                        uint32_t stored_len, uint32_t raw_len,
                        uint64_t *offset);

/* fdatasync every record appended so far. */
int pack_writer_sync (struct pack_writer *w);

/* Retires the current pack (it stays unsynced until the next sync). */
void pack_writer_retire (struct pack_writer *w);

void pack_writer_close (struct pack_writer *w);

/* Read side: a cache of open read-only descriptors, by pack number. */
struct pack_readers {
  /* Guards fds and n, and is held for reading across each read, so that
   * a descriptor is closed (gc unlinked its pack) only when no read uses
   * it. */
  pthread_rwlock_t lock;
  int *fds;                     /* -1 = not open */
  uint32_t n;
  char *dir;
};

int pack_readers_init (struct pack_readers *r, const char *dir);
void pack_readers_free (struct pack_readers *r);

/* Reads the record at OFFSET of pack NUMBER into BUF (which must hold
 * PACK_RECORD_HEADER_SIZE + STORED_LEN bytes) and checks its header
 * against ID and the lengths: -EBADMSG if they disagree, -ENOENT if the
 * pack is gone (gc compacted it: retry with a fresh transaction). */
int pack_read_record (struct pack_readers *r, uint32_t number,
                      uint64_t offset, const uint8_t id[32],
                      uint32_t stored_len, uint32_t raw_len, void *buf);

/* Forgets a cached descriptor (after gc unlinked the pack).  Opening a
 * pack for the first time also forgets every cached one whose file was
 * unlinked, so that a long-lived process gives their space back. */
void pack_readers_forget (struct pack_readers *r, uint32_t number);

#endif /* CAIRN_PACK_H */
