/* test-vm-line: the "vm" line of VM commits and the VM record format.
 *
 * The vm line must round-trip any kernel command line (spaces, '=', '%',
 * quotes, bytes above 127) as one line with no ambiguity, refuse anything
 * malformed or unknown rather than guess, and the compatibility check must
 * tell same major.minor from different.  A VM record must round-trip
 * through its JSON form.
 */
#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "qemu-glue/vm.h"

static void
roundtrip (const char *append)
{
  struct vm_machine m = {
    .qemu_version = "7.2.22", .machine = "microvm", .cpu = "qemu64",
    .accel = "tcg", .memory = 268435456, .cpus = 2,
    .append = (char *) append,
  }, back;
  char *line = NULL;
  int r = vm_machine_format (&m, &line);

  ok (r == 0 && !strchr (line, '\n'), "format: %s", line ? line : "-");
  /* Values hold no spaces: the line splits on spaces unambiguously. */
  const char *a = line ? strstr (line, " append=") : NULL;
  ok (a && !strchr (a + 1, ' '), "the append value holds no space");
  r = line ? vm_machine_parse (line, &back) : -1;
  ok (r == 0 && strcmp (back.append, append) == 0 && back.cpus == 2
      && back.memory == 268435456 && strcmp (back.cpu, "qemu64") == 0
      && strcmp (back.qemu_version, "7.2.22") == 0,
      "parse gives the same machine back");
  if (r == 0)
    vm_machine_free (&back);
  free (line);
}

static void
refused (const char *line, int want, const char *why)
{
  struct vm_machine m;
  int r = vm_machine_parse (line, &m);
  ok (r == want, "refused (%s): %s", why, line);
  if (r == 0)
    vm_machine_free (&m);
}

static int
restorable (const char *saved, const char *machine, const char *host)
{
  struct vm_machine m = { .accel = "tcg" };
  snprintf (m.qemu_version, sizeof m.qemu_version, "%s", saved);
  snprintf (m.machine, sizeof m.machine, "%s", machine);
  return vm_machine_restorable (&m, host);
}

int
main (void)
{
  roundtrip ("console=ttyS0 root=/dev/vda rw quiet panic=-1");
  roundtrip ("a=%41 b=\"quoted words\" c='x y' tabs\there");
  roundtrip ("caf\xc3\xa9 \x7f\x01");
  roundtrip ("");

  const char *ok_line = "format=1 qemu=7.2.22 machine=microvm accel=tcg "
    "cpu=qemu64 cpus=1 memory=268435456 append=x";
  struct vm_machine m;
  ok (vm_machine_parse (ok_line, &m) == 0, "a well-formed line parses");
  vm_machine_free (&m);
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=268435456", -EBADMSG, "no append");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=268435456 append=x color=red", -EBADMSG,
           "an unknown key");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 cpus=2 memory=268435456 append=x", -EBADMSG,
           "a key twice");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=0 append=x", -EBADMSG, "zero memory");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=12x append=x", -EBADMSG, "a malformed number");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=4096 append=%4", -EBADMSG, "a cut escape");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=4096 append=%00", -EBADMSG, "an escaped NUL");
  refused ("format=1 qemu=7.2.22 machine=microvm accel=tcg cpu=qemu64 "
           "cpus=1 memory=4096 append=a\"b", -EBADMSG, "a raw quote");
  refused ("format=2 qemu=7.2.22", -ENOTSUP, "a newer format");

  ok (restorable ("7.2.22", "microvm", "7.2.5") == 0,
      "7.2.22 restores on 7.2.5");
  ok (restorable ("7.2.22", "microvm", "8.2.2") == -ENOTSUP,
      "7.2 does not restore on 8.2");
  ok (restorable ("7.1.0", "microvm", "7.2.0") == -ENOTSUP,
      "7.1 does not restore on 7.2");
  ok (restorable ("7.2.0", "pc", "7.2.0") == -ENOTSUP, "nor machine pc");

  ok (vm_name_valid ("vm-1.test_2") && !vm_name_valid ("")
      && !vm_name_valid ("a/b") && !vm_name_valid (".x")
      && !vm_name_valid ("-x"), "VM names");

  /* A record through JSON and back. */
  struct vm_record r = {
    .name = "vm1", .branch = "feature/x", .created = 1234567890123456789LL,
    .dir = "/s/run/vms/vm1", .ram = "/dev/shm/c/vm1/ram",
    .ref = "/dev/shm/c/vm1/ram.ref", .nbd_socket = "/s/run/vms/vm1/nbd.sock",
    .kernel = "/s/run/vms/vm1/kernel", .initrd = "/s/run/vms/vm1/initrd",
    .qemu = { 42, 777 }, .nbdkit = { 0, 0 },
    .machine = { .qemu_version = "7.2.22", .machine = "microvm",
                 .cpu = "qemu64", .accel = "tcg", .memory = 1 << 30,
                 .cpus = 1, .append = "console=ttyS0 x=\"y\"" },
    .have_memory = true, .ref_valid = true,
  }, back;
  r.base.bytes[0] = 0xab;
  r.memory.size = 1 << 30;
  r.memory.chunk_size = 65536;
  r.memory.root.bytes[31] = 0xcd;
  char *json = NULL;
  ok (vm_record_encode (&r, &json) == 0, "a record encodes: %s", json);
  ok (json && vm_record_decode (json, strlen (json), &back) == 0,
      "and decodes");
  ok (strcmp (back.name, "vm1") == 0 && strcmp (back.branch, "feature/x") == 0
      && back.created == r.created && strcmp (back.ram, r.ram) == 0
      && back.qemu.pid == 42 && back.qemu.start == 777 && back.nbdkit.pid == 0
      && strcmp (back.machine.append, r.machine.append) == 0
      && cairn_id_equal (&back.base, &r.base) && back.have_memory
      && back.memory.size == r.memory.size
      && cairn_id_equal (&back.memory.root, &r.memory.root) && back.ref_valid,
      "the same record comes back");
  vm_record_free (&back);
  ok (vm_record_decode ("{\"format\": 2}", 13, &back) == -EBADMSG,
      "a record of another format is refused");
  free (json);
  return done_testing ();
}
