/* postcopy.c: guest RAM served lazily out of the store, as the source of
 * a QEMU postcopy migration.  See postcopy.h for the stream sent and why.
 *
 * The saved stream (QEMU 7.2, savevm.c and ram.c), as vm commit makes it:
 *
 *   be32 magic "QEVM", be32 version 3
 *   07 configuration: be32 len, machine name; subsection 05
 *      "configuration/capabilities": be32 version, be32 count, count x
 *      (u8 len, name)
 *   01 ram section start: be32 id, u8 len "ram", be32 instance, be32
 *      version; be64 total | MEM_SIZE, then per block u8 len, name, be64
 *      length, be64 address (x-ignore-shared); be64 EOS; footer
 *   02 / 03 ram section part / end: be32 id; page records; be64 EOS;
 *      footer
 *   04 device sections (not parsed: copied whole)
 *   00 EOF, then 06 vmdesc: be32 len, JSON
 *
 * A page record is be64 offset | flags: ZERO (a fill byte follows) or
 * PAGE (4096 bytes follow); without CONTINUE, u8 len and the block's name
 * come first.  A footer is 7e, be32 section id.
 *
 * The return path carries be16 type, be16 length, then: SHUT (be32
 * status), PONG, REQ_PAGES (be64 offset, be32 length: the block asked for
 * last) or REQ_PAGES_ID (the same, then u8 len and a block name).
 *
 * One thread speaks the stream (serve): it answers requests between
 * chunks and never sends a page twice (QEMU fails on a page placed
 * twice).  The caller's thread drives QMP: "cont" once QEMU has loaded
 * the device state, then waits for the migration to complete.
 */
#define _GNU_SOURCE
#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/util.h"
#include "qemu-glue/postcopy.h"
#include "qemu-glue/vm-internal.h"
#include "qemu-glue/vmstate.h"

#define PAGE 4096u
#define RAM_BLOCK "mem"                 /* launch.c: memory-backend id */

enum {
  VM_EOF = 0x00, SECTION_START = 0x01, SECTION_PART = 0x02,
  SECTION_END = 0x03, SECTION_FULL = 0x04, SUBSECTION = 0x05,
  VMDESCRIPTION = 0x06, CONFIGURATION = 0x07, COMMAND = 0x08,
  FOOTER = 0x7e,
};
enum {
  CMD_OPEN_RETURN_PATH = 1, CMD_POSTCOPY_ADVISE = 3, CMD_POSTCOPY_LISTEN = 4,
  CMD_POSTCOPY_RUN = 5, CMD_POSTCOPY_RAM_DISCARD = 6, CMD_PACKAGED = 7,
};
enum {
  FLAG_ZERO = 0x02, FLAG_MEM_SIZE = 0x04, FLAG_PAGE = 0x08, FLAG_EOS = 0x10,
  FLAG_CONTINUE = 0x20,
};
enum { RP_SHUT = 1, RP_PONG = 2, RP_REQ_PAGES_ID = 3, RP_REQ_PAGES = 4 };

struct block {
  const uint8_t *name;
  uint8_t name_len;
  uint64_t length;
};

struct span {
  size_t off, len;
};

struct vm_postcopy {
  const uint8_t *state;
  size_t len;
  struct cairn_volume mem;
  struct span machine;          /* the configuration's machine name */
  uint32_t ram_id, ram_instance, ram_version;
  bool footers;
  struct block blocks[32];
  int nblocks;
  struct span pages[8];         /* page records of the small blocks */
  int npages;
  struct span devices;          /* the device sections */
};

/* ------------------------------------------------------------------ */
/* Taking the saved stream apart                                       */

struct cursor {
  const uint8_t *p;
  size_t len, off;
  bool bad;
};

static const uint8_t *
take (struct cursor *c, size_t n)
{
  if (c->bad || c->len - c->off < n) {
    c->bad = true;
    return NULL;
  }
  c->off += n;
  return c->p + c->off - n;
}

static uint64_t
get_be (struct cursor *c, int bytes)
{
  const uint8_t *b = take (c, bytes);
  uint64_t v = 0;

  for (int i = 0; b && i < bytes; i++)
    v = v << 8 | b[i];
  return v;
}

