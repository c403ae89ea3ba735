#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh PLUGIN TEST [ARGS]: runs one test of the nbd suite with the plugin
# at PLUGIN (exported as $PLUGIN). Exits 77 (meson: skipped) when the plugin
# was not built or nbdkit, nbdcopy, qemu-img or python3-libnbd is missing.
set -euo pipefail
# Debian's python3 (the one with python3-libnbd) and tools before any other
export PATH=/usr/bin:$PATH
plugin=$1 test=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$plugin" ] || [ ! -f "$plugin" ]; then
	echo "SKIP: the plugin was not built (nbdkit-plugin-dev missing)"
	exit 77
fi
for tool in nbdkit nbdcopy nbdsh qemu-img qemu-io; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
export PLUGIN=$plugin
case $test in
*.py)
	python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd missing"; exit 77; }
	exec python3 "$here/$test" "$@"
	;;
*)
	exec bash "$here/$test" "$@"
	;;
esac
