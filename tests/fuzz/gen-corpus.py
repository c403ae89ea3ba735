#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzzers: small inputs that each exercise
a few operations, so the fuzzer starts from every one.

    python3 tests/fuzz/gen-corpus.py [OUT_DIR]

writes OUT_DIR/corpus-pool (fuzz_pool.c), corpus-zsram (fuzz_zsram.c) and
corpus-config (fuzz_config.c); OUT_DIR defaults to this directory. The
opcodes and argument layouts mirror enum op in each fuzzer.
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
TRIM_AT_END = 0x80  # the input ends with a trim and checks the pool empty
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
    "malloc-sizes": cfg(flags=TRIM_AT_END) + malloc(0) + malloc(1) + malloc(4096) + malloc(4097)
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
    "compact": cfg(flags=TRIM_AT_END) + burst(32, 200) + burst(32, 200) + op(OP_FREE_MANY, 1, 0)
    + op(OP_COMPACT) + op(OP_FLUSH_TRIM_CHECK),
    "compact-chain1": cfg(chain=1) + burst(32, 700) + op(OP_FREE_MANY, 0, 0)
    + op(OP_COMPACT) + op(OP_STATS, 10),
    "compact-chain16": cfg(chain=16) + burst(32, 1000) + burst(32, 1000)
    + op(OP_FREE_MANY, 2, 0) + op(OP_COMPACT),
    "defrag": cfg(flags=TRIM_AT_END) + burst(32, 4000) + burst(32, 4000) + burst(32, 4000)
    + op(OP_FREE_MANY, 2, 0) + op(OP_DEFRAG) + op(OP_FLUSH_TRIM_CHECK),
    "defrag-two-chunks": cfg(flags=TRIM_AT_END) + many(700, 4096) + op(OP_FREE_MANY, 0, 0)
    + op(OP_DEFRAG) + op(OP_STATS, 0) + op(OP_FLUSH_TRIM_CHECK),
    "defrag-small-objects": cfg(chain=2) + many(1024, 2500)
    + op(OP_FREE_MANY, 1, 0x0f) + op(OP_FLUSH) + op(OP_DEFRAG) + op(OP_COMPACT)
    + op(OP_DEFRAG),
    "defrag-read-hold": cfg() + many(640, 4096) + op(OP_FREE_MANY, 0, 0)
    + op(OP_READ_HOLD, 200, 1) + op(OP_READ_HOLD, 3, 1) + op(OP_DEFRAG),
    "trim": cfg(flags=TRIM_AT_END) + burst(4, 500) + op(OP_FREE_MANY, 0, 0) + op(OP_TRIM)
    + op(OP_FLUSH_TRIM_CHECK),
    "no-spare": cfg(flags=NO_SPARE | TRIM_AT_END) + burst(6, 128) + op(OP_FREE_MANY, 0, 0)
    + op(OP_FLUSH_TRIM_CHECK),
    "page-limit": tight(max_pages=16, flags=TRIM_AT_END) + burst(32, 4096) + burst(32, 4096)
    + op(OP_STATS, 0) + op(OP_COMPACT),
    "page-limit-mixed": tight(max_pages=28) + burst(32, 2000)
    + burst(32, 3000) + op(OP_FREE_MANY, 0, 0x0f) + burst(32, 3000),
    "stats-dump": cfg() + burst(5, 77) + op(OP_STATS, 0) + op(OP_STATS, 1) + op(OP_STATS, 100)
    + op(OP_STATS, 255),
    "tight-limits": tight(max_pages=64, flags=NO_SPARE | TRIM_AT_END) + burst(32, 3000)
    + burst(32, 3000) + op(OP_FREE_MANY, 0, 0xff) + burst(32, 3000) + op(OP_FLUSH) + op(OP_STATS, 0),
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
    "mixed": tight(flags=RETURN_ERRORS | TRIM_AT_END, dbuf=5, spares=2)
    + burst(16, 333) + burst(16, 1200) + op(OP_FREE_MANY, 1, 0x33)
    + write(3, 200) + op(OP_COMPACT) + op(OP_BAD_FREE, 0, 0) + op(OP_DEFRAG)
    + op(OP_READ_HOLD, 5, 0) + op(OP_FLUSH_TRIM_CHECK),
    # found by the fuzzer: zs_pool_trim() may return while the arena's
    # worker still unmaps a chunk its last eviction emptied (issue 18)
    "trim-chunk-release": cfg(flags=TRIM_AT_END) + many(700, 4096) + op(OP_FREE_MANY, 0, 0x0e)
    + malloc(12) + op(OP_FLUSH_TRIM_CHECK),
    "huge": cfg(flags=TRIM_AT_END) + burst(8, 3700) + op(OP_FREE_MANY, 0, 0) + op(OP_COMPACT)
    + op(OP_DEFRAG) + op(OP_WRITE_CAP, 1),
}