static bool
next_is (const struct cursor *c, uint8_t byte)
{
  return !c->bad && c->off < c->len && c->p[c->off] == byte;
}

static void
footer (struct cursor *c, struct vm_postcopy *pc)
{
  if (next_is (c, FOOTER)) {
    take (c, 1);
    pc->footers = true;
    if (get_be (c, 4) != pc->ram_id)
      c->bad = true;
  }
}

/* The ram section's content: the block list, or page records. */
static void
ram_records (struct cursor *c, struct vm_postcopy *pc, bool ignore_shared)
{
  size_t start = c->off;

  while (!c->bad) {
    size_t at = c->off;
    uint64_t v = get_be (c, 8), flags = v & (PAGE - 1), addr = v & ~(uint64_t) (PAGE - 1);

    if (flags == FLAG_EOS) {
      if (at > start) {
        if (pc->npages == (int) (sizeof pc->pages / sizeof pc->pages[0]))
          c->bad = true;
        else
          pc->pages[pc->npages++] = (struct span) { start, at - start };
      }
      return;
    }
    if (flags == FLAG_MEM_SIZE) {
      for (uint64_t left = addr; left && !c->bad;) {
        struct block *b = &pc->blocks[pc->nblocks];
        if (pc->nblocks == (int) (sizeof pc->blocks / sizeof pc->blocks[0])) {
          c->bad = true;
          break;
        }
        b->name_len = get_be (c, 1);
        b->name = take (c, b->name_len);
        b->length = get_be (c, 8);
        if (ignore_shared)
          get_be (c, 8);
        if (b->length > left)
          c->bad = true;
        left -= b->length;
        pc->nblocks++;
      }
      start = c->off;
      continue;
    }
    /* Pages of the small blocks; "mem" is not in the stream. */
    if ((flags & ~FLAG_CONTINUE) != FLAG_ZERO
        && (flags & ~FLAG_CONTINUE) != FLAG_PAGE) {
      c->bad = true;
      break;
    }
    if (!(flags & FLAG_CONTINUE)) {
      uint8_t n = get_be (c, 1);
      const uint8_t *name = take (c, n);
      if (name && n == strlen (RAM_BLOCK) && memcmp (name, RAM_BLOCK, n) == 0)
        c->bad = true;
    }
    take (c, flags & FLAG_ZERO ? 1 : PAGE);
  }
}

static int
parse (struct vm_postcopy *pc)
{
  struct cursor c = { pc->state, pc->len, 0, false };
  bool ignore_shared = false;
  size_t eof;

  if (get_be (&c, 4) != 0x5145564d || get_be (&c, 4) != 3
      || get_be (&c, 1) != CONFIGURATION)
    return -ENOTSUP;
  pc->machine.len = get_be (&c, 4);
  pc->machine.off = c.off;
  take (&c, pc->machine.len);
  while (next_is (&c, SUBSECTION)) {
    static const char caps[] = "configuration/capabilities";
    take (&c, 1);
    uint8_t n = get_be (&c, 1);
    const uint8_t *name = take (&c, n);
    if (!name || n != strlen (caps) || memcmp (name, caps, n) != 0)
      return -ENOTSUP;
    get_be (&c, 4);
    for (uint32_t k = get_be (&c, 4); k > 0 && !c.bad; k--) {
      uint8_t m = get_be (&c, 1);
      const uint8_t *cap = take (&c, m);
      if (cap && m == strlen ("x-ignore-shared")
          && memcmp (cap, "x-ignore-shared", m) == 0)
        ignore_shared = true;
      else
        return -ENOTSUP;        /* another capability to keep */
    }
  }
  if (!ignore_shared)
    return -ENOTSUP;

  /* The ram section, until the first device section. */
  while (!c.bad && !next_is (&c, SECTION_FULL)) {
    uint8_t type = get_be (&c, 1);
    if (type == SECTION_START) {
      pc->ram_id = get_be (&c, 4);
      uint8_t n = get_be (&c, 1);
      const uint8_t *name = take (&c, n);
      if (!name || n != 3 || memcmp (name, "ram", 3) != 0 || pc->nblocks)
        return -ENOTSUP;
      pc->ram_instance = get_be (&c, 4);
      pc->ram_version = get_be (&c, 4);
    }
    else if ((type != SECTION_PART && type != SECTION_END)
             || get_be (&c, 4) != pc->ram_id)
      return -ENOTSUP;
    ram_records (&c, pc, ignore_shared);
    footer (&c, pc);
  }
  if (c.bad || pc->nblocks == 0)
    return -ENOTSUP;

  /* The device sections end with EOF, which the vmdesc may follow (its
   * JSON has no byte 06 in it: the last one is its start). */
  if (pc->len < c.off + 6)
    return -ENOTSUP;
  eof = pc->len - 1;
  for (size_t k = pc->len - 5; k > c.off; k--)
    if (pc->state[k] == VMDESCRIPTION) {
      struct cursor d = { pc->state, pc->len, k + 1, false };
      if (get_be (&d, 4) == pc->len - k - 5)
        eof = k - 1;
      break;
    }
  if (eof <= c.off || pc->state[eof] != VM_EOF)
    return -ENOTSUP;
  pc->devices = (struct span) { c.off, eof - c.off };

  /* "mem" is the memory volume, whole pages of it. */
  for (int i = 0; i < pc->nblocks; i++) {
    const struct block *b = &pc->blocks[i];
    if (b->name_len == strlen (RAM_BLOCK)
        && memcmp (b->name, RAM_BLOCK, b->name_len) == 0)
      return b->length == pc->mem.size && b->length % PAGE == 0
        && pc->mem.chunk_size % PAGE == 0 ? 0 : -ENOTSUP;
  }
  return -ENOTSUP;
}

