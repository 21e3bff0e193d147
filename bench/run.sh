#!/usr/bin/env bash
# The peer benchmark: tetherscope read vs ndpiReader vs a raw libpcap read
# loop, on the standard phone-hotspot capture, with names checked against
# the generator's ground truth in the same run. See docs/testing.md, "Benchmarks".
#
#   bench/run.sh [RUNS]        (default 5 timed runs per tool, after a warm-up)
#
# Env: TETHERSCOPE_BENCH_DIR (default /tmp/tetherscope-bench) holds the
# generated captures; TETHERSCOPE_GENERATOR the generator script.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
dir="${TETHERSCOPE_BENCH_DIR:-/tmp/tetherscope-bench}"
gen="${TETHERSCOPE_GENERATOR:-../shared/bench/gen_phone_pcap.py}"

./scripts/setup.sh
missing=()
command -v ndpiReader >/dev/null || missing+=(libndpi-bin)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "bench: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -f "$gen" ] || { echo "bench: generator not found at $gen (set TETHERSCOPE_GENERATOR)" >&2; exit 2; }

cargo build --release --quiet --bin tetherscope
cargo build --release --quiet -p tetherscope-capture --example pcap_count

mkdir -p "$dir"
make_capture() { # name packets flows
  if [ ! -s "$dir/$1.pcap" ] || [ ! -s "$dir/$1.truth.tsv" ]; then
    echo "bench: generating $dir/$1.pcap ($2 packets)" >&2
    python3 "$gen" "$dir/$1.pcap" --packets "$2" --flows "$3" --domains 2000 --seed 1 \
      --truth "$dir/$1.truth.tsv" >&2
  fi
}
make_capture phone_2m 2000000 20000
make_capture phone_500k 500000 5000

exec python3 bench/peers.py --runs "$runs" \
  --capture "$dir/phone_2m.pcap" --truth "$dir/phone_2m.truth.tsv" \
  --small "$dir/phone_500k.pcap"
