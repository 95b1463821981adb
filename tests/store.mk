# Unit tests of libcairn (store/): one program per module.
STORE_TEST_LDADD = $(top_builddir)/store/libcairn.la

store_unit_tests = \
	unit/test-util \
	unit/test-sha256x \
	unit/test-tree \
	unit/test-commit \
	unit/test-history \
	unit/test-backend-cas \
	unit/test-pack \
	unit/test-chunk \
	unit/test-record \
	unit/test-refs \
	unit/test-branch \
	unit/test-branch-model \
	unit/test-branch-concurrent \
	unit/test-sessions \
	unit/test-branch-seal-flush \
	unit/test-commit-branch-handover \
	unit/test-branch-commit-memory \
	unit/test-branch-detach-fresh \
	unit/test-branch-write-in-flight \
	unit/test-branch-whole-write \
	unit/test-branch-dirty-limit \
	unit/test-branch-heat \
	unit/test-branch-evict \
	unit/test-branch-stale-records \
	unit/test-branch-detach-pending \
	unit/test-idset \
	unit/test-cache \
	unit/test-view \
	unit/test-du \
	unit/test-import
check_PROGRAMS += $(store_unit_tests)
TESTS += $(store_unit_tests)

unit_test_util_SOURCES = unit/test-util.c
unit_test_util_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_sha256x_SOURCES = unit/test-sha256x.c
unit_test_sha256x_LDADD = $(STORE_TEST_LDADD) $(CRYPTO_LIBS)
unit_test_tree_SOURCES = unit/test-tree.c
unit_test_tree_LDADD = $(STORE_TEST_LDADD)
unit_test_commit_SOURCES = unit/test-commit.c
unit_test_commit_LDADD = $(STORE_TEST_LDADD)
unit_test_history_SOURCES = unit/test-history.c unit/scratch-store.h
unit_test_history_LDADD = $(STORE_TEST_LDADD)
unit_test_backend_cas_SOURCES = unit/test-backend-cas.c unit/scratch-store.h
unit_test_backend_cas_LDADD = $(STORE_TEST_LDADD)
unit_test_pack_SOURCES = unit/test-pack.c unit/file-bytes.h
unit_test_pack_LDADD = $(STORE_TEST_LDADD)
unit_test_chunk_SOURCES = unit/test-chunk.c unit/file-bytes.h unit/scratch-store.h
unit_test_chunk_CPPFLAGS = $(AM_CPPFLAGS) $(ZSTD_CFLAGS) $(CRYPTO_CFLAGS)
unit_test_chunk_LDADD = $(STORE_TEST_LDADD) $(ZSTD_LIBS) $(CRYPTO_LIBS)
unit_test_record_SOURCES = unit/test-record.c unit/scratch-store.h
unit_test_record_LDADD = $(STORE_TEST_LDADD)
unit_test_refs_SOURCES = unit/test-refs.c
unit_test_refs_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_SOURCES = unit/test-branch.c
unit_test_branch_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_model_SOURCES = unit/test-branch-model.c
unit_test_branch_model_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_concurrent_SOURCES = unit/test-branch-concurrent.c
unit_test_branch_concurrent_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_sessions_SOURCES = unit/test-sessions.c
unit_test_sessions_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
unit_test_sessions_LDADD = $(STORE_TEST_LDADD) $(JSONC_LIBS)
unit_test_branch_detach_pending_SOURCES = unit/test-branch-detach-pending.c unit/gc-fixture.h
unit_test_branch_detach_pending_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_branch_dirty_limit_SOURCES = unit/test-branch-dirty-limit.c unit/gc-fixture.h
unit_test_branch_dirty_limit_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_heat_SOURCES = unit/test-branch-heat.c
unit_test_branch_heat_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_evict_SOURCES = unit/test-branch-evict.c unit/gc-fixture.h
unit_test_branch_evict_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_stale_records_SOURCES = \
	unit/test-branch-stale-records.c unit/gc-fixture.h
unit_test_branch_stale_records_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_seal_flush_SOURCES = unit/test-branch-seal-flush.c
unit_test_branch_seal_flush_LDADD = $(STORE_TEST_LDADD)
unit_test_commit_branch_handover_SOURCES = unit/test-commit-branch-handover.c
unit_test_commit_branch_handover_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_branch_commit_memory_SOURCES = unit/test-branch-commit-memory.c unit/gc-fixture.h
unit_test_branch_commit_memory_LDADD = $(STORE_TEST_LDADD)
unit_test_branch_detach_fresh_SOURCES = unit/test-branch-detach-fresh.c
unit_test_branch_detach_fresh_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_branch_write_in_flight_SOURCES = unit/test-branch-write-in-flight.c unit/gc-fixture.h
unit_test_branch_write_in_flight_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_branch_whole_write_SOURCES = unit/test-branch-whole-write.c unit/gc-fixture.h
unit_test_branch_whole_write_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_idset_SOURCES = unit/test-idset.c unit/xorshift.h
unit_test_idset_LDADD = $(STORE_TEST_LDADD)
unit_test_cache_SOURCES = unit/test-cache.c unit/xorshift.h unit/scratch-store.h
unit_test_cache_LDADD = $(STORE_TEST_LDADD) -lpthread
unit_test_view_SOURCES = unit/test-view.c unit/xorshift.h unit/mem-source.h \
	unit/scratch-store.h
unit_test_view_LDADD = $(STORE_TEST_LDADD)
unit_test_du_SOURCES = unit/test-du.c unit/xorshift.h unit/mem-source.h \
	unit/scratch-store.h unit/gc-fixture.h
unit_test_du_LDADD = $(STORE_TEST_LDADD)
unit_test_import_SOURCES = unit/test-import.c unit/xorshift.h \
	unit/mem-source.h unit/scratch-store.h
unit_test_import_LDADD = $(STORE_TEST_LDADD)