int
vm_postcopy_plan (const uint8_t *state, size_t len,
                  const struct cairn_volume *mem, struct vm_postcopy **out)
{
  struct vm_postcopy *pc = calloc (1, sizeof *pc);
  int r;

  if (!pc)
    return -ENOMEM;
  pc->state = state;
  pc->len = len;
  pc->mem = *mem;
  r = parse (pc);
  if (r < 0) {
    free (pc);
    return r;
  }
  *out = pc;
  return 0;
}

void
vm_postcopy_free (struct vm_postcopy *pc)
{
  free (pc);
}

/* ------------------------------------------------------------------ */
/* Writing the stream                                                  */

struct out {
  uint8_t *p;
  size_t len, cap;
  bool failed;
};

static void
put (struct out *o, const void *data, size_t n)
{
  if (!o->failed && cairn_reserve (&o->p, &o->cap, o->len + n, 65536) < 0)
    o->failed = true;
  if (o->failed)
    return;
  memcpy (o->p + o->len, data, n);
  o->len += n;
}

static void
put_be (struct out *o, uint64_t v, int bytes)
{
  uint8_t b[8];

  for (int i = 0; i < bytes; i++)
    b[i] = v >> (8 * (bytes - 1 - i));
  put (o, b, bytes);
}

static void
put_command (struct out *o, uint16_t cmd, const struct out *data)
{
  put_be (o, COMMAND, 1);
  put_be (o, cmd, 2);
  put_be (o, data ? data->len : 0, 2);
  if (data)
    put (o, data->p, data->len);
}

static void
put_section_end (struct out *o, const struct vm_postcopy *pc)
{
  put_be (o, FLAG_EOS, 8);
  if (pc->footers) {
    put_be (o, FOOTER, 1);
    put_be (o, pc->ram_id, 4);
  }
}

