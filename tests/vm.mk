# Tests of vm: the QMP client (tests/unit/test-qmp*.c) against a real
# QEMU, and the VM commit / restore sequence (test-vm-*.sh) on the guest
# that qemu-glue/guest/build-guest.sh builds.
QEMU_TEST_LIBS = $(top_builddir)/qemu-glue/libcairn-qemu.la \
	$(top_builddir)/store/libcairn.la $(JSONC_LIBS) -lpthread

check_PROGRAMS += unit/test-qmp
TESTS += unit/test-qmp
unit_test_qmp_SOURCES = unit/test-qmp.c unit/qemu-child.h
unit_test_qmp_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_qmp_LDADD = $(QEMU_TEST_LIBS)

check_PROGRAMS += unit/test-qmp-vmstate
TESTS += unit/test-qmp-vmstate
unit_test_qmp_vmstate_SOURCES = unit/test-qmp-vmstate.c unit/qemu-child.h
unit_test_qmp_vmstate_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_qmp_vmstate_LDADD = $(QEMU_TEST_LIBS)

TESTS += test-vm-qemu-migrate.sh
EXTRA_DIST += test-vm-qemu-migrate.sh

check_PROGRAMS += unit/test-vm-line
TESTS += unit/test-vm-line
unit_test_vm_line_SOURCES = unit/test-vm-line.c
unit_test_vm_line_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_vm_line_LDADD = $(QEMU_TEST_LIBS)

check_PROGRAMS += unit/test-vm-memscan
TESTS += unit/test-vm-memscan
unit_test_vm_memscan_SOURCES = unit/test-vm-memscan.c
unit_test_vm_memscan_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_vm_memscan_LDADD = $(QEMU_TEST_LIBS)

# cairn vm: one script per behaviour, each booting the guest of
# qemu-glue/guest/build-guest.sh (see vm-functions.sh).
check_PROGRAMS += vm-helper
vm_helper_SOURCES = vm-helper.c
vm_helper_LDADD = $(top_builddir)/store/libcairn.la

vm_tests = \
	test-vm-commit-restore.sh \
	test-vm-branch.sh \
	test-vm-restore-corrupt.sh \
	test-vm-spare.sh \
	test-vm-commit-qemu-killed.sh \
	test-vm-ls-console-stop.sh \
	test-vm-restore-incompatible.sh \
	test-vm-kept-by-prune-gc.sh
TESTS += $(vm_tests)
EXTRA_DIST += $(vm_tests) vm-functions.sh
