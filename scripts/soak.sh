#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak: loops for HOURS (fractional: 0.05 is three minutes) over
#   - the allocator's stress test (--compact --defrag --deferred) and the
#     zsram thread test (--recompress), each under AddressSanitizer+UBSan
#     (build-asan) and ThreadSanitizer (build-tsan), a new --seed each run;
#   - the three fuzzers (build-fuzz), each on a working corpus kept in the
#     soak directory, so coverage grows from one round to the next;
#   - the fork-loop test 'fork' and the fault-injection test 'faults'
#     (a new FAULT_SEED each run) under both sanitizers, and the NBD suite
#     (meson test --suite nbd, plain build), when the tree has them.
# Builds what it needs, configured as scripts/test.sh and scripts/fuzz.sh
# do. At the end it prints, per part, rounds run and failed, the fuzz
# inputs executed (libFuzzer's stat::number_of_executed_units, added up),
# what the stress programs report doing, and the log directory; it exits
# non-zero when anything failed.
#
#   bash scripts/soak.sh HOURS        e.g. 0.05, 8
#
# Logs and reproducers: build-soak/YYYYmmdd-HHMMSS/ (SOAK_DIR overrides):
# logs/ROUND-PART.log for every run (a failed run's seed is in its first
# line), repro/ for fuzzer crash, leak and timeout inputs, corpus-NAME/ the
# fuzzers' working corpora. Each part runs for a slice of HOURS / 40,
# between 5 and 120 seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ $# -ne 1 ] || ! awk -v h="$1" 'BEGIN { exit !(h + 0 > 0) }'; then
	echo "usage: $0 HOURS   (fractional allowed, e.g. 0.05)" >&2
	exit 2
fi
total=$(awk -v h="$1" 'BEGIN { printf "%d", h * 3600 }')
slice=$((total / 40))
[ $slice -ge 5 ] || slice=5
[ $slice -le 120 ] || slice=120
out=${SOAK_DIR:-build-soak/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" "$out/repro"
echo "soak: $1 h ($total s), parts of ${slice} s; logs and reproducers in $out"

# ------------------------------------------------------------------ builds

# setup DIR ARGS...: configure a build directory once (as scripts/test.sh)
setup() {
	local dir=$1
	shift
	[ -f "$dir/build.ninja" ] && return 0
	meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1 ||
		{ cat "$dir.setup.log"; return 1; }
}

# build DIR TARGET...: ninja, log on failure
build() {
	local dir=$1
	shift
	nice ninja -C "$dir" "$@" >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; return 1; }
}

# test_exe DIR NAME: the program the test NAME runs, relative to DIR (none
# when the tree has no such test)
test_exe() {
	meson introspect --tests "$1" 2>/dev/null | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t["name"] == sys.argv[2]:
        print(os.path.relpath(t["cmd"][0], sys.argv[1]))
        break' "$(cd "$1" && pwd)" "$2"
}

setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
	-Ddebug_level=3 -Drace_hooks=true || exit 1
setup build-tsan -Db_sanitize=thread -Dbuildtype=debug -Ddebug_level=2 -Drace_hooks=true ||
	exit 1
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Ddebug_level=3 >build-fuzz.setup.log 2>&1 ||
		{ cat build-fuzz.setup.log; exit 1; }
fi
build build-asan tests/stress tests/zsram/test_zsram_threads || exit 1
build build-tsan tests/stress tests/zsram/test_zsram_threads || exit 1
build build-fuzz tests/fuzz/fuzz_pool tests/fuzz/fuzz_zsram tests/fuzz/fuzz_config || exit 1

fork_test=0
fork_exe=$(test_exe build-asan fork)
if [ -n "$fork_exe" ]; then
	fork_test=1
	build build-asan "$fork_exe" && build build-tsan "$fork_exe" || exit 1
fi
faults_test=0
faults_exe=$(test_exe build-asan faults)
if [ -n "$faults_exe" ]; then
	faults_test=1
	build build-asan "$faults_exe" && build build-tsan "$faults_exe" || exit 1
fi
nbd_suite=0
if grep -rqs --include=meson.build "'nbd'" src tests tools 2>/dev/null; then
	setup build -Ddebug_level=2 && build build || exit 1
	meson test -C build --list --suite nbd >/dev/null 2>&1 &&
		[ -n "$(meson test -C build --list --suite nbd 2>/dev/null)" ] && nbd_suite=1
fi

# ------------------------------------------------------------------ parts

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
tsan_env="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp"

for f in pool zsram config; do
	[ -d "$out/corpus-$f" ] || cp -r "tests/fuzz/corpus-$f" "$out/corpus-$f"
done

declare -A runs fails
parts=()
fuzz_units=0
stress_compactions=0 stress_defrags=0 stress_deferred=0
zsram_writes=0 zsram_discards=0 zsram_reads=0
faults_injected=0
round=0

# part NAME COMMAND...: runs one part, logs it, counts it
part() {
	local name=$1
	shift
	local log="$out/logs/$(printf %04d "$round")-$name.log"

	[ -n "${runs[$name]+x}" ] || { parts+=("$name"); runs[$name]=0; fails[$name]=0; }
	echo "# $*" >"$log"
	# nice: a soak shares the machine; KILL: a hung run still ends
	timeout --signal=KILL $((slice * 3 + 300)) nice "$@" >>"$log" 2>&1
	local rc=$?
	runs[$name]=$((runs[$name] + 1))
	if [ $rc -ne 0 ]; then
		fails[$name]=$((fails[$name] + 1))
		echo "soak: round $round: $name FAILED (exit $rc): $log"
	fi
	tally "$log"
}

