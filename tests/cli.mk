# Integration tests of the cairn command over a real store.
check_PROGRAMS += hold-branch
hold_branch_SOURCES = hold-branch.c
hold_branch_LDADD = $(top_builddir)/store/libcairn.la

cli_tests = \
	test-cli-import-export-ext4.sh \
	test-cli-import-qcow2.sh \
	test-cli-older-commits-unchanged.sh \
	test-cli-history.sh \
	test-cli-cat.sh \
	test-cli-diff.sh \
	test-cli-bad-input.sh \
	test-cli-second-writer.sh \
	test-cli-full-disk.sh \
	test-cli-corrupt-chunk.sh \
	test-cli-export-targets.sh \
	test-cli-kill-import-commit.sh \
	test-cli-prefix-length.sh \
	test-cli-not-a-store.sh \
	test-cli-import-unreadable.sh \
	test-cli-progress.sh \
	test-cli-help.sh
TESTS += $(cli_tests)
EXTRA_DIST += $(cli_tests)
