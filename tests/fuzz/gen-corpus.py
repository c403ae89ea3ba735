#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpus of fuzz_pool (tests/fuzz/corpus/): small inputs
that each exercise a few operations, so the fuzzer starts from every one.

    python3 tests/fuzz/gen-corpus.py [OUT_DIR]

The opcodes and argument layouts mirror enum op in fuzz_pool.c.
"""
import os
import struct
import sys

(OP_MALLOC, OP_MALLOC_SMALL, OP_MALLOC_BURST, OP_WRITE, OP_WRITE_CAP, OP_READ,
 OP_READ_TOO_LONG, OP_FREE, OP_FREE_DEFERRED, OP_FREE_MANY, OP_FLUSH, OP_COMPACT,
 OP_DEFRAG, OP_TRIM, OP_STATS, OP_FLUSH_TRIM_CHECK, OP_READ_HOLD, OP_READ_TWO,
 OP_ZERO, OP_BAD_FREE, OP_BAD_READ, OP_BAD_WRITE, OP_BAD_READ_END,
 OP_BAD_DEFERRED, OP_MALLOC_MANY, OP_MALLOC_WRITE) = range(26)

RETURN_ERRORS = 0x10
NO_SPARE = 0x20
TIGHT = 0x40
NO_SPARES = 0xFFFFFFFF  # ZS_DEFERRED_NO_SPARES


def config(b):
    """The pool configuration byte b selects (config_decode in fuzz_pool.c)."""
    limits = [16, 20, 24, 28, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384, 512, 1036]
    c, v = b & 15, (b >> 4) & 3
    out = {"chain": c + 1, "flags": b & 0x30, "max_pages": 0, "dbuf": 0, "spares": 0}
    if b & TIGHT:
        out["max_pages"] = limits[(c * 7 + v * 5) % 16]
        out["dbuf"] = (c + v) % 8
        out["spares"] = [0, NO_SPARES, 1, 2][(c // 2 + v) % 4]
    return out


def cfg(chain=8, flags=0):
    """The configuration byte of a pool without limit (default deferred)."""
    return bytes([(chain - 1) | flags])


def tight(flags=0, **want):
    """The first 'tight' configuration byte with these flags and settings
    (max_pages, dbuf, spares, chain)."""
    for c in range(16):
        b = c | flags | TIGHT
        d = config(b)
        if all(d[k] == v for k, v in want.items()):
            return bytes([b])
    raise ValueError(f"no configuration with flags {flags:#x} and {want}")


def u16(v):
    return struct.pack("<H", v)


def u64(v):
    return struct.pack("<Q", v)


def malloc(size):
    return bytes([OP_MALLOC]) + u16(size)


def malloc_write(size):
    return bytes([OP_MALLOC_WRITE]) + u16(size)


def small(size, write=1):
    return bytes([OP_MALLOC_SMALL, size - 1, write])


def burst(n, size):
    return bytes([OP_MALLOC_BURST, n - 1]) + u16(size - 1)


def many(n, size):
    return bytes([OP_MALLOC_MANY, n // 4 - 1]) + u16(size - 1)


def write(obj, length):
    return bytes([OP_WRITE, obj]) + u16(length)


def read(obj, length):
    return bytes([OP_READ, obj]) + u16(length)


def op(code, *args):
    return bytes([code, *args])


SEEDS = {
    "malloc-sizes": cfg() + malloc(0) + malloc(1) + malloc(4096) + malloc(4097)
    + malloc(4200) + malloc(3000) + write(4, 3000) + read(4, 3000),
    "malloc-write": cfg(chain=4) + malloc_write(0) + malloc_write(4097)
    + malloc_write(1) + malloc_write(1500) + malloc_write(1500) + malloc_write(4096)
    + read(2, 1500) + write(3, 700) + op(OP_COMPACT) + op(OP_DEFRAG) + read(1, 1500),
    "malloc-write-limit": tight(max_pages=16)
    + b"".join(malloc_write(3000) for _ in range(40)) + op(OP_STATS, 0),
    "write-read": cfg() + malloc(100) + write(0, 100) + read(0, 100) + write(0, 50)
    + read(0, 100),
    "write-cap": cfg() + malloc(100) + op(OP_WRITE_CAP, 0) + malloc(4000)
    + op(OP_WRITE_CAP, 1) + malloc(3625) + op(OP_WRITE_CAP, 2),
    "read-too-long": cfg() + malloc(40) + op(OP_READ_TOO_LONG, 0, 0)
    + malloc(4096) + op(OP_READ_TOO_LONG, 1, 15),
    "straddle": cfg(chain=4) + burst(20, 1500) + read(7, 1500) + read(13, 1500),
    "free": cfg() + burst(8, 200) + op(OP_FREE, 3) + op(OP_FREE, 0) + small(200)
    + op(OP_STATS, 0),
    "free-deferred": cfg() + burst(10, 64) + op(OP_FREE_DEFERRED, 1)
    + op(OP_FREE_DEFERRED, 2) + op(OP_FLUSH),
    "deferred-tiny-buffers": tight(flags=RETURN_ERRORS, dbuf=1) + burst(12, 48)
    + op(OP_FREE_MANY, 0, 0xff) + op(OP_FLUSH) + op(OP_FLUSH_TRIM_CHECK),
    "deferred-no-spares": tight(dbuf=2, spares=NO_SPARES) + burst(12, 300)
    + op(OP_FREE_MANY, 1, 0xff) + op(OP_STATS, 0) + op(OP_FLUSH),
    "deferred-one-spare": tight(dbuf=4, spares=1) + burst(30, 90)
    + op(OP_FREE_MANY, 0, 0xaa) + op(OP_FREE_MANY, 0, 0x55) + op(OP_FLUSH_TRIM_CHECK),
    "compact": cfg() + burst(32, 200) + burst(32, 200) + op(OP_FREE_MANY, 1, 0)
    + op(OP_COMPACT) + op(OP_FLUSH_TRIM_CHECK),
    "compact-chain1": cfg(chain=1) + burst(32, 700) + op(OP_FREE_MANY, 0, 0)
    + op(OP_COMPACT) + op(OP_STATS, 10),
    "compact-chain16": cfg(chain=16) + burst(32, 1000) + burst(32, 1000)
    + op(OP_FREE_MANY, 2, 0) + op(OP_COMPACT),
    "defrag": cfg() + burst(32, 4000) + burst(32, 4000) + burst(32, 4000)
    + op(OP_FREE_MANY, 2, 0) + op(OP_DEFRAG) + op(OP_FLUSH_TRIM_CHECK),
    "defrag-two-chunks": cfg() + many(700, 4096) + op(OP_FREE_MANY, 0, 0)
    + op(OP_DEFRAG) + op(OP_STATS, 0) + op(OP_FLUSH_TRIM_CHECK),
    "defrag-small-objects": cfg(chain=2) + many(1024, 2500)
    + op(OP_FREE_MANY, 1, 0x0f) + op(OP_FLUSH) + op(OP_DEFRAG) + op(OP_COMPACT)
    + op(OP_DEFRAG),
    "defrag-read-hold": cfg() + many(640, 4096) + op(OP_FREE_MANY, 0, 0)
    + op(OP_READ_HOLD, 200, 1) + op(OP_READ_HOLD, 3, 1) + op(OP_DEFRAG),
    "trim": cfg() + burst(4, 500) + op(OP_FREE_MANY, 0, 0) + op(OP_TRIM)
    + op(OP_FLUSH_TRIM_CHECK),
    "no-spare": cfg(flags=NO_SPARE) + burst(6, 128) + op(OP_FREE_MANY, 0, 0)
    + op(OP_FLUSH_TRIM_CHECK),
    "page-limit": tight(max_pages=16) + burst(32, 4096) + burst(32, 4096)
    + op(OP_STATS, 0) + op(OP_COMPACT),
    "page-limit-mixed": tight(max_pages=28) + burst(32, 2000)
    + burst(32, 3000) + op(OP_FREE_MANY, 0, 0x0f) + burst(32, 3000),
    "stats-dump": cfg() + burst(5, 77) + op(OP_STATS, 0) + op(OP_STATS, 1) + op(OP_STATS, 100)
    + op(OP_STATS, 255),
    "tight-limits": tight(max_pages=64, flags=NO_SPARE) + burst(32, 3000) + burst(32, 3000)
    + op(OP_FREE_MANY, 0, 0xff) + burst(32, 3000) + op(OP_FLUSH) + op(OP_STATS, 0),
    "read-hold": cfg() + burst(24, 300) + op(OP_FREE_MANY, 1, 0)
    + op(OP_READ_HOLD, 2, 0) + op(OP_READ_HOLD, 3, 1) + op(OP_READ_HOLD, 0, 2)
    + op(OP_READ_HOLD, 1, 3),
    "read-two": cfg() + burst(3, 3000) + op(OP_READ_TWO, 0, 1) + op(OP_READ_TWO, 2, 2),
    "zero": cfg(flags=RETURN_ERRORS) + op(OP_ZERO) + small(10) + op(OP_ZERO),
    "bad-double-free": cfg(flags=RETURN_ERRORS) + burst(4, 60) + op(OP_FREE, 1)
    + op(OP_BAD_FREE, 0, 0) + op(OP_BAD_DEFERRED, 0, 0) + op(OP_STATS, 0),
    "bad-stale": cfg(flags=RETURN_ERRORS) + small(60) + op(OP_FREE, 0) + small(60)
    + op(OP_BAD_READ, 0, 0) + u16(10) + op(OP_BAD_WRITE, 0, 0) + u16(10)
    + op(OP_BAD_READ_END, 0, 0) + read(0, 60),
    "bad-forged": cfg(flags=RETURN_ERRORS) + burst(4, 60)
    + op(OP_BAD_FREE, 1) + u64(0x5A5A5A5A5A5A50)
    + op(OP_BAD_READ, 1) + u64(0xFFFFFFFFFFFFFFFE) + u16(8)
    + op(OP_BAD_WRITE, 1) + u64(1) + u16(8)
    + op(OP_BAD_DEFERRED, 1) + u64(1 << 62),
    "bad-bitflip": cfg(flags=RETURN_ERRORS) + burst(4, 60)
    + op(OP_BAD_FREE, 2, 0, 0) + op(OP_BAD_FREE, 2, 1, 1)
    + op(OP_BAD_READ, 2, 2, 17) + u16(4) + op(OP_BAD_WRITE, 2, 3, 40) + u16(4),
    "bad-generation": cfg(flags=RETURN_ERRORS) + burst(4, 60)
    + op(OP_BAD_FREE, 3, 0, 0) + op(OP_BAD_FREE, 3, 1, 1)
    + op(OP_BAD_READ_END, 3, 2, 0),
    "bad-zero": cfg(flags=RETURN_ERRORS) + op(OP_BAD_READ, 4) + u16(1)
    + op(OP_BAD_WRITE, 4) + u16(1) + op(OP_BAD_READ_END, 4),
    "bad-ignored-default": cfg() + burst(2, 60) + op(OP_FREE, 0) + op(OP_BAD_FREE, 0, 0),
    "mixed": tight(flags=RETURN_ERRORS, dbuf=5, spares=2)
    + burst(16, 333) + burst(16, 1200) + op(OP_FREE_MANY, 1, 0x33)
    + write(3, 200) + op(OP_COMPACT) + op(OP_BAD_FREE, 0, 0) + op(OP_DEFRAG)
    + op(OP_READ_HOLD, 5, 0) + op(OP_FLUSH_TRIM_CHECK),
    "huge": cfg() + burst(8, 3700) + op(OP_FREE_MANY, 0, 0) + op(OP_COMPACT)
    + op(OP_DEFRAG) + op(OP_WRITE_CAP, 1),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        assert len(data) < 1024, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
