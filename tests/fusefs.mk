# Tests of fusefs (cairnfs) and of what it relies on in the store.
FUSEFS_TEST_LDADD = $(top_builddir)/store/libcairn.la

fusefs_unit_tests = \
	unit/test-fusefs-store-lease \
	unit/test-fusefs-store-commit-scan
check_PROGRAMS += $(fusefs_unit_tests)
TESTS += $(fusefs_unit_tests)

unit_test_fusefs_store_lease_SOURCES = unit/test-fusefs-store-lease.c
unit_test_fusefs_store_lease_LDADD = $(FUSEFS_TEST_LDADD)
unit_test_fusefs_store_commit_scan_SOURCES = \
	unit/test-fusefs-store-commit-scan.c
unit_test_fusefs_store_commit_scan_LDADD = $(FUSEFS_TEST_LDADD)
