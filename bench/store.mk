# Benchmarks of the store (issue 2): commit and branch latency, import
# throughput against zstd, dedup, and import memory.
EXTRA_PROGRAMS += bench-commit
bench_commit_SOURCES = bench-commit.c
bench_commit_LDADD = $(top_builddir)/store/libcairn.la
BENCHES += bench-store.sh
EXTRA_DIST += bench-store.sh
CLEANFILES += bench-commit
