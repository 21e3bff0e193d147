#!/usr/bin/env bash
# What the flow log costs the live path: `tetherscope replay` (the same
# pipeline, exporter and flow log as `run`) of a generated 200,000-packet
# hotspot capture, with and without --flow-log, interleaved; CPU seconds
# (user+sys) of the whole process, SIGTERM after the end of the file (which
# finishes and logs every flow still active) included, medians. With
# strace installed it also counts the write(2) calls of one run of each.
#
#   bench/flow_log.sh [RUNS]        (default 5 runs of each)
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
dir="${TETHERSCOPE_BENCH_DIR:-/tmp/tetherscope-bench}"
gen="${TETHERSCOPE_GENERATOR:-../shared/bench/gen_phone_pcap.py}"
cargo build --release --quiet --bin tetherscope
bin=target/release/tetherscope
mkdir -p "$dir"
cap="$dir/phone_200k.pcap"
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[ -s "$cap" ] || python3 "$gen" "$cap" --packets 200000 --flows 3200 --domains 2000 --seed 1 >&2
tick=$(getconf CLK_TCK)

# One replay; prints the CPU seconds of its whole life: reading the file,
# then SIGTERM, which finishes and logs every flow still active.
one() { # extra args...
  local err port pid cpu
  err=$(mktemp); cpu=$(mktemp)
  port=$((20000 + RANDOM % 20000))
  /usr/bin/time -f "%U %S" -o "$cpu" "$bin" replay "$cap" --listen "127.0.0.1:$port" "$@" \
    2>"$err" >/dev/null &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q " read: " "$err" && break
    sleep 0.1
  done
  kill -TERM "$(pgrep -P "$pid" -x tetherscope)"
  wait "$pid" || true
  awk '{printf "%.2f\n", $1 + $2}' "$cpu"
  rm -f "$err" "$cpu"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
without=(); with=()
for _ in $(seq 1 "$runs"); do
  without+=("$(one)")
  with+=("$(one --flow-log "$log")")
  : >"$log"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m0=$(median "${without[@]}"); m1=$(median "${with[@]}")
echo "replay of $cap, $runs runs each"
echo "  without flow log: CPU s ${without[*]} (median $m0)"
echo "  with flow log:    CPU s ${with[*]} (median $m1)"
awk -v a="$m0" -v b="$m1" 'BEGIN {printf "  flow log costs %.1f%% more CPU\n", (b / a - 1) * 100}'
if command -v strace >/dev/null; then
  port=$((20000 + RANDOM % 20000))
  strace -f -c -e trace=write -o "$log.strace" "$bin" replay "$cap" --listen "127.0.0.1:$port" \
    --flow-log "$log" 2>/dev/null >/dev/null &
  pid=$!
  for _ in $(seq 1 600); do
    [ "$(wc -l <"$log")" -gt 0 ] && [ -z "$(find "$log" -newermt '-2 seconds')" ] && break
    sleep 0.2
  done
  # SIGTERM to tetherscope itself, not to strace.
  kill -TERM "$(pgrep -P "$pid" -x tetherscope)"; wait "$pid" || true
  echo "  write(2) calls with the flow log: $(awk '/write/ {print $4}' "$log.strace") for $(wc -l <"$log") flow lines"
  rm -f "$log.strace"
fi
