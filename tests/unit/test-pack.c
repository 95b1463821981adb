/* test-pack: pack files (store/pack.c) against the format and the rules
 * in pack.h, on real files in a scratch directory.
 *
 * File names round-trip.  A new pack's header and every record's header
 * are compared byte by byte on disk with pack.h's tables.  Records read
 * back; a reader refuses a record whose header disagrees with what the
 * index says of it (id, lengths), or that a truncated file cut short.
 * After a torn tail (a crash mid-append) the earlier records still read
 * and a writer that adopts the pack appends after the garbage.  adopt
 * refuses a pack that is held, missing or not a pack; a retired pack
 * stays locked until its sync; readers let go of unlinked packs.  A
 * failed append (EFBIG under RLIMIT_FSIZE; ENOSPC on a 64 KiB tmpfs in a
 * private mount namespace, where one can be mounted) cuts the file back,
 * so the next append starts clean.
 *
 * Record contents do not matter to a pack (it checks no hash: chunk.c
 * re-hashes what it reads, test-chunk checks that).
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/pack.h"
#include "store/util.h"
#include "file-bytes.h"
#include "tap.h"

static char dir[] = "/tmp/cairn-test-pack.XXXXXX";

/* A record to append, and where it went. */
struct rec {
  struct cairn_id id;
  uint32_t flags, stored_len, raw_len;
  uint8_t *payload;
  uint64_t offset;
};

/* R gets STORED_LEN bytes made from SEED; a "compressed" one (FLAGS bit
 * 0) claims a larger raw length, as a chunk's record would. */
static struct rec *
rec_make (struct rec *r, uint32_t seed, uint32_t stored_len, uint32_t flags)
{
  r->payload = malloc (stored_len ? stored_len : 1);
  if (!r->payload) {
    printf ("Bail out! out of memory\n");
    exit (1);
  }
  for (uint32_t i = 0; i < stored_len; i++)
    r->payload[i] = (uint8_t) (seed * 131 + i * 7 + (i >> 8));
  cairn_sha256 (r->payload, stored_len, &r->id);
  r->flags = flags;
  r->stored_len = stored_len;
  r->raw_len = flags & 1 ? 65536 : stored_len;
  r->offset = UINT64_MAX;
  return r;
}

static void
recs_free (struct rec *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (r[i].payload);
}

static int
append (struct pack_writer *w, struct rec *r)
{
  return pack_writer_append (w, r->id.bytes, r->flags, r->payload,
                             r->stored_len, r->raw_len, &r->offset);
}

/* R read back from pack NUMBER: the reader's answer, or 1 if it said 0
 * but the payload it gave differs. */
static int
read_back (struct pack_readers *rd, uint32_t number, const struct rec *r)
{
  uint8_t *buf = malloc (PACK_RECORD_HEADER_SIZE + r->stored_len);
  int ret = pack_read_record (rd, number, r->offset, r->id.bytes,
                              r->stored_len, r->raw_len, buf);

  if (ret == 0 && memcmp (buf + PACK_RECORD_HEADER_SIZE, r->payload,
                          r->stored_len) != 0)
    ret = 1;
  free (buf);
  return ret;
}

/* The same for N records: true if every one reads back. */
static bool
all_read_back (struct pack_readers *rd, uint32_t number,
               const struct rec *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (read_back (rd, number, &r[i]) != 0)
      return false;
  return true;
}

static void
put32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

/* A pack header as pack.h's table lays it out, written out by hand. */
static void
header_bytes (uint8_t h[PACK_HEADER_SIZE], const char *magic,
              uint32_t number)
{
  memcpy (h, magic, 8);
  put32 (h + 8, 1);
  put32 (h + 12, number);
}

/* Whether R's record is at R's offset in PATH as pack.h's table lays it
 * out. */
static bool
record_on_disk (const char *path, const struct rec *r)
{
  uint8_t h[PACK_RECORD_HEADER_SIZE];

  memcpy (h, "chk1", 4);
  put32 (h + 4, r->flags);
  put32 (h + 8, r->stored_len);
  put32 (h + 12, r->raw_len);
  memcpy (h + 16, r->id.bytes, 32);
  return file_bytes_are (path, r->offset, h, sizeof h)
    && file_bytes_are (path, r->offset + sizeof h, r->payload,
                       r->stored_len);
}