/* Everything up to and with the package that makes the guest run. */
static int
prologue (const struct vm_postcopy *pc, struct out *o)
{
  struct out arg = { 0 }, pkg = { 0 };
  uint64_t total = 0;
  int r;

  put_be (o, 0x5145564d, 4);
  put_be (o, 3, 4);
  put_be (o, CONFIGURATION, 1);
  put_be (o, pc->machine.len, 4);
  put (o, pc->state + pc->machine.off, pc->machine.len);
  put_command (o, CMD_OPEN_RETURN_PATH, NULL);
  put_be (&arg, PAGE, 8);       /* OR of the RAM blocks' page sizes */
  put_be (&arg, PAGE, 8);       /* target page size */
  put_command (o, CMD_POSTCOPY_ADVISE, &arg);

  put_be (o, SECTION_START, 1);
  put_be (o, pc->ram_id, 4);
  put_be (o, 3, 1);
  put (o, "ram", 3);
  put_be (o, pc->ram_instance, 4);
  put_be (o, pc->ram_version, 4);
  for (int i = 0; i < pc->nblocks; i++)
    total += pc->blocks[i].length;
  put_be (o, total | FLAG_MEM_SIZE, 8);
  for (int i = 0; i < pc->nblocks; i++) {
    put_be (o, pc->blocks[i].name_len, 1);
    put (o, pc->blocks[i].name, pc->blocks[i].name_len);
    put_be (o, pc->blocks[i].length, 8);
  }
  put_section_end (o, pc);
  for (int i = 0; i < pc->npages; i++) {
    put_be (o, SECTION_PART, 1);
    put_be (o, pc->ram_id, 4);
    put (o, pc->state + pc->pages[i].off, pc->pages[i].len);
    put_section_end (o, pc);
  }

  arg.len = 0;
  put_be (&arg, 0, 1);          /* version */
  put_be (&arg, strlen (RAM_BLOCK), 1);
  put (&arg, RAM_BLOCK, strlen (RAM_BLOCK));
  put_be (&arg, 0, 1);
  put_be (&arg, 0, 8);
  put_be (&arg, PAGE, 8);
  put_command (o, CMD_POSTCOPY_RAM_DISCARD, &arg);

  put_command (&pkg, CMD_POSTCOPY_LISTEN, NULL);
  put (&pkg, pc->state + pc->devices.off, pc->devices.len);
  put_command (&pkg, CMD_POSTCOPY_RUN, NULL);
  arg.len = 0;
  put_be (&arg, pkg.len, 4);
  put_command (o, CMD_PACKAGED, &arg);
  put (o, pkg.p, pkg.len);
  r = o->failed || arg.failed || pkg.failed ? -ENOMEM : 0;
  free (arg.p);
  free (pkg.p);
  return r;
}

/* ------------------------------------------------------------------ */
/* The server                                                          */

struct server {
  struct vm_postcopy *pc;
  struct cairn_store *s;
  int sock;
  int timeout_ms;               /* QEMU taking no more for that: stuck */
  int64_t deadline;
  struct vm_chunk_list chunks;
  int32_t *slot;                /* chunk index -> place in CHUNKS, or -1 */
  uint8_t *sent;                /* per page of "mem" */
  bool *done;                   /* per entry of CHUNKS: all of it sent */
  uint8_t *buf;                 /* one chunk for requests, then a batch */
  struct out o;
  bool first;                   /* no page record in this section yet */
  uint8_t rp[4096];             /* return path, unparsed */
  size_t rp_len;
  bool block_ok;                /* the last block asked for is "mem" */
  bool eof_sent;                /* no more pages may be sent */
  struct vm_postcopy_stats st;
  int error;
  char message[512];            /* cairn_last_error is per thread */
  atomic_bool finished;
};

