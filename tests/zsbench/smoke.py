#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Smoke test of zsbench: a tiny corpus, checked through its JSON.

usage: smoke.py PATH/TO/zsbench
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ZSBENCH = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def run(*args, expect_rc=0, env=None, user=None):
    """Runs zsbench with args (and env added to the environment, as user when not None)."""
    kw = {"env": {**os.environ, **env}} if env else {}
    if user is not None:
        kw["user"] = user
    p = subprocess.run([ZSBENCH, *args], capture_output=True, text=True, timeout=100, **kw)
    check(p.returncode == expect_rc,
          f"zsbench {' '.join(args)}: exit {p.returncode}, expected {expect_rc}\n"
          f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def run_json(tmp, name, *args):
    """Runs zsbench with --json into tmp/name; returns (the process, the document)."""
    out = os.path.join(tmp, name)
    p = run(*args, "--json", out)
    with open(out) as f:
        return p, json.load(f)


def in_unit(x):
    return isinstance(x, (int, float)) and 0 < x <= 1


def check_store(s):
    name = s.get("name")
    for key in ("name", "kind", "ok", "verified", "density", "memory", "store", "free",
                "compact", "load", "timeline", "extra"):
        check(key in s, f"{name}: field {key} missing")
    check(s.get("ok") is True, f"{name}: not ok: {s.get('error')}")
    check(s.get("verified") is True, f"{name}: read-back not verified")
    check(s.get("mismatches") == 0, f"{name}: {s.get('mismatches')} mismatches")
    check(s["store"]["mb_s"] > 0 and s["load"]["mb_s"] > 0, f"{name}: no throughput")
    check(s["store"]["p50_us"] <= s["store"]["p99_us"], f"{name}: p50 > p99")
    for ph in ("store", "load"):
        op = s[ph]
        check(op.get("wall_ns", 0) > 0 and op.get("cpu_ns", 0) > 0,
              f"{name}: {ph} has no wall or CPU time: {op}")
        check(0 < op.get("cpus", 0) < 64, f"{name}: {ph} cpus = {op.get('cpus')}")
        check(0 <= op.get("steal", -1) < 64, f"{name}: {ph} steal = {op.get('steal')}")
    if s["kind"] == "raw":
        return
    d = s.get("density") or {}
    for point in ("fill", "half", "compact"):
        check(in_unit(d.get(point)), f"{name}: density {point} = {d.get(point)} not in (0, 1]")
    check(len(s["timeline"]) > 10, f"{name}: timeline too short")


def check_classes(tmp, zsram_built):
    """classes: zsram's own pool, with --chain-size applied to it."""
    p, doc = run_json(tmp, "classes.json", "classes", "--size", "2M", "--chain-size", "4")
    check("class" in p.stdout and "chain size 4" in p.stdout, "classes prints no table")
    if zsram_built:
        check(doc.get("pool") == "zsram", f"classes: pool {doc.get('pool')!r}, not zsram's")
        check("zsram's pool" in p.stdout, "classes does not say it is zsram's pool")
    check(doc.get("chain_size") == 4, f"classes: chain_size {doc.get('chain_size')}")
    check(doc.get("objs_used", 0) > 0, "classes: the pool holds no objects")
    ppz = [c["pages_per_zspage"] for c in doc.get("classes", [])]
    check(ppz and max(ppz) <= 4, f"classes: pages_per_zspage up to {max(ppz or [0])} with chain 4")


ABLATE_VARIANTS = ("baseline (chain 8)", "sync free", "pool-lock free", "chain 4", "chain 16",
                   "no compaction", "huge pages")


def check_ablate(tmp, zsram_built):
    """--ablate runs zsram's variants; the table and the JSON name them."""
    p, doc = run_json(tmp, "ablate.json", "--ablate", "--size", "2M", "--threads", "2")
    check("variant" in p.stdout, "--ablate prints no table")
    rows = [line for line in p.stdout.splitlines() if line.rstrip().endswith("yes")]
    for v in ABLATE_VARIANTS:
        check(any(line.startswith(v) for line in rows), f"--ablate: no verified row {v!r}")
    check(not any(line.startswith("deferred free") for line in rows),
          "--ablate still has a 'deferred free' variant (deferred is zsram's baseline)")
    names = [v["name"] for v in doc["variants"]]
    check(names == list(ABLATE_VARIANTS), f"--ablate variants: {names}")
    kinds = {v["kind"] for v in doc["variants"]}
    if zsram_built:
        check("zsram," in p.stdout, "--ablate does not say it ran zsram")
        check(kinds == {"zsram"}, f"--ablate variant kinds: {kinds}")
        extra = {v["name"]: v["extra"] for v in doc["variants"]}
        check(extra["sync free"].get("deferred_queued") == 0,
              f"sync free queued deferred frees: {extra['sync free']}")
        check(extra["baseline (chain 8)"].get("deferred_queued", 0) > 0,
              f"baseline queued no deferred frees: {extra['baseline (chain 8)']}")
        check(extra["chain 4"].get("huge_class_size") == 3257,
              f"chain 4: huge_class_size {extra['chain 4'].get('huge_class_size')}")
    for v in doc["variants"]:
        check(v.get("ok") is True and v.get("verified") is True, f"{v['name']}: not verified")


def check_chain_size(tmp, zsram_built):
    """--chain-size reaches zsram's pool in the main run."""
    if not zsram_built:
        return
    _, doc = run_json(tmp, "chain.json", "--size", "2M", "--stores", "zsram", "--chain-size", "4")
    z = [s for s in doc["stores"] if s["kind"] == "zsram"]
    check(len(z) == 1 and z[0]["extra"].get("huge_class_size") == 3257,
          f"--chain-size 4: zsram's huge_class_size {z and z[0]['extra'].get('huge_class_size')}")


def check_paired_ratios(tmp, zsram_built):
    """zsram's speed against raw: per-round ratios in the JSON and the summary."""
    if not zsram_built:
        return
    _, doc = run_json(tmp, "pair.json", "--size", "2M", "--stores", "zsram,raw", "--repeat", "3")
    r = doc.get("zsram_vs_raw", {})
    for ph in ("store", "load"):
        check(0.01 < r.get(ph, 0) < 100, f"zsram_vs_raw.{ph}: {r.get(ph)}")
    want = f"stores at {r.get('store', 0):.2f}x and loads at {r.get('load', 0):.2f}x"
    check(want in doc["summary"], f"summary {doc['summary']!r} does not say {want!r}")


def check_scaling(tmp, zsram_built):
    """zsbench scaling: 1 and N threads per round, paired ratios, CPUs."""
    stores = "zsram,raw" if zsram_built else "raw"
    p, doc = run_json(tmp, "scaling.json", "scaling", "--size", "2M", "--stores", stores,
                      "--repeat", "3", "--threads", "2")
    check("xN/1" in p.stdout and "1 and 2 threads" in p.stdout, "scaling prints no table")
    check("Steal (/proc/stat)" in p.stdout, "scaling prints no steal line")
    check(doc.get("tool") == "zsbench scaling" and doc.get("threads") == 2
          and doc.get("runs") == 3, f"scaling: header {doc.get('tool')} {doc.get('threads')}")
    kinds = [s["kind"] for s in doc.get("stores", [])]
    check(kinds == stores.split(","), f"scaling: stores {kinds}")
    for s in doc.get("stores", []):
        check(s["ok"] is True and s["verified"] is True, f"scaling {s['kind']}: not verified")
        for ph in ("store", "load"):
            r = s[ph]
            check(r["one"]["mb_s"] > 0 and r["n"]["mb_s"] > 0, f"scaling {s['kind']}: {r}")
            check(0.05 < r["ratio"] < 20, f"scaling {s['kind']} {ph}: ratio {r['ratio']}")
            check(r["one"]["cpus"] > 0 and r["n"]["cpus"] > 0, f"scaling {s['kind']}: {r}")
            check(r["one"]["steal"] >= 0 and r["n"]["steal"] >= 0, f"scaling {s['kind']}: {r}")
            if s["kind"] == "raw":  # one thread of its own, nothing in the background
                check(r["one"]["cpus"] <= 1.05, f"raw at 1 thread used {r['one']['cpus']} CPUs")
    p = run("scaling", "--size", "1M", "--threads", "1", expect_rc=2)
    check("2 or more" in p.stderr, f"scaling --threads 1: {p.stderr!r}")


def check_free_fraction():
    """--free-fraction outside 0..1, NaN and infinities are usage errors, before any work."""
    for bad in ("nan", "-nan", "inf", "-0.1", "1.5", "0.5x", ""):
        p = run("--size", "1M", "--stores", "zsram,raw", "--free-fraction", bad, expect_rc=2)
        check("--free-fraction" in p.stderr and p.stdout == "",
              f"--free-fraction {bad!r}: {p.stderr!r}, stdout {p.stdout[:200]!r}")


def first_line(p):
    return (p.stderr.splitlines() or [""])[0]


def mem_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) << 10
    return None