static const char *
path_of (uint32_t number)
{
  static char path[4096];
  pack_path (dir, number, path, sizeof path);
  return path;
}

static void
write_file (const char *path, const void *data, size_t len)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || cairn_pwrite_all (fd, data, len, 0) < 0) {
    printf ("Bail out! %s: %m\n", path);
    exit (1);
  }
  close (fd);
}

static void
names (void)
{
  static const char *const not_packs[] = {
    "", "pack-1a2b.pack", "pack-000001a2b.pack", "pack-00001a2b.pac",
    "pack-00001a2b.packs", "pack-0000g1a2.pack", "pick-00001a2b.pack",
    "pack-00001a2b_pack", "pack-00001a2b.pack.tmp", "pack-00001a2b",
    /* what sscanf's %x would take for a number */
    "pack-0x00001a.pack", "pack-+0001a2b.pack", "pack- 0001a2b.pack",
    "pack-00001A2B.pack", "pack--0000001.pack",
  };
  char buf[4096];
  uint32_t n = 0;
  bool refused = true;

  pack_path ("/s/packs", 0x1a2bu, buf, sizeof buf);
  is_str (buf, "/s/packs/pack-00001a2b.pack",
          "a pack's file name: 8 lowercase hex digits");
  ok (pack_parse_name ("pack-00001a2b.pack", &n) == 0 && n == 0x1a2b,
      "the name parses back to its number");
  ok (pack_parse_name ("pack-ffffffff.pack", &n) == 0 && n == 0xffffffff,
      "the largest number parses");
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (not_packs); i++)
    if (pack_parse_name (not_packs[i], &n) != -EINVAL) {
      diag ("  \"%s\" was taken for pack %08x", not_packs[i], n);
      refused = false;
    }
  ok (refused, "names that are not a pack's: -EINVAL");
}

/* Creates pack NUMBER into W, or bails out. */
static void
create (struct pack_writer *w, uint32_t number)
{
  int r;

  pack_writer_init (w);
  if ((r = pack_writer_create (w, dir, number)) < 0) {
    printf ("Bail out! create pack %08x: %s\n", number, strerror (-r));
    exit (1);
  }
}

/* Pack NUMBER holding the N records R, closed. */
static void
pack_with (uint32_t number, struct rec *r, size_t n)
{
  struct pack_writer w;

  create (&w, number);
  for (size_t i = 0; i < n; i++)
    if (append (&w, &r[i]) < 0) {
      printf ("Bail out! append to pack %08x: %m\n", number);
      exit (1);
    }
  pack_writer_close (&w);
}

enum { MAIN = 0x00c0ffee };     /* little-endian on disk: ee ff c0 00 */

static struct pack_writer main_writer;
static struct rec main_recs[4];

static void
create_and_append (void)
{
  struct pack_writer other;
  uint8_t want[PACK_HEADER_SIZE];
  char path[4096];
  int r;

  pack_writer_init (&main_writer);
  ok (pack_writer_create (&main_writer, dir, MAIN) == 0
      && main_writer.size == PACK_HEADER_SIZE
      && file_size (path_of (MAIN)) == PACK_HEADER_SIZE,
      "create: a new pack holds its 16-byte header");
  header_bytes (want, "cairnpk\n", MAIN);
  ok (file_bytes_are (path_of (MAIN), 0, want, sizeof want),
      "the header on disk: magic, version 1, number, little-endian");
  pack_writer_init (&other);
  ok (pack_writer_create (&other, dir, MAIN) == -EEXIST && other.fd == -1
      && file_size (path_of (MAIN)) == PACK_HEADER_SIZE,
      "creating it again: -EEXIST, the pack untouched");

  ok (pack_writer_create_named (&other, dir, "pack-tmp", 9) == 0,
      "create_named: a pack under another file name");
  snprintf (path, sizeof path, "%s/pack-tmp", dir);
  header_bytes (want, "cairnpk\n", 9);
  ok (file_bytes_are (path, 0, want, sizeof want),
      "its header names the number it was given");
  pack_writer_close (&other);

  rec_make (&main_recs[0], 1, 100, 1);
  rec_make (&main_recs[1], 2, 4096, 0);
  rec_make (&main_recs[2], 3, 1, 0);
  r = 0;
  for (int i = 0; i < 3 && r == 0; i++)
    r = append (&main_writer, &main_recs[i]);
  ok (r == 0 && main_recs[0].offset == PACK_HEADER_SIZE
      && main_recs[1].offset == PACK_HEADER_SIZE + 48 + 100
      && main_recs[2].offset == PACK_HEADER_SIZE + 2 * 48 + 100 + 4096,
      "three appends: each record right after the one before");
  ok (main_writer.size == main_recs[2].offset + 48 + 1
      && file_size (path_of (MAIN)) == (int64_t) main_writer.size,
      "the writer's append offset is the file's end");
  bool laid_out = true;
  for (int i = 0; i < 3; i++)
    laid_out &= record_on_disk (path_of (MAIN), &main_recs[i]);
  ok (laid_out, "each record on disk: \"chk1\", flags, stored and raw "
      "length (little-endian), id, payload");
  ok (main_writer.unsynced, "appended records wait for a sync");
  ok (pack_writer_sync (&main_writer) == 0 && !main_writer.unsynced,
      "sync: nothing waits any more");
}

