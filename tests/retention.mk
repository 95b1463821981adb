# Tests of retention: the pure selection logic, one program per behaviour.
RETENTION_TEST_LIBS = $(top_builddir)/retention/libcairn-retention.la \
	$(top_builddir)/store/libcairn.la

check_PROGRAMS += \
	unit/test-retention-policy \
	unit/test-retention-select \
	unit/test-retention-union \
	unit/test-retention-apply
TESTS += \
	unit/test-retention-policy \
	unit/test-retention-select \
	unit/test-retention-union \
	unit/test-retention-apply

unit_test_retention_policy_SOURCES = unit/test-retention-policy.c
unit_test_retention_policy_LDADD = $(RETENTION_TEST_LIBS)
unit_test_retention_select_SOURCES = unit/test-retention-select.c
unit_test_retention_select_LDADD = $(RETENTION_TEST_LIBS)
unit_test_retention_union_SOURCES = unit/test-retention-union.c
unit_test_retention_union_LDADD = $(RETENTION_TEST_LIBS)
unit_test_retention_apply_SOURCES = unit/test-retention-apply.c \
	unit/gc-fixture.h
unit_test_retention_apply_LDADD = $(RETENTION_TEST_LIBS)

# The cairn retention and prune commands, as a user runs them.
TESTS += test-retention-cli.sh
EXTRA_DIST += test-retention-cli.sh
