#!/usr/bin/env python3
"""The page's cost at a large flow table: `replay` of a capture that leaves
N flows active (default 150,000: four phones, each flow to its own server)
serves rounds of C concurrent `/api/view` (default 6) while its resident
memory is sampled. Prints per round the slowest answer and the body size,
and the medians over the rounds; the monitor's RSS before, its peak during
(VmHWM) and after.

    bench/views.py [--flows 150000] [--concurrent 6] [--rounds 10]
                   [--binary target/release/tetherscope]

Loopback only (127.0.0.1, a free port); the capture addresses are
documentation ranges. The replay is stopped by its PID at the end.
"""

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def capture(path, flows):
    """SYN-only TCP flows from four phones to documentation servers, written
    by the test kit's syn-flows program (every flow distinct)."""
    subprocess.run(
        ["cargo", "run", "--quiet", "--release", "-p", "tetherscope-testkit",
         "--bin", "syn-flows", "--", path, str(flows)],
        check=True,
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def get(url):
    t = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
    return time.monotonic() - t, len(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=150_000)
    ap.add_argument("--concurrent", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--binary", default="target/release/tetherscope")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="views-bench-")
    pcap = os.path.join(tmp, "flows.pcap")
    capture(pcap, a.flows)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [a.binary, "replay", "--listen", f"127.0.0.1:{port}", pcap],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                    h = json.load(r)
                if h["active_flows"] >= a.flows * 0.99:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit("the replay never held the flows")
            time.sleep(0.5)
        time.sleep(1)
        before = status(proc.pid)["VmRSS"]
        # Resets the peak, so VmHWM is what the requests took, not the read.
        with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
            f.write("5")
        slowest, sizes = [], []
        with concurrent.futures.ThreadPoolExecutor(a.concurrent) as pool:
            for r in range(a.rounds):
                answers = list(pool.map(get, [base + "/api/view"] * a.concurrent))
                slowest.append(max(t for t, _ in answers))
                sizes.append(max(n for _, n in answers))
                print(f"round {r + 1}: slowest {slowest[-1]:.3f} s, {sizes[-1] / 1e6:.2f} MB")
                time.sleep(1.1)
        s = status(proc.pid)
        time.sleep(2)
        after = status(proc.pid)["VmRSS"]
        print(
            f"{a.flows} active flows, {a.concurrent} concurrent /api/view x {a.rounds}: "
            f"median slowest {statistics.median(slowest):.3f} s, "
            f"median body {statistics.median(sizes) / 1e6:.2f} MB; "
            f"RSS before {before / 1024:.0f} MiB, peak {s['VmHWM'] / 1024:.0f} MiB, "
            f"after {after / 1024:.0f} MiB"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.remove(pcap)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
