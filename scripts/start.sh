#!/usr/bin/env bash
# Sets up, builds, and runs tetherscope: live on the hotspot when one is up
# (an interface holding 10.42.0.1), otherwise the built-in demo on a
# simulated hotspot. Capture needs root here; see deploy/ for running with
# capabilities only.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --quiet
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ip -4 -o addr show 2>/dev/null | grep -q ' 10\.42\.0\.1/'; then
  exec $sudo ./target/release/tetherscope run "$@"
else
  echo "start: no hotspot (no interface holds 10.42.0.1): running the demo on a simulated one" >&2
  exec $sudo ./target/release/tetherscope demo "$@"
fi
