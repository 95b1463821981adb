# Benchmarks of fusefs: cairnfs against nbdkit's cairn plugin reading the
# same commit in the same run (bench-fusefs-read.sh says how).
EXTRA_PROGRAMS += bench-fusefs-tool
bench_fusefs_tool_SOURCES = bench-fusefs-tool.c
bench_fusefs_tool_LDADD = $(top_builddir)/store/libcairn.la -lpthread
CLEANFILES += bench-fusefs-tool

BENCHES += bench-fusefs-read.sh
EXTRA_DIST += bench-fusefs-read.sh
