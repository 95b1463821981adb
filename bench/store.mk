# Benchmarks of store.
