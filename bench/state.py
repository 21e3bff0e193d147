#!/usr/bin/env python3
"""What the state store costs `tetherscope read`: CPU time (user + system,
all threads) and wall time of `read --format jsonl` on the same capture,
with and without `--state`, interleaved, medians of RUNS runs each, and the
store's size. Each `--state` run starts from a fresh store (every
destination an insert: the worst case) unless --reuse is given.

    python3 bench/state.py --capture /tmp/tetherscope-bench/phone_2m.pcap [--runs 5]
"""
import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time


def timed(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def store_rows(path):
    """Destinations, devices, saved DNS answers and the addresses they hold
    (a store of schema 1 kept one answer per address)."""
    c = sqlite3.connect(path)
    try:
        count = lambda sql: c.execute(sql).fetchone()[0]
        columns = [r[1] for r in c.execute("PRAGMA table_info(dns_answer)")]
        addresses = ("SELECT coalesce(sum(json_array_length(addresses)), 0) FROM dns_answer"
                     if "addresses" in columns else "SELECT count(*) FROM dns_answer")
        return (count("SELECT count(*) FROM destination"), count("SELECT count(*) FROM device"),
                count("SELECT count(*) FROM dns_answer"), count(addresses))
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--capture", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--binary", default="target/release/tetherscope")
    ap.add_argument("--reuse", action="store_true", help="keep one store across runs")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="tetherscope-state-bench-")
    store = os.path.join(scratch, "state.db")
    base = [args.binary, "read", "--format", "jsonl", "--quiet"]
    plain, stateful = [], []
    try:
        timed(base + [args.capture])  # warm-up: page cache
        for _ in range(args.runs):
            plain.append(timed(base + [args.capture]))
            if not args.reuse:
                shutil.rmtree(scratch, ignore_errors=True)
                os.makedirs(scratch)
            stateful.append(timed(base + ["--state", store, args.capture]))
        size = sum(os.path.getsize(p) for p in (store, store + "-wal") if os.path.exists(p))
        rows = store_rows(store)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    print(f"runs: {args.runs} each, interleaved; store {'reused' if args.reuse else 'fresh each run'}")
    ratios = [s[0] / p[0] for p, s in zip(plain, stateful)]
    print(f"read            cpu {med(plain, 0):7.3f} s  wall {med(plain, 1):7.3f} s")
    print(f"read --state    cpu {med(stateful, 0):7.3f} s  wall {med(stateful, 1):7.3f} s")
    print(f"cpu ratio (median --state / median plain): {med(stateful, 0) / med(plain, 0):.3f}")
    # Each --state run is compared with the plain run just before it, so a
    # slow spell of a shared machine weighs on both sides of a ratio.
    print(f"median of per-round cpu ratios: {statistics.median(ratios):.3f}")
    print(f"per-round cpu ratios: {', '.join(f'{r:.3f}' for r in ratios)}")
    print(f"store: {size} bytes; {rows[0]} destinations, {rows[1]} devices, {rows[2]} DNS answers ({rows[3]} addresses)")


if __name__ == "__main__":
    main()