def check_size():
    """--size: 0, under a page, non-finite, overflowing or above the machine's memory is a
    usage error on one line naming --size, before any work (they used to run 256 MiB)."""
    for bad in ("0", "100", "inf", "nan", "1e30", "99999999T", "-1M", "4X", ""):
        p = run("--size", bad, "--stores", "raw", expect_rc=2)
        check("--size" in first_line(p) and p.stdout == "", f"--size {bad!r}: {p.stderr!r}")
    total = mem_total()
    if total:
        # the pages and a store's copy of them cannot fit in all of RAM
        for args in (("--stores", "raw"), ("--input", "/dev/null"), ("hist",)):
            p = run(*args, "--size", str(total), expect_rc=2)
            check("--size" in first_line(p) and "MemAvailable" in first_line(p)
                  and p.stdout == "", f"--size {total} {args}: {p.stderr!r}")
    p = run("hist", "--size", "6K")
    check(": 1 pages" in p.stdout, f"--size 6K is not one page: {p.stdout[:200]!r}")


def check_algorithm():
    """An unknown --algorithm is a usage error before any work (it ran to an empty table and
    exited 1); the list is the codecs', so lzo, when built in, is known and used."""
    for cmd in ((), ("classes",), ("hist",), ("scaling",), ("--ablate",)):
        p = run(*cmd, "--size", "1M", "--algorithm", "nope", expect_rc=2)
        check("unknown --algorithm 'nope'" in first_line(p) and p.stdout == "",
              f"{cmd} unknown algorithm: {p.stderr!r} {p.stdout[:200]!r}")
    for bad in ("99999999999999999999", "4294967297", "x"):  # 4294967297 wrapped to level 1
        p = run("--size", "1M", "--stores", "raw", "--level", bad, expect_rc=2)
        check("--level" in first_line(p), f"--level {bad}: {p.stderr!r}")
    known = run("--help").stdout.split("--algorithm NAME", 1)[1].split("(default")[0]
    if "lzo" not in known:
        p = run("--size", "1M", "--algorithm", "lzo", "--stores", "raw", expect_rc=2)
        return
    p = run("--size", "1M", "--algorithm", "lzo", "--stores", "zsram,glibc,raw")
    check("unknown" not in p.stderr and "skipped" not in p.stderr,
          f"--algorithm lzo, which --help lists: {p.stderr!r}")
    check("raw lzo" in p.stdout and p.stdout.count(" yes") == 3,
          f"--algorithm lzo did not run every store: {p.stdout!r}")


