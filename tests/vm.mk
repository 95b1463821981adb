# Tests of vm.
