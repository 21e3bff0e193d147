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
[ -s "$cap" ] || python3 "$gen" "$cap" --packets 2000000 --flows 20000 --domains 2000 --seed 1 >&2

work=$(mktemp -d)
ch_pid=""
cleanup() { [ -n "$ch_pid" ] && kill "$ch_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/clickhouse.sh
. bench/clickhouse.sh
clickhouse_start

one() { replay_once "$cap" "$@"; }

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
