# SPDX-License-Identifier: MIT
"""zero, trim, cache, flush, extents and ENOSPC through nbdkit, with libnbd.

- a fresh disk is one hole; written pages are data, pages written with zeros
  are ZERO (allocated) extents, never holes;
- zero with MAY_TRIM (libnbd's default) makes whole pages holes, without it
  (NO_HOLE) allocated zeros; unaligned head and tail bytes are zeroed, their
  neighbours kept; trim discards whole pages and leaves partial ones;
- REQ_ONE and unaligned block_status; a size that is not a page multiple;
- mem_limit: incompressible pages until ENOSPC, then every earlier page reads
  back intact, the refused page keeps its old content, and room made by a
  trim is usable again; stats=FILE holds zram's nine mm_stat fields.
"""
import errno
import os
import tempfile

import nbd
import nbdtest as t
from nbdtest import PAGE, check

HOLE = nbd.STATE_HOLE | nbd.STATE_ZERO
ZERO = nbd.STATE_ZERO
MiB = 1 << 20


def test_ops():
    size = 4 * MiB
    with t.server("size=%d" % size) as uri:
        h = t.connect(uri)
        ext = t.extents(h, 0, size)
        check(ext == [(0, size, HOLE)], "fresh disk is one hole: %r" % ext[:4])
        check(h.can_multi_conn() and h.can_fua() and h.can_cache() and h.can_fast_zero(),
              "capabilities")
        check(h.get_block_size(nbd.SIZE_PREFERRED) == PAGE, "preferred block size")

        shadow = bytearray(size)
        data = b"".join(t.text_page(i) for i in range(16))
        h.pwrite(data, 0)
        shadow[0:len(data)] = data
        h.pwrite(bytes(PAGE), 20 * PAGE)  # zero page: allocated zeros
        h.pwrite(b"\x5a" * PAGE, 21 * PAGE, nbd.CMD_FLAG_FUA)  # same-filled, not zero
        shadow[21 * PAGE:22 * PAGE] = b"\x5a" * PAGE
        ext = t.extents(h, 0, size)
        for p in range(16):
            check(t.page_flags(ext, p) == 0, "written page %d is data" % p)
        check(t.page_flags(ext, 20) == ZERO, "zero page is ZERO, not a hole")
        check(t.page_flags(ext, 21) == 0, "same-filled 0x5a page is data")
        check(t.page_flags(ext, 30) == HOLE, "unwritten page is a hole")

        # zero whole pages, MAY_TRIM (default): holes
        h.zero(2 * PAGE, 2 * PAGE)
        shadow[2 * PAGE:4 * PAGE] = bytes(2 * PAGE)
        # zero whole pages, NO_HOLE: allocated zeros
        h.zero(2 * PAGE, 4 * PAGE, nbd.CMD_FLAG_NO_HOLE)
        shadow[4 * PAGE:6 * PAGE] = bytes(2 * PAGE)
        # unaligned zero: a head, whole pages and a tail
        lo = 6 * PAGE + 1000
        h.zero(3 * PAGE, lo, nbd.CMD_FLAG_FAST_ZERO)
        shadow[lo:lo + 3 * PAGE] = bytes(3 * PAGE)
        # unaligned zero inside one page, and across one boundary
        h.zero(100, 9 * PAGE + 50)
        shadow[9 * PAGE + 50:9 * PAGE + 150] = bytes(100)
        h.zero(200, 10 * PAGE + 4000)
        shadow[10 * PAGE + 4000:10 * PAGE + 4200] = bytes(200)
        ext = t.extents(h, 0, size)
        check(t.page_flags(ext, 2) & nbd.STATE_HOLE, "zeroed with MAY_TRIM: a hole")
        check(t.page_flags(ext, 4) == ZERO, "zeroed with NO_HOLE: ZERO, not a hole")
        check(t.page_flags(ext, 6) == 0, "unaligned zero's head page stays data")
        check(t.page_flags(ext, 7) == HOLE, "unaligned zero's whole pages are holes")
        check(t.page_flags(ext, 9) == 0, "partly zeroed page stays data")
        check(bytes(h.pread(size, 0)) == bytes(shadow), "contents after zero")

        # trim: whole pages only
        h.trim(12 * PAGE, 2 * PAGE + PAGE // 2)
        shadow[3 * PAGE:14 * PAGE] = bytes(11 * PAGE)
        ext = t.extents(h, 0, size)
        check(t.page_flags(ext, 3) == HOLE and t.page_flags(ext, 13) == HOLE,
              "trimmed pages are holes")
        check(t.page_flags(ext, 14) == 0, "page after the trim stays data")
        check(bytes(h.pread(size, 0)) == bytes(shadow), "contents after trim")

        # REQ_ONE and unaligned queries
        one = t.extents(h, 100, size - 100, nbd.CMD_FLAG_REQ_ONE)
        check(len(one) == 1 and one[0][0] == 100 and one[0][1] == 2 * PAGE - 100
              and one[0][2] == 0, "REQ_ONE from byte 100: %r" % one)
        h.cache(size, 0)
        h.flush()
        # a second connection sees the same disk (multi-conn)
        h2 = t.connect(uri)
        check(bytes(h2.pread(size, 0)) == bytes(shadow), "second connection")


def test_odd_size():
    size = 3 * PAGE + 1000
    with t.server("size=%d" % size) as uri:
        h = t.connect(uri)
        check(h.get_size() == size, "odd size exported exactly")
        h.pwrite(b"q" * 1500, size - 1500)
        check(bytes(h.pread(1500, size - 1500)) == b"q" * 1500, "tail round trip")
        ext = t.extents(h, 0, size)
        check(ext[-1][0] + ext[-1][1] == size, "extents end at the disk's end: %r" % ext)
        h.zero(1000, size - 1000)
        check(bytes(h.pread(1500, size - 1500)) == b"q" * 500 + bytes(1000), "tail zeroed")
        h.trim(1000, 3 * PAGE)  # the last, partial page counts as whole at the end
        check(t.page_flags(t.extents(h, 0, size), 3) == HOLE, "last partial page trimmed")
        try:
            h.pwrite(b"x", size)
            check(False, "write past the end refused")
        except nbd.Error:
            pass


def test_enospc():
    size, limit = 64 * MiB, 1 * MiB
    fd, stats = tempfile.mkstemp(prefix="zsram-stats-")
    os.close(fd)
    with t.server("size=%d" % size, "mem_limit=%d" % limit, stats=stats) as uri:
        h = t.connect(uri)
        pages = {}
        refused = None
        for p in range(size // PAGE):
            data = os.urandom(PAGE)
            try:
                h.pwrite(data, p * PAGE)
                pages[p] = data
            except nbd.Error as e:
                check(e.errnum == errno.ENOSPC, "ENOSPC, got %r" % (e,))
                refused = p
                break
        check(refused is not None and 100 < refused < 400,
              "ENOSPC after ~256 incompressible pages, got %r" % refused)
        for p, data in pages.items():
            if bytes(h.pread(PAGE, p * PAGE)) != data:
                check(False, "page %d intact after ENOSPC" % p)
                break
        check(bytes(h.pread(PAGE, refused * PAGE)) == bytes(PAGE),
              "the refused page keeps its old content")
        # an overwrite at the limit: the new data, or ENOSPC and the old
        p, data = refused - 1, os.urandom(PAGE)
        try:
            h.pwrite(data, p * PAGE)
            pages[p] = data
        except nbd.Error as e:
            check(e.errnum == errno.ENOSPC, "overwrite ENOSPC, got %r" % (e,))
        check(bytes(h.pread(PAGE, p * PAGE)) == pages[p], "overwrite at the limit")
        # zero pages need no memory: they never fail
        h.pwrite(bytes(PAGE), (refused + 10) * PAGE)
        h.zero(PAGE, (refused + 20) * PAGE)
        h.trim(8 * PAGE, 0)
        for p in range(8):
            del pages[p]
        data = os.urandom(PAGE)
        h.pwrite(data, refused * PAGE)  # room made by the trim
        check(bytes(h.pread(PAGE, refused * PAGE)) == data, "write after trim")
    with open(stats) as f:
        fields = f.read().split()
    os.unlink(stats)
    check(len(fields) == 9, "mm_stat has nine fields: %r" % fields)
    if len(fields) == 9:
        check(int(fields[3]) == limit, "mm_stat mem_limit")
        check(int(fields[0]) > 200 * PAGE, "mm_stat orig_data_size")
        check(int(fields[2]) <= limit, "mm_stat mem_used_total within the limit")


test_ops()
test_odd_size()
test_enospc()
t.done("ops")