static int
fail (struct server *sv, int e, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

static int
fail (struct server *sv, int e, const char *fmt, ...)
{
  va_list ap;

  if (sv->error == 0) {
    va_start (ap, fmt);
    vsnprintf (sv->message, sizeof sv->message, fmt, ap);
    va_end (ap);
    sv->error = e;
  }
  return e;
}

static int
send_all (struct server *sv, const uint8_t *p, size_t len)
{
  while (len > 0) {
    int r = qmp_wait_fd (sv->sock, POLLOUT, sv->deadline);
    if (r < 0)
      return fail (sv, r, "sending guest RAM to QEMU: %s", strerror (-r));
    ssize_t n = send (sv->sock, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EINTR && errno != EAGAIN)
      return fail (sv, -errno, "sending guest RAM to QEMU: %m");
    if (n > 0) {
      p += n;
      len -= n;
      sv->deadline = qmp_deadline (sv->timeout_ms);
    }
  }
  return 0;
}

static void
section_begin (struct server *sv)
{
  sv->o.len = 0;
  put_be (&sv->o, SECTION_PART, 1);
  put_be (&sv->o, sv->pc->ram_id, 4);
  sv->first = true;
}

static void
section_page (struct server *sv, uint64_t off, const uint8_t *data)
{
  uint64_t flags = data ? FLAG_PAGE : FLAG_ZERO;

  put_be (&sv->o, off | flags | (sv->first ? 0 : FLAG_CONTINUE), 8);
  if (sv->first) {
    put_be (&sv->o, strlen (RAM_BLOCK), 1);
    put (&sv->o, RAM_BLOCK, strlen (RAM_BLOCK));
  }
  if (data)
    put (&sv->o, data, PAGE);
  else
    put_be (&sv->o, 0, 1);
  sv->sent[off / PAGE] = 1;
  sv->first = false;
  if (data)
    sv->st.pages++;
  else
    sv->st.zero_pages++;
}

static int
section_send (struct server *sv)
{
  if (sv->first)
    return 0;                   /* nothing in it */
  put_section_end (&sv->o, sv->pc);
  if (sv->o.failed)
    return fail (sv, -ENOMEM, "out of memory");
  return send_all (sv, sv->o.p, sv->o.len);
}

/* The unsent pages of chunk number SLOT (its bytes in DATA) that hold
 * data, page FIRST (if any) first. */
static void
chunk_pages (struct server *sv, size_t slot, const uint8_t *data,
             uint64_t first)
{
  uint32_t cs = sv->pc->mem.chunk_size;
  uint64_t base = sv->chunks.v[slot].index * cs;
  uint64_t end = CAIRN_MIN ((uint64_t) cs, sv->pc->mem.size - base);

  if (first != UINT64_MAX && !sv->sent[first / PAGE])
    section_page (sv, first, cairn_is_zero (data + first - base, PAGE)
                  ? NULL : data + first - base);
  for (uint64_t o = 0; o < end; o += PAGE)
    if (!sv->sent[(base + o) / PAGE] && !cairn_is_zero (data + o, PAGE))
      section_page (sv, base + o, data + o);
  sv->done[slot] = true;
}


static int
read_chunks (struct server *sv, const struct cairn_id *ids, size_t n,
             void **bufs)
{
  int r = cairn_chunk_read_many (sv->s, ids, n, bufs);

  if (r < 0)
    return fail (sv, r, "%s", *cairn_last_error () ? cairn_last_error ()
                 : cairn_strerror (r));
  return 0;
}

/* Pages [START, START + LEN) of the block asked for. */
static int
answer (struct server *sv, uint64_t start, uint64_t len)
{
  uint32_t cs = sv->pc->mem.chunk_size;
  int r = 0;

  if (!sv->block_ok)
    return fail (sv, -EPROTO, "QEMU asked for a page of a RAM block other "
                 "than the guest's");
  if (start % PAGE || len % PAGE || start >= sv->pc->mem.size
      || len > sv->pc->mem.size - start)
    return fail (sv, -EPROTO, "QEMU asked for pages outside guest RAM");
  section_begin (sv);
  for (uint64_t off = start; off < start + len && r == 0; off += PAGE) {
    if (sv->sent[off / PAGE])
      continue;
    sv->st.requests++;
    int32_t slot = sv->slot[off / cs];
    if (slot < 0) {
      section_page (sv, off, NULL);     /* a hole */
      continue;
    }
    void *buf = sv->buf;
    if ((r = read_chunks (sv, &sv->chunks.v[slot].id, 1, &buf)) == 0)
      chunk_pages (sv, slot, sv->buf, off);
  }
  if (r == 0)
    r = section_send (sv);
  return r;
}

/* Handles what the return path holds.  WAIT (once EOF is sent): until
 * QEMU's SHUT or its end of the socket.  1 then, else 0 or -errno. */
static int
return_path (struct server *sv, bool wait)
{
  for (;;) {
    ssize_t n = recv (sv->sock, sv->rp + sv->rp_len,
                      sizeof sv->rp - sv->rp_len, MSG_DONTWAIT);
    if (n == 0)
      return wait ? 1 : fail (sv, -ECONNRESET,
                              "QEMU closed the migration stream");
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN)
        return fail (sv, -errno, "the migration stream: %m");
      if (!wait)
        return 0;
      int r = qmp_wait_fd (sv->sock, POLLIN, sv->deadline);
      if (r < 0)
        return fail (sv, r, "QEMU did not finish the migration: %s",
                     strerror (-r));
      continue;
    }
    sv->rp_len += n;
    size_t at = 0;
    int r = 0;
    while (r == 0 && sv->rp_len - at >= 4) {
      const uint8_t *m = sv->rp + at;
      uint16_t type = m[0] << 8 | m[1], len = m[2] << 8 | m[3];
      if (sv->rp_len - at < 4u + len)
        break;
      struct cursor c = { m + 4, len, 0, false };
      at += 4u + len;
      if (type == RP_REQ_PAGES || type == RP_REQ_PAGES_ID) {
        uint64_t start = get_be (&c, 8), plen = get_be (&c, 4);
        if (type == RP_REQ_PAGES_ID) {
          uint8_t k = get_be (&c, 1);
          const uint8_t *name = take (&c, k);
          sv->block_ok = name && k == strlen (RAM_BLOCK)
            && memcmp (name, RAM_BLOCK, k) == 0;
        }
        if (c.bad)
          r = fail (sv, -EPROTO, "a malformed page request from QEMU");
        /* After EOF only holes can be missing: zero once QEMU ends. */
        else if (!sv->eof_sent)
          r = answer (sv, start, plen);
      }
      else if (type == RP_SHUT) {
        uint32_t status = get_be (&c, 4);
        r = status ? fail (sv, -EIO, "QEMU failed to load the guest's RAM "
                           "(status %u; see its qemu.log)", status) : 1;
      }
      else if (type != RP_PONG)
        r = fail (sv, -EPROTO, "QEMU sent message %u on the return path",
                  type);
    }
    memmove (sv->rp, sv->rp + at, sv->rp_len - at);
    sv->rp_len -= at;
    if (r != 0)
      return r;
    if (!wait)
      return 0;
  }
}

