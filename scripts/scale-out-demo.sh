#!/usr/bin/env bash
# Several hotspots, one Prometheus, in network namespaces (root):
#
#   sensor 1: simulated hotspot (scripts/hotspot-sim.sh) + tetherscope +
#             Prometheus in agent mode (deploy/prometheus/agent.yml)  --\
#   sensor 2: the same                                                  +--> central Prometheus
#                                                                      --/   (deploy/prometheus/central.yml,
#                                                                             remote-write receiver, rules)
#
# Plays traffic on both hotspots, checks that the central Prometheus holds
# both sensors' series, that UnexpectedDestination fires for a device on
# each sensor and that every dashboard query answers for each sensor, then stops the central Prometheus for OUTAGE seconds while both
# sensors see traffic and checks that the agents' write-ahead logs leave no gap
# in the central data. Exits 0 only if all of that holds; the last line is
#
#   scale-out: N sensors, M series, gap-free: yes|no, alerts: K
#
# Environment: TETHERSCOPE_BIN (default: target/release/tetherscope, else
# tetherscope on PATH), SCALE_OUT_ID (unique suffix, default the PID),
# SCALE_OUT_OUTAGE (seconds, default 60), SCALE_OUT_KEEP=1 keeps the state
# directory. Every address is a documentation address inside namespaces
# created here (the links to the central Prometheus are 198.51.100.200/29);
# nothing outside them is addressed. Every wait is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ID="${SCALE_OUT_ID:-$$}"
DIR="/tmp/tetherscope-scale-out-$ID"
OUTAGE="${SCALE_OUT_OUTAGE:-60}"
SENSORS=(1 2)
INTERVAL=2                      # scrape and evaluation interval here, seconds
CENTRAL_NS="tso${ID}-central"
CENTRAL="198.51.100.202:9090"   # sensor k reaches it over its own /30 link
BIN="${TETHERSCOPE_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x "$ROOT/target/release/tetherscope" ]; then BIN="$ROOT/target/release/tetherscope"; else BIN="$(command -v tetherscope || true)"; fi
fi

