# SPDX-License-Identifier: MIT
"""Reordered requests and injected faults, with nbdkit's filters.

1. --filter=delay (reads 3 ms, writes 1 ms, zero and trim 0-2 ms): two
   connections each keep batches of 48 asynchronous requests in flight
   (pwrite, zero, trim, pread on distinct pages of a batch, partial pages
   included), so they complete in another order than they were sent; after
   each batch the shadow is updated and sampled, and at the end the whole
   disk is compared.
2. --filter=error (30 % of pwrites and 20 % of zeros fail with EIO) under
   the delay filter: the client sees errors; a page whose write succeeded
   reads back its data, a page whose write failed reads its old or its new
   data, never anything else; and the disk still compares equal at the end.
"""
import random
import threading

import nbd
import nbdtest as t
from nbdtest import PAGE, check

PAGES = 1024
BATCH = 48
ROUNDS = 25


def run_batches(h, rng, lo, hi, states, errors):
    """BATCH async requests on distinct pages of [lo, hi), ROUNDS times.
    states[p]: the set of contents page p may hold (one, unless a write of
    it failed and it was not read since)."""
    for _ in range(ROUNDS):
        pages = rng.sample(range(lo, hi), BATCH)
        sent = []
        for p in pages:
            op = rng.randrange(6)
            if op < 3:
                data = (t.text_page(rng.randrange(1 << 30)) if op else rng.randbytes(PAGE))
                if rng.randrange(3) == 0:  # a partial page: only when its content is known
                    if len(states[p]) == 1:
                        a = rng.randrange(PAGE - 1)
                        b = rng.randrange(a + 1, PAGE + 1)
                        old = next(iter(states[p]))
                        new = old[:a] + data[a:b] + old[b:]
                        c = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data[a:b])),
                                         p * PAGE + a)
                        sent.append((c, "w", p, new, None))
                        continue
                c = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), p * PAGE)
                sent.append((c, "w", p, data, None))
            elif op == 3:
                c = h.aio_zero(PAGE, p * PAGE, flags=rng.choice([0, nbd.CMD_FLAG_NO_HOLE]))
                sent.append((c, "w", p, bytes(PAGE), None))
            elif op == 4:
                c = h.aio_trim(PAGE, p * PAGE)
                sent.append((c, "w", p, bytes(PAGE), None))
            else:
                buf = nbd.Buffer(PAGE)
                c = h.aio_pread(buf, p * PAGE)
                sent.append((c, "r", p, None, buf))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for c, kind, p, data, buf in sent:
            try:
                h.aio_command_completed(c)
            except nbd.Error:
                if kind == "w":
                    errors[0] += 1
                    states[p] = states[p] | {data}  # old or new
                continue
            if kind == "w":
                states[p] = {data}
            else:
                got = bytes(buf.to_bytearray())
                if got not in states[p]:
                    check(False, "page %d reads something never written" % p)
                    return
                states[p] = {got}


def run(filters, args, expect_errors):
    with t.server("size=%d" % (PAGES * PAGE), *args, filters=filters,
                  quiet=expect_errors) as uri:
        states = [{bytes(PAGE)} for _ in range(PAGES)]
        errors = [0]
        half = PAGES // 2

        def worker(c):
            try:
                h = t.connect(uri)
                run_batches(h, random.Random(c + 7), c * half, (c + 1) * half, states, errors)
            except Exception as e:  # noqa: BLE001 -- any exception fails the test
                check(False, "connection %d: %r" % (c, e))

        threads = [threading.Thread(target=worker, args=(c,)) for c in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        # every page: one of the contents it may hold
        h = t.connect(uri)
        disk = bytes(h.pread(PAGES * PAGE, 0))
        bad = [p for p in range(PAGES) if disk[p * PAGE:(p + 1) * PAGE] not in states[p]]
        check(not bad, "%s: pages %r hold data never written" % (filters, bad[:8]))
        if expect_errors:
            check(errors[0] > 20, "%s: injected errors reached the client (%d)"
                  % (filters, errors[0]))
        else:
            check(errors[0] == 0, "%s: no errors (%d)" % (filters, errors[0]))
        print("%s: %d requests failed" % (" ".join(filters), errors[0]), flush=True)


DELAY = ["delay-read=3ms", "delay-write=1ms", "delay-zero=2ms", "delay-trim=0ms"]
run(["delay"], DELAY, False)
run(["error", "delay"], ["error-pwrite=EIO", "error-pwrite-rate=30%", "error-zero=EIO",
                         "error-zero-rate=20%"] + DELAY, True)
t.done("faults")
