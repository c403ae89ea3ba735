#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Memory between clients: after nbdcopy writes 64 MiB of this machine's
# files over four connections and disconnects, the server's glibc heaps
# (the main heap and the per-thread ones) hold at most 1 MiB more than
# before the first client -- the plugin trims them when the last
# connection closes. Without that they keep nbdkit's request buffers and
# the codec contexts of the ended threads: 4.5-5.6 MiB here (15 heaps);
# with the trim but glibc's per-thread arenas, whose top chunks
# malloc_trim does not return, 4.2 MiB (the plugin asks for one arena).
# And the pool's mapping then holds no more resident pages than the store
# uses (mm_stat's mem_used_total): the last close trims the pool's cache
# and spares too, at once, not after its decay period (0.5-1.5 MiB more
# without that).
set -euo pipefail
dir=$(mktemp -d)
pid=
cleanup() {
	[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	rm -rf "$dir"
}
trap cleanup EXIT
find /usr/bin -type f -size +0 -print0 | sort -z | xargs -0 cat 2>/dev/null |
	head -c $((64 << 20)) >"$dir/img" || true
truncate -s 64M "$dir/img"

# heaps PID: "N KIB", glibc's per-thread heaps and the resident KiB of
# those and of the main heap ([heap]). A per-thread heap is a 64 MiB-aligned
# anonymous rw mapping followed by the PROT_NONE rest of its 64 MiB
# reservation (glibc's HEAP_MAX_SIZE on 64-bit).
heaps() {
	python3 - "$1" <<'PY'
import sys
maps = []
main = 0
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    f = line.split()
    if len(f) >= 5 and "-" in f[0] and not f[0].endswith(":"):
        a, b = (int(x, 16) for x in f[0].split("-"))
        maps.append([a, b, f[1], len(f) > 5, 0, f[-1] == "[heap]"])
    elif f[0] == "Rss:":
        maps[-1][4] = int(f[1])
        if maps[-1][5]:
            main += int(f[1])
n, kib = 0, main
for (a, b, perm, named, rss, _), nxt in zip(maps, maps[1:]):
    if perm == "rw-p" and not named and a % (64 << 20) == 0 and \
       nxt[2] == "---p" and nxt[0] == b and nxt[1] == a + (64 << 20):
        n, kib = n + 1, kib + rss
print(n, kib)
PY
}

# arena_kib PID: resident KiB of the anonymous mapping with the most
# resident pages: the pool's arena (the store's pages are most of the RSS).
arena_kib() {
	python3 - "$1" <<'PY'
import sys
rss = 0
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    f = line.split()
    if len(f) >= 5 and "-" in f[0] and not f[0].endswith(":"):
        anon = len(f) == 5
    elif f[0] == "Rss:" and anon:
        rss = max(rss, int(f[1]))
print(rss)
PY
}

for alg in lz4 zstd; do
	rm -f "$dir/sock" "$dir/pid"
	nbdkit -f -U "$dir/sock" -P "$dir/pid" "$PLUGIN" size=64M algorithm=$alg \
		stats="$dir/mm_stat" &
	pid=$!
	for _ in $(seq 1000); do # up to 10 s for the server to start
		[ -s "$dir/pid" ] && [ -S "$dir/sock" ] && break
		sleep 0.01
	done
	read -r _ kib0 < <(heaps "$pid")
	nbdcopy --connections=4 "$dir/img" "nbd+unix:///?socket=$dir/sock"
	# the server closes the connections after nbdcopy has gone: poll
	ok=0 deadline=$((SECONDS + 5))
	while :; do
		read -r n kib < <(heaps "$pid")
		[ "$kib" -le $((kib0 + 1024)) ] && { ok=1; break; }
		[ $SECONDS -lt $deadline ] || break
		sleep 0.05
	done
	arena=$(arena_kib "$pid")
	echo "$alg: the main heap and $n thread heaps hold $kib KiB after the last client closed" \
		"($kib0 KiB before the first)"
	kill "$pid"
	wait "$pid" || true
	pid=
	[ $ok = 1 ] || { echo "FAIL: the heaps kept more than 1 MiB"; exit 1; }
	used=$(($(awk '{ print $3 }' "$dir/mm_stat") / 1024))
	echo "$alg: the pool's arena holds $arena KiB resident, the store uses $used KiB"
	[ "$arena" -le "$used" ] || { echo "FAIL: the pool kept $((arena - used)) KiB"; exit 1; }
done
echo "memory: ok"
