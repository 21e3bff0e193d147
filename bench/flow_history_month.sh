#!/usr/bin/env bash
# Flow history sizing per sensor and day: the month test's capture (one
# phone, 30 days, tests/month.rs: a steady hourly set of destinations and 250
# new domains a day) replayed as fast as it reads with the sink to a
# ClickHouse 18.16 of its own; then, per day partition of tetherscope.flows
# (system.parts, active parts, after OPTIMIZE … FINAL merged each day into
# one part as the server does in time), the rows and the compressed and
# uncompressed bytes. Checks that the table holds every flow the replay
# finished.
#
#   bench/flow_history_month.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
cargo build --release --quiet --bin tetherscope
bin=target/release/tetherscope
work=$(mktemp -d)
ch_pid=""
cleanup() { [ -n "$ch_pid" ] && kill "$ch_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# shellcheck source=bench/clickhouse.sh
. bench/clickhouse.sh

cap="$work/month.pcap"
TETHERSCOPE_MONTH_PCAP="$cap" cargo test --release --quiet --test tests -- \
  month::write_the_month_capture --ignored --exact >/dev/null 2>&1
[ -s "$cap" ] || { echo "bench: the month capture was not written" >&2; exit 1; }

clickhouse_start
read -r cpu flows < <(replay_once "$cap" --history-url "http://127.0.0.1:$http" --sensor month \
  --history-spool "$work/spool")
stored=$(q "SELECT count() FROM tetherscope.flows WHERE sensor = 'month'")
[ "$stored" = "$flows" ] || { echo "bench: the replay finished $flows flows, ClickHouse holds $stored" >&2; exit 1; }
q "OPTIMIZE TABLE tetherscope.flows FINAL" >/dev/null
echo "month replay: $flows flows, all stored (replay CPU ${cpu} s)"
echo "day         rows  compressed B  uncompressed B  B/row"
q "SELECT partition, sum(rows) AS r, sum(data_compressed_bytes) AS c, sum(data_uncompressed_bytes) AS u
   FROM system.parts WHERE database = 'tetherscope' AND table = 'flows' AND active
   GROUP BY partition ORDER BY partition FORMAT TSV" |
  awk -F'\t' '{printf "%s %5d %13d %15d %6.1f\n", $1, $2, $3, $4, $3 / $2; r += $2; c += $3; n++}
    END {printf "per day (mean of %d days): %.0f rows, %.0f compressed bytes\n", n, r / n, c / n}'