# ---------------------------------------------------------------------
# fuzz_zsram.c

(Z_WRITE_PAGE, Z_READ_PAGE, Z_PWRITE, Z_PREAD, Z_DISCARD, Z_COMPACT, Z_FLUSH,
 Z_SET_RECOMP, Z_RECOMPRESS, Z_MM_STAT, Z_POOL, Z_BAD_ARGS, Z_WRITE_RUN) = range(13)

# page kinds (gen_page): zeros, same word, random, text, half random,
# nearly same, random prefix, 16-byte pattern
K_ZERO, K_SAME, K_RANDOM, K_TEXT, K_HALF, K_NEARLY, K_PREFIX, K_PATTERN = range(8)

Z_LEVEL2, Z_SYNC, Z_LIMIT, Z_CHAIN4 = 4, 8, 16, 32


def zcfg(alg=0, flags=0):
    """Store configuration byte: algorithm index (in zsram_algorithms()
    order: lz4, lz4hc, zstd, lzo when built) and flags."""
    return bytes([alg | flags])


def wpage(i, kind, seed=0):
    return bytes([Z_WRITE_PAGE, i, kind, seed])


def rpage(i):
    return bytes([Z_READ_PAGE, i])


def pwrite(page, off, length, kind, seed=0):
    return bytes([Z_PWRITE, page]) + u16(off) + u16(length) + bytes([kind, seed])


def pread(page, off, length):
    return bytes([Z_PREAD, page]) + u16(off) + u16(length)


def zop(code, *args):
    return bytes([code, *args])


def recompress(mode, threshold):
    return bytes([Z_RECOMPRESS, mode]) + u16(threshold)


ALL_KINDS = b"".join(wpage(k, k, 7) for k in range(8))

