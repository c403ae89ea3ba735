#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing (Debian), build, and run zsbench.
#   bash scripts/run.sh [zsbench options]     (BUILD_DIR defaults to build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"

bash scripts/deps.sh bench
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
ninja -C "$build" >/dev/null
exec "$build/tools/zsbench/zsbench" "$@"
