#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing (Debian), build, and run zsbench.
#   bash scripts/run.sh [zsbench options]
# It builds in its own release directory (BUILD_DIR, default build-rel:
# optimised, no assertions), apart from the test script's build/, so that
# neither reuses a directory the other configured differently.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build-rel}"

bash scripts/deps.sh bench
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Ddebug_level=0 >/dev/null
ninja -C "$build" >/dev/null
exec "$build/tools/zsbench/zsbench" "$@"
