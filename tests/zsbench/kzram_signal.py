#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""zsbench leaves no kernel zram device behind when it is interrupted.

usage: kzram_signal.py PATH/TO/zsbench

Starts zsbench on the kernel's zram alone, waits (polling, bounded) until
the store's process holds its /dev/zramN open, then:
  - Ctrl-C: SIGINT to the whole process group, as a terminal sends it;
  - SIGTERM to zsbench alone;
  - SIGKILL to the store's process, which can clean nothing up: zsbench
    must remove the device, say the store died and exit 1.
After zsbench exits, that device must be gone: zsbench returns only once it
is removed. Skipped (77) when not root or without /sys/class/zram-control.
"""
import os
import signal
import subprocess
import sys
import time

ZSBENCH = sys.argv[1]
CONTROL = "/sys/class/zram-control"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def children(pid):
    """The processes whose parent is pid."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:  # no CONFIG_PROC_CHILDREN: scan /proc
        out = []
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return out


def zram_held(pid):
    """(child, 'zramN') for a child of pid that holds /dev/zramN open, else None."""
    for c in children(pid):
        try:
            for fd in os.listdir(f"/proc/{c}/fd"):
                link = os.readlink(f"/proc/{c}/fd/{fd}")
                if link.startswith("/dev/zram"):
                    return c, link[len("/dev/"):]
        except OSError:
            pass
    return None


def remove(dev):
    """Removes a device zsbench left, so that a failure does not pile them up."""
    try:
        with open(f"/sys/block/{dev}/reset", "w") as f:
            f.write("1")
        with open(f"{CONTROL}/hot_remove", "w") as f:
            f.write(dev[len("zram"):])
    except OSError as e:
        print(f"could not remove {dev}: {e}", file=sys.stderr)


def start_and_catch():
    """Starts zsbench; returns (process, child, device) once the child holds the device."""
    for size in ("128M", "512M"):
        # two threads: the device is busy with I/O when the signal comes
        p = subprocess.Popen([ZSBENCH, "--stores", "kzram", "--size", size, "--threads", "2"],
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        deadline = time.monotonic() + 90
        while p.poll() is None and time.monotonic() < deadline:
            held = zram_held(p.pid)
            if held:
                return p, held[0], held[1]
            time.sleep(0.002)  # a poll interval: leave the CPUs to zsbench
        # finished before the device was seen (a fast machine): a longer run
        p.kill()
        p.communicate()
    return None, None, None


def case(name, send, expect_rc, expect_err):
    p, child, dev = start_and_catch()
    check(p is not None, f"{name}: zsbench's store never held a zram device")
    if p is None:
        return
    send(p, child)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    check(p.returncode == expect_rc, f"{name}: exit {p.returncode}, expected {expect_rc}: {err!r}")
    check(expect_err in err, f"{name}: {expect_err!r} not in {err!r}")
    left = os.path.exists(f"/sys/block/{dev}")
    check(not left, f"{name}: /dev/{dev} is still there after zsbench exited")
    if left:
        remove(dev)


def main():
    if os.geteuid() != 0 or not os.path.exists(f"{CONTROL}/hot_add"):
        print("skipped: needs root and the zram module", file=sys.stderr)
        return 77
    case("Ctrl-C", lambda p, c: os.killpg(p.pid, signal.SIGINT), -signal.SIGINT, "")
    case("SIGTERM to zsbench", lambda p, c: os.kill(p.pid, signal.SIGTERM), -signal.SIGTERM, "")
    case("SIGKILL to the store", lambda p, c: os.kill(c, signal.SIGKILL), 1,
         "killed by signal 9")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
