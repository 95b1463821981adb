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
	unit/test-gc-crash \
	unit/test-gc-seal-race \
	unit/test-branch-detach-tail \
	unit/test-gc-reader-fds \
	unit/test-index-power-loss \
	unit/test-index-housekeep
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
unit_test_index_power_loss_SOURCES = unit/test-index-power-loss.c \
	unit/gc-fixture.h
unit_test_index_power_loss_LDADD = $(GC_TEST_LIBS)
unit_test_index_housekeep_SOURCES = unit/test-index-housekeep.c \
	unit/gc-fixture.h
unit_test_index_housekeep_LDADD = $(GC_TEST_LIBS)
unit_test_gc_crash_SOURCES = unit/test-gc-crash.c unit/gc-fixture.h
unit_test_gc_crash_LDADD = $(GC_TEST_LIBS)
unit_test_gc_seal_race_SOURCES = unit/test-gc-seal-race.c unit/gc-fixture.h
unit_test_gc_seal_race_LDADD = $(GC_TEST_LIBS)
unit_test_gc_reader_fds_SOURCES = unit/test-gc-reader-fds.c unit/gc-fixture.h
unit_test_gc_reader_fds_LDADD = $(GC_TEST_LIBS)
# A store regression that test-gc-plugin-fio found (not gc's own).
unit_test_branch_detach_tail_SOURCES = unit/test-branch-detach-tail.c \
	unit/gc-fixture.h
unit_test_branch_detach_tail_LDADD = $(GC_TEST_LIBS)

# The cairn prune, gc and fsck commands as a user runs them.
gc_shell_tests = \
	test-prune-gc-reclaims.sh \
	test-fsck-corrupt-chunk.sh \
	test-gc-kill9.sh \
	test-autocommit.sh \
	test-gc-plugin-fio.sh
TESTS += $(gc_shell_tests)
EXTRA_DIST += $(gc_shell_tests)
