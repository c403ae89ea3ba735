#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a libFuzzer target over a temporary copy of a seed corpus, so that
# the committed corpus never changes:
#   tests/fuzz/run-fuzz.sh FUZZER CORPUS_DIR [SECONDS] [ARTIFACT_DIR] [FLAG...]
# Every seed runs first, then the fuzzer mutates for SECONDS (default 30).
# Crash, leak and timeout reproducers go to ARTIFACT_DIR (default: the
# current directory), named after the fuzzer (fuzz_pool-crash-<sha1>). FLAGs go to libFuzzer after the defaults below (a
# later flag wins). Exit status: libFuzzer's (0 when nothing was found).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 FUZZER CORPUS_DIR [SECONDS] [ARTIFACT_DIR] [FLAG...]" >&2
	exit 2
fi
fuzzer=$1
corpus=$2
seconds=${3:-30}
artifacts=${4:-.}
shift $(($# < 4 ? $# : 4))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$corpus"/. "$tmp"/
mkdir -p "$artifacts"

# leaks are bugs; undefined behaviour stops the run like a crash does
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

# Inputs up to 1 KiB, libFuzzer's default length control (short inputs
# first): the targets keep their pools and stores between inputs, so a
# short input costs little. -print_final_stats=1 ends the output with
# stat::number_of_executed_units and stat::average_exec_per_sec, which
# scripts/soak.sh adds up.
"$fuzzer" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=1024 \
	-print_final_stats=1 -artifact_prefix="${artifacts%/}/$(basename "$fuzzer")-" "$@" "$tmp"