/* The chunks of RAM, CAIRN_HASH_BATCH at a time, in order; requests are
 * answered between chunks. */
static int
stream (struct server *sv)
{
  uint32_t cs = sv->pc->mem.chunk_size;
  struct cairn_id ids[CAIRN_HASH_BATCH];
  void *bufs[CAIRN_HASH_BATCH];
  size_t slots[CAIRN_HASH_BATCH];
  int r = 0;

  for (size_t i = 0; i < sv->chunks.n && r == 0;) {
    size_t m = 0;
    if ((r = return_path (sv, false)) < 0)
      break;
    for (; i < sv->chunks.n && m < CAIRN_HASH_BATCH; i++)
      if (!sv->done[i]) {
        ids[m] = sv->chunks.v[i].id;
        bufs[m] = sv->buf + (size_t) (m + 1) * cs;
        slots[m++] = i;
      }
    if (m && (r = read_chunks (sv, ids, m, bufs)) < 0)
      break;
    for (size_t k = 0; k < m && r == 0; k++) {
      if ((r = return_path (sv, false)) < 0 || sv->done[slots[k]])
        continue;
      section_begin (sv);
      chunk_pages (sv, slots[k], bufs[k], UINT64_MAX);
      r = section_send (sv);
    }
  }
  if (r < 0)
    return r;

  /* The end of the ram section, EOF; QEMU answers SHUT. */
  sv->o.len = 0;
  put_be (&sv->o, SECTION_END, 1);
  put_be (&sv->o, sv->pc->ram_id, 4);
  put_section_end (&sv->o, sv->pc);
  put_be (&sv->o, VM_EOF, 1);
  if (sv->o.failed)
    return fail (sv, -ENOMEM, "out of memory");
  sv->eof_sent = true;
  if ((r = send_all (sv, sv->o.p, sv->o.len)) < 0)
    return r;
  r = return_path (sv, true);
  return r < 0 ? r : 0;
}

static void *
serve (void *arg)
{
  struct server *sv = arg;
  struct out o = { 0 };

  if (prologue (sv->pc, &o) < 0)
    fail (sv, -ENOMEM, "out of memory");
  else if (send_all (sv, o.p, o.len) == 0)
    stream (sv);
  free (o.p);
  atomic_store (&sv->finished, true);
  return NULL;
}