# tally LOG: adds up what a run reports
tally() {
	local n
	n=$(awk '/^stat::number_of_executed_units:/ { s += $2 } END { print s + 0 }' "$1")
	fuzz_units=$((fuzz_units + n))
	# stress: "... N compactions (P pages), D defrags (M pages migrated), deferred X/Y sync Z"
	read -r c d q < <(sed -nE 's/.* ([0-9]+) compactions .* ([0-9]+) defrags .*deferred ([0-9]+)\/[0-9]+ sync ([0-9]+).*/\1 \2 \3/p' "$1" |
		awk '{ c += $1; d += $2; q += $3 } END { print c + 0, d + 0, q + 0 }')
	stress_compactions=$((stress_compactions + c))
	stress_defrags=$((stress_defrags + d))
	stress_deferred=$((stress_deferred + q))
	# zsram threads: "# phase 1: W writes, D discards, R reads checked"
	read -r w d r < <(sed -nE 's/^# phase 1: ([0-9]+) writes, ([0-9]+) discards, ([0-9]+) reads checked.*/\1 \2 \3/p' "$1" |
		awk '{ w += $1; d += $2; r += $3 } END { print w + 0, d + 0, r + 0 }')
	# faults: "faults injected N (...)" and "zsram: ... N faults injected"
	n=$(sed -nE 's/^faults injected ([0-9]+) .*/\1/p; s/^zsram: .* ([0-9]+) faults injected$/\1/p' "$1" |
		awk '{ s += $1 } END { print s + 0 }')
	faults_injected=$((faults_injected + n))
	zsram_writes=$((zsram_writes + w))
	zsram_discards=$((zsram_discards + d))
	zsram_reads=$((zsram_reads + r))
}

# fuzz NAME FLAG...: the fuzzer on its working corpus (new inputs are added
# to it), the seeds read as a second corpus
fuzz() {
	local f=$1
	shift
	part "fuzz_$f" "build-fuzz/tests/fuzz/fuzz_$f" -max_total_time="$slice" -timeout=20 \
		-rss_limit_mb=4096 -max_len=1024 -print_final_stats=1 \
		-artifact_prefix="$out/repro/fuzz_$f-" "$@" "$out/corpus-$f" "tests/fuzz/corpus-$f"
}

start=$(date +%s)
deadline=$((start + total))
left() { echo $((deadline - $(date +%s))); }

# Whole rounds, so that every part runs as often as the others: the last
# one may end past the deadline (by at most a round, 8-20 slices).
while [ "$(left)" -gt 0 ]; do
	round=$((round + 1))
	seed=$((RANDOM * 32768 + RANDOM))
	for b in asan tsan; do
		if [ $b = tsan ]; then export TSAN_OPTIONS="$tsan_env"; fi
		part "stress-$b" build-$b/tests/stress --threads 4 --seconds "$slice" --compact \
			--defrag --deferred --seed "$seed"
		# each of its two phases runs --seconds
		part "zsram-threads-$b" build-$b/tests/zsram/test_zsram_threads --threads 4 \
			--seconds $(((slice + 1) / 2)) --recompress --seed "$seed"
		if [ $fork_test = 1 ]; then
			part "fork-$b" meson test -C build-$b --no-rebuild --print-errorlogs fork
		fi
		if [ $faults_test = 1 ]; then
			FAULT_SEED=$seed part "faults-$b" "build-$b/$faults_exe"
		fi
		unset TSAN_OPTIONS
	done
	fuzz pool -detect_leaks=0
	fuzz zsram -detect_leaks=0
	fuzz config -max_len=128 -len_control=0
	if [ $nbd_suite = 1 ]; then
		part nbd meson test -C build --no-rebuild --print-errorlogs --suite nbd
	fi
done

# ------------------------------------------------------------------ figures

elapsed=$(($(date +%s) - start))
failures=0
echo
echo "soak: $round rounds in $elapsed s ($1 h asked)"
printf '  %-20s %6s %6s\n' part runs failed
for p in "${parts[@]}"; do
	printf '  %-20s %6d %6d\n' "$p" "${runs[$p]}" "${fails[$p]}"
	failures=$((failures + fails[$p]))
done
[ $fork_test = 1 ] || echo "  (no 'fork' test in this tree: skipped)"
[ $faults_test = 1 ] || echo "  (no 'faults' test in this tree: skipped)"
[ $nbd_suite = 1 ] || echo "  (no 'nbd' suite in this tree: skipped)"
echo "  faults injected: $faults_injected (every object and page checked after them)"
echo "  fuzz inputs executed: $fuzz_units"
echo "  stress: $stress_compactions compactions, $stress_defrags defrags, $stress_deferred deferred frees drained"
echo "  zsram threads: $zsram_writes writes, $zsram_discards discards, $zsram_reads reads checked"
nrepro=$(find "$out/repro" -type f | wc -l)
echo "  failures: $failures; reproducers: $nrepro in $out/repro; logs: $out/logs"
[ $failures -eq 0 ] && [ "$nrepro" -eq 0 ]