T0=$(date +%s)
say() { echo "scale-out: [$(($(date +%s) - T0))s] $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "no tetherscope binary (build it, or set TETHERSCOPE_BIN)"
for c in prometheus curl python3 ip; do
  command -v "$c" >/dev/null || die "$c is missing (scripts/setup.sh --test)"
done
if [ "$OUTAGE" -lt 1 ] || [ "$OUTAGE" -gt 600 ]; then die "SCALE_OUT_OUTAGE must be 1..600"; fi

sim_id() { echo "so${ID}s$1"; }
sim() { local k=$1; shift; TS_SIM_ID="$(sim_id "$k")" TS_SIM_DIR="$DIR/sensor$k/sim" TS_SIM_PHONE_NAME="phone-$k" bash "$HERE/hotspot-sim.sh" "$@"; }
laptop_ns() { echo "ts$(sim_id "$1")-laptop"; }

pids=()
cleanup() {
  set +e
  touch "$DIR/stop-traffic"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  # Five seconds to stop, then killed.
  for _ in $(seq 1 50); do
    alive=""
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $alive; do say "cleanup: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-60) did not stop in 5 s"; kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  [ -f "$DIR/central.pid" ] && kill "$(cat "$DIR/central.pid")" 2>/dev/null
  ip netns pids "$CENTRAL_NS" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$CENTRAL_NS" 2>/dev/null
  for k in "${SENSORS[@]}"; do sim "$k" down >/dev/null 2>&1; done
  [ "${SCALE_OUT_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR"
mkdir -p "$DIR/central/rules"

# The central Prometheus: shipped config and rules, faster intervals.
sed "s/evaluation_interval: 15s/evaluation_interval: ${INTERVAL}s/" \
  "$ROOT/deploy/prometheus/central.yml" > "$DIR/central/central.yml"
cp "$ROOT/deploy/prometheus/rules/tetherscope.yml" "$DIR/central/rules/"
ip netns add "$CENTRAL_NS"
ip netns exec "$CENTRAL_NS" ip link set lo up

start_central() {
  ip netns exec "$CENTRAL_NS" timeout 900 prometheus --web.enable-remote-write-receiver \
    --config.file="$DIR/central/central.yml" --storage.tsdb.path="$DIR/central/data" \
    --web.listen-address="0.0.0.0:9090" >> "$DIR/central/prometheus.log" 2>&1 &
  echo $! > "$DIR/central.pid"
  for _ in $(seq 1 100); do
    central_get "/-/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "central Prometheus did not start: $(tail -5 "$DIR/central/prometheus.log")"
}
central_get() { ip netns exec "$CENTRAL_NS" curl -sf -m 5 "http://127.0.0.1:9090$1"; }
# One PromQL query at the central Prometheus; prints the JSON answer.
central_query() {
  ip netns exec "$CENTRAL_NS" curl -sf -m 5 "http://127.0.0.1:9090/api/v1/query" \
    --data-urlencode "query=$1" ${2:+--data-urlencode "time=$2"}
}
# Reads a query's answer on stdin: the number of series (vector results).
count_results() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))'; }

start_central
say "central Prometheus up in $CENTRAL_NS"

for k in "${SENSORS[@]}"; do
  mkdir -p "$DIR/sensor$k"
  sim "$k" up >/dev/null
  ns=$(laptop_ns "$k")
  # The link from this sensor's laptop to the central Prometheus.
  ip link add "so${ID}c$k" netns "$ns" type veth peer name "c$k" netns "$CENTRAL_NS"
  ip netns exec "$ns" ip addr add "198.51.100.$((200 + k * 4 - 3))/30" dev "so${ID}c$k"
  ip netns exec "$ns" ip link set "so${ID}c$k" up
  ip netns exec "$CENTRAL_NS" ip addr add "198.51.100.$((200 + k * 4 - 2))/30" dev "c$k"
  ip netns exec "$CENTRAL_NS" ip link set "c$k" up
  ip netns exec "$ns" ip route add "${CENTRAL%:*}/32" via "198.51.100.$((200 + k * 4 - 2))"

  # Its own state store, and no learning: the unlisted tracker is a new
  # destination at once (the dashboards' new-destination panel has data).
  ip netns exec "$ns" timeout 900 "$BIN" run --interface ap0 \
    --leases "$DIR/sensor$k/sim/dnsmasq-ap0.leases" \
    --state "$DIR/sensor$k/state.db" --learn-for 0 > "$DIR/sensor$k/tetherscope.log" 2>&1 &
  pids+=($!)

  # The shipped agent config: this sensor's name, the central URL, faster scrapes.
  sed -e "s/sensor: laptop-1/sensor: sensor-$k/" \
      -e "s|http://central.example.org:9090/api/v1/write|http://$CENTRAL/api/v1/write|" \
      -e "s/scrape_interval: 15s/scrape_interval: ${INTERVAL}s/" \
      "$ROOT/deploy/prometheus/agent.yml" > "$DIR/sensor$k/agent.yml"
  ip netns exec "$ns" timeout 900 prometheus --enable-feature=agent \
    --config.file="$DIR/sensor$k/agent.yml" --storage.agent.path="$DIR/sensor$k/agent-data" \
    --web.listen-address=127.0.0.1:9090 > "$DIR/sensor$k/agent.log" 2>&1 &
  pids+=($!)
done

for k in "${SENSORS[@]}"; do
  ok=""
  for _ in $(seq 1 100); do
    ip netns exec "$(laptop_ns "$k")" curl -sf -m 2 http://127.0.0.1:9433/healthz >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.2
  done
  [ -n "$ok" ] || die "tetherscope on sensor $k never became healthy: $(tail -3 "$DIR/sensor$k/tetherscope.log")"
done
say "two sensors up (tetherscope + Prometheus agent each)"

# Traffic on both hotspots, bounded: one round each every few seconds until
# the stop file appears or the round limit is reached.
traffic_loop() {
  local k=$1
  for _ in $(seq 1 120); do
    [ -e "$DIR/stop-traffic" ] && break
    sim "$k" traffic 1 >/dev/null 2>&1 || true
    sleep 1
  done
}
for k in "${SENSORS[@]}"; do traffic_loop "$k" & pids+=($!); done

# Both sensors' series arrive centrally.
both=""
for _ in $(seq 1 60); do
  n=$(central_query 'count by (sensor) (tetherscope_flows_total)' | count_results 2>/dev/null || echo 0)
  [ "$n" = "${#SENSORS[@]}" ] && { both=1; break; }
  sleep 1
done
[ -n "$both" ] || die "the central Prometheus never held both sensors' flows"
say "central Prometheus holds both sensors' series"

# UnexpectedDestination (the unlisted tracker) fires for a device on each sensor.
alerting=""
for _ in $(seq 1 60); do
  n=$(central_query 'count by (sensor, device) (ALERTS{alertname="UnexpectedDestination",alertstate="firing",sensor=~"sensor-.*",device=~"phone-.*"})' |
    count_results 2>/dev/null || echo 0)
  [ "$n" = "${#SENSORS[@]}" ] && { alerting=1; break; }
  sleep 1
done
alerts=$(central_query 'ALERTS{alertstate="firing"}' | count_results 2>/dev/null || echo 0)
if [ -n "$alerting" ]; then
  say "UnexpectedDestination fires for a device on each sensor ($alerts alerts firing)"
else
  say "UnexpectedDestination did not fire for a device on each sensor"
fi

# New destinations reach the baseline when their flows finish (a closed
# connection after a few seconds, a DNS flow after 30 s): wait for them, at
# most a minute, before asking the dashboards.
for k in "${SENSORS[@]}"; do
  for _ in $(seq 1 60); do
    n=$(central_query "tetherscope_new_destinations_total{sensor=\"sensor-$k\"}" | count_results 2>/dev/null || echo 0)
    [ "$n" -gt 0 ] && break
    sleep 1
  done
done

# Every dashboard query, with the sensor variable set to one sensor, answers
# from the central Prometheus.
dashboards_ok=1
for k in "${SENSORS[@]}"; do
  answered=$(python3 - "$ROOT/grafana/dashboards" "sensor-$k" "phone-$k" <<'PY' | while read -r expr; do
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            for var, value in (("$__rate_interval", "30s"), ("$__range", "5m"), ("$__interval", "2s"),
                               ("$sensor", sys.argv[2]), ("$device", sys.argv[3])):
                expr = expr.replace(var, value)
            print(expr)
PY
      n=$(central_query "$expr" | count_results 2>/dev/null || echo 0)
      [ "$n" -gt 0 ] && echo yes || echo "no: $expr" >&2
    done | grep -c yes)
  total=$(python3 -c 'import json,pathlib,sys; print(sum(len(p.get("targets",[])) for f in pathlib.Path(sys.argv[1]).glob("*.json") for p in json.loads(f.read_text())["panels"]))' "$ROOT/grafana/dashboards")
  say "sensor-$k: $answered of $total dashboard queries answer centrally"
  [ "$answered" = "$total" ] || dashboards_ok=""
done

# The outage: the central Prometheus is away while the sensors keep working.
sleep $((INTERVAL * 2))
outage_start=$(date +%s)
kill "$(cat "$DIR/central.pid")"
for _ in $(seq 1 100); do kill -0 "$(cat "$DIR/central.pid")" 2>/dev/null || break; sleep 0.1; done
say "central Prometheus stopped for ${OUTAGE}s"
sleep "$OUTAGE"
outage_end=$(date +%s)
start_central
say "central Prometheus back; waiting for the agents to catch up"

# Caught up: every sensor has a sample newer than the restart.
caught=""
for _ in $(seq 1 60); do
  n=$(central_query "count by (sensor) (timestamp(tetherscope_pipeline_packets_total) > $outage_end)" |
    count_results 2>/dev/null || echo 0)
  [ "$n" = "${#SENSORS[@]}" ] && { caught=1; break; }
  sleep 1
done
touch "$DIR/stop-traffic"
[ -n "$caught" ] || say "the agents did not catch up within 60 s"

# Gap-free: the raw samples of each sensor, from before the outage to after
# it, are never further apart than twice the scrape interval, and the counter
# grew while the central Prometheus was away.
now=$(date +%s)
window=$((now - outage_start + 2 * INTERVAL))
gaps=$(central_query "tetherscope_pipeline_packets_total[${window}s]" "$now" | python3 -c '
import json, sys
interval, start, end = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
result = json.load(sys.stdin)["data"]["result"]
for series in result:
    sensor = series["metric"].get("sensor", "?")
    points = [(float(t), float(v)) for t, v in series["values"]]
    times = [t for t, _ in points]
    gap = max((b - a for a, b in zip(times, times[1:])), default=float("inf"))
    inside = [v for t, v in points if start < t < end]
    grew = len(inside) >= 2 and inside[-1] > inside[0]
    ok = times and times[0] <= start and times[-1] >= end and gap <= 2 * interval and grew
    print(f"{sensor} {len(times)} {gap:.1f} {int(grew)} {int(ok)}")
' "$INTERVAL" "$outage_start" "$outage_end")
gap_free=no
good=0
while read -r sensor samples gap grew ok; do
  say "$sensor: $samples samples across the outage, largest spacing ${gap}s, grew during it: $grew"
  [ "$ok" = 1 ] && good=$((good + 1))
done <<< "$gaps"
[ "$good" = "${#SENSORS[@]}" ] && gap_free=yes

series=$(central_query 'count({sensor=~".+"})' | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else 0)')
for k in "${SENSORS[@]}"; do
  per=$(central_query "count({sensor=\"sensor-$k\"})" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else 0)')
  say "sensor-$k: $per series"
done

echo "scale-out: ${#SENSORS[@]} sensors, $series series, gap-free: $gap_free, alerts: $alerts"
[ -n "$both" ] && [ -n "$alerting" ] && [ -n "$dashboards_ok" ] && [ "$gap_free" = yes ]
