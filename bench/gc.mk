# Benchmarks of gc.
