#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: installs missing Debian packages, builds, and
# runs the quick suite, the short stress and race tests (plain, under
# ThreadSanitizer and under AddressSanitizer+UBSan), the Spin models, the
# nbdkit plugin's suite (nbd, plain build only) and a short fuzz run. Ends
# with one line: "N passed, N failed".
#
#   bash scripts/test.sh            everything above (a few minutes)
#   bash scripts/test.sh quick      the plain build's quick suite only
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/deps.sh test || exit 1

mode=${1:-all}
passed=0
failed=0
failed_names=()

# setup DIR ARGS...: configure a build directory once, then build it.
setup() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; return 1; }
}

# run LABEL DIR [meson test args]: runs tests and adds up the results.
run() {
	local label=$1 dir=$2
	shift 2
	echo "== $label"
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
	local counts
	counts=$(python3 - "$dir/meson-logs/testlog.json" "$label" <<'EOF'
import json, sys
ok = bad = 0
names = []
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] in ("OK", "EXPECTEDFAIL", "SKIP"):
        ok += 1
    else:
        bad += 1
        names.append(sys.argv[2] + ":" + t["name"])
print(ok, bad, " ".join(names))
EOF
)
	read -r p f names <<<"$counts"
	passed=$((passed + p))
	failed=$((failed + f))
	[ -n "${names:-}" ] && failed_names+=($names)
}

build_fail() {
	echo "build failed: $1"
	failed=$((failed + 1))
	failed_names+=("build:$1")
}

if setup build -Ddebug_level=2; then
	if [ "$mode" = quick ]; then
		run "quick" build --suite quick
	else
		run "quick, stress, models" build --suite quick --suite stress --suite models
		# the nbdkit plugin with real clients (skipped without nbdkit)
		run "nbd" build --suite nbd
	fi
else
	build_fail build
fi

if [ "$mode" != quick ]; then
	export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp"
	if setup build-tsan -Db_sanitize=thread -Dbuildtype=debug -Ddebug_level=2 -Drace_hooks=true -Dnbd=disabled; then
		run "ThreadSanitizer: stress and races" build-tsan --suite stress --suite races
	else
		build_fail build-tsan
	fi
	unset TSAN_OPTIONS

	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
	if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
		-Ddebug_level=3 -Drace_hooks=true -Dnbd=disabled; then
		run "AddressSanitizer+UBSan: quick, stress and races" build-asan \
			--suite quick --suite stress --suite races
	else
		build_fail build-asan
	fi

	if [ -x scripts/fuzz.sh ] || [ -f scripts/fuzz.sh ]; then
		echo "== fuzz (30 s over fuzz_pool, fuzz_zsram, fuzz_config)"
		if bash scripts/fuzz.sh 30; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failed_names+=("fuzz")
		fi
	fi
fi

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
