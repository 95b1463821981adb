/* vmline.c: the machine a VM commit records, as its "vm" line, and
 * whether this host's QEMU can restore it.
 *
 * What goes in the line is what README-flow.md found must match between
 * the QEMU that saved a device state and the one that loads it: the
 * machine type and options, -cpu, -smp, -m (and the memory backend, which
 * cairn always calls "mem"), and the device list, which cairn fixes (one
 * virtio-blk disk, the serial console).  -cpu and -smp mismatches load
 * *silently*, so they are recorded and rebuilt exactly, never taken from
 * the restoring command line.  The append line is recorded too: a guest
 * that reboots after a restore boots with it.
 *
 * Compatibility: only QEMU 7.2 was tried; a device state from another
 * major.minor may or may not load, so restore refuses it with one clear
 * sentence rather than start a QEMU that exits half-way.  The patch level
 * (7.2.22 vs 7.2.5) does not change migration formats.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qemu-glue/vm-internal.h"

#define VM_LINE_FORMAT 1

bool
vm_name_valid (const char *name)
{
  size_t n = strlen (name);

  if (n == 0 || n > VM_NAME_MAX || name[0] == '.' || name[0] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum ((unsigned char) name[i]) && !strchr ("._-", name[i]))
      return false;
  return true;
}

static bool
plain_byte (unsigned char c)
{
  return isalnum (c) || strchr ("._,:/+-", c);
}

/* Appends S percent-encoded to the growing string *OUT. */
static int
append_encoded (char **out, size_t *len, size_t *cap, const char *s)
{
  for (; *s; s++) {
    if (*len + 4 > *cap) {
      size_t ncap = *cap * 2 + 64;
      char *p = realloc (*out, ncap);
      if (!p)
        return -ENOMEM;
      *out = p;
      *cap = ncap;
    }
    unsigned char c = *s;
    if (plain_byte (c))
      (*out)[(*len)++] = c;
    else
      *len += sprintf (*out + *len, "%%%02X", c);
  }
  (*out)[*len] = '\0';
  return 0;
}

int
vm_machine_format (const struct vm_machine *m, char **line)
{
  char head[512];
  size_t len, cap;
  int r;

  snprintf (head, sizeof head,
            "format=%d qemu=%s machine=%s accel=%s cpu=%s cpus=%u "
            "memory=%" PRIu64 " append=", VM_LINE_FORMAT,
            m->qemu_version, m->machine, m->accel, m->cpu, m->cpus,
            m->memory);
  len = strlen (head);
  cap = len + 64;
  *line = malloc (cap);
  if (!*line)
    return -ENOMEM;
  memcpy (*line, head, len + 1);
  r = append_encoded (line, &len, &cap, m->append ? m->append : "");
  if (r < 0) {
    free (*line);
    *line = NULL;
  }
  return r;
}

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes LEN bytes of percent-encoded S into a malloc'd string. */
static int
decode (const char *s, size_t len, char **out)
{
  char *d = malloc (len + 1);
  size_t n = 0;

  if (!d)
    return -ENOMEM;
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '%') {
      int hi = i + 2 < len ? hex_digit (s[i + 1]) : -1;
      int lo = i + 2 < len ? hex_digit (s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {    /* no NUL */
        free (d);
        return -EBADMSG;
      }
      d[n++] = hi << 4 | lo;
      i += 2;
    }
    else if (!plain_byte ((unsigned char) s[i])) {
      free (d);
      return -EBADMSG;
    }
    else
      d[n++] = s[i];
  }
  d[n] = '\0';
  *out = d;
  return 0;
}

/* Copies a decoded value into a fixed buffer; -EBADMSG if it does not
 * fit or is empty. */
static int
set_field (char *dst, size_t size, const char *val)
{
  size_t n = strlen (val);
  if (n == 0 || n >= size)
    return -EBADMSG;
  memcpy (dst, val, n + 1);
  return 0;
}

static int
parse_uint (const char *val, uint64_t max, uint64_t *out)
{
  char *end;
  if (!isdigit ((unsigned char) val[0]))
    return -EBADMSG;
  errno = 0;
  unsigned long long v = strtoull (val, &end, 10);
  if (errno || *end || v == 0 || v > max)
    return -EBADMSG;
  *out = v;
  return 0;
}

