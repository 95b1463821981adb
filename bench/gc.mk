# Benchmarks of gc: prune and gc of a long history, mark cost against tree
# nodes, commit latency while gc runs, and the store's size after gc
# against a fresh store of the kept commits.
EXTRA_PROGRAMS += bench-gc-store
bench_gc_store_SOURCES = bench-gc-store.c
bench_gc_store_CPPFLAGS = $(AM_CPPFLAGS) $(JSONC_CFLAGS)
bench_gc_store_LDADD = \
	$(top_builddir)/gc/libcairn-gc.la \
	$(top_builddir)/retention/libcairn-retention.la \
	$(top_builddir)/store/libcairn.la \
	$(JSONC_LIBS) -lpthread
BENCHES += bench-gc.sh
EXTRA_DIST += bench-gc.sh
CLEANFILES += bench-gc-store
