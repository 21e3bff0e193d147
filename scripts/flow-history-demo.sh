#!/usr/bin/env bash
# Every flow of two hotspots in one ClickHouse, across an outage (root):
#
#   sensor 1: simulated hotspot (scripts/hotspot-sim.sh) + tetherscope with
#             --flow-log and the flow history sink  --\
#   sensor 2: the same                                +--> clickhouse-server 18.16
#                                                    --/   (deploy/clickhouse/flows.sql)
#
# Plays traffic on both hotspots, stops ClickHouse for OUTAGE seconds while
# both see traffic, starts it again, stops the sensors (which spool, then
# send, every flow), and compares every flow in each sensor's own flow log
# with the rows ClickHouse holds for that sensor. Then runs the ten queries
# of docs/flow-history.md on the data, and checks that the XTRA cleartext
# download query finds each sensor's phone. The last line is
#
#   flow-history: N sensors, M flows logged, M stored, lost 0, duplicated 0, outage 60 s
#
# and the script exits 0 only if stored equals logged, nothing was lost or
# duplicated, and every query answered.
#
# Environment: TETHERSCOPE_BIN (default: target/release/tetherscope, else
# tetherscope on PATH), FLOW_HISTORY_ID (unique suffix, default the PID),
# FLOW_HISTORY_OUTAGE (seconds, default 60), FLOW_HISTORY_KEEP=1 keeps the
# state directory. Every address is a documentation address inside
# namespaces created here (the links to ClickHouse are 198.51.100.224/28);
# nothing outside them is addressed. Every wait is bounded.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ID="${FLOW_HISTORY_ID:-$$}"
DIR="/tmp/tetherscope-flow-history-$ID"
OUTAGE="${FLOW_HISTORY_OUTAGE:-60}"
SENSORS=(1 2)
CH_NS="tfh${ID}-ch"
CH_ADDR="198.51.100.226"        # sensor k reaches it over its own /30 link
BIN="${TETHERSCOPE_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x "$ROOT/target/release/tetherscope" ]; then BIN="$ROOT/target/release/tetherscope"; else BIN="$(command -v tetherscope || true)"; fi
fi
CH_SERVER=/usr/sbin/clickhouse-server

