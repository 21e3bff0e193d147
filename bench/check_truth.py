#!/usr/bin/env python3
"""Scores `tetherscope read --format jsonl` output against the benchmark
generator's truth file.

    python3 bench/check_truth.py CAPTURE.truth.tsv FLOWS.jsonl

A truth flow of kind tls/quic/http is reproduced when the flow with the same
5-tuple (the one that started closest to the truth's start time) carries the
truth's name in `sni` (tls, quic) or `http_host` (http). Prints one summary
line, `names: N/M (P%)`, per-kind detail, and exits 1 when a name is missed.
"""
import ipaddress
import json
import sys
from collections import defaultdict


def key(l4, a, ap, b, bp):
    ea = (ipaddress.ip_address(a), int(ap))
    eb = (ipaddress.ip_address(b), int(bp))
    return (l4,) + tuple(sorted([ea, eb]))


def rfc3339_to_epoch(s):
    from datetime import datetime
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp()


def main():
    truth_path, flows_path = sys.argv[1], sys.argv[2]
    ours = defaultdict(list)
    with open(flows_path) as f:
        for line in f:
            r = json.loads(line)
            if r["client_port"] is None:
                continue
            k = key(r["transport"], r["client_ip"], r["client_port"], r["server_ip"], r["server_port"])
            ours[k].append(r)
    total = hit = 0
    per_kind = defaultdict(lambda: [0, 0])
    misses = []
    with open(truth_path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            t = dict(zip(header, line.rstrip("\n").split("\t")))
            if t["kind"] not in ("tls", "quic", "http"):
                continue
            field = "http_host" if t["kind"] == "http" else "sni"
            k = key(t["l4"], t["client_ip"], t["client_port"], t["server_ip"], t["server_port"])
            start = float(t["start"])
            cands = sorted(ours.get(k, []), key=lambda r: abs(rfc3339_to_epoch(r["first_seen"]) - start))
            got = cands[0][field] if cands else None
            total += 1
            per_kind[t["kind"]][1] += 1
            if got == t["sni_or_host"]:
                hit += 1
                per_kind[t["kind"]][0] += 1
            else:
                misses.append("%s %s:%s -> %s:%s want %s got %s" % (t["kind"], t["client_ip"], t["client_port"],
                                                                    t["server_ip"], t["server_port"], t["sni_or_host"], got))
    pct = 100.0 * hit / total if total else 0.0
    detail = " ".join("%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(per_kind.items()))
    print("names: %d/%d (%.2f%%) %s" % (hit, total, pct, detail))
    for m in misses[:20]:
        print("  miss:", m)
    sys.exit(0 if hit == total else 1)


if __name__ == "__main__":
    main()