static int
server_init (struct server *sv, struct vm_postcopy *pc, struct cairn_store *s)
{
  uint32_t cs = pc->mem.chunk_size;
  uint64_t nchunks = (pc->mem.size + cs - 1) / cs;
  int r;

  memset (sv, 0, sizeof *sv);
  sv->pc = pc;
  sv->s = s;
  sv->sock = -1;
  if ((r = vm_volume_chunks (s, &pc->mem, &sv->chunks)) < 0)
    return r;
  sv->slot = malloc (nchunks * sizeof *sv->slot);
  sv->sent = calloc (pc->mem.size / PAGE, 1);
  sv->done = calloc (sv->chunks.n + 1, sizeof *sv->done);
  sv->buf = malloc ((size_t) (CAIRN_HASH_BATCH + 1) * cs);
  if (!sv->slot || !sv->sent || !sv->done || !sv->buf)
    return -ENOMEM;
  for (uint64_t i = 0; i < nchunks; i++)
    sv->slot[i] = -1;
  for (size_t i = 0; i < sv->chunks.n; i++)
    sv->slot[sv->chunks.v[i].index] = i;
  return 0;
}

static void
server_free (struct server *sv)
{
  free (sv->chunks.v);
  free (sv->slot);
  free (sv->sent);
  free (sv->done);
  free (sv->buf);
  free (sv->o.p);
}

int
vm_postcopy_run (struct vm_postcopy *pc, struct cairn_store *s,
                 struct qmp *qmp, int timeout_ms,
                 struct vm_postcopy_stats *st)
{
  struct vmstate_stats vs;
  struct server sv;
  pthread_t th;
  bool started = false;
  char state[64];
  double t0 = vm_now_ms ();
  int r;

  memset (st, 0, sizeof *st);
  r = server_init (&sv, pc, s);
  if (r == 0)
    r = vmstate_incoming_postcopy (qmp, timeout_ms, &sv.sock);
  if (r == -EREMOTEIO)
    r = cairn_error (r, "QEMU refused the postcopy migration: %s",
                     qmp_error (qmp));
  if (r < 0)
    goto out;
  sv.timeout_ms = timeout_ms;
  sv.deadline = qmp_deadline (timeout_ms);
  if (pthread_create (&th, NULL, serve, &sv) != 0) {
    r = cairn_error (-EAGAIN, "cannot start a thread");
    goto out;
  }
  started = true;

  /* "inmigrate" until QEMU ran POSTCOPY_RUN; then "paused" (-S). */
  for (;;) {
    if (atomic_load (&sv.finished) && sv.error)
      break;
    if ((r = vm_qmp_status (qmp, state, sizeof state)) < 0)
      break;
    if (strcmp (state, "paused") == 0) {
      r = qmp_execute (qmp, "cont", NULL, NULL, timeout_ms);
      st->running_ms = vm_now_ms () - t0;
      break;
    }
    if (strcmp (state, "inmigrate") != 0) {
      r = cairn_error (-EIO, "QEMU went to state '%s' while loading the "
                       "device state", state);
      break;
    }
    if (vm_now_ms () - t0 > timeout_ms) {
      r = -ETIMEDOUT;
      break;
    }
    nanosleep (&(struct timespec) { 0, 200 * 1000 }, NULL);
  }
  if (r < 0)
    shutdown (sv.sock, SHUT_RDWR);      /* the server stops too */
  pthread_join (th, NULL);
  started = false;
  if (sv.error) {
    r = cairn_error (sv.error, "%s", sv.message);
    goto out;
  }
  if (r < 0)
    goto out;
  r = vmstate_wait (qmp, timeout_ms, &vs);
  if (r == -EIO)
    r = cairn_error (r, "loading the guest: %s", vs.error);
  st->done_ms = vm_now_ms () - t0;
  st->pages = sv.st.pages;
  st->zero_pages = sv.st.zero_pages;
  st->requests = sv.st.requests;

 out:
  if (started) {
    shutdown (sv.sock, SHUT_RDWR);
    pthread_join (th, NULL);
  }
  if (sv.sock >= 0)
    close (sv.sock);
  server_free (&sv);
  return r;
}
