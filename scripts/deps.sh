#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages the build, the tests and the benchmarks need,
# when they are missing. Usage: scripts/deps.sh [build|test|bench|nbd|all]
# nbd: nbdkit and its plugin headers (the nbdkit plugin is built when they
# are there), the clients the nbd test suite and bench/nbd-bench.sh drive;
# included by test, bench and all.
set -euo pipefail

build_pkgs=(meson ninja-build pkg-config gcc liburcu-dev liblz4-dev libzstd-dev liblzo2-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev spin valgrind)
bench_pkgs=(gnuplot-nox libjemalloc-dev libmimalloc-dev)
nbd_pkgs=(nbdkit nbdkit-plugin-dev libnbd-bin python3-libnbd qemu-utils fio)

case "${1:-all}" in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${nbd_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}" "${nbd_pkgs[@]}") ;;
nbd) want=("${build_pkgs[@]}" "${nbd_pkgs[@]}") ;;
all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}" "${nbd_pkgs[@]}") ;;
*) echo "usage: $0 [build|test|bench|nbd|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
