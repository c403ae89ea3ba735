#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Verifies one Spin model: tests/models/run-spin.sh MODEL.pml [expect-fail]
#
# The checks come from "@spin" lines in the model's header comment:
#
#   * @spin safety [-DNAME=VALUE ...]      assertions and end states
#   * @spin ltl CLAIM [-DNAME=VALUE ...]   the LTL claim, weak fairness
#
# (no such line: one safety check with the model's defaults). Each check
# runs in a temporary directory: spin -a, cc pan.c, ./pan. Extra defines for
# every check may come from $SPIN_DEFINES (e.g. "-DNREADS=2" for a deeper
# run than CI's); $PAN_DEPTH sets pan's -m (default 100000), $PAN_MEMLIM
# its memory bound in MiB (default 4096).
#
# Exit status: 0 when the expected result happens -- every check complete
# and clean, or with expect-fail, some check reporting an assertion violation -- else 1.
# An incomplete search (depth or memory bound hit) is never "clean".
set -uo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != expect-fail ]; }; then
	echo "usage: $0 MODEL.pml [expect-fail]" >&2
	exit 2
fi
model=$1
expect_fail=false
[ $# -eq 2 ] && expect_fail=true
[ -f "$model" ] || { echo "no such model: $model" >&2; exit 2; }
command -v spin >/dev/null || { echo "spin not found" >&2; exit 1; }
cc=${SPIN_CC:-${CC:-cc}}
command -v "$cc" >/dev/null || cc=gcc
depth=${PAN_DEPTH:-100000}
memlim=${PAN_MEMLIM:-4096}
# shellcheck disable=SC2206 # word splitting wanted
extra=(${SPIN_DEFINES:-})

name=$(basename "$model")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-spin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# the model and whatever it #includes, so that pan's trail lands here too
cp "$(dirname "$model")"/*.pml "$tmp"/
cd "$tmp" || exit 1

checks=()
while IFS= read -r line; do
	checks+=("$line")
done < <(sed -n 's/^[[:space:]]*\*[[:space:]]*@spin[[:space:]]\+//p' "$name")
[ ${#checks[@]} -eq 0 ] && checks=("safety")

found_error=false
all_clean=true

for check in "${checks[@]}"; do
	read -r -a words <<<"$check"
	kind=${words[0]}
	claim=""
	defs=()
	case "$kind" in
	safety)
		defs=("${words[@]:1}")
		ccflags=(-DSAFETY -DNOCLAIM -DCOLLAPSE)
		panflags=(-n -m"$depth")
		;;
	ltl)
		claim=${words[1]:-}
		[ -n "$claim" ] || { echo "$name: '@spin ltl' needs a claim name" >&2; exit 2; }
		defs=("${words[@]:2}")
		ccflags=(-DNFAIR=3 -DCOLLAPSE)
		panflags=(-a -f -N "$claim" -n -m"$depth")
		;;
	*)
		echo "$name: unknown check '$check'" >&2
		exit 2
		;;
	esac
	defs+=("${extra[@]}")
	label="$name: $kind${claim:+ $claim}${defs[*]:+ ${defs[*]}}"
	echo "== $label"

	rm -f pan pan.* ./*.trail
	if ! spin -a "${defs[@]}" "$name" >spin.log 2>&1; then
		cat spin.log
		echo "FAIL: spin -a failed"
		all_clean=false
		continue
	fi
	if ! "$cc" -O2 -w "${ccflags[@]}" -DMEMLIM="$memlim" -o pan pan.c >cc.log 2>&1; then
		cat cc.log
		echo "FAIL: pan.c did not compile"
		all_clean=false
		continue
	fi
	start=$(date +%s.%N)
	./pan "${panflags[@]}" >pan.log 2>&1
	rc=$?
	end=$(date +%s.%N)

	# the summary: errors, what was checked, state counts, time
	grep -E '^pan:|errors:|states, stored|transitions|total actual memory|elapsed time|^[[:space:]]+(assertion violations|invalid end states|acceptance|never claim)|search depth too small|MEMLIM' pan.log
	awk -v a="$start" -v b="$end" 'BEGIN { printf "wall time: %.1f s\n", b - a }'

	errors=$(sed -n 's/.*errors: \([0-9]\+\).*/\1/p' pan.log | tail -1)
	if [ -z "$errors" ]; then
		echo "FAIL: pan did not finish (exit $rc)"
		tail -20 pan.log
		all_clean=false
		continue
	fi
	if [ "$errors" -gt 0 ]; then
		# a bad model must break one of the model's assertions (a lost or
		# doubled free), not merely end in some invalid state
		grep -q 'assertion violated' pan.log && found_error=true
		all_clean=false
		echo "-- counterexample (spin -t -p, last steps):"
		spin -t -p -g "${defs[@]}" "$name" 2>&1 | grep -E 'proc|assert|cycle|Error' | tail -30
		continue
	fi
	if grep -qE 'search depth too small|reached -DMEMLIM bound|out of memory' pan.log; then
		echo "FAIL: incomplete search"
		all_clean=false
	fi
done

if $expect_fail; then
	if $found_error; then
		echo "PASS: $name: an assertion violation was found, as expected"
		exit 0
	fi
	echo "FAIL: $name: expected Spin to find an assertion violation, it found none"
	exit 1
fi
if $all_clean; then
	echo "PASS: $name: verified"
	exit 0
fi
echo "FAIL: $name"
exit 1
