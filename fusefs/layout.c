/* layout.c: the file names of cairnfs's layout, both ways.
 *
 *   commits/<id>/<volume>.img     "vmstate.bin" for the device state
 *   branches/<name>, tags/<name>, by-time/<name>/
 *                                 a ref name with '/' written "%2F" (as in
 *                                 STORE/branches/): one flat directory, no
 *                                 clash between "a" and "a/b"
 *
 * Every mapping is one-to-one: a name that parses back is the only name
 * of its thing, so the kernel never sees two names for one inode.
 */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "fusefs/cairnfs.h"

#define VMSTATE "vmstate"

void
layout_volume_file (const char *volume, char *buf, size_t len)
{
  snprintf (buf, len, "%s%s", volume,
            strcmp (volume, VMSTATE) == 0 ? ".bin" : ".img");
}

bool
layout_volume_of_file (const char *file, char *volume, size_t len)
{
  const char *dot = strrchr (file, '.');
  char back[CAIRN_VOLUME_NAME_MAX + 8];

  if (!dot || (size_t) (dot - file) >= len
      || (size_t) (dot - file) > CAIRN_VOLUME_NAME_MAX)
    return false;
  memcpy (volume, file, dot - file);
  volume[dot - file] = '\0';
  if (!cairn_volume_name_valid (volume))
    return false;
  layout_volume_file (volume, back, sizeof back);
  return strcmp (back, file) == 0;
}

bool
layout_ref_file (const char *ref, char *buf, size_t len)
{
  size_t n = 0;

  for (const char *p = ref; *p; p++) {
    const char *piece = *p == '/' ? "%2F" : NULL;
    size_t k = piece ? 3 : 1;
    if (n + k >= len)
      return false;
    if (piece)
      memcpy (buf + n, piece, 3);
    else
      buf[n] = *p;
    n += k;
  }
  if (n >= len || n > LAYOUT_NAME_MAX)
    return false;
  buf[n] = '\0';
  return true;
}

bool
layout_ref_of_file (const char *file, char *ref, size_t len)
{
  size_t n = 0;

  for (const char *p = file; *p; p++) {
    char c = *p;
    if (c == '/')
      return false;
    if (c == '%') {
      if (strncmp (p, "%2F", 3) != 0)
        return false;
      c = '/';
      p += 2;
    }
    if (n + 1 >= len)
      return false;
    ref[n++] = c;
  }
  ref[n] = '\0';
  return cairn_ref_name_valid (ref);
}

void
layout_commit_link (const struct cairn_id *id, unsigned depth, char *buf,
                    size_t len)
{
  char hex[CAIRN_HEX_SIZE + 1];
  size_t n = 0;

  cairn_id_to_hex (id, hex);
  for (unsigned i = 0; i < depth && n + 3 < len; i++, n += 3)
    memcpy (buf + n, "../", 3);
  snprintf (buf + n, len - n, "commits/%s", hex);
}

bool
layout_commit_of_file (const char *file, struct cairn_id *id)
{
  if (strlen (file) != CAIRN_HEX_SIZE
      || strspn (file, "0123456789abcdef") != CAIRN_HEX_SIZE)
    return false;
  return cairn_id_from_hex (file, id) == 0;
}
