# Benchmarks of plugin.
