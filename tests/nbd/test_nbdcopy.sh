#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nbdcopy round trips of 64 MiB of this machine's files (/usr/bin), with lz4
# and zstd, over four connections; stats=FILE is written at exit.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# real data: /usr/bin's files, concatenated, cut or zero-padded to 64 MiB
find /usr/bin -type f -size +0 -print0 | sort -z | xargs -0 cat 2>/dev/null |
	head -c $((64 << 20)) >"$dir/img" || true
truncate -s 64M "$dir/img"
cd "$dir"
for alg in lz4 zstd; do
	rm -f out stats
	nbdkit -U - "$PLUGIN" size=64M algorithm=$alg stats="$dir/stats" \
		--run 'nbdcopy --connections=4 img "$uri" && nbdcopy "$uri" out'
	cmp img out
	read -r orig compr used _ <stats
	echo "$alg: orig_data_size $orig compr_data_size $compr mem_used_total $used"
	[ "$orig" -gt $((32 << 20)) ] && [ "$compr" -lt "$orig" ] && [ "$used" -gt 0 ] ||
		{ echo "FAIL: stats: $(cat stats)"; exit 1; }
done
echo "nbdcopy: ok"
