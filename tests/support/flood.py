#!/usr/bin/env python3
"""Floods the hotspot with distinct flows from inside the phone namespace.

Usage: flood.py INTERFACE COUNT SECONDS

Sends COUNT Ethernet frames, each a flow of its own (SYN-only TCP and UDP,
random ports, 40% IPv6), from INTERFACE's MAC and IPv4 address to
documentation addresses (203.0.113.0/24, 2001:db8::/32). The destination MAC
belongs to no one, so the laptop captures every frame while no host forwards
or answers any. Stops after COUNT frames or SECONDS, whichever comes first,
and prints how many it sent.
"""

import random
import socket
import struct
import subprocess
import sys
import time


def main():
    iface, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with open(f"/sys/class/net/{iface}/address") as f:
        src_mac = bytes.fromhex(f.read().strip().replace(":", ""))
    # The phone's own IPv4 address (from DHCP), read off the interface.
    shown = subprocess.check_output(["ip", "-4", "-o", "addr", "show", iface], text=True)
    src_v4 = socket.inet_aton(shown.split()[3].split("/")[0])
    src_v6 = socket.inet_pton(socket.AF_INET6, "fd42:42::50")
    nobody = bytes.fromhex("02000000ee01")
    rng = random.Random(7)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    tcp_tail = struct.pack("!IIBBHHH", 1, 0, 0x50, 0x02, 0xFFFF, 0, 0)
    udp_payload = b"\x01\x02\x03\x04"
    deadline = time.monotonic() + seconds
    sent = 0
    while sent < count and (sent % 4096 or time.monotonic() < deadline):
        tcp = sent % 2 == 0
        sport, dport = rng.randrange(1024, 65535), rng.randrange(1, 9000)
        if tcp:
            l4 = struct.pack("!HH", sport, dport) + tcp_tail
            proto = 6
        else:
            l4 = struct.pack("!HHHH", sport, dport, 12, 0) + udp_payload
            proto = 17
        if sent % 5 < 2:
            dst = b"\x20\x01\x0d\xb8" + rng.getrandbits(96).to_bytes(12, "big")
            ip = struct.pack("!IHBB", 0x60000000, len(l4), proto, 64) + src_v6 + dst
            frame = nobody + src_mac + b"\x86\xdd" + ip + l4
        else:
            dst = bytes((203, 0, 113, rng.randrange(1, 255)))
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0)
            frame = nobody + src_mac + b"\x08\x00" + ip + src_v4 + dst + l4
        try:
            s.send(frame)
        except BlockingIOError:
            continue
        sent += 1
    print(sent)


if __name__ == "__main__":
    main()
