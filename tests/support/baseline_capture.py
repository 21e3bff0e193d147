#!/usr/bin/env python3
"""Writes a classic pcap of phones' HTTP requests at given packet times.

Usage: baseline_capture.py OUT.pcap < flows.jsonl

Each input line is one flow: {"t": unix seconds, "mac": "da:a1:..",
"ip": "10.42.0.23", "host": "www.example.com", "server": "203.0.113.7"}
(optional "name": a DHCP host name, sent in a DHCP request before the
flow). Each flow is a TCP handshake, one HTTP GET with that Host, and a
close. With "syn": true it is a lone SYN to port 443 instead (for floods,
or a connection only a DNS answer can name). With "dns": NAME it is a DNS
question to the hotspot resolver 10.42.0.1 and its answer: NAME is
"server" for "ttl" seconds. Servers must be documentation addresses.
Standard library only, deterministic.
"""
import json
import struct
import sys

AP_MAC = bytes.fromhex("02005e000001")


def mac(s):
    return bytes.fromhex(s.replace(":", ""))


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto, payload):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, ip4(src), ip4(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload


def tcp(src, sport, dst, dport, seq, ack, flags, data=b""):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, hdr + data)


def udp(src, sport, dst, dport, data):
    return ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)


def dhcp_request(m, name):
    body = struct.pack("!BBBBIHH", 1, 1, 6, 0, 0x1234, 0, 0) + b"\0" * 16 + m + b"\0" * 10
    body += b"\0" * 192 + bytes([99, 130, 83, 99])
    body += bytes([53, 1, 3, 12, len(name)]) + name.encode() + bytes([255])
    return udp("0.0.0.0", 68, "255.255.255.255", 67, body)


def dns_name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"


def dns(qid, name, answer=None, ttl=0):
    q = dns_name(name) + struct.pack("!HH", 1, 1)
    if answer is None:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, ttl, 4) + ip4(answer)
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + q + rr


def main():
    out = open(sys.argv[1], "wb")
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

    def frame(t, src_mac, dst_mac, pkt):
        data = dst_mac + src_mac + b"\x08\x00" + pkt
        sec = int(t)
        usec = int(round((t - sec) * 1e6))
        out.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)

    for i, line in enumerate(sys.stdin):
        f = json.loads(line)
        t, m, ip, server = f["t"], mac(f["mac"]), f["ip"], f["server"]
        if f.get("name"):
            frame(t - 0.5, m, b"\xff" * 6, dhcp_request(m, f["name"]))
        sport = 20000 + i % 40000
        if f.get("dns"):
            resolver = "10.42.0.1"
            frame(t, m, AP_MAC, udp(ip, sport, resolver, 53, dns(i & 0xFFFF, f["dns"])))
            frame(t + 0.001, AP_MAC, m, udp(resolver, 53, ip, sport, dns(i & 0xFFFF, f["dns"], server, f.get("ttl", 300))))
            continue
        if f.get("syn"):
            frame(t, m, AP_MAC, tcp(ip, sport, server, 443, 1000, 0, 0x02))
            continue
        req = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % f["host"]).encode()
        steps = [
            (m, AP_MAC, tcp(ip, sport, server, 80, 1000, 0, 0x02)),
            (AP_MAC, m, tcp(server, 80, ip, sport, 5000, 1001, 0x12)),
            (m, AP_MAC, tcp(ip, sport, server, 80, 1001, 5001, 0x10)),
            (m, AP_MAC, tcp(ip, sport, server, 80, 1001, 5001, 0x18, req)),
            (AP_MAC, m, tcp(server, 80, ip, sport, 5001, 1001 + len(req), 0x18, b"HTTP/1.1 204 No Content\r\n\r\n")),
            (m, AP_MAC, tcp(ip, sport, server, 80, 1001 + len(req), 5029, 0x11)),
            (AP_MAC, m, tcp(server, 80, ip, sport, 5029, 1002 + len(req), 0x11)),
            (m, AP_MAC, tcp(ip, sport, server, 80, 1002 + len(req), 5030, 0x10)),
        ]
        for k, (s, d, p) in enumerate(steps):
            frame(t + k * 0.001, s, d, p)
    out.close()


if __name__ == "__main__":
    main()
