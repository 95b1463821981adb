# Unit tests of libcairn (store/).
STORE_TEST_LIBS = $(top_builddir)/store/libcairn.la
