#!/usr/bin/env bash
# What the flow history sink costs the live path: `tetherscope replay` of the
# standard capture (../shared/bench, 2,000,000 packets) as fast as it reads,
# without and with --history-url, interleaved in one run of this script; CPU
# seconds (user+sys) of the tetherscope process over its whole life (SIGTERM
# after the end of the file, which finishes and sends every flow, included),
# medians. The ClickHouse server (18.16, started here on a loopback port with
# its data under a temporary directory, stopped by its PID) is not counted.
# Each run with the sink checks that ClickHouse holds every flow the run
# finished, and that nothing was dropped.
#
#   bench/flow_history.sh [RUNS]        (default 3 runs of each)
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-3}"
dir="${TETHERSCOPE_BENCH_DIR:-/tmp/tetherscope-bench}"
gen="${TETHERSCOPE_GENERATOR:-../shared/bench/gen_phone_pcap.py}"
cargo build --release --quiet --bin tetherscope
bin=target/release/tetherscope
mkdir -p "$dir"
cap="$dir/phone_2m.pcap"
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -x /usr/sbin/clickhouse-server ] || { echo "bench: needs clickhouse-server (scripts/setup.sh --test)" >&2; exit 2; }
[ -s "$cap" ] || python3 "$gen" "$cap" --packets 2000000 --flows 20000 --domains 2000 --seed 1 >&2

work=$(mktemp -d)
ch_pid=""
cleanup() { [ -n "$ch_pid" ] && kill "$ch_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); tcp=$(free_port)
mkdir -p "$work/ch"
cat > "$work/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$work/ch/server.log</log><errorlog>$work/ch/error.log</errorlog></logger>
  <http_port>$http</http_port><tcp_port>$tcp</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$work/ch/data/</path><tmp_path>$work/ch/tmp/</tmp_path>
  <user_files_path>$work/ch/user_files/</user_files_path><format_schema_path>$work/ch/fs/</format_schema_path>
  <users_config>users.xml</users_config><default_profile>default</default_profile>
  <default_database>default</default_database><mark_cache_size>5368709</mark_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
cat > "$work/ch/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
XML
/usr/sbin/clickhouse-server --config-file="$work/ch/config.xml" >/dev/null 2>&1 &
ch_pid=$!
q() { curl -sS --fail-with-body "http://127.0.0.1:$http/?allow_experimental_low_cardinality_type=1" --data-binary "$1"; }
for _ in $(seq 1 300); do q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
python3 - deploy/clickhouse/flows.sql <<'PY' > "$work/ddl.txt"
import sys
cur = []
for line in open(sys.argv[1]):
    line = line.split("--")[0].rstrip()
    if line.strip():
        cur.append(line)
        if line.endswith(";"):
            s = " ".join(cur).rstrip(";"); cur = []
            if not s.startswith("SET "): print(s)
PY
while read -r s; do q "$s" >/dev/null; done < "$work/ddl.txt"

# One replay; prints "CPU_SECONDS FLOWS".
one() { # extra args...
  local err port pid cpu
  err=$(mktemp); cpu=$(mktemp)
  port=$((20000 + RANDOM % 20000))
  XDG_STATE_HOME="$work" /usr/bin/time -f "%U %S" -o "$cpu" "$bin" replay "$cap" --listen "127.0.0.1:$port" "$@" \
    2>"$err" >/dev/null &
  pid=$!
  for _ in $(seq 1 1200); do
    grep -q " read: " "$err" && break
    sleep 0.1
  done
  kill -TERM "$(pgrep -P "$pid" -x tetherscope)"
  wait "$pid" || true
  local flows
  flows=$(sed -n 's/.*stopped; [0-9]* packets, \([0-9]*\) flows.*/\1/p' "$err")
  awk -v f="$flows" '{printf "%.2f %s\n", $1 + $2, f}' "$cpu"
  rm -f "$err" "$cpu"
}

without=(); with=(); run=0
for _ in $(seq 1 "$runs"); do
  read -r c _ < <(one); without+=("$c")
  run=$((run + 1))
  read -r c flows < <(one --history-url "http://127.0.0.1:$http" --sensor "bench-$run" --history-spool "$work/spool")
  with+=("$c")
  stored=$(q "SELECT count() FROM tetherscope.flows WHERE sensor = 'bench-$run'")
  [ "$stored" = "$flows" ] || { echo "bench: run $run finished $flows flows, ClickHouse holds $stored" >&2; exit 1; }
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m0=$(median "${without[@]}"); m1=$(median "${with[@]}")
echo "replay of $cap, $runs runs each, $flows flows a run (all stored)"
echo "  without sink: CPU s ${without[*]} (median $m0)"
echo "  with sink:    CPU s ${with[*]} (median $m1)"
awk -v a="$m0" -v b="$m1" 'BEGIN {printf "  the sink costs %.1f%% more CPU (ratio %.3f)\n", (b / a - 1) * 100, b / a}'
sizes=$(q "SELECT sum(rows), sum(data_compressed_bytes) FROM system.parts WHERE database = 'tetherscope' AND table = 'flows' AND active FORMAT TSV")
echo "  ClickHouse: rows, compressed bytes on disk: $sizes"
