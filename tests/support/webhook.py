"""A webhook receiver for Alertmanager in the monitoring test: appends each
POSTed body as one line to a file. Usage: webhook.py PORT FILE"""
import http.server
import sys

port, out = int(sys.argv[1]), sys.argv[2]


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
