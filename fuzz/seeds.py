#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets from a capture (default: the
committed seed fixture; pass a generated phone capture to get QUIC too).

    python3 fuzz/seeds.py [CAPTURE.pcap]    (from the repository root)

Seeds go to fuzz/corpus/<target>/ (not committed; cargo fuzz reads them).
"""
import gzip
import os
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cap = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests/fixtures/seed-domains.pcap")
data = open(cap, "rb").read()
endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
frames, at = [], 24
while at + 16 <= len(data) and len(frames) < 5000:
    caplen = struct.unpack(endian + "I", data[at + 8:at + 12])[0]
    frames.append(data[at + 16:at + 16 + caplen])
    at += 16 + caplen


def out(target, name, blob):
    d = os.path.join(root, "fuzz/corpus", target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(blob)


def transport(f):
    """(protocol, payload) of an Ethernet frame, or None."""
    et = struct.unpack(">H", f[12:14])[0]
    if et == 0x0800:
        ihl = (f[14] & 15) * 4
        proto, l4 = f[23], f[14 + ihl:]
        ip = f[14:]
    elif et == 0x86DD:
        proto, l4, ip = f[20], f[54:], f[14:]
    else:
        return None
    if proto == 6 and len(l4) >= 20:
        return 6, ip, l4[(l4[12] >> 4) * 4:], struct.unpack(">HH", l4[:4])
    if proto == 17 and len(l4) >= 8:
        return 17, ip, l4[8:], struct.unpack(">HH", l4[:4])
    return None


seq = b""
for i, f in enumerate(frames):
    out("link_frame", f"f{i}", b"\x00" + f)
    seq += struct.pack(">H", len(f)) + f
    t = transport(f)
    if not t:
        continue
    proto, ip, payload, (sport, dport) = t
    out("ip_packet", f"p{i}", ip)
    if not payload:
        continue
    if proto == 17 and 53 in (sport, dport):
        out("dns_message", f"d{i}", payload)
    elif proto == 17 and dport == 443 and payload[0] & 0xC0 == 0xC0:
        out("quic_initial", f"q{i}", payload)
    elif proto == 6 and payload[:1] == b"\x16" and len(payload) > 9:
        out("tls_client_hello", f"t{i}", payload[5:])
        out("tcp_reassembly", f"r{i}", struct.pack(">HBB", 0, min(255, len(payload)), 0) + payload[:255])
    elif proto == 6 and payload[:4] in (b"GET ", b"POST", b"HEAD", b"CONN"):
        out("http_request", f"h{i}", payload)
for n in range(0, len(frames), 50):
    out("pipeline", f"s{n}", b"".join(struct.pack(">H", len(f)) + f for f in frames[n:n + 50]))


def pcapng(frames):
    """The frames as a little-endian pcapng file: SHB, one Ethernet IDB, EPBs."""
    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", kind, n) + body + struct.pack("<I", n)
    outb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    outb += block(1, struct.pack("<HHI", 1, 0, 65535))
    for i, f in enumerate(frames):
        outb += block(6, struct.pack("<IIIII", 0, 0, i, len(f), len(f)) + f)
    return outb


head = data[:24] + b"".join(struct.pack("<IIII", 1, i, len(f), len(f)) + f for i, f in enumerate(frames[:20]))
if endian == "<":
    out("capture_file", "pcap", head)
    out("capture_file", "pcap-gz", gzip.compress(head))
out("capture_file", "pcapng", pcapng(frames[:20]))
print(f"fuzz/seeds.py: seeds from {len(frames)} frames of {cap}")
