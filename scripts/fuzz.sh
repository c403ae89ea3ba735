#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan, expensive
# assertions) in build-fuzz and runs each over a temporary copy of its seed
# corpus (tests/fuzz/corpus-* stay as they are), splitting SECONDS among
# them: fuzz_pool (the allocator API against a shadow model) and fuzz_zsram
# (the store against a shadow disk) 2/5 each, fuzz_config (configurations
# into zs_create_pool_ex and zsram_create) 1/5. Each also replays its seeds
# first, a few seconds.
#
#   bash scripts/fuzz.sh [SECONDS] [pool|zsram|config ...]   default 60, all three;
#                                                            CI runs 30
#
# Runs every target chosen, then exits non-zero when one found a crash, a
# leak or a timeout; the reproducer is then in build-fuzz/tests/fuzz/
# (fuzz_NAME-crash-*, -leak-*, ...):
#   build-fuzz/tests/fuzz/fuzz_NAME FILE     replays it
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pool zsram config)
build=${FUZZ_BUILD_DIR:-build-fuzz}

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Ddebug_level=3 >"$build.setup.log" 2>&1 ||
		{ cat "$build.setup.log"; exit 1; }
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}" >"$build.build.log" 2>&1 ||
	{ tail -50 "$build.build.log"; exit 1; }

# share: fifths of SECONDS; extra: libFuzzer flags (see tests/fuzz/meson.build)
failed=()
for t in "${targets[@]}"; do
	case $t in
	pool) share=2 extra=(-detect_leaks=0) ;;
	zsram) share=2 extra=(-detect_leaks=0) ;;
	config) share=1 extra=(-max_len=128 -len_control=0) ;;
	*) echo "unknown fuzz target: $t (pool, zsram, config)" >&2; exit 2 ;;
	esac
	# all of SECONDS for a target run alone
	s=$([ ${#targets[@]} -eq 1 ] && echo "$seconds" || echo $((seconds * share / 5)))
	[ "$s" -ge 1 ] || s=1
	echo "== fuzz_$t ($s s)"
	bash tests/fuzz/run-fuzz.sh "$build/tests/fuzz/fuzz_$t" "tests/fuzz/corpus-$t" "$s" \
		"$build/tests/fuzz" "${extra[@]}" >"$build/fuzz_$t.log" 2>&1
	rc=$?
	grep -E '^stat::(number_of_executed_units|average_exec_per_sec)|^fuzz_[a-z]+: ' \
		"$build/fuzz_$t.log"
	if [ $rc -ne 0 ]; then
		tail -40 "$build/fuzz_$t.log"
		failed+=("fuzz_$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz failed: ${failed[*]} (logs: $build/fuzz_NAME.log)"
	exit 1
fi
