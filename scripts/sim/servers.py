#!/usr/bin/env python3
"""Servers of the simulated internet: plain HTTP on 80, TLS on 443 and 5228
(certificate from the harness's throwaway CA), NTP on UDP 123. Standard
library only. Runs until killed; every connection is served in a thread with
a timeout, so a stuck client cannot wedge it."""
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

CERT, KEY = sys.argv[1], sys.argv[2]
# time.android.com in the simulated DNS: replies must come from it.
NTP_ADDR = sys.argv[3] if len(sys.argv) > 3 else "192.0.2.40"


class HTTP(socketserver.StreamRequestHandler):
    timeout = 5

    def handle(self):
        try:
            line = self.rfile.readline(4096)
            while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                pass
        except (OSError, ssl.SSLError):
            return
        path = line.split(b" ")[1] if line.count(b" ") >= 2 else b"/"
        if path.startswith(b"/generate_204"):
            self.wfile.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        body = (b"XTRA" * 4096) if path.endswith(b".bin") else b"tetherscope simulated internet\n"
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


class TLSServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr, handler, context):
        super().__init__(addr, handler)
        self.context = context

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        try:
            return self.context.wrap_socket(sock, server_side=True), addr
        except (OSError, ssl.SSLError):
            sock.close()
            raise OSError("handshake failed")


class Plain(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def ntp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((NTP_ADDR, 123))
    while True:
        data, peer = s.recvfrom(512)
        if len(data) >= 48:
            secs = int(time.time()) + 2208988800
            reply = bytes([0x24, 2, 0, 0]) + bytes(36) + struct.pack("!II", secs, 0)
            s.sendto(reply, peer)


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    servers = [Plain(("0.0.0.0", 80), HTTP), TLSServer(("0.0.0.0", 443), HTTP, ctx), TLSServer(("0.0.0.0", 5228), HTTP, ctx)]
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    threading.Thread(target=ntp, daemon=True).start()
    print("servers ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
