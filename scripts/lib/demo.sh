# shellcheck shell=bash
# Sourced by the multi-sensor demos (scripts/scale-out-demo.sh,
# scripts/flow-history-demo.sh): the tetherscope binary, logging, the
# simulated hotspots, the link from a sensor to a central namespace, waits
# on conditions and the cleanup of the processes a demo started.
#
# The demo sets, before sourcing: HERE (scripts/), ROOT, ID, DIR, SENSORS,
# DEMO (its name, the prefix of its lines), SIM_PREFIX (short, unique
# per demo: namespace and interface names are built from it) and pids (the
# processes to stop, an array).
# shellcheck disable=SC2154

BIN="${TETHERSCOPE_BIN:-}"
if [ -z "$BIN" ]; then
  if [ -x "$ROOT/target/release/tetherscope" ]; then BIN="$ROOT/target/release/tetherscope"; else BIN="$(command -v tetherscope || true)"; fi
fi

T0=$(date +%s)
say() { echo "$DEMO: [$(($(date +%s) - T0))s] $*" >&2; }
die() { say "$*"; exit 1; }

# Root, the binary and the commands named.
require() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
  [ -x "$BIN" ] || die "no tetherscope binary (build it, or set TETHERSCOPE_BIN)"
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null || die "$c is missing (scripts/setup.sh --test)"
  done
}

sim_id() { echo "${SIM_PREFIX}${ID}s$1"; }
sim() { local k=$1; shift; TS_SIM_ID="$(sim_id "$k")" TS_SIM_DIR="$DIR/sensor$k/sim" TS_SIM_PHONE_NAME="phone-$k" bash "$HERE/hotspot-sim.sh" "$@"; }
laptop_ns() { echo "ts$(sim_id "$1")-laptop"; }

# link_to_central K CENTRAL_NS BASE CENTRAL_ADDR: a /30 from sensor K's
# laptop to CENTRAL_NS (198.51.100.BASE+4K-3 and -2), and a route from the
# laptop to CENTRAL_ADDR over it.
link_to_central() {
  local k=$1 central_ns=$2 base=$3 central_addr=$4 ns
  ns=$(laptop_ns "$k")
  ip link add "${SIM_PREFIX}${ID}c$k" netns "$ns" type veth peer name "c$k" netns "$central_ns"
  ip netns exec "$ns" ip addr add "198.51.100.$((base + k * 4 - 3))/30" dev "${SIM_PREFIX}${ID}c$k"
  ip netns exec "$ns" ip link set "${SIM_PREFIX}${ID}c$k" up
  ip netns exec "$central_ns" ip addr add "198.51.100.$((base + k * 4 - 2))/30" dev "c$k"
  ip netns exec "$central_ns" ip link set "c$k" up
  ip netns exec "$ns" ip route add "$central_addr/32" via "198.51.100.$((base + k * 4 - 2))"
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds
# (0) or SECONDS have passed (1).
wait_until() {
  local limit=$1 end
  shift
  end=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}

healthy() { ip netns exec "$(laptop_ns "$1")" curl -sf -m 2 http://127.0.0.1:9433/healthz >/dev/null 2>&1; }

# Every sensor's tetherscope answers /healthz within 20 s.
wait_healthy() {
  local k
  for k in "${SENSORS[@]}"; do
    wait_until 20 healthy "$k" || die "tetherscope on sensor $k never became healthy: $(tail -3 "$DIR/sensor$k/tetherscope.log")"
  done
}

# The processes in pids, last started first: TERM, five seconds to stop,
# then KILL.
stop_pids() {
  local i p alive
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null; done
  for _ in $(seq 1 50); do
    alive=""
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for p in $alive; do say "cleanup: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-60) did not stop in 5 s"; kill -9 "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