static void
read_records (void)
{
  struct pack_readers rd;
  struct rec wrong;

  pack_readers_init (&rd, dir);
  ok (all_read_back (&rd, MAIN, main_recs, 3), "every record reads back");

  wrong = main_recs[1];
  wrong.id.bytes[31] ^= 1;
  is_int (read_back (&rd, MAIN, &wrong), -EBADMSG,
          "asked for another id at a record's offset: -EBADMSG");
  wrong = main_recs[1];
  wrong.stored_len--;
  is_int (read_back (&rd, MAIN, &wrong), -EBADMSG,
          "asked for another stored length: -EBADMSG");
  wrong = main_recs[0];
  wrong.raw_len = 4096;
  is_int (read_back (&rd, MAIN, &wrong), -EBADMSG,
          "asked for another raw length: -EBADMSG");
  wrong = main_recs[1];
  wrong.offset += PACK_RECORD_HEADER_SIZE;
  is_int (read_back (&rd, MAIN, &wrong), -EBADMSG,
          "an offset in the middle of a record: -EBADMSG");
  wrong = main_recs[2];
  wrong.offset = main_writer.size;
  is_int (read_back (&rd, MAIN, &wrong), -EBADMSG,
          "an offset at the end of the pack: -EBADMSG");
  is_int (read_back (&rd, MAIN + 1, &main_recs[0]), -ENOENT,
          "a pack that is not there: -ENOENT");

  /* Each header field, damaged on disk, then put back. */
  static const struct { unsigned at; const char *field; } fields[] = {
    { 0, "magic" }, { 3, "magic" }, { 8, "stored length" },
    { 12, "raw length" }, { 16, "id" }, { 47, "id" },
  };
  bool refused = true;
  for (size_t i = 0; i < CAIRN_ARRAY_SIZE (fields); i++) {
    uint64_t at = main_recs[1].offset + fields[i].at;
    file_flip (path_of (MAIN), at);
    int r = read_back (&rd, MAIN, &main_recs[1]);
    file_flip (path_of (MAIN), at);
    if (r != -EBADMSG) {
      diag ("  %s byte %u damaged: got %d", fields[i].field, fields[i].at, r);
      refused = false;
    }
  }
  ok (refused, "a damaged header byte (magic, lengths, id): -EBADMSG");
  ok (all_read_back (&rd, MAIN, main_recs, 3),
      "repaired, every record reads again");

  pack_readers_free (&rd);
}

/* A crash mid-append leaves part of a record at the end; pack.h: those
 * bytes are garbage that records appended after them do not mind. */
