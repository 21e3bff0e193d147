#!/usr/bin/env bash
# Live capture under load, on the simulated hotspot (root): tetherscope run
# on ap0 while iperf3 pushes bounded bursts from the phone namespace to a
# server in the internet namespace. Reports libpcap's packet and kernel-drop
# counters per burst. See docs/testing.md, "Benchmarks".
#
#   bench/live.sh [SECONDS_PER_STEP]   (default 5; the 1 Gbit/s TCP burst is 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
step="${1:-5}"
export TS_SIM_ID="${TS_SIM_ID:-b$$}" TS_SIM_DIR="${TS_SIM_DIR:-/tmp/tetherscope-live-$$}"
phone="ts${TS_SIM_ID}-phone" laptop="ts${TS_SIM_ID}-laptop" inet="ts${TS_SIM_ID}-inet"
server=192.0.2.10

[ "$(id -u)" -eq 0 ] || { echo "bench/live.sh: needs root (network namespaces)" >&2; exit 64; }
command -v iperf3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null
cargo build --release --quiet --bin tetherscope

cleanup() { bash scripts/hotspot-sim.sh down >/dev/null 2>&1 || true; }
trap cleanup EXIT
bash scripts/hotspot-sim.sh up >/dev/null
ip netns exec "$laptop" timeout 900 ./target/release/tetherscope run --interface ap0 \
  >/dev/null 2>"$TS_SIM_DIR/run.log" &
ip netns exec "$inet" timeout 900 iperf3 -s -B "$server" -D --logfile "$TS_SIM_DIR/iperf3.log"
for _ in $(seq 50); do
  ip netns exec "$laptop" curl -sf -m 1 http://127.0.0.1:9433/healthz >/dev/null 2>&1 && break
  sleep 0.2
done

counter() { # metric name + label filter → value
  ip netns exec "$laptop" curl -sf -m 5 http://127.0.0.1:9433/metrics |
    awk -v m="$1" -v f="$2" 'index($0, m "{") == 1 && index($0, f) { s += $NF } END { printf "%d", s }'
}
burst() { # label, iperf3 args...
  local label="$1"; shift
  sleep 1.2  # libpcap statistics are read once a second
  local p0 d0 p1 d1
  p0=$(counter tetherscope_capture_packets_total 'interface="ap0"')
  d0=$(counter tetherscope_capture_dropped_total 'where="kernel"')
  local rate
  rate=$(ip netns exec "$phone" timeout 60 iperf3 -c "$server" "$@" -J |
    python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]; s=e.get("sum_sent") or e["sum"]; print(round(s["bits_per_second"]/1e6))')
  sleep 1.5
  p1=$(counter tetherscope_capture_packets_total 'interface="ap0"')
  d1=$(counter tetherscope_capture_dropped_total 'where="kernel"')
  local pk=$((p1 - p0)) dr=$((d1 - d0))
  printf '%-34s %8s Mbit/s %10d packets %8d kernel drops (%.3f%%)\n' "$label" "$rate" "$pk" "$dr" \
    "$(python3 -c "print(100*$dr/max($pk,1))")"
}

echo "tetherscope live capture benchmark: simulated hotspot, libpcap on ap0, 32 MiB buffer"
burst "tcp 1 Gbit/s 20 s" -t 20 -b 1G
for pps in 50000 100000 200000 400000; do
  burst "udp 1400 B at ${pps} pps ${step} s" -u -l 1400 -t "$step" -b "$((pps * 1400 * 8))"
done
for pps in 50000 100000 200000 400000; do
  burst "udp 100 B at ${pps} pps ${step} s" -u -l 100 -t "$step" -b "$((pps * 100 * 8))"
done
