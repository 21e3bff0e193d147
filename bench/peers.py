"""Runs the peer benchmark and prints it in a stable format (see run.sh).

Each tool is timed by /usr/bin/time (user+sys CPU seconds, wall seconds,
peak RSS); runs are interleaved so machine noise hits every tool alike, and
medians are reported.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TETHERSCOPE = os.path.join(ROOT, "target/release/tetherscope")
PCAP_COUNT = os.path.join(ROOT, "target/release/examples/pcap_count")


def commands(capture, jsonl="/dev/null"):
    return {
        "tetherscope": [TETHERSCOPE, "read", "--format", "jsonl", "--quiet", capture],
        "ndpiReader": ["ndpiReader", "-q", "-i", capture],
        "libpcap-loop": [PCAP_COUNT, capture],
    }


def timed(cmd, stdout_path="/dev/null"):
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t, open(stdout_path, "wb") as out:
        r = subprocess.run(["/usr/bin/time", "-o", t.name, "-f", "%U %S %e %M"] + cmd,
                           stdout=out, stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit(f"bench: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
        user, sys_, wall, rss = t.read().split()[-4:]
    return float(user) + float(sys_), float(wall), int(rss) / 1024.0


def packets_in(capture):
    out = subprocess.run([PCAP_COUNT, capture], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--small", required=True)
    a = ap.parse_args()

    packets = packets_in(a.capture)
    size = os.path.getsize(a.capture)
    tools = commands(a.capture)

    # Warm-up (page cache), and the correctness run: tetherscope's records.
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as j:
        timed(tools["tetherscope"], j.name)
        check = subprocess.run([sys.executable, os.path.join(ROOT, "bench/check_truth.py"),
                                a.truth, j.name], capture_output=True, text=True)
    names_line = [l for l in check.stdout.splitlines() if l.startswith("names:")]
    for name in ("ndpiReader", "libpcap-loop"):
        timed(tools[name])

    results = {name: [] for name in tools}
    for i in range(a.runs):
        for name, cmd in tools.items():
            results[name].append(timed(cmd))
        print(f"bench: run {i + 1}/{a.runs} done", file=sys.stderr)

    med = {n: tuple(statistics.median(x[k] for x in r) for k in range(3)) for n, r in results.items()}
    print(f"tetherscope peer benchmark: {os.path.basename(a.capture)}, {packets} packets, "
          f"{size / 1e9:.2f} GB; {a.runs} runs after a warm-up; medians")
    print(f"{'tool':<14} {'cpu_s':>7} {'wall_s':>7} {'peak_rss_mib':>13} {'packets_per_cpu_s':>18}")
    for name, (cpu, wall, rss) in med.items():
        print(f"{name:<14} {cpu:>7.2f} {wall:>7.2f} {rss:>13.1f} {packets / cpu:>18.0f}")
    t, n, l = med["tetherscope"][0], med["ndpiReader"][0], med["libpcap-loop"][0]
    print(f"ratio tetherscope/ndpiReader packets per CPU-second: {n / t:.2f}x")
    print(f"ratio tetherscope/libpcap-loop packets per CPU-second: {l / t:.2f} ({100 * l / t:.0f}% of the raw read rate)")
    print(f"ratio peak RSS tetherscope/ndpiReader: {med['tetherscope'][2] / med['ndpiReader'][2]:.2f}")
    print(names_line[0] if names_line else f"names: check failed: {check.stdout} {check.stderr}")

    # Cost per packet against capture length: a quarter of the packets.
    small_packets = packets_in(a.small)
    small = statistics.median(timed(commands(a.small)["tetherscope"])[0] for _ in range(a.runs))
    per_big = 1e9 * t / packets
    per_small = 1e9 * small / small_packets
    print(f"scaling tetherscope ns per packet: {small_packets} packets {per_small:.0f}, "
          f"{packets} packets {per_big:.0f} (ratio {per_big / per_small:.2f})")


if __name__ == "__main__":
    main()
