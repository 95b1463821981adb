# Tests of gc.
