#!/usr/bin/env python3
"""The scrape benchmark (`cargo bench --bench scrape`) of this tree against
another revision's, measured in the same run.

Builds both bench binaries (the other revision in a temporary git worktree,
seeded with a copy of this tree's release build so only what differs
compiles; sharing the directory itself would mix the two trees' crates),
then runs them in alternation, ROUNDS times each, and prints per benchmark
the median of criterion's estimates for each side and the median of the
per-round ratios. On a shared, noisy machine only the ratio of interleaved
runs means anything.

    bench/scrape_against.py REV [--rounds N] [--measure SECONDS]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = re.compile(r"^(\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", re.M)
UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}


def build(tree: str) -> str:
    """Builds the scrape bench in `tree`; returns a copy of its binary."""
    out = subprocess.run(
        ["cargo", "bench", "--bench", "scrape", "--no-run", "--message-format", "json"],
        cwd=tree, check=True, capture_output=True, text=True,
    ).stdout
    exe = None
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "scrape":
            exe = msg.get("executable") or exe
    if not exe:
        sys.exit(f"bench: no scrape executable built in {tree}")
    fd, copy = tempfile.mkstemp(prefix="scrape-")
    os.close(fd)
    shutil.copy(exe, copy)
    return copy


def run(exe: str, measure: float) -> dict:
    """One criterion run; milliseconds per benchmark (criterion's estimate)."""
    out = subprocess.run(
        [exe, "--bench", "--noplot", "--warm-up-time", "1",
         "--measurement-time", str(measure)],
        check=True, capture_output=True, text=True,
    )
    text = out.stdout + out.stderr
    # criterion prints the name, then on the same or the next line the time.
    text = re.sub(r"\n\s+time:", " time:", text)
    return {m[1].split("/")[-1]: float(m[2]) * UNITS[m[3]] for m in TIME.finditer(text)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", help="the revision to compare against (e.g. a commit)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--measure", type=float, default=4.0, help="criterion seconds per benchmark")
    args = ap.parse_args()

    worktree = tempfile.mkdtemp(prefix="tetherscope-base-")
    os.rmdir(worktree)
    subprocess.run(["git", "worktree", "add", "--detach", worktree, args.rev],
                   cwd=ROOT, check=True, capture_output=True)
    try:
        print(f"bench: building {args.rev} and this tree", file=sys.stderr)
        release = os.path.join(ROOT, "target", "release")
        if os.path.isdir(release):
            shutil.copytree(release, os.path.join(worktree, "target", "release"), symlinks=True)
        base = build(worktree)
        here = build(ROOT)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", worktree], cwd=ROOT)

    results = {"base": {}, "here": {}}
    try:
        for i in range(args.rounds):
            for side, exe in (("base", base), ("here", here)):
                for name, ms in run(exe, args.measure).items():
                    results[side].setdefault(name, []).append(ms)
            print(f"bench: round {i + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        os.unlink(base)
        os.unlink(here)

    # Each round's ratio pairs runs made moments apart, so slow phases of a
    # shared machine cancel out; the median of those ratios is the figure.
    print(f"{'benchmark':<36} {args.rev[:10]:>12} {'this tree':>12} {'ratio':>7}")
    for name in sorted(results["base"]):
        b, h = results["base"][name], results["here"].get(name, [])
        ratios = [y / x for x, y in zip(b, h)]
        print(f"{name:<36} {statistics.median(b):>10.1f}ms {statistics.median(h):>10.1f}ms"
              f" {statistics.median(ratios):>7.2f}   per round: "
              + " ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
