#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a libFuzzer target over a temporary copy of a seed corpus, so that
# the committed corpus never changes:
#   tests/fuzz/run-fuzz.sh FUZZER CORPUS_DIR [SECONDS] [ARTIFACT_DIR]
# Every seed runs first, then the fuzzer mutates for SECONDS (default 30).
# Crash, leak and timeout reproducers go to ARTIFACT_DIR (default: the
# current directory). Exit status: libFuzzer's (0 when nothing was found).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
	echo "usage: $0 FUZZER CORPUS_DIR [SECONDS] [ARTIFACT_DIR]" >&2
	exit 2
fi
fuzzer=$1
corpus=$2
seconds=${3:-30}
artifacts=${4:-.}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$corpus"/. "$tmp"/
mkdir -p "$artifacts"

# leaks are bugs; undefined behaviour stops the run like a crash does
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# Inputs up to 1 KiB from the start (-len_control=0): each input pays for a
# pool's creation and destruction, so longer operation sequences find more
# per second than libFuzzer's slowly growing default length.
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=1024 \
	-len_control=0 -print_final_stats=1 -artifact_prefix="${artifacts%/}/" "$tmp"
