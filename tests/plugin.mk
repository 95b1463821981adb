# Tests of nbd-plugin: a unit test of the table of branches the plugin
# writes, and scripts that drive nbdkit with the plugin through the NBD
# clients a user would use (nbdsh, nbdinfo, qemu-io, qemu-img, fio, QEMU).
check_PROGRAMS += unit/test-plugin-writers
TESTS += unit/test-plugin-writers

unit_test_plugin_writers_SOURCES = unit/test-plugin-writers.c \
	../nbd-plugin/writers.c ../nbd-plugin/writers.h
unit_test_plugin_writers_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_plugin_writers_LDADD = $(top_builddir)/store/libcairn.la \
	$(JSONC_LIBS) -lpthread

plugin_tests = \
	test-plugin-data.sh \
	test-plugin-exports.sh \
	test-plugin-qemu-io.sh \
	test-plugin-convert.sh \
	test-plugin-fio.sh \
	test-plugin-commit-during-fio.sh \
	test-plugin-kill9.sh \
	test-plugin-commit-live.sh \
	test-plugin-random-writes-model.sh \
	test-plugin-commit-full-disk.sh \
	test-plugin-one-writer.sh \
	test-plugin-serve.sh \
	test-plugin-dump.sh \
	test-plugin-guest.sh
TESTS += $(plugin_tests)
EXTRA_DIST += $(plugin_tests)