static void
torn_tail (void)
{
  enum { TORN = 0x10 };
  struct pack_readers rd;
  struct pack_writer w;
  struct rec r[4];
  const char *path = path_of (TORN);

  rec_make (&r[0], 10, 300, 1);
  rec_make (&r[1], 11, 5000, 0);
  pack_with (TORN, r, 2);
  pack_readers_init (&rd, dir);

  ok (truncate (path, r[1].offset + 48 + 2000) == 0
      && read_back (&rd, TORN, &r[0]) == 0
      && read_back (&rd, TORN, &r[1]) == -EBADMSG,
      "payload cut short: that record -EBADMSG, the one before reads");
  ok (truncate (path, r[1].offset + 20) == 0
      && read_back (&rd, TORN, &r[1]) == -EBADMSG,
      "header cut short: -EBADMSG");

  pack_writer_init (&w);
  ok (pack_writer_adopt (&w, dir, TORN) == 0
      && w.size == r[1].offset + 20,
      "adopt a pack with a torn tail: appends go at its end");
  rec_make (&r[2], 12, 700, 1);
  ok (append (&w, &r[2]) == 0 && r[2].offset == r[1].offset + 20
      && read_back (&rd, TORN, &r[2]) == 0
      && read_back (&rd, TORN, &r[0]) == 0,
      "a record appended after the torn one reads, and so does the first");
  pack_writer_close (&w);

  uint8_t garbage[777];
  int fd = open (path, O_WRONLY | O_APPEND | O_CLOEXEC);
  memset (garbage, 0xa5, sizeof garbage);
  memcpy (garbage, "chk1", 4);
  ok (fd >= 0 && write (fd, garbage, sizeof garbage) == sizeof garbage,
      "777 bytes of garbage after the last record");
  close (fd);
  rec_make (&r[3], 13, 900, 0);
  pack_writer_init (&w);
  ok (pack_writer_adopt (&w, dir, TORN) == 0 && append (&w, &r[3]) == 0
      && r[3].offset == r[2].offset + 48 + 700 + sizeof garbage
      && read_back (&rd, TORN, &r[3]) == 0
      && read_back (&rd, TORN, &r[2]) == 0,
      "adopted again: the next record goes after the garbage and reads");
  pack_writer_close (&w);

  pack_readers_free (&rd);
  recs_free (r, 4);
}

static void
adopt_rules (void)
{
  struct pack_writer w;
  uint8_t h[PACK_HEADER_SIZE];

  pack_writer_init (&w);
  is_int (pack_writer_adopt (&w, dir, 0x99), -ENOENT,
          "adopt a pack that does not exist: -ENOENT");
  is_int (pack_writer_adopt (&w, dir, MAIN), -EAGAIN,
          "adopt the pack another writer holds: -EAGAIN");

  header_bytes (h, "cairnpk\n", 0x20);
  write_file (path_of (0x20), h, 10);
  is_int (pack_writer_adopt (&w, dir, 0x20), -EBADMSG,
          "adopt a file shorter than a pack header: -EBADMSG");
  header_bytes (h, "cairnpkX", 0x21);
  write_file (path_of (0x21), h, sizeof h);
  is_int (pack_writer_adopt (&w, dir, 0x21), -EBADMSG,
          "adopt a file with another magic: -EBADMSG");
  header_bytes (h, "cairnpk\n", 0x22);
  write_file (path_of (0x23), h, sizeof h);
  is_int (pack_writer_adopt (&w, dir, 0x23), -EBADMSG,
          "adopt a pack whose header names another number: -EBADMSG");
  header_bytes (h, "cairnpk\n", 0x24);
  write_file (path_of (0x24), h, sizeof h);
  ok (pack_writer_adopt (&w, dir, 0x24) == 0 && w.fd >= 0
      && w.number == 0x24 && w.size == PACK_HEADER_SIZE,
      "the same header written by hand, right: adopted");
  pack_writer_close (&w);
}

static void
reopen (void)
{
  struct pack_readers rd;
  struct pack_writer w;
  uint64_t end = main_writer.size;

  pack_writer_close (&main_writer);
  ok (main_writer.fd == -1 && !main_writer.unsynced,
      "close: the writer holds no pack");
  pack_writer_init (&w);
  ok (pack_writer_adopt (&w, dir, MAIN) == 0 && w.size == end
      && !w.unsynced, "closed, the pack can be adopted, at its end");
  pack_readers_init (&rd, dir);
  ok (all_read_back (&rd, MAIN, main_recs, 3),
      "a new reader reads every record");
  rec_make (&main_recs[3], 4, 2000, 1);
  ok (append (&w, &main_recs[3]) == 0 && main_recs[3].offset == end
      && record_on_disk (path_of (MAIN), &main_recs[3])
      && all_read_back (&rd, MAIN, main_recs, 4),
      "an append after reopening goes at the old end; all four read");
  pack_writer_close (&w);
  pack_readers_free (&rd);
  recs_free (main_recs, 4);
}

/* pack.h: a retired pack "stays unsynced until the next sync" and keeps
 * its lock until then, so that nobody appends to it before it is
 * durable. */
