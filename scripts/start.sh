#!/usr/bin/env bash
# Sets up, builds, and runs tetherscope: live on the hotspot when one is up,
# otherwise the built-in demo on a simulated hotspot. The hotspot is found
# the way `tetherscope run` finds it: NetworkManager's active shared
# connection first (the first by interface name), else the interface holding
# 10.42.0.1. Capture needs root here; see deploy/ for running with
# capabilities only.
#
# START_FIND_ONLY=1 only prints the hotspot interface found (nothing when
# there is none) and exits.
set -euo pipefail
cd "$(dirname "$0")/.."

# nmcli with the same 5-second bound per call as `run`.
nm() { timeout 5 nmcli "$@" 2>/dev/null; }

hotspot_interface() {
  if command -v nmcli >/dev/null 2>&1; then
    local uuid dev method shared=()
    while IFS=: read -r uuid dev; do
      [ -n "$uuid" ] && [ -n "$dev" ] || continue
      method=$(nm -g ipv4.method connection show "$uuid" | head -n 1) || continue
      [ "$method" = shared ] && shared+=("$dev")
    done < <(nm -t -f UUID,DEVICE connection show --active || true)
    if [ "${#shared[@]}" -gt 0 ]; then
      printf '%s\n' "${shared[@]}" | LC_ALL=C sort | head -n 1
      return
    fi
  fi
  ip -4 -o addr show 2>/dev/null | awk '$4 ~ /^10\.42\.0\.1\// { print $2; exit }'
}

if [ "${START_FIND_ONLY:-}" = 1 ]; then
  hotspot_interface
  exit 0
fi

./scripts/setup.sh
cargo build --release --quiet
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$(hotspot_interface)" ]; then
  # `run` finds the same interface, and follows NetworkManager's connection.
  exec $sudo ./target/release/tetherscope run "$@"
else
  echo "start: no hotspot (no NetworkManager shared connection, no interface holds 10.42.0.1): running the demo on a simulated one" >&2
  exec $sudo ./target/release/tetherscope demo "$@"
fi