ZSRAM_SEEDS = {
    "kinds": zcfg() + ALL_KINDS + zop(Z_MM_STAT) + zop(Z_FLUSH),
    "kinds-sync": zcfg(0, Z_SYNC) + ALL_KINDS + wpage(2, K_ZERO) + zop(Z_MM_STAT),
    "kinds-lz4hc": zcfg(1, Z_LEVEL2) + ALL_KINDS + zop(Z_COMPACT),
    "kinds-zstd": zcfg(2) + ALL_KINDS + zop(Z_COMPACT) + zop(Z_MM_STAT),
    "kinds-alg3": zcfg(3, Z_LEVEL2) + ALL_KINDS + zop(Z_MM_STAT),
    "pwrite-unaligned": zcfg() + pwrite(0, 100, 5000, K_TEXT, 1) + pread(0, 50, 6000)
    + pwrite(3, 4000, 200, K_RANDOM, 2) + pwrite(5, 0, 4096, K_ZERO)
    + pwrite(6, 1, 12288, K_HALF, 3) + pread(2, 4095, 2) + zop(Z_MM_STAT),
    "pwrite-same": zcfg(0, Z_SYNC) + wpage(1, K_SAME, 5) + pwrite(1, 8, 8, K_SAME, 5)
    + pwrite(1, 3, 1, K_ZERO) + zop(Z_MM_STAT),
    "pwrite-end": zcfg(0, Z_LEVEL2) + pwrite(23, 4000, 200, K_TEXT)
    + pwrite(24, 0, 1, K_TEXT) + pread(23, 4095, 2) + pread(24, 0, 0),
    "discard": zcfg() + b"".join(wpage(i, K_TEXT, i) for i in range(6))
    + zop(Z_DISCARD, 1, 3) + zop(Z_DISCARD, 15, 2) + zop(Z_DISCARD, 16, 0)
    + zop(Z_DISCARD, 0, 17) + zop(Z_FLUSH) + zop(Z_MM_STAT),
    "enospc": zcfg(0, Z_LIMIT) + bytes([Z_WRITE_RUN, 0, 7, K_TEXT, 1])
    + bytes([Z_WRITE_RUN, 7, 7, K_RANDOM, 1]) + wpage(3, K_ZERO)
    + pwrite(2, 10, 9000, K_TEXT, 9) + zop(Z_MM_STAT),
    "enospc-chain4": zcfg(2, Z_LIMIT | Z_CHAIN4) + bytes([Z_WRITE_RUN, 0, 7, K_HALF, 2])
    + bytes([Z_WRITE_RUN, 8, 7, K_PREFIX, 200]) + zop(Z_DISCARD, 0, 4)
    + bytes([Z_WRITE_RUN, 0, 7, K_HALF, 3]) + zop(Z_COMPACT),
    "enospc-sync": zcfg(1, Z_LIMIT | Z_SYNC) + bytes([Z_WRITE_RUN, 0, 7, K_RANDOM, 1])
    + bytes([Z_WRITE_RUN, 0, 7, K_TEXT, 1]) + zop(Z_MM_STAT),
    "recompress-huge": zcfg() + wpage(0, K_PREFIX, 230) + wpage(1, K_RANDOM)
    + wpage(2, K_PREFIX, 250) + zop(Z_SET_RECOMP, 2, 0) + recompress(1, 0)
    + recompress(1, 0) + zop(Z_MM_STAT),
    "recompress-threshold": zcfg(0, Z_LEVEL2) + ALL_KINDS + zop(Z_SET_RECOMP, 1, 1)
    + recompress(0, 1000) + recompress(0, 0) + wpage(3, K_TEXT, 9) + recompress(0, 0)
    + zop(Z_SET_RECOMP, 2, 0),
    "recompress-errors": zcfg() + recompress(0, 0) + zop(Z_SET_RECOMP, 4, 0)
    + zop(Z_SET_RECOMP, 0, 2) + zop(Z_SET_RECOMP, 2, 3) + recompress(2, 0)
    + zop(Z_SET_RECOMP, 0, 1) + recompress(2, 0) + recompress(0, 65535),
    "pool-ops": zcfg(0, Z_CHAIN4) + b"".join(wpage(i, K_HALF, i) for i in range(12))
    + zop(Z_DISCARD, 0, 6) + zop(Z_POOL, 0) + zop(Z_POOL, 1) + zop(Z_POOL, 2)
    + zop(Z_COMPACT),
    "bad-args": zcfg() + b"".join(zop(Z_BAD_ARGS, w) + u64(o) for w, o in
                                  [(0, 0), (1, 0), (2, 0), (3, 5000), (3, 1 << 40),
                                   (4, 3), (5, 0)])
    + rpage(16) + rpage(17) + wpage(16, K_TEXT),
    "overwrite": zcfg(2, Z_LEVEL2) + wpage(4, K_RANDOM) + wpage(4, K_TEXT)
    + wpage(4, K_ZERO) + wpage(4, K_RANDOM) + pwrite(4, 2048, 100, K_ZERO)
    + zop(Z_FLUSH) + zop(Z_MM_STAT),
}

# ---------------------------------------------------------------------
# fuzz_config.c: values are a mode byte (0 default, 1 u8, 2 u16, 3 u64)
# and the value


def val(v):
    if v == 0:
        return bytes([0])
    if v < 256:
        return bytes([1, v])
    if v < 65536:
        return bytes([2]) + u16(v)
    return bytes([3]) + u64(v)


def pool_fields(max_pages=0, chain=0, flags=0, threshold=0, dbuf=0, spares=0):
    return b"".join(val(v) for v in (max_pages, chain, flags, threshold, dbuf, spares))


def pool_cfg(name_len=4, null=False, **fields):
    return bytes([2 if null else 0]) + pool_fields(**fields) + bytes([name_len]) + u64(7)