static void
retire (void)
{
  struct pack_writer w, other;
  struct pack_readers rd;
  struct rec r;

  create (&w, 0x30);
  rec_make (&r, 30, 500, 0);
  append (&w, &r);
  pack_writer_retire (&w);
  pack_writer_init (&other);
  ok (w.fd == -1 && pack_writer_adopt (&other, dir, 0x30) == -EAGAIN,
      "retired with a record unsynced: still locked");
  ok (pack_writer_sync (&w) == 0 && w.retired_fd == -1
      && pack_writer_adopt (&other, dir, 0x30) == 0,
      "after the sync: let go, another writer adopts it");
  pack_readers_init (&rd, dir);
  ok (read_back (&rd, 0x30, &r) == 0, "the record appended before it reads");
  pack_readers_free (&rd);
  pack_writer_close (&other);
  pack_writer_close (&w);
  free (r.payload);

  create (&w, 0x31);
  pack_writer_retire (&w);
  pack_writer_init (&other);
  ok (w.fd == -1 && w.retired_fd == -1
      && pack_writer_adopt (&other, dir, 0x31) == 0,
      "retired with nothing unsynced: let go at once");
  pack_writer_close (&other);
}

/* Readers keep packs open; gc unlinks packs.  pack.h: opening another
 * pack forgets the unlinked ones, and so does pack_readers_forget. */
static void
readers_let_go (void)
{
  struct pack_readers rd;
  struct rec r[3];

  for (int i = 0; i < 3; i++) {
    rec_make (&r[i], 40 + i, 100, 0);
    pack_with (0x40 + i, &r[i], 1);
  }
  pack_readers_init (&rd, dir);

  int before = read_back (&rd, 0x40, &r[0]);
  unlink (path_of (0x40));
  int unlinked = read_back (&rd, 0x40, &r[0]);
  ok (before == 0 && unlinked == 0 && read_back (&rd, 0x41, &r[1]) == 0
      && read_back (&rd, 0x40, &r[0]) == -ENOENT,
      "an unlinked pack reads from its open descriptor until the reader "
      "opens another pack; then -ENOENT");

  before = read_back (&rd, 0x42, &r[2]);
  unlink (path_of (0x42));
  pack_readers_forget (&rd, 0x42);
  ok (before == 0 && read_back (&rd, 0x42, &r[2]) == -ENOENT,
      "forget after an unlink: -ENOENT");
  pack_readers_free (&rd);
  recs_free (r, 3);
}

/* ---- a failed append ------------------------------------------------ */

enum { REFUSED_CHECKS = 4, MOST_RECORDS = 64 };

/* Appends records of 4000 bytes to a new pack NUMBER in PACKS, with
 * LIMIT (true) in force, until one fails; then checks what pack.h
 * promises: the error WANT, the file cut back to its last whole record,
 * the records before intact, and (LIMIT (false) having made room) the
 * next append at the offset the failed one had. */
static void
refused_append (const char *packs, uint32_t number, void (*limit) (bool on),
                int want, const char *why)
{
  struct rec *r = calloc (MOST_RECORDS + 1, sizeof *r);
  struct pack_writer w;
  struct pack_readers rd;
  char path[4096];
  size_t n = 0;
  int err = 0;

  pack_path (packs, number, path, sizeof path);
  pack_writer_init (&w);
  if (pack_writer_create (&w, packs, number) < 0) {
    printf ("Bail out! create %s: %m\n", path);
    exit (1);
  }
  limit (true);
  while (n < MOST_RECORDS
         && (err = append (&w, rec_make (&r[n], 50 + n, 4000, 0))) == 0)
    n++;
  uint64_t failed_at = PACK_HEADER_SIZE + n * (48 + 4000);
  int64_t size = file_size (path);
  limit (false);

  is_int (err, want, "%s: the append that does not fit fails", why);
  ok (size == (int64_t) failed_at && w.size == failed_at,
      "%s: the file is cut back to the end of its last whole record", why);
  pack_readers_init (&rd, packs);
  ok (n > 0 && all_read_back (&rd, number, r, n),
      "%s: the %zu records before it read back", why, n);
  if (n == MOST_RECORDS)
    rec_make (&r[n], 50 + n, 4000, 0);
  ok (append (&w, &r[n]) == 0 && r[n].offset == failed_at
      && read_back (&rd, number, &r[n]) == 0,
      "%s: with room again, the next append starts where it failed", why);
  pack_readers_free (&rd);
  pack_writer_close (&w);
  recs_free (r, n + 1);
  free (r);
}

