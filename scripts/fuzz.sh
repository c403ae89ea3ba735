#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer target (clang, AddressSanitizer + UBSan, expensive
# assertions) in build-fuzz and fuzzes the pool API for a while over a
# temporary copy of the seed corpus (tests/fuzz/corpus stays as it is).
#
#   bash scripts/fuzz.sh [SECONDS]     default 60; CI runs 30
#
# Exits non-zero when the fuzzer finds a crash, a leak or a timeout; the
# reproducer is then in build-fuzz/tests/fuzz/ (crash-*, leak-*, ...):
#   build-fuzz/tests/fuzz/fuzz_pool FILE     replays it
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Ddebug_level=3 >"$build.setup.log" 2>&1 ||
		{ cat "$build.setup.log"; exit 1; }
fi
ninja -C "$build" tests/fuzz/fuzz_pool >"$build.build.log" 2>&1 ||
	{ tail -50 "$build.build.log"; exit 1; }
exec bash tests/fuzz/run-fuzz.sh "$build/tests/fuzz/fuzz_pool" tests/fuzz/corpus "$seconds" \
	"$build/tests/fuzz"
