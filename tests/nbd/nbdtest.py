# SPDX-License-Identifier: MIT
"""Helpers for the nbd suite: start nbdkit with the plugin, connect, report."""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import nbd

PLUGIN = os.environ["PLUGIN"]
PAGE = 4096
failures = 0
_handles = []  # connections to close before a server stops (nbdkit waits for them)


def check(cond, what):
    """Counts a failed check and says which; the test goes on."""
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr, flush=True)


def done(name):
    """Ends the test: exit status 1 when a check failed."""
    print("%s: %s" % (name, "FAILED (%d)" % failures if failures else "ok"), flush=True)
    sys.exit(1 if failures else 0)


@contextlib.contextmanager
def server(*args, filters=(), stats=None, quiet=False):
    """nbdkit serving the plugin with args on a unix socket; yields its URI.
    It runs in the foreground (-f) as our child; SIGTERM at the end makes it
    call the plugin's cleanup (stats=FILE is written then)."""
    d = tempfile.mkdtemp(prefix="zsram-nbd-")
    sock, pidf = os.path.join(d, "sock"), os.path.join(d, "pid")
    cmd = ["nbdkit", "-f", "--exit-with-parent", "-U", sock, "-P", pidf]
    cmd += ["--filter=" + f for f in filters]
    cmd += [PLUGIN] + list(args)
    if stats:
        cmd.append("stats=" + stats)
    p = subprocess.Popen(cmd, stderr=subprocess.DEVNULL if quiet else None)
    try:
        # nbdkit writes the pid file once the socket accepts
        for _ in range(500):
            if os.path.exists(pidf) and os.path.getsize(pidf) > 0:
                break
            if p.poll() is not None:
                raise RuntimeError("nbdkit exited: %s" % p.returncode)
            time.sleep(0.01)
        yield "nbd+unix:///?socket=" + sock
    finally:
        while _handles:
            h = _handles.pop()
            try:
                h.shutdown()
            except nbd.Error:
                pass
            del h
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


def connect(uri):
    h = nbd.NBD()
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    h.connect_uri(uri)
    _handles.append(h)
    return h


def extents(h, offset, count, flags=0):
    """[(offset, length, flags)] of base:allocation over [offset, offset + count)."""
    out = []

    def cb(metacontext, off, entries, err):
        if metacontext != nbd.CONTEXT_BASE_ALLOCATION:
            return 0
        pos = off
        for i in range(0, len(entries), 2):
            out.append((pos, entries[i], entries[i + 1]))
            pos += entries[i]
        return 0

    pos, end = offset, offset + count
    while pos < end:
        n = len(out)
        h.block_status(min(end - pos, 1 << 31), pos, cb, flags)
        if len(out) == n:
            raise RuntimeError("no extents")
        pos = out[-1][0] + out[-1][1]
        if flags & nbd.CMD_FLAG_REQ_ONE:
            break
    return out


def page_flags(ext, page):
    """The extent flags covering byte page * PAGE."""
    off = page * PAGE
    for o, n, f in ext:
        if o <= off < o + n:
            return f
    raise KeyError(page)


def text_page(seed, n=PAGE):
    """Compressible bytes, different per seed."""
    words = [b"page ", b"zram ", b"slot ", b"lock ", b"%d " % seed, b"\n"]
    out = bytearray()
    i = seed
    while len(out) < n:
        i = (i * 1103515245 + 12345) & 0x7FFFFFFF
        out += words[i % len(words)]
    return bytes(out[:n])