T0=$(date +%s)
say() { echo "flow-history: [$(($(date +%s) - T0))s] $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
[ -x "$BIN" ] || die "no tetherscope binary (build it, or set TETHERSCOPE_BIN)"
[ -x "$CH_SERVER" ] || die "$CH_SERVER is missing (scripts/setup.sh --test)"
for c in curl python3 ip; do
  command -v "$c" >/dev/null || die "$c is missing (scripts/setup.sh --test)"
done
if [ "$OUTAGE" -lt 1 ] || [ "$OUTAGE" -gt 600 ]; then die "FLOW_HISTORY_OUTAGE must be 1..600"; fi

sim_id() { echo "fh${ID}s$1"; }
sim() { local k=$1; shift; TS_SIM_ID="$(sim_id "$k")" TS_SIM_DIR="$DIR/sensor$k/sim" TS_SIM_PHONE_NAME="phone-$k" bash "$HERE/hotspot-sim.sh" "$@"; }
laptop_ns() { echo "ts$(sim_id "$1")-laptop"; }

pids=()
cleanup() {
  set +e
  touch "$DIR/stop-traffic"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  stop_clickhouse
  ip netns pids "$CH_NS" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$CH_NS" 2>/dev/null
  for k in "${SENSORS[@]}"; do sim "$k" down >/dev/null 2>&1; done
  [ "${FLOW_HISTORY_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR"
mkdir -p "$DIR/ch"

# ClickHouse in its own namespace, its config and data under $DIR/ch.
cat > "$DIR/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$DIR/ch/server.log</log><errorlog>$DIR/ch/error.log</errorlog></logger>
  <http_port>8123</http_port><tcp_port>9000</tcp_port>
  <listen_host>0.0.0.0</listen_host>
  <path>$DIR/ch/data/</path><tmp_path>$DIR/ch/tmp/</tmp_path>
  <user_files_path>$DIR/ch/user_files/</user_files_path>
  <format_schema_path>$DIR/ch/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
cat > "$DIR/ch/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <sensor><password>demo-password</password><networks><ip>198.51.100.224/28</ip></networks><profile>default</profile><quota>default</quota></sensor>
  </users>
  <quotas><default></default></quotas>
</yandex>
XML
ip netns add "$CH_NS"
ip netns exec "$CH_NS" ip link set lo up

start_clickhouse() {
  # ip execs timeout, which passes a TERM on to the server.
  ip netns exec "$CH_NS" timeout 900 "$CH_SERVER" --config-file="$DIR/ch/config.xml" \
    >> "$DIR/ch/stdout.log" 2>&1 &
  echo $! > "$DIR/ch.pid"
  for _ in $(seq 1 300); do
    ch_query "SELECT 1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "ClickHouse did not start: $(tail -5 "$DIR/ch/error.log" 2>/dev/null)"
}
stop_clickhouse() {
  [ -f "$DIR/ch.pid" ] || return 0
  local p; p=$(cat "$DIR/ch.pid")
  kill "$p" 2>/dev/null
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  rm -f "$DIR/ch.pid"
}
ch_query() { ip netns exec "$CH_NS" curl -sS --fail-with-body -m 20 "http://127.0.0.1:8123/?allow_experimental_low_cardinality_type=1" --data-binary "$1"; }

start_clickhouse
say "ClickHouse $(ch_query 'SELECT version()') up in $CH_NS"
python3 - "$ROOT/deploy/clickhouse/flows.sql" > "$DIR/ddl.txt" <<'PY'
import sys
cur = []
for line in open(sys.argv[1]):
    line = line.split("--")[0].rstrip()
    if not line.strip():
        continue
    cur.append(line)
    if line.endswith(";"):
        stmt = "\n".join(cur).rstrip(";")
        cur = []
        if not stmt.startswith("SET "):
            print(stmt.replace("\n", " "))
PY
while read -r stmt; do ch_query "$stmt" >/dev/null || die "schema: $stmt"; done < "$DIR/ddl.txt"

for k in "${SENSORS[@]}"; do
  mkdir -p "$DIR/sensor$k"
  sim "$k" up >/dev/null
  ns=$(laptop_ns "$k")
  ip link add "fh${ID}c$k" netns "$ns" type veth peer name "c$k" netns "$CH_NS"
  ip netns exec "$ns" ip addr add "198.51.100.$((224 + k * 4 - 3))/30" dev "fh${ID}c$k"
  ip netns exec "$ns" ip link set "fh${ID}c$k" up
  ip netns exec "$CH_NS" ip addr add "198.51.100.$((224 + k * 4 - 2))/30" dev "c$k"
  ip netns exec "$CH_NS" ip link set "c$k" up
  ip netns exec "$ns" ip route add "$CH_ADDR/32" via "198.51.100.$((224 + k * 4 - 2))"
  # The sink's settings from a config file (the password never on a command line).
  cat > "$DIR/sensor$k/tetherscope.toml" <<TOML
history_url = "http://$CH_ADDR:8123"
history_user = "sensor"
history_password = "demo-password"
sensor = "sensor-$k"
history_spool = "spool"
TOML
  chmod 600 "$DIR/sensor$k/tetherscope.toml"
  ip netns exec "$ns" timeout 900 "$BIN" run --interface ap0 --config "$DIR/sensor$k/tetherscope.toml" \
    --leases "$DIR/sensor$k/sim/dnsmasq-ap0.leases" --state "$DIR/sensor$k/state.db" --learn-for 0 \
    --flow-log "$DIR/sensor$k/flows.jsonl" --history-batch-secs 1 > "$DIR/sensor$k/tetherscope.log" 2>&1 &
  pids+=($!)
  echo $! > "$DIR/sensor$k/tetherscope.pid"
done

for k in "${SENSORS[@]}"; do
  ok=""
  for _ in $(seq 1 100); do
    ip netns exec "$(laptop_ns "$k")" curl -sf -m 2 http://127.0.0.1:9433/healthz >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.2
  done
  [ -n "$ok" ] || die "tetherscope on sensor $k never became healthy: $(tail -3 "$DIR/sensor$k/tetherscope.log")"
done
say "two sensors up, each writing to ClickHouse"

traffic_loop() {
  local k=$1
  for _ in $(seq 1 200); do
    [ -e "$DIR/stop-traffic" ] && break
    sim "$k" traffic 1 >/dev/null 2>&1 || true
    sleep 1
  done
}
traffic_pids=()
for k in "${SENSORS[@]}"; do traffic_loop "$k" & traffic_pids+=($!); pids+=($!); done

# Rows of both sensors arrive.
both=""
for _ in $(seq 1 60); do
  n=$(ch_query "SELECT uniqExact(sensor) FROM tetherscope.flows" 2>/dev/null || echo 0)
  [ "$n" = "${#SENSORS[@]}" ] && { both=1; break; }
  sleep 1
done
[ -n "$both" ] || die "ClickHouse never held both sensors' rows"
say "ClickHouse holds both sensors' rows ($(ch_query 'SELECT count() FROM tetherscope.flows') so far)"

metric() { ip netns exec "$(laptop_ns "$1")" curl -sf -m 2 http://127.0.0.1:9433/metrics | awk -v m="$2" '$1 == m {print $2}'; }

stop_clickhouse
say "ClickHouse stopped for ${OUTAGE}s while both hotspots see traffic"
sleep "$OUTAGE"
for k in "${SENSORS[@]}"; do
  say "sensor-$k during the outage: up $(metric "$k" tetherscope_flow_sink_up), spool $(metric "$k" tetherscope_flow_sink_spool_bytes) bytes"
done
start_clickhouse
say "ClickHouse back"
sleep 5
touch "$DIR/stop-traffic"
for p in "${traffic_pids[@]}"; do wait "$p" 2>/dev/null || true; done

# The sensors stop: every active flow is finished, logged and sent.
for k in "${SENSORS[@]}"; do
  kill -TERM "$(cat "$DIR/sensor$k/tetherscope.pid")" 2>/dev/null || true
done
for k in "${SENSORS[@]}"; do
  p=$(cat "$DIR/sensor$k/tetherscope.pid")
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && die "tetherscope on sensor $k did not stop in 30 s"
done
say "sensors stopped"

# Every flow of each sensor's flow log against its rows in ClickHouse: the
# same flow (transport, both ends, first packet to the microsecond) counted.
logged=0; stored=0; lost=0; duplicated=0
for k in "${SENSORS[@]}"; do
  ch_query "SELECT transport, client_ip, client_port, server_ip, server_port, first_seen_us FROM tetherscope.flows WHERE sensor = 'sensor-$k' FORMAT TSV" > "$DIR/sensor$k/stored.tsv"
  read -r l s lo d < <(python3 - "$DIR/sensor$k/flows.jsonl" "$DIR/sensor$k/stored.tsv" <<'PY'
import collections, datetime, json, sys
def us(t):
    d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return str(int(d.timestamp()) * 1_000_000 + d.microsecond)
log = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    log[(r["transport"], r["client_ip"], str(r["client_port"] or 0), r["server_ip"], str(r["server_port"] or 0), us(r["first_seen"]))] += 1
db = collections.Counter(tuple(l.rstrip("\n").split("\t")) for l in open(sys.argv[2]) if l.strip())
lost = sum(max(0, n - db[k]) for k, n in log.items())
dup = sum(max(0, n - log[k]) for k, n in db.items())
print(sum(log.values()), sum(db.values()), lost, dup)
PY
)
  say "sensor-$k: $l flows logged, $s stored, lost $lo, duplicated $d"
  logged=$((logged + l)); stored=$((stored + s)); lost=$((lost + lo)); duplicated=$((duplicated + d))
done

# The ten queries of docs/flow-history.md on the demo's data.
queries_ok=1
python3 - "$ROOT/docs/flow-history.md" > "$DIR/queries.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for m in re.finditer(r"^### (Q\d+)[^\n]*\n+```sql\n(.*?)```", text, re.S | re.M):
    print(m.group(1) + "\t" + " ".join(l.split("--")[0] for l in m.group(2).splitlines()).strip())
PY
n_queries=$(wc -l < "$DIR/queries.txt")
[ "$n_queries" = 10 ] || { say "docs/flow-history.md holds $n_queries queries, not 10"; queries_ok=""; }
while IFS=$'\t' read -r name sql; do
  if out=$(ch_query "$sql FORMAT TSV" 2>&1); then
    say "$name: $(printf '%s\n' "$out" | grep -c . || true) rows"
    printf '%s\n' "$out" > "$DIR/$name.tsv"
  else
    say "$name failed: $out"; queries_ok=""
  fi
done < "$DIR/queries.txt"
# Q4 finds the XTRA cleartext download of each sensor's phone.
for k in "${SENSORS[@]}"; do
  grep -q "^sensor-$k	02:42:0a:2a:00:32	.*xtrapath3.izatcloud.net	/xtra3grc.bin" "$DIR/Q4.tsv" 2>/dev/null ||
    { say "Q4 did not find sensor-$k's XTRA download"; queries_ok=""; }
done

echo "flow-history: ${#SENSORS[@]} sensors, $logged flows logged, $stored stored, lost $lost, duplicated $duplicated, outage $OUTAGE s"
[ "$logged" -gt 0 ] && [ "$stored" = "$logged" ] && [ "$lost" = 0 ] && [ "$duplicated" = 0 ] && [ -n "$queries_ok" ]
