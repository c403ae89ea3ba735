#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nbd-bench.sh: the nbdkit zsram plugin against nbdkit's memory plugin
# (allocator=sparse, malloc and zstd) on the same real data: 256 MiB of this
# machine's files (/usr/bin, then /usr/lib). Not a test; see docs/nbd.md.
#
#   bash bench/nbd-bench.sh [--rounds N] [--fio-seconds S] [--mib N]
#
# Per server and round (a fresh nbdkit each round), over a unix socket:
#   write      nbdcopy data -> disk, MiB/s; RSS after it (VmRSS of nbdkit)
#   read       nbdcopy disk -> null:, MiB/s
#   extents    libnbd block_status over the whole disk, ms (median of 5)
#   trim       whole-disk trim, then RSS (after 0.3 s for queued frees)
#   qemu in    qemu-img convert data -> disk, MiB/s
#   qemu out   qemu-img convert disk -> file in /dev/shm, MiB/s
#   fio        4k randwrite, iodepth 16, half-compressible buffers (fio's
#              buffer_compress_percentage=50), on a fresh server, half the
#              disk's blocks once each: IOPS, and RSS after; then 4k
#              randread for --fio-seconds: IOPS
# Prints the medians and their ratios to memory allocator=zstd. Builds the
# plugin in build-rel (release, as scripts/run.sh) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH=/usr/bin:$PATH
rounds=3 fio_seconds=5 mib=256
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--fio-seconds) fio_seconds=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
build=${BUILD_DIR:-build-rel}
[ -f "$build/build.ninja" ] ||
	meson setup "$build" --buildtype=release -Ddebug_level=0 >/dev/null
ninja -C "$build" nbd/nbdkit-zsram-plugin.so >/dev/null
plugin=$root/$build/nbd/nbdkit-zsram-plugin.so

work=$(mktemp -d /dev/shm/nbd-bench.XXXXXX 2>/dev/null || mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
data=$work/data.img
find /usr/bin /usr/lib -type f -size +0 -print0 2>/dev/null | sort -z |
	xargs -0 cat 2>/dev/null | head -c $((mib << 20)) >"$data" || true
truncate -s ${mib}M "$data"
size=$((mib << 20))
results=$work/results
: >"$results"

servers=(zsram-lz4 zsram-zstd mem-sparse mem-malloc mem-zstd)
server_args() {
	case $1 in
	zsram-lz4) echo "$plugin size=$size algorithm=lz4" ;;
	zsram-zstd) echo "$plugin size=$size algorithm=zstd" ;;
	mem-sparse) echo "memory size=$size allocator=sparse" ;;
	mem-malloc) echo "memory size=$size allocator=malloc" ;;
	mem-zstd) echo "memory size=$size allocator=zstd" ;;
	esac
}

# start SERVER: a fresh nbdkit in the foreground, as our child; sets pid, uri
start() {
	local sock=$work/sock
	rm -f "$sock" "$work/pid"
	# shellcheck disable=SC2046 # the server's arguments split on purpose
	nbdkit -f -U "$sock" -P "$work/pid" $(server_args "$1") &
	pid=$!
	for _ in $(seq 500); do
		[ -s "$work/pid" ] && break
		sleep 0.01
	done
	uri="nbd+unix:///?socket=$sock"
}
stop() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
now() { date +%s.%N; }
record() { echo "$1 $2 $3" >>"$results"; }
mibps() { python3 -c "import sys; print('%.1f' % ($mib / (float(sys.argv[2]) - float(sys.argv[1]))))" "$@"; }

extents_ms() {
	nbdsh --base-allocation -u "$uri" -c '
import time, statistics
n = 0
def cb(ctx, off, entries, err):
    global n
    n += len(entries) // 2
    return 0
ts = []
for _ in range(5):
    t0 = time.perf_counter()
    h.block_status(h.get_size(), 0, cb)
    ts.append((time.perf_counter() - t0) * 1000)
print("%.3f" % statistics.median(ts))
'
}

