#!/usr/bin/env bash
# test.sh: installs what cairn needs, builds it, and runs the whole test
# suite (make check) in ./build.  Exit status 0 means every test passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/setup.sh"
cd "${CAIRN_BUILD:-$top/build}"
echo "== make check"
if ! make -j"$(nproc)" check; then
  find . -name 'test-*.log' -newer Makefile -exec grep -l '^not ok\|ERROR' {} + \
    | while read -r log; do echo "== $log"; tail -30 "$log"; done
  exit 1
fi
