# Tests of fusefs (cairnfs) and of what it relies on in the store.
FUSEFS_TEST_LDADD = $(top_builddir)/store/libcairn.la
# Unit tests of cairnfs's parts link them from its convenience library.
CAIRNFS_TEST_CPPFLAGS = $(AM_CPPFLAGS) $(FUSE3_CFLAGS)
CAIRNFS_TEST_LDADD = $(top_builddir)/fusefs/libcairnfs.la \
	$(FUSEFS_TEST_LDADD) $(FUSE3_LIBS) -lpthread

fusefs_unit_tests = \
	unit/test-fusefs-store-lease \
	unit/test-fusefs-store-commit-scan \
	unit/test-fusefs-inodes \
	unit/test-fusefs-layout \
	unit/test-fusefs-timeline
check_PROGRAMS += $(fusefs_unit_tests)
TESTS += $(fusefs_unit_tests)

unit_test_fusefs_store_lease_SOURCES = unit/test-fusefs-store-lease.c
unit_test_fusefs_store_lease_LDADD = $(FUSEFS_TEST_LDADD)
unit_test_fusefs_store_commit_scan_SOURCES = \
	unit/test-fusefs-store-commit-scan.c
unit_test_fusefs_store_commit_scan_LDADD = $(FUSEFS_TEST_LDADD)
unit_test_fusefs_inodes_SOURCES = unit/test-fusefs-inodes.c
unit_test_fusefs_inodes_CPPFLAGS = $(CAIRNFS_TEST_CPPFLAGS)
unit_test_fusefs_inodes_LDADD = $(CAIRNFS_TEST_LDADD)
unit_test_fusefs_layout_SOURCES = unit/test-fusefs-layout.c
unit_test_fusefs_layout_CPPFLAGS = $(CAIRNFS_TEST_CPPFLAGS)
unit_test_fusefs_layout_LDADD = $(CAIRNFS_TEST_LDADD)
unit_test_fusefs_timeline_SOURCES = unit/test-fusefs-timeline.c
unit_test_fusefs_timeline_CPPFLAGS = $(CAIRNFS_TEST_CPPFLAGS)
unit_test_fusefs_timeline_LDADD = $(CAIRNFS_TEST_LDADD)

# A helper that does through libcairn what the tests need and the cairn
# command does not offer.
check_PROGRAMS += fusefs-helper
fusefs_helper_SOURCES = fusefs-helper.c
fusefs_helper_LDADD = $(FUSEFS_TEST_LDADD)

EXTRA_DIST += fusefs-functions.sh

fusefs_shell_tests = \
	test-fusefs-image-matches-export.sh \
	test-fusefs-loop-mount-ext4.sh \
	test-fusefs-sparse-copy-keeps-holes.sh \
	test-fusefs-corrupt-chunk-eio.sh \
	test-fusefs-10000-commits.sh \
	test-fusefs-read-during-commits.sh \
	test-fusefs-unmount-with-blocked-reader.sh \
	test-fusefs-writes-fail-erofs.sh \
	test-fusefs-refs-are-links.sh \
	test-fusefs-live-updates.sh \
	test-fusefs-open-file-survives-prune.sh \
	test-fusefs-mount-command.sh \
	test-fusefs-inode-numbers-are-stable.sh \
	test-fusefs-gc-spares-open-files.sh
TESTS += $(fusefs_shell_tests)
EXTRA_DIST += $(fusefs_shell_tests)