int
vm_machine_parse (const char *line, struct vm_machine *m)
{
  enum { F_FORMAT = 1, F_QEMU = 2, F_MACHINE = 4, F_ACCEL = 8, F_CPU = 16,
         F_CPUS = 32, F_MEMORY = 64, F_APPEND = 128, F_ALL = 255 };
  unsigned seen = 0;
  int r = 0;

  memset (m, 0, sizeof *m);
  for (const char *p = line; *p && r == 0;) {
    const char *end = strchr (p, ' '), *eq = strchr (p, '=');
    if (!end)
      end = p + strlen (p);
    if (!eq || eq > end) {
      r = -EBADMSG;
      break;
    }
    char key[16];
    size_t klen = eq - p;
    char *val = NULL;
    if (klen == 0 || klen >= sizeof key) {
      r = -EBADMSG;
      break;
    }
    memcpy (key, p, klen);
    key[klen] = '\0';
    r = decode (eq + 1, end - eq - 1, &val);
    if (r < 0)
      break;
    uint64_t v;
    unsigned bit = 0;
    if (strcmp (key, "format") == 0) {
      bit = F_FORMAT;
      r = parse_uint (val, 1000, &v);
      if (r == 0 && v != VM_LINE_FORMAT)
        r = cairn_error (-ENOTSUP, "the commit's vm line has format %s, "
                         "from a newer cairn; this one knows format %d",
                         val, VM_LINE_FORMAT);
    }
    else if (strcmp (key, "qemu") == 0) {
      bit = F_QEMU;
      r = set_field (m->qemu_version, sizeof m->qemu_version, val);
    }
    else if (strcmp (key, "machine") == 0) {
      bit = F_MACHINE;
      r = set_field (m->machine, sizeof m->machine, val);
    }
    else if (strcmp (key, "accel") == 0) {
      bit = F_ACCEL;
      r = set_field (m->accel, sizeof m->accel, val);
    }
    else if (strcmp (key, "cpu") == 0) {
      bit = F_CPU;
      r = set_field (m->cpu, sizeof m->cpu, val);
    }
    else if (strcmp (key, "cpus") == 0) {
      bit = F_CPUS;
      r = parse_uint (val, 1024, &v);
      m->cpus = v;
    }
    else if (strcmp (key, "memory") == 0) {
      bit = F_MEMORY;
      r = parse_uint (val, UINT64_MAX, &v);
      m->memory = v;
    }
    else if (strcmp (key, "append") == 0) {
      bit = F_APPEND;
      free (m->append);
      m->append = val;
      val = NULL;
    }
    /* Unknown keys of format 1 are refused: nothing may be ignored that
     * a restore would need. */
    if (r == 0 && (bit == 0 || (seen & bit)))
      r = -EBADMSG;
    seen |= bit;
    free (val);
    p = *end ? end + 1 : end;
  }
  if (r == 0 && seen != F_ALL)
    r = -EBADMSG;
  if (r < 0) {
    vm_machine_free (m);
    if (r == -EBADMSG)
      r = cairn_error (r, "the commit's vm line is malformed: %s", line);
  }
  return r;
}

void
vm_machine_free (struct vm_machine *m)
{
  free (m->append);
  m->append = NULL;
}

/* MAJOR.MINOR of VERSION into *MAJ, *MIN. */
static int
major_minor (const char *version, unsigned *maj, unsigned *min)
{
  return sscanf (version, "%u.%u", maj, min) == 2 ? 0 : -EINVAL;
}

int
vm_machine_restorable (const struct vm_machine *saved,
                       const char *host_version)
{
  unsigned smaj, smin, hmaj, hmin;

  if (major_minor (saved->qemu_version, &smaj, &smin) < 0
      || major_minor (host_version, &hmaj, &hmin) < 0)
    return cairn_error (-ENOTSUP, "cannot compare QEMU versions '%s' "
                        "(commit) and '%s' (this host)",
                        saved->qemu_version, host_version);
  if (smaj != hmaj || smin != hmin)
    return cairn_error (-ENOTSUP, "the commit was made by QEMU %s and this "
                        "host has QEMU %s: a restore needs the same QEMU "
                        "major.minor (%u.%u)", saved->qemu_version,
                        host_version, smaj, smin);
  if (strcmp (saved->machine, "microvm") != 0)
    return cairn_error (-ENOTSUP, "the commit's machine is '%s': cairn "
                        "restores only the microvm machine it builds",
                        saved->machine);
  if (strcmp (saved->accel, "tcg") != 0 && strcmp (saved->accel, "kvm") != 0)
    return cairn_error (-ENOTSUP, "the commit's accelerator '%s' is not "
                        "tcg or kvm", saved->accel);
  return 0;
}

/* Runs QEMU --version and parses "QEMU emulator version X.Y.Z". */
static int
ask_qemu_version (const char *qemu, char *buf, size_t len)
{
  char cmd[PATH_MAX + 64], line[256];
  FILE *f;
  int r = -ENOENT;

  if (strchr (qemu, '\''))
    return -EINVAL;
  snprintf (cmd, sizeof cmd, "'%s' --version 2>/dev/null", qemu);
  f = popen (cmd, "r");
  if (!f)
    return -errno;
  while (fgets (line, sizeof line, f)) {
    const char *v = strstr (line, "version ");
    if (v && r < 0) {
      v += 8;
      size_t n = strspn (v, "0123456789.");
      if (n > 0 && n < len) {
        memcpy (buf, v, n);
        buf[n] = '\0';
        r = 0;
      }
    }
  }
  pclose (f);
  return r;
}

const char *vm_qemu_program (void);

int
vm_qemu_version (struct cairn_store *s, char *buf, size_t len)
{
  const char *qemu = vm_qemu_program ();
  char cache[PATH_MAX], key[PATH_MAX + 96], *text = NULL;
  struct stat st;
  size_t tlen;
  int r;

  if (stat (qemu, &st) < 0)
    return cairn_error (-errno, "QEMU (%s) is not there: %m", qemu);
  snprintf (key, sizeof key, "%s %llu %llu %lld.%09ld ", qemu,
            (unsigned long long) st.st_ino, (unsigned long long) st.st_size,
            (long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  snprintf (cache, sizeof cache, "%s/run/qemu-version",
            cairn_store_path (s));
  if (cairn_read_file (cache, &text, &tlen) == 0
      && strncmp (text, key, strlen (key)) == 0) {
    const char *v = text + strlen (key);
    size_t n = strcspn (v, "\n");
    if (n > 0 && n < len) {
      memcpy (buf, v, n);
      buf[n] = '\0';
      free (text);
      return 0;
    }
  }
  free (text);
  r = ask_qemu_version (qemu, buf, len);
  if (r < 0)
    return cairn_error (r, "cannot tell the version of QEMU (%s --version)",
                        qemu);
  char line[sizeof key + 64], run[PATH_MAX];
  int n = snprintf (line, sizeof line, "%s%s\n", key, buf);
  snprintf (run, sizeof run, "%s/run", cairn_store_path (s));
  cairn_mkdir_p (run);
  cairn_write_file_atomic (cache, line, n);     /* only a cache */
  return 0;
}
