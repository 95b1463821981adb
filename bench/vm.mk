# Benchmarks of vm.
