# Tests of gc: C programs that drive libcairn-gc through the store API, and
# shell tests that drive the cairn command (and nbdkit, fio) as a user would.
GC_TEST_LIBS = $(top_builddir)/gc/libcairn-gc.la \
	$(top_builddir)/retention/libcairn-retention.la \
	$(top_builddir)/store/libcairn.la -lpthread

gc_unit_tests = \
	unit/test-gc-sweep \
	unit/test-gc-protect \
	unit/test-fsck \
	unit/test-gc-concurrent \
	unit/test-gc-crash
check_PROGRAMS += $(gc_unit_tests)
TESTS += $(gc_unit_tests)

unit_test_gc_sweep_SOURCES = unit/test-gc-sweep.c unit/gc-fixture.h
unit_test_gc_sweep_LDADD = $(GC_TEST_LIBS)
unit_test_gc_protect_SOURCES = unit/test-gc-protect.c unit/gc-fixture.h
unit_test_gc_protect_LDADD = $(GC_TEST_LIBS)
unit_test_fsck_SOURCES = unit/test-fsck.c unit/gc-fixture.h
unit_test_fsck_LDADD = $(GC_TEST_LIBS)
unit_test_gc_concurrent_SOURCES = unit/test-gc-concurrent.c unit/gc-fixture.h
unit_test_gc_concurrent_LDADD = $(GC_TEST_LIBS)
unit_test_gc_crash_SOURCES = unit/test-gc-crash.c unit/gc-fixture.h
unit_test_gc_crash_LDADD = $(GC_TEST_LIBS)
