#!/usr/bin/env bash
# Memory of a Prometheus per head series, for sizing a central Prometheus
# (README "Several hotspots, one Prometheus"). Debian's prometheus scrapes a
# generated exporter on loopback holding SERIES series shaped like
# tetherscope's (sensor, device, domain, purpose labels), and a second run
# with BASE series; the difference in resident memory over the difference in
# series is the cost of one series, after a few scrapes. Loopback only;
# every process is stopped at the end.
#
#   bench/central-memory.sh [SERIES] [BASE]      (defaults 200000 2000)
set -euo pipefail
SERIES="${1:-200000}"
BASE="${2:-2000}"
DIR="$(mktemp -d /tmp/tetherscope-central-memory-XXXXXX)"
# Processes started inside measure's command substitution are listed here.
# shellcheck disable=SC2154  # p is the loop variable inside the trap
trap 'while read -r p; do kill "$p" 2>/dev/null || true; done < "$DIR/pids"; rm -rf "$DIR"' EXIT
: > "$DIR/pids"

measure() {
  local n=$1 port=$2 prom=$3
  python3 - "$n" "$port" > "$DIR/exporter-$n.log" 2>&1 <<'PY' &
import http.server, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
purposes = ["tracking", "analytics", "os-update", "push", "unknown", "dns"]
lines = []
for i in range(n):
    lines.append('tetherscope_bytes_total{sensor="sensor-%d",device="phone-%d",domain="d%d.example.com",purpose="%s",direction="up"} %d'
                 % (i % 50, i % 400, i, purposes[i % 6], i))
body = ("\n".join(lines) + "\n").encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
  echo $! >> "$DIR/pids"
  cat > "$DIR/p-$n.yml" <<YML
global: {scrape_interval: 5s, scrape_timeout: 5s}
scrape_configs:
  - job_name: gen
    static_configs: [{targets: ["127.0.0.1:$port"]}]
YML
  timeout 300 prometheus --config.file="$DIR/p-$n.yml" --storage.tsdb.path="$DIR/data-$n" \
    --web.listen-address="127.0.0.1:$prom" > "$DIR/prom-$n.log" 2>&1 &
  echo $! >> "$DIR/pids"
  local ppid=$! pid head=0
  for _ in $(seq 1 60); do
    sleep 2
    head=$(curl -sf "http://127.0.0.1:$prom/api/v1/query" --data-urlencode 'query=count({job="gen"})' |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo 0)
    [ "$head" -ge "$n" ] && break
  done
  [ "$head" -ge "$n" ] || { echo "central-memory: only $head of $n series scraped" >&2; exit 1; }
  sleep 30   # several more scrapes: chunks in use, Go heap settled
  pid=$(pgrep -P "$ppid" prometheus)
  awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$pid/status"
  kill "$ppid"
}

port_base=$((20000 + $$ % 20000))
base_rss=$(measure "$BASE" "$port_base" $((port_base + 1)))
big_rss=$(measure "$SERIES" $((port_base + 2)) $((port_base + 3)))
python3 - "$BASE" "$base_rss" "$SERIES" "$big_rss" <<'PY'
import sys
b, brss, s, srss = map(int, sys.argv[1:])
per = (srss - brss) / (s - b)
print(f"central-memory: {b} series {brss/2**20:.0f} MiB, {s} series {srss/2**20:.0f} MiB, "
      f"{per:.0f} bytes per series, {per*1e6/2**30:.1f} GiB per million series")
PY
