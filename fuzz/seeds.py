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

# The tunnel, h2c and ech_config targets parse payloads no capture of ours
# carries: their seeds are built here, one well-formed example of each shape.
eth = frames[0] if frames else b"\0" * 14
ipv4 = next((transport(f)[1] for f in frames if transport(f) and f[12:14] == b"\x08\x00"), b"\x45" + b"\0" * 19)
out("tunnel", "vxlan", struct.pack(">BBHI", 0x08, 0, 0, 42 << 8) + eth)
out("tunnel", "geneve", struct.pack(">BBHI", 0, 0, 0x6558, 7 << 8) + eth)
out("tunnel", "geneve-opt", struct.pack(">BBHI", 2, 0, 0x0800, 7 << 8) + struct.pack(">HBB", 0x0102, 3, 1) + b"\0" * 4 + ipv4)
out("tunnel", "gre", struct.pack(">HH", 0, 0x0800) + ipv4)
out("tunnel", "gre-key-seq", struct.pack(">HHII", 0x3000, 0x6558, 1, 2) + eth)
out("tunnel", "teredo", b"\x00\x01\x00\x00" + b"\0" * 8 + bytes([0x60]) + b"\0" * 39)

def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

# HEADERS: :method GET (indexed 2), :scheme http (6), :path / (4),
# :authority as a literal with incremental indexing (name index 1).
block = bytes([0x82, 0x86, 0x84, 0x41, 11]) + b"example.org"
out("h2c", "stream", b"\x00" + h2_frame(4, 0, 0, b"") + h2_frame(1, 5, 1, block))
out("h2c", "hpack", b"\x01" + block)
# "www.example.com" Huffman-coded (RFC 7541 C.4.1).
out("h2c", "huffman", b"\x02" + bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff"))

def ech_config(public_name):
    key = b"\x11" * 32
    contents = (bytes([7]) + struct.pack(">H", 0x0020) + struct.pack(">H", len(key)) + key
                + struct.pack(">H", 4) + struct.pack(">HH", 1, 1)
                + bytes([0]) + bytes([len(public_name)]) + public_name + struct.pack(">H", 0))
    return struct.pack(">HH", 0xfe0d, len(contents)) + contents

configs = ech_config(b"public.example") + ech_config(b"other.example")
out("ech_config", "list", struct.pack(">H", len(configs)) + configs)
# The same list as an HTTPS record's SvcParams: alpn, then ech (key 5).
out("ech_config", "svcparams", struct.pack(">HH", 1, 3) + b"\x02h2" + struct.pack(">HH", 5, len(configs) + 2) + struct.pack(">H", len(configs)) + configs)

print(f"fuzz/seeds.py: seeds from {len(frames)} frames of {cap}")
