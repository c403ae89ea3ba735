#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# qemu-img convert both ways and compare; qemu-io writes and pattern-checked
# reads at unaligned offsets.
set -euo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
find /usr/lib -type f -name '*.so*' -size +0 -print0 | sort -z | xargs -0 cat 2>/dev/null |
	head -c $((32 << 20)) >"$dir/img" || true
truncate -s 32M "$dir/img"
cd "$dir"
export dir
nbdkit -U - "$PLUGIN" size=32M --run '
	set -e
	qemu-img convert -n -f raw -O raw img "$uri"
	qemu-img compare -f raw -F raw img "$uri"
	qemu-img convert -f raw -O raw "$uri" back.raw
	cmp img back.raw
'
echo "qemu-img: ok"

cmds=(-c 'write -P 0x11 1000 5000' -c 'write -P 0x22 8191 3' -c 'write -P 0x33 65535 70000'
	-c 'write -z 20000 10000'
	-c 'read -P 0x11 1000 5000' -c 'read -P 0x22 8191 3' -c 'read -P 0x33 65535 70000'
	-c 'read -P 0 0 1000' -c 'read -P 0 6000 2191' -c 'read -P 0 20000 10000'
	-c 'read -P 0 135535 4000' -c 'flush')
nbdkit -U - "$PLUGIN" size=1M algorithm=zstd --run "qemu-io -f raw \"\$uri\" $(printf '%q ' "${cmds[@]}")" \
	>qemu-io.log 2>&1 || { cat qemu-io.log; exit 1; }
if grep -qiE "fail|error|mismatch" qemu-io.log; then
	cat qemu-io.log
	exit 1
fi
[ "$(grep -c '^read ' qemu-io.log)" -eq 7 ] || { cat qemu-io.log; exit 1; }
echo "qemu-io: ok"
