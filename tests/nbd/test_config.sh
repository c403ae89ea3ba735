#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad config values stop nbdkit at start (non-zero exit) with an error line
# naming the key; good ones start; nbdsh over TCP sees the capabilities;
# --dump-plugin lists the codecs.
set -uo pipefail
fail=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT

# bad KEY ARGS...: nbdkit must refuse ARGS with an error line naming KEY
bad() {
	local key=$1
	shift
	if nbdkit -U - "$PLUGIN" "$@" --run true 2>"$err"; then
		echo "FAIL: nbdkit started with $*"
		fail=1
	elif ! grep -q "error: .*$key" "$err"; then
		echo "FAIL: $*: no error line naming '$key':"
		cat "$err"
		fail=1
	fi
}

good() {
	if ! nbdkit -U - "$PLUGIN" "$@" --run 'nbdinfo --size "$uri" >/dev/null' 2>"$err"; then
		echo "FAIL: nbdkit refused $*:"
		cat "$err"
		fail=1
	fi
}

bad algorithm size=16M algorithm=nosuch
bad level size=16M algorithm=zstd level=23
bad level size=16M algorithm=lz4hc level=13
bad level size=16M level=notanumber
bad size size=nonsense
bad size size=0
bad size algorithm=lz4
bad size size=8E
bad mem_limit size=16M mem_limit=lots
bad chain_size size=16M chain_size=17
bad recomp_algorithm size=16M recomp_algorithm=nosuch
bad recomp_level size=16M recomp_algorithm=zstd recomp_level=99
bad recompress size=16M recompress=huge
bad recompress size=16M recomp_algorithm=zstd recompress=5000
bad recompress_interval size=16M recomp_algorithm=zstd recompress_interval=0
bad bg_compact size=16M bg_compact=maybe
bad nosuchkey size=16M nosuchkey=1

good size=16M
good 1G
good size=16M algorithm=zstd level=-5 mem_limit=8M chain_size=4 bg_compact=true
good size=16M algorithm=lz4hc level=12 recomp_algorithm=zstd recomp_level=19 \
	recompress=2000 recompress_interval=1

# TCP on a loopback port, driven by nbdsh: the capabilities and a round trip
port=$((20000 + RANDOM % 20000))
if ! nbdkit -i 127.0.0.1 -p $port "$PLUGIN" size=1M --run 'nbdsh -u "$uri" \
	-c "assert h.get_size() == 1 << 20" \
	-c "assert h.can_multi_conn() and h.can_trim() and h.can_zero() and h.can_fast_zero()" \
	-c "assert h.can_fua() and h.can_cache() and h.can_flush() and not h.is_read_only()" \
	-c "h.pwrite(b\"tcp\" * 100, 7)" -c "assert h.pread(300, 7) == b\"tcp\" * 100"' 2>"$err"; then
	echo "FAIL: nbdsh over TCP (port $port):"
	cat "$err"
	fail=1
fi

dump=$(nbdkit "$PLUGIN" --dump-plugin)
grep -q "^zsram_algorithms=.*lz4.*zstd" <<<"$dump" || { echo "FAIL: dump-plugin: $dump"; fail=1; }
grep -q "^thread_model=parallel" <<<"$dump" || { echo "FAIL: thread model: $dump"; fail=1; }

[ $fail -eq 0 ] && echo "config: ok"
exit $fail
