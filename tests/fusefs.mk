# Tests of fusefs.
