# Benchmarks of nbd-plugin: fio through nbdkit's cairn plugin against
# nbdkit file and qemu-nbd, commits while fio writes, and memory.
BENCHES += bench-plugin-fio.sh
EXTRA_DIST += bench-plugin-fio.sh