# algorithm selectors: lz4, lz4hc, zstd, lzo (when built), then NULL, then
# raw bytes; with lzo: 0..3, 4 NULL, 5 raw
def store_cfg(disk=(1, 15), alg=0, raw=b"", level=(0,), mem_limit=0, flags=0,
              pool=None, null=False):
    b0 = 1 | (2 if null else 0) | (4 if pool is not None else 0)
    mode, *v = disk
    d = bytes([mode])
    if mode == 1:
        d += bytes(v)
    elif mode == 2:
        d += u16(v[0])
    elif mode == 3:
        d += u64(v[0])
    elif mode == 4:
        d += bytes([v[0]]) + u16(v[1])
    elif mode == 5:
        d += bytes(v)
    a = bytes([alg]) + (bytes([len(raw)]) + raw if raw else b"")
    lv = bytes([level[0]])
    if level[0] == 1:
        lv += bytes([level[1] & 0xff])
    elif level[0] == 2:
        lv += struct.pack("<i", level[1])
    elif level[0] == 3:
        lv += bytes([level[1]])
    out = bytes([b0]) + d + a + lv + val(mem_limit) + bytes([flags])
    if pool is not None:
        out += pool_fields(**pool)
    return out + u64(11)


CONFIG_SEEDS = {
    "pool-default": pool_cfg(),
    "pool-null": pool_cfg(null=True),
    "pool-chain": pool_cfg(chain=16, flags=0x20),
    "pool-chain-bad": pool_cfg(chain=17),
    "pool-flag-bad": pool_cfg(flags=0x40),
    "pool-limit-1": pool_cfg(max_pages=1, chain=1),
    "pool-limit-huge": pool_cfg(max_pages=1 << 40),
    "pool-deferred": pool_cfg(dbuf=1, spares=1),
    "pool-deferred-big": pool_cfg(dbuf=4096, spares=4096),
    "pool-bg": pool_cfg(flags=0x04 | 0x08, threshold=1),
    "pool-long-name": pool_cfg(name_len=99, flags=0x13),
    "store-default": store_cfg(),
    "store-null": store_cfg(null=True),
    "store-zstd-fast": store_cfg(alg=2, level=(2, -131072)),
    "store-zstd-bad": store_cfg(alg=2, level=(3, 3)),
    "store-lz4hc-max": store_cfg(alg=1, level=(3, 1)),
    "store-lz4-accel": store_cfg(alg=0, level=(2, 65537)),
    "store-alg-null": store_cfg(alg=4),
    "store-alg-raw": store_cfg(alg=5, raw=b"lz5"),
    "store-alg-raw-lz4": store_cfg(alg=5, raw=b"lz4"),
    "store-disk-zero": store_cfg(disk=(0,)),
    "store-disk-odd": store_cfg(disk=(4, 3, 100)),
    "store-disk-huge": store_cfg(disk=(5, 0)),
    "store-disk-raw": store_cfg(disk=(3, 1 << 63)),
    "store-limit-1": store_cfg(mem_limit=1),
    "store-limit-max": store_cfg(mem_limit=(1 << 64) - 1),
    "store-flags": store_cfg(flags=0x0f),
    "store-flag-bad": store_cfg(flags=0x10),
    "store-pool": store_cfg(pool={"chain": 4, "flags": 0x20, "dbuf": 3, "spares": 2}),
    "store-pool-bad": store_cfg(pool={"chain": 100}),  # > 64: taken as is
    # a bad pool configuration is EINVAL even when the disk's slots cannot
    # be mapped (2^61 bytes): that was ENOMEM, the slots came first
    "store-pool-bad-disk-huge": store_cfg(disk=(3, 1 << 61), pool={"chain": 100}),
}

# ---------------------------------------------------------------------


def write_corpus(out, seeds):
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds.items()):
        assert len(data) < 1024, name
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {out}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    write_corpus(os.path.join(out, "corpus-pool"), SEEDS)
    write_corpus(os.path.join(out, "corpus-zsram"), ZSRAM_SEEDS)
    write_corpus(os.path.join(out, "corpus-config"), CONFIG_SEEDS)


if __name__ == "__main__":
    main()
