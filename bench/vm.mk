# Benchmarks of vm: cairn vm commit / restore / branch against QEMU's own
# snapshot-save / snapshot-load of the same guest, in the same run
# (bench-vm.sh says how).
BENCHES += bench-vm.sh
EXTRA_DIST += bench-vm.sh
