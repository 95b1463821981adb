# Benchmarks of fusefs.