static struct rlimit fsize_was;

/* Room for the header and 3 records and a bit of a fourth, so that the
 * fourth append writes part of itself before it fails. */
static void
fsize_limit (bool on)
{
  struct rlimit lim;

  if (on) {
    getrlimit (RLIMIT_FSIZE, &fsize_was);
    signal (SIGXFSZ, SIG_IGN);
    lim = fsize_was;
    lim.rlim_cur = PACK_HEADER_SIZE + 3 * (48 + 4000) + 1000;
  }
  else
    lim = fsize_was;
  if (setrlimit (RLIMIT_FSIZE, &lim) == -1) {
    printf ("Bail out! setrlimit: %m\n");
    exit (1);
  }
}

static char filler[4200];

/* A quarter of the 64 KiB tmpfs is a file that goes to make room. */
static void
tmpfs_filler (bool on)
{
  static char block[16384];

  if (on)
    write_file (filler, block, sizeof block);
  else
    unlink (filler);
}

static void
write_id_map (const char *file, const char *map)
{
  int fd = open (file, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write (fd, map, strlen (map)) < 0) { /* the mount will fail */ }
    close (fd);
  }
}

/* Mounts a 64 KiB tmpfs on MNT in a mount namespace of this process's
 * own (so that it goes when the process does): 0 or -errno. */
static int
private_tmpfs (const char *mnt)
{
  char map[64];
  uid_t uid = geteuid ();
  gid_t gid = getegid ();

  if (unshare (CLONE_NEWNS) == -1) {
    /* Not root: a user namespace of our own gives the right to mount. */
    if (unshare (CLONE_NEWUSER | CLONE_NEWNS) == -1)
      return -errno;
    write_id_map ("/proc/self/setgroups", "deny");
    snprintf (map, sizeof map, "0 %u 1", (unsigned) uid);
    write_id_map ("/proc/self/uid_map", map);
    snprintf (map, sizeof map, "0 %u 1", (unsigned) gid);
    write_id_map ("/proc/self/gid_map", map);
  }
  if (mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1
      || mount ("tmpfs", mnt, "tmpfs", 0, "size=64k") == -1)
    return -errno;
  return 0;
}

/* The ENOSPC checks run in a child, which alone sees the tmpfs; it
 * prints their TAP lines and exits with how many failed. */
static void
enospc_on_small_tmpfs (void)
{
  enum { NO_TMPFS = 77 };
  char mnt[4096];
  int status;

  snprintf (mnt, sizeof mnt, "%s/tmpfs", dir);
  snprintf (filler, sizeof filler, "%s/filler", mnt);
  mkdir (mnt, 0755);
  fflush (stdout);
  pid_t pid = fork ();
  if (pid == 0) {
    int failed = tap_failed;
    int r = private_tmpfs (mnt);
    if (r < 0) {
      diag ("mounting a tmpfs: %s", strerror (-r));
      exit (NO_TMPFS);
    }
    refused_append (mnt, 1, tmpfs_filler, -ENOSPC, "full tmpfs");
    exit (tap_failed - failed);
  }
  if (pid == -1 || waitpid (pid, &status, 0) != pid || !WIFEXITED (status)) {
    ok (false, "the child that fills a tmpfs ends");
    return;
  }
  if (WEXITSTATUS (status) == NO_TMPFS)
    skip (REFUSED_CHECKS, "no tmpfs can be mounted here (needs root or "
          "unprivileged user namespaces)");
  else {
    tap_count += REFUSED_CHECKS;
    tap_failed += WEXITSTATUS (status);
  }
}

int
main (void)
{
  if (!mkdtemp (dir)) {
    printf ("Bail out! mkdtemp %s: %m\n", dir);
    return 1;
  }

  names ();
  create_and_append ();
  read_records ();
  torn_tail ();
  adopt_rules ();
  reopen ();
  retire ();
  readers_let_go ();
  refused_append (dir, 0x50, fsize_limit, -EFBIG, "RLIMIT_FSIZE");
  enospc_on_small_tmpfs ();

  cairn_remove_tree (dir);
  return done_testing ();
}
