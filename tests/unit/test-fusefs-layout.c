/* test-fusefs-layout: cairnfs's file names, both ways, one-to-one. */
#include <config.h>

#include <stdio.h>
#include <string.h>

#include "fusefs/cairnfs.h"
#include "tap.h"

static const char *
volume_file (const char *volume)
{
  static char buf[64];
  layout_volume_file (volume, buf, sizeof buf);
  return buf;
}

static const char *
volume_of (const char *file)
{
  static char buf[64];
  return layout_volume_of_file (file, buf, sizeof buf) ? buf : NULL;
}

static const char *
ref_file (const char *ref)
{
  static char buf[LAYOUT_NAME_MAX + 1];
  return layout_ref_file (ref, buf, sizeof buf) ? buf : NULL;
}

static const char *
ref_of (const char *file)
{
  static char buf[CAIRN_NAME_MAX + 1];
  return layout_ref_of_file (file, buf, sizeof buf) ? buf : NULL;
}

int
main (void)
{
  char buf[128], long_name[CAIRN_NAME_MAX + 1];
  struct cairn_id id;

  is_str (volume_file ("disk"), "disk.img", "disk -> disk.img");
  is_str (volume_file ("memory"), "memory.img", "memory -> memory.img");
  is_str (volume_file ("vmstate"), "vmstate.bin", "vmstate -> vmstate.bin");
  is_str (volume_of ("disk.img"), "disk", "disk.img -> disk");
  is_str (volume_of ("vmstate.bin"), "vmstate", "vmstate.bin -> vmstate");
  is_str (volume_of ("data-2.img"), "data-2", "data-2.img -> data-2");
  ok (!volume_of ("vmstate.img"), "vmstate.img is no volume's name");
  ok (!volume_of ("disk.bin"), "nor is disk.bin");
  ok (!volume_of ("Disk.img"), "nor Disk.img (not a volume name)");
  ok (!volume_of ("disk"), "nor disk");
  ok (!volume_of (".img"), "nor .img");
  ok (!volume_of ("a.b.img"), "nor a.b.img");
  ok (!volume_of ("commit"), "nor commit");

  is_str (ref_file ("main"), "main", "main stays main");
  is_str (ref_file ("feature/x"), "feature%2Fx", "a '/' becomes %%2F");
  is_str (ref_of ("feature%2Fx"), "feature/x", "and back");
  is_str (ref_of ("a%2Fb%2Fc"), "a/b/c", "several");
  ok (!ref_of ("a/b"), "a '/' in a file name is no ref");
  ok (!ref_of ("a%2"), "nor a cut escape");
  ok (!ref_of ("a%41"), "nor another escape");
  ok (!ref_of ("a%2F"), "nor a name that is not valid once unescaped");
  ok (!ref_of (".hidden"), "nor an invalid name");
  memset (long_name, 'a', CAIRN_NAME_MAX);
  long_name[CAIRN_NAME_MAX] = '\0';
  ok (ref_file (long_name) != NULL, "a 128-byte name is a file name");
  /* The most '/' a valid name can hold: every other byte. */
  for (int i = 1; i < CAIRN_NAME_MAX - 1; i += 2)
    long_name[i] = '/';
  ok (cairn_ref_name_valid (long_name) && ref_file (long_name)
      && strlen (ref_file (long_name)) == 254,
      "so is one with 63 '/' (254 bytes escaped)");

  char want[128] = "../commits/";
  memset (&id, 0xab, sizeof id);
  for (int i = 0; i < CAIRN_ID_SIZE; i++)
    strcat (want, "ab");
  layout_commit_link (&id, 1, buf, sizeof buf);
  is_str (buf, want, "a link one level down");
  layout_commit_link (&id, 2, buf, sizeof buf);
  ok (strncmp (buf, "../../commits/abab", 18) == 0, "two levels down");
  struct cairn_id back;
  ok (layout_commit_of_file (buf + 14, &back) && cairn_id_equal (&back, &id),
      "64 hex digits name a commit");
  ok (!layout_commit_of_file ("ABABABABABABABABABABABABABABABABABABABABABAB"
                              "ABABABABABABABABABAB", &back),
      "upper case does not (one name per commit)");
  ok (!layout_commit_of_file ("abab", &back), "nor does a prefix");
  return done_testing ();
}
