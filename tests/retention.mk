# Tests of retention.
