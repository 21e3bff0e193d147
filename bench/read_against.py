#!/usr/bin/env python3
"""CPU time of `tetherscope read` for two binaries on the same capture,
interleaved, so that a change's cost is measured against the revision
before it in one run on a shared, noisy machine.

Each round runs both binaries once (in alternating order) with
`read --format jsonl CAPTURE` to /dev/null and takes user + system CPU
time of the child from rusage. Prints the median CPU seconds of each side
and the median of the per-round ratios (this / base): only the ratio of
interleaved runs means anything on a loaded machine.

    python3 bench/read_against.py --base OLD_BINARY --this NEW_BINARY \
        --capture /tmp/tetherscope-bench/phone_2m.pcap [--runs 7] [--this-args "..."] \
        [-- EXTRA READ ARGS]

Build the base binary from a revision in its own git worktree
(`git worktree add --detach /tmp/base REV && cargo build --release`).
"""
import argparse
import resource
import statistics
import subprocess
import sys


def cpu_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the binary measured against")
    parser.add_argument("--this", required=True, help="the binary under test")
    parser.add_argument("--capture", required=True)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--this-args", default="",
                        help="arguments only the binary under test gets, e.g. flags the base lacks")
    parser.add_argument("extra", nargs="*", help="more arguments for read, both sides (after --)")
    args = parser.parse_args()

    def command(binary):
        own = args.this_args.split() if binary == args.this else []
        return [binary, "read", "--format", "jsonl", *own, *args.extra, args.capture]

    # One warm-up each: the capture comes into the page cache, the binaries
    # are loaded.
    cpu_of(command(args.base))
    cpu_of(command(args.this))
    base, this, ratios = [], [], []
    for round_ in range(args.runs):
        order = [("base", args.base), ("this", args.this)]
        if round_ % 2:
            order.reverse()
        seconds = {name: cpu_of(command(binary)) for name, binary in order}
        base.append(seconds["base"])
        this.append(seconds["this"])
        ratios.append(seconds["this"] / seconds["base"])
        print(f"round {round_ + 1}: base {seconds['base']:.2f} s, this {seconds['this']:.2f} s",
              file=sys.stderr)
    print(f"read CPU, {args.runs} interleaved runs, medians: "
          f"base {statistics.median(base):.2f} s, this {statistics.median(this):.2f} s, "
          f"ratio this/base {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