# fio_iops randwrite|randread: randwrite writes the same amount everywhere (half
# the disk, each 4k block at most once), so that the RSS after it compares
# like with like; randread runs --fio-seconds.
fio_iops() {
	local amount=(--io_size=$((size / 2)))
	[ "$1" = randread ] && amount=(--time_based --runtime="$fio_seconds")
	fio --name=nbd --ioengine=nbd --uri="$uri" --rw="$1" --bs=4k --iodepth=16 \
		--size=$size "${amount[@]}" --buffer_compress_percentage=50 \
		--refill_buffers --randrepeat=0 --output-format=json 2>/dev/null |
		python3 -c 'import json, sys
s = sys.stdin.read()  # the nbd engine prints a line before the JSON
j = json.loads(s[s.index("{"):])["jobs"][0]
print("%.0f" % (j["write"]["iops"] + j["read"]["iops"]))'
}

for r in $(seq "$rounds"); do
	for s in "${servers[@]}"; do
		echo "round $r: $s" >&2
		start "$s"
		record "$s" rss_idle_mib "$(($(rss_kib) / 1024))"
		t0=$(now); nbdcopy "$data" "$uri"; t1=$(now)
		record "$s" write_mibs "$(mibps "$t0" "$t1")"
		sleep 0.3
		record "$s" rss_write_mib "$(($(rss_kib) / 1024))"
		t0=$(now); nbdcopy "$uri" null:; t1=$(now)
		record "$s" read_mibs "$(mibps "$t0" "$t1")"
		record "$s" extents_ms "$(extents_ms)"
		nbdsh -u "$uri" -c 'h.trim(h.get_size(), 0)'
		sleep 0.3
		record "$s" rss_trim_mib "$(($(rss_kib) / 1024))"
		t0=$(now); qemu-img convert -n -f raw -O raw "$data" "$uri"; t1=$(now)
		record "$s" qemu_in_mibs "$(mibps "$t0" "$t1")"
		t0=$(now); qemu-img convert -f raw -O raw "$uri" "$work/out.raw"; t1=$(now)
		record "$s" qemu_out_mibs "$(mibps "$t0" "$t1")"
		rm -f "$work/out.raw"
		stop
		start "$s"
		record "$s" fio_randwrite_iops "$(fio_iops randwrite)"
		sleep 0.3
		record "$s" rss_fio_mib "$(($(rss_kib) / 1024))"
		record "$s" fio_randread_iops "$(fio_iops randread)"
		stop
	done
done

python3 - "$results" "$rounds" "$mib" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    s, m, v = line.split()
    rows.setdefault(m, {}).setdefault(s, []).append(float(v))
servers = ["zsram-lz4", "zsram-zstd", "mem-sparse", "mem-malloc", "mem-zstd"]
metrics = [("write_mibs", "nbdcopy write MiB/s"), ("read_mibs", "nbdcopy read MiB/s"),
           ("qemu_in_mibs", "qemu-img convert in MiB/s"),
           ("qemu_out_mibs", "qemu-img convert out MiB/s"),
           ("fio_randwrite_iops", "fio 4k randwrite IOPS"),
           ("fio_randread_iops", "fio 4k randread IOPS"),
           ("rss_idle_mib", "RSS idle MiB"), ("rss_write_mib", "RSS after write MiB"),
           ("rss_trim_mib", "RSS after trim MiB"), ("rss_fio_mib", "RSS after fio randwrite MiB"),
           ("extents_ms", "whole-disk extents ms")]
med = {m: {s: statistics.median(rows[m][s]) for s in servers if s in rows.get(m, {})}
       for m, _ in metrics}
print("\n%s MiB of /usr/bin + /usr/lib files; medians of %s rounds" % (sys.argv[3], sys.argv[2]))
w = 30
print("%-*s" % (w, "") + "".join("%12s" % s for s in servers))
for m, label in metrics:
    print("%-*s" % (w, label) + "".join("%12s" % ("%.4g" % med[m][s] if s in med[m] else "-")
                                       for s in servers))
print("\nratio to memory allocator=zstd")
print("%-*s" % (w, "") + "".join("%12s" % s for s in servers))
for m, label in metrics:
    base = med[m].get("mem-zstd")
    print("%-*s" % (w, label) + "".join(
        "%12s" % ("%.3gx" % (med[m][s] / base) if base and s in med[m] else "-")
        for s in servers))
EOF
