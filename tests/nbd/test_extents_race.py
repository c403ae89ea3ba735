# SPDX-License-Identifier: MIT
"""block_status racing writes, from the client's side: never a hole over
written data.

Two writer connections overwrite pages of their own halves of the disk over
and over (compressible, incompressible, zero and same-filled pages, whole
and partial), and after each write returns they add the page to a set of
pages known written; nothing is ever trimmed or zeroed with MAY_TRIM. Two
query connections take a snapshot of that set, then ask block_status over
the whole disk: no page of the snapshot may be inside a HOLE extent, and no
page known to hold non-zero data may be inside a ZERO extent (a page is
only 'non-zero' after a write of non-zero data, and a zero write of it bumps
a per-page counter before it starts, which excuses a ZERO report).

  test_extents_race.py [--seconds S] [nbdkit args...]
"""
import random
import sys
import threading
import time

import nbd
import nbdtest as t
from nbdtest import PAGE, check

args = sys.argv[1:]
seconds = 3.0
if args[:1] == ["--seconds"]:
    seconds, args = float(args[1]), args[2:]
PAGES = 2048
lock = threading.Lock()
written = set()   # Synchronization: lock. Pages whose write returned.
nonzero = set()   # Synchronization: lock. Pages whose last write was non-zero data.
zgen = [0] * PAGES  # Synchronization: lock. Zero writes started, per page.
stop = threading.Event()
counts = {"writes": 0, "queries": 0, "pages_checked": 0}


def writer(uri, c):
    rng = random.Random(c)
    h = t.connect(uri)
    lo, hi = c * PAGES // 2, (c + 1) * PAGES // 2
    while not stop.is_set():
        p = rng.randrange(lo, hi)
        k = rng.randrange(5)
        if k == 0:
            with lock:
                nonzero.discard(p)  # before: a query may run while it is written
                zgen[p] += 1
            h.pwrite(bytes(PAGE), p * PAGE)
        else:
            if k == 1:
                data = rng.randbytes(PAGE)
            elif k == 2:
                data = bytes([rng.randrange(1, 256)]) * PAGE
            else:
                data = t.text_page(rng.randrange(1 << 30))
            if k == 4 and p in written:
                a = rng.randrange(PAGE - 64)
                h.pwrite(data[:64], p * PAGE + a)  # partial: read-modify-write
            else:
                h.pwrite(data, p * PAGE)
            with lock:
                nonzero.add(p)
        with lock:
            written.add(p)
        counts["writes"] += 1


def querier(uri):
    h = t.connect(uri)
    while not stop.is_set():
        with lock:
            known, data, gens = set(written), set(nonzero), list(zgen)
        ext = t.extents(h, 0, PAGES * PAGE)
        for o, n, f in ext:
            for p in range(o // PAGE, (o + n + PAGE - 1) // PAGE):
                if f & nbd.STATE_HOLE and p in known:
                    check(False, "page %d written, reported as a hole %r" % (p, (o, n, f)))
                    stop.set()
                    return
                if f & nbd.STATE_ZERO and p in data:
                    # data only counts if no zero write of p started since the snapshot
                    with lock:
                        still = zgen[p] == gens[p]
                    if still:
                        check(False, "page %d holds data, reported zero %r" % (p, (o, n, f)))
                        stop.set()
                        return
        counts["queries"] += 1
        counts["pages_checked"] += len(known)


with t.server("size=%d" % (PAGES * PAGE), *args) as uri:
    threads = [threading.Thread(target=writer, args=(uri, c)) for c in range(2)]
    threads += [threading.Thread(target=querier, args=(uri,)) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(seconds)
    stop.set()
    for th in threads:
        th.join()
print("extents race: %(writes)d writes, %(queries)d whole-disk queries, "
      "%(pages_checked)d written pages checked" % counts)
check(counts["queries"] > 10 and counts["writes"] > 100, "enough traffic")
t.done("extents-race")
