# SPDX-License-Identifier: MIT
"""A randomised model: several connections at once (one thread each, its own
libnbd handle) run pwrite, zero (with and without MAY_TRIM), trim, pread and
block_status on their own region of one disk, each against a shadow copy of
its region; at the end a fresh connection compares the whole disk.

The shadow follows the plugin's documented semantics: trim discards the
whole pages inside the range (they read as zeros) and leaves partial pages
alone. An extent flagged ZERO must read as zeros in the shadow, and no page
holding non-zero bytes may be a hole.

  test_model.py [--seconds S] [--conns N] [--seed S] [nbdkit args...]
"""
import os
import random
import sys
import threading
import time

import nbd
import nbdtest as t
from nbdtest import PAGE, check

args = sys.argv[1:]
seconds, conns, seed = 4.0, 4, 1
while args and args[0].startswith("--"):
    k, v = args[0], args[1]
    args = args[2:]
    if k == "--seconds":
        seconds = float(v)
    elif k == "--conns":
        conns = int(v)
    elif k == "--seed":
        seed = int(v)
REGION = 2 << 20
SIZE = REGION * conns
ops = [0] * conns

# contents of each kind: compressible, incompressible, zeros, same-filled
def content(rng, n):
    k = rng.randrange(4)
    if k == 0:
        return t.text_page(rng.randrange(1 << 30), n)
    if k == 1:
        return rng.randbytes(n)
    if k == 2:
        return bytes(n)
    return bytes([rng.randrange(1, 256)]) * n


def worker(uri, c):
    rng = random.Random(seed * 1000 + c)
    h = t.connect(uri)
    base = c * REGION
    shadow = bytearray(REGION)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        op = rng.randrange(10)
        # mostly small ranges, some spanning many pages, unaligned
        ln = rng.choice([1 + rng.randrange(100), 1 + rng.randrange(3 * PAGE),
                         PAGE, 1 + rng.randrange(64 * PAGE)])
        off = rng.randrange(REGION - ln + 1)
        if rng.randrange(3) == 0:
            off -= off % PAGE
        if op < 4:
            data = content(rng, ln)
            h.pwrite(data, base + off)
            shadow[off:off + ln] = data
        elif op < 5:
            flags = nbd.CMD_FLAG_NO_HOLE if rng.randrange(2) else 0
            h.zero(ln, base + off, flags)
            shadow[off:off + ln] = bytes(ln)
        elif op < 6:
            h.trim(ln, base + off)
            a = (off + PAGE - 1) // PAGE * PAGE
            b = (off + ln) // PAGE * PAGE
            if b > a:
                shadow[a:b] = bytes(b - a)
        elif op < 9:
            got = bytes(h.pread(ln, base + off))
            if got != bytes(shadow[off:off + ln]):
                check(False, "conn %d: pread(%d, %d) differs from the shadow" % (c, ln, off))
                return
        else:
            for o, l, f in t.extents(h, base + off, ln):
                lo, hi = max(o, base + off) - base, min(o + l, base + off + ln) - base
                if f & nbd.STATE_ZERO and any(shadow[lo:hi]):
                    check(False, "conn %d: extent %r flagged zero over data" % (c, (o, l, f)))
                    return
        n += 1
    ops[c] = n
    shadows[c] = shadow


shadows = [None] * conns
with t.server("size=%d" % SIZE, *args) as uri:
    threads = [threading.Thread(target=worker, args=(uri, c)) for c in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check(all(s is not None for s in shadows), "every connection finished")
    if all(s is not None for s in shadows):
        h = t.connect(uri)
        whole = b"".join(bytes(s) for s in shadows)
        check(bytes(h.pread(SIZE, 0)) == whole, "final whole-disk comparison")
        for o, l, f in t.extents(h, 0, SIZE):
            if f & nbd.STATE_ZERO and any(whole[o:o + l]):
                check(False, "final extent %r flagged zero over data" % ((o, l, f),))
                break
print("model: %d connections, %d operations (%s)" % (conns, sum(ops), " ".join(args)))
t.done("model")
