#!/usr/bin/env python3
"""Sends the frames of a classic pcap file out of an interface, once, in order.

    inject.py IFACE CAPTURE

Used inside the simulated phone's namespace so the live monitor on the
hotspot side sees crafted frames (hostile names) as if the phone sent them.
Bounded: at most 10,000 frames, each sent once.
"""
import socket
import struct
import sys

MAX_FRAMES = 10_000


def frames(path):
    with open(path, "rb") as f:
        header = f.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            _, _, caplen, _ = struct.unpack(endian + "IIII", rec)
            yield f.read(caplen)


def main():
    iface, path = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    for frame in frames(path):
        if sent >= MAX_FRAMES:
            break
        s.send(frame)
        sent += 1
    print(f"sent {sent} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
