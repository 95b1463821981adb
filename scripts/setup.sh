#!/usr/bin/env bash
# setup.sh: installs what cairn needs on Debian 12 (as root) and builds it
# in ./build (or $CAIRN_BUILD).  Safe to run again: it only installs what
# is missing and rebuilds what changed.
#
#   CONFIGURE_FLAGS   extra flags for ./configure (e.g. --enable-sanitizers)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${CAIRN_BUILD:-$top/build}

packages=(
  autoconf automake libtool pkg-config make gcc
  liblmdb-dev lmdb-utils libzstd-dev zstd libssl-dev libjson-c-dev
  libfuse3-dev fuse3
  nbdkit nbdkit-plugin-dev libnbd-dev libnbd-bin python3-libnbd
  qemu-system-x86 qemu-utils
  fio e2fsprogs busybox-static cpio kmod python3 time
  hyperfine valgrind
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

echo "== building in $build"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$build"
cd "$build"
if [ ! -f Makefile ]; then
  # shellcheck disable=SC2086
  "$top/configure" --enable-werror ${CONFIGURE_FLAGS:-} >/dev/null
fi
make -j"$(nproc)" >/dev/null
echo "== built: $build/cli/cairn"