def check_exit_status(tmp):
    """A store whose process dies fails the run (exit 1), and so does a run in which no store
    ran; both exited 0. ZSBENCH_TEST_KILL (zsbench(1), ENVIRONMENT) has a store's process
    kill itself with SIGKILL before it stores a page."""
    for victim, name in (("glibc", "glibc malloc"), ("zsram", None), ("raw", "raw codec")):
        out = os.path.join(tmp, f"killed-{victim}.json")
        p = run("--size", "1M", "--stores", "zsram,glibc,raw", "--repeat", "2", "--json", out,
                env={"ZSBENCH_TEST_KILL": victim}, expect_rc=1)
        died = [line for line in p.stderr.splitlines() if "killed by signal 9" in line]
        check(len(died) == 1 and (name or "zs") in died[0],
              f"{victim} killed: not one line saying so: {p.stderr!r}")
        check(p.stdout.count(" yes") == 2, f"{victim} killed: the others did not run: {p.stdout!r}")
        with open(out) as f:
            doc = json.load(f)
        check([x["kind"] for x in doc.get("failed", [])] == [victim],
              f"{victim} killed: JSON failed = {doc.get('failed')}")
        check(victim not in [x["kind"] for x in doc["stores"] + doc["skipped"]],
              f"{victim} killed: listed as run or skipped")
    p = run("scaling", "--size", "1M", "--stores", "raw", "--threads", "2",
            env={"ZSBENCH_TEST_KILL": "raw"}, expect_rc=1)
    check("no store ran" in p.stderr, f"scaling, raw killed: {p.stderr!r}")
    p = run("--size", "1M", "--stores", ",", expect_rc=2)
    check("--stores" in first_line(p) and p.stdout == "", f"--stores ',': {p.stderr!r}")
    # a --stores list of nothing that can run here: the kernel's zram for a user who is not root
    user = 65534 if os.geteuid() == 0 else None
    probe = subprocess.run([ZSBENCH, "--version"], capture_output=True, user=user)
    if probe.returncode == 0:
        p = run("--size", "1M", "--stores", "kzram", user=user, expect_rc=1)
        check("no store ran" in p.stderr and "skipped" in p.stderr, f"kzram as a user: {p.stderr!r}")


def check_outputs(tmp):
    """An unwritable --json or --plot target is a usage error before any work (it failed or
    was skipped only after the whole run); a writable new one is not left behind by it."""
    missing = os.path.join(tmp, "no-such-dir", "x")
    for cmd, opt in (((), "--json"), ((), "--plot"), (("--ablate",), "--json"),
                     (("--ablate",), "--plot"), (("scaling",), "--json"),
                     (("classes",), "--json")):
        for target in (missing, tmp):  # no such directory; a directory
            p = run(*cmd, "--size", "1M", opt, target, expect_rc=2)
            check(first_line(p).startswith(f"zsbench: {opt} {target}: ") and p.stdout == "",
                  f"{cmd} {opt} {target}: {p.stderr!r} {p.stdout[:200]!r}")
    fresh = os.path.join(tmp, "fresh.json")
    if mem_total():  # a usage error found after the targets were checked
        run("--size", str(mem_total()), "--stores", "raw", "--json", fresh, expect_rc=2)
        check(not os.path.exists(fresh), "a usage error left the --json file behind")


def check_command_options(tmp):
    """An option a command does not use is a usage error naming both (it was ignored)."""
    here = os.path.dirname(os.path.abspath(__file__))
    png = os.path.join(tmp, "x.png")
    cases = ((("classes",), ("--threads", "2")), (("classes",), ("--free-fraction", "0.3")),
             (("classes",), ("--repeat", "2")), (("classes",), ("--stores", "raw")),
             (("classes",), ("--plot", png)), (("hist",), ("--json", png)),
             (("hist",), ("--threads", "2")), (("hist", "--input", here), ("--seed", "3")),
             (("--ablate",), ("--stores", "zsram")), (("scaling",), ("--plot", png)))
    for cmd, opt in cases:
        p = run(*cmd, "--size", "1M", *opt, expect_rc=2)
        check(f"{cmd[0]} does not use {opt[0]}" in first_line(p) and p.stdout == "",
              f"{cmd} {opt}: {p.stderr!r} {p.stdout[:200]!r}")
    p = run("classes", "--ablate", "--size", "1M", expect_rc=2)
    check("--ablate and classes" in first_line(p), f"classes --ablate: {p.stderr!r}")
    # a command word first is the command, even with --input paths after it
    p = run("hist", "--input", here)
    check("stored bytes" in p.stdout, f"hist --input: {p.stdout[:200]!r}")


def main():
    tmp = tempfile.mkdtemp(prefix="zsbench-smoke-")
    out = os.path.join(tmp, "out.json")
    args = ["--size", "4M", "--seed", "3", "--threads", "2", "--json", out,
            "--stores", "zsram,glibc,jemalloc,mimalloc,raw"]
    if shutil.which("gnuplot"):
        args += ["--plot", os.path.join(tmp, "out.png")]
    p = run(*args)
    check("density" in p.stdout and ("zsram" in p.stdout or "zsmalloc" in p.stdout),
          "no table on stdout")
    with open(out) as f:
        doc = json.load(f)
    for key in ("tool", "version", "corpus", "config", "stores", "skipped", "summary"):
        check(key in doc, f"top-level field {key} missing")
    corpus = doc["corpus"]
    check(corpus["pages"] == 1024, f"corpus has {corpus['pages']} pages, expected 1024")
    check(len(corpus["histogram"]) == 16, "histogram does not have 16 bins")
    kinds = [s["kind"] for s in doc["stores"]]
    check("zsram" in kinds and "glibc" in kinds and "raw" in kinds, f"stores ran: {kinds}")
    for s in doc["stores"]:
        check_store(s)
    check(doc["summary"].startswith("After freeing"), "summary line missing")
    if "--plot" in args:
        with open(os.path.join(tmp, "out.png"), "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "plot is not a PNG")

    # the same seed gives the same corpus
    out2 = os.path.join(tmp, "out2.json")
    run("--size", "4M", "--seed", "3", "--json", out2, "--stores", "raw")
    with open(out2) as f:
        check(json.load(f)["corpus"]["hash"] == corpus["hash"], "corpus differs between runs")

    # the other commands, and errors as one line each
    check("usage" in run("--help").stdout, "--help prints no usage")
    zsram_built = doc["config"].get("zsram_built", False)
    check_classes(tmp, zsram_built)
    check_ablate(tmp, zsram_built)
    check_chain_size(tmp, zsram_built)
    check_paired_ratios(tmp, zsram_built)
    check_scaling(tmp, zsram_built)
    check_free_fraction()
    check_size()
    check_exit_status(tmp)
    check_outputs(tmp)
    check_command_options(tmp)
    p = run("--input", "/nonexistent-zsbench", expect_rc=1)
    check(p.stderr.count("\n") == 2 and "/nonexistent-zsbench" in p.stderr,
          f"unreadable input: {p.stderr!r}")
    check_algorithm()
    shutil.rmtree(tmp)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
