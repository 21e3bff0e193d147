#!/usr/bin/env bash
# A simulated NetworkManager hotspot in network namespaces, with real programs.
#
#   phone  (wlan0, DHCP from the laptop, resolver 10.42.0.1)
#     |  veth
#   laptop (ap0 = 10.42.0.1/24 + fd42:42::1/64, dnsmasq for DHCP and DNS;
#     |     up0 = 203.0.113.253/30, forwards between the two)
#     |     With NetworkManager installed, the laptop runs the real one
#     |     (scripts/sim/nm-laptop.sh): a "shared" connection "Hotspot" on
#     |     ap0 gives the address and starts NetworkManager's own dnsmasq.
#     |  veth
#   internet (eth0 = 203.0.113.254/30; servers on documentation addresses)
#
# Usage: hotspot-sim.sh up|traffic [ROUNDS]|down|status     (as root)
#        hotspot-sim.sh relink [SECONDS]|direct
#        hotspot-sim.sh nmcli ARGS...     nmcli against the laptop's NetworkManager
#        hotspot-sim.sh laptop CMD...     CMD in the laptop's network (and, with
#                                         NetworkManager, mount) namespace
# Environment: TS_SIM_ID (namespace suffix, default "0"), TS_SIM_DIR (state
# directory, default /tmp/tetherscope-sim-$TS_SIM_ID), TS_SIM_HOTSPOT
# (networkmanager or dnsmasq; default networkmanager when it is installed),
# TS_SIM_HOTSPOT_ADDR (the laptop's hotspot address, default 10.42.0.1/24;
# another /24 needs NetworkManager), TS_SIM_PHONE_NAME.
#
# Nothing here addresses anything outside the namespaces it creates: every
# server address is a documentation address bound inside "internet", and the
# phone's only route leads there through the laptop. Traffic loops are
# bounded in count and every client call in time.
set -euo pipefail

ID="${TS_SIM_ID:-0}"
DIR="${TS_SIM_DIR:-/tmp/tetherscope-sim-$ID}"
PHONE="ts${ID}-phone"
LAPTOP="ts${ID}-laptop"
INET="ts${ID}-inet"
HERE="$(cd "$(dirname "$0")" && pwd)"
PHONE_NAME="${TS_SIM_PHONE_NAME:-pixel-7a}"
HOTSPOT_CIDR="${TS_SIM_HOTSPOT_ADDR:-10.42.0.1/24}"
GW="${HOTSPOT_CIDR%/*}"
HOTSPOT_NET="${GW%.*}.0/24"
AUTO_MODE=""
if [ -z "${TS_SIM_HOTSPOT:-}" ]; then
  if [ "${1:-}" != up ] && [ -f "$DIR/hotspot-mode" ]; then
    TS_SIM_HOTSPOT=$(cat "$DIR/hotspot-mode")
  elif command -v NetworkManager >/dev/null && command -v nmcli >/dev/null; then
    TS_SIM_HOTSPOT=networkmanager
    AUTO_MODE=1
  else
    TS_SIM_HOTSPOT=dnsmasq
  fi
fi
MODE="$TS_SIM_HOTSPOT"

# name -> address, and the XTRA CNAME chain of the xtra-daemon study.
HOSTS="192.0.2.10 release.calyxinstitute.org
192.0.2.20 connectivitycheck.gstatic.com
192.0.2.30 mtalk.google.com
192.0.2.40 time.android.com
198.51.100.102 d3nj9ptoklgw8o.cloudfront.net
203.0.113.7 beacon.tracker.example.com"
DIRECT_IP=203.0.113.50
SERVER_IPS="192.0.2.10 192.0.2.20 192.0.2.30 192.0.2.40 198.51.100.102 203.0.113.7 $DIRECT_IP"

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# In the laptop's namespaces: with NetworkManager, also its private mounts
# (D-Bus bus, /var/lib/NetworkManager) and host name.
laptopx() {
  if [ "$MODE" = networkmanager ]; then
    nsenter -t "$(cat "$DIR/nm-holder.pid")" -m -u -n "$@"
  else
    nsx "$LAPTOP" "$@"
  fi
}
nmx() { laptopx timeout 40 nmcli "$@"; }

need() {
  for c in ip dnsmasq dig curl openssl busybox python3; do
    command -v "$c" >/dev/null || { echo "hotspot-sim: $c is missing (run scripts/setup.sh)" >&2; exit 1; }
  done
  case "$MODE" in
    networkmanager)
      for c in NetworkManager nmcli dbus-daemon nsenter unshare; do
        command -v "$c" >/dev/null || { echo "hotspot-sim: $c is missing (scripts/setup.sh --test installs NetworkManager)" >&2; exit 1; }
      done ;;
    dnsmasq) [ "$HOTSPOT_CIDR" = 10.42.0.1/24 ] || { echo "hotspot-sim: TS_SIM_HOTSPOT_ADDR needs NetworkManager" >&2; exit 1; } ;;
    *) echo "hotspot-sim: TS_SIM_HOTSPOT must be networkmanager or dnsmasq" >&2; exit 64 ;;
  esac
  [ "$(id -u)" -eq 0 ] || { echo "hotspot-sim: needs root (network namespaces)" >&2; exit 1; }
}

down() {
  if [ -f "$DIR/nm-holder.pid" ]; then
    nmx connection down Hotspot >/dev/null 2>&1 || true
  fi
  for pidfile in "$DIR"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  if [ -f "$DIR/nm-holder.pid" ]; then
    # NetworkManager writes its state under $DIR until it has stopped.
    for _ in $(seq 1 50); do
      kill -0 "$(cat "$DIR/nm-holder.pid")" 2>/dev/null || break
      sleep 0.1
    done
  fi
  for ns in "$PHONE" "$LAPTOP" "$INET"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$PHONE"
  rm -rf "$DIR"
}

certs() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tetherscope simulated CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
  local sans
  sans="DNS:release.calyxinstitute.org,DNS:mtalk.google.com,DNS:beacon.tracker.example.com,DNS:connectivitycheck.gstatic.com,IP:$DIRECT_IP"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=tetherscope simulated server" \
    -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$sans" > "$DIR/san.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 2 -extfile "$DIR/san.ext" -out "$DIR/server.pem" 2>/dev/null
}

up() {
  need
  down
  mkdir -p "$DIR"
  for ns in "$PHONE" "$LAPTOP" "$INET"; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done

  ip link add wlan0 netns "$PHONE" type veth peer name ap0 netns "$LAPTOP"
  ip link add up0 netns "$LAPTOP" type veth peer name eth0 netns "$INET"

  nsx "$LAPTOP" ip addr add 203.0.113.253/30 dev up0
  nsx "$LAPTOP" ip link set up0 up
  nsx "$LAPTOP" ip route add default via 203.0.113.254
  nsx "$LAPTOP" sysctl -qw net.ipv4.ip_forward=1

  nsx "$INET" ip addr add 203.0.113.254/30 dev eth0
  nsx "$INET" ip link set eth0 up
  for a in $SERVER_IPS; do nsx "$INET" ip addr add "$a/32" dev lo; done
  nsx "$INET" ip route add "$HOTSPOT_NET" via 203.0.113.253

  nsx "$PHONE" ip link set wlan0 address 02:42:0a:2a:00:32
  nsx "$PHONE" ip link set wlan0 up
  mkdir -p "/etc/netns/$PHONE"
  echo "nameserver $GW" > "/etc/netns/$PHONE/resolv.conf"

  certs
  printf '%s\n' "$HOSTS" > "$DIR/hosts"
  echo "$MODE" > "$DIR/hotspot-mode"
  if [ "$MODE" = networkmanager ]; then
    set +e
    (set -e; nm_hotspot)
    local rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
      # Chosen because it is installed, not asked for: say so, and use the
      # hand-started dnsmasq (the tests report the fallback loudly).
      [ -n "$AUTO_MODE" ] && [ "$HOTSPOT_CIDR" = 10.42.0.1/24 ] || exit 1
      echo "hotspot-sim: NetworkManager did not bring the hotspot up; falling back to a hand-started dnsmasq" >&2
      nm_stop
      MODE=dnsmasq
      echo "$MODE" > "$DIR/hotspot-mode"
      dnsmasq_hotspot
    fi
  else
    dnsmasq_hotspot
  fi
  up_servers_and_phone
}

# The same names as NetworkManager's dnsmasq serves them: the seed hosts and
# the XTRA CNAME chain, nothing forwarded.
# shellcheck disable=SC2054  # commas inside dnsmasq options
DNS_NAMES=(
  --no-resolv --addn-hosts="$DIR/hosts"
  --cname=xtrapath3.izatcloud.net,xtrapath3.qcomgeo2.com
  --cname=xtrapath3.qcomgeo2.com,xp3.gpsonextra.net
  --cname=xp3.gpsonextra.net,d3nj9ptoklgw8o.cloudfront.net
)

# The laptop's real NetworkManager: a shared connection on ap0.
nm_hotspot() {
  mkdir -p "$DIR/nm/etc/dnsmasq-shared.d" "$DIR/nm/etc/dispatcher.d"
  {
    for o in "${DNS_NAMES[@]}"; do echo "${o#--}"; done
    # dnsmasq pings an address before offering it (3 s); nothing else is here.
    echo no-ping
    echo "log-facility=$DIR/dnsmasq.log"
    echo log-queries
    echo log-dhcp
  } > "$DIR/nm/etc/dnsmasq-shared.d/tetherscope-sim.conf"
  local dispatcher="$HERE/../deploy/networkmanager/90-tetherscope"
  if [ -f "$dispatcher" ]; then
    install -m 755 "$dispatcher" "$DIR/nm/etc/dispatcher.d/90-tetherscope"
  fi
  touch "$DIR/dnsmasq.log"
  chmod 666 "$DIR/dnsmasq.log"   # NetworkManager's dnsmasq runs as nobody
  setsid ip netns exec "$LAPTOP" unshare --mount --uts --propagation private -- \
    bash "$HERE/sim/nm-laptop.sh" "$DIR" > "$DIR/nm-holder.log" 2>&1 < /dev/null &
  echo $! > "$DIR/nm-holder.pid"
  for _ in $(seq 1 100); do [ -e "$DIR/nm/ready" ] && break; sleep 0.1; done
  [ -e "$DIR/nm/ready" ] || { echo "hotspot-sim: NetworkManager did not start" >&2; cat "$DIR/nm-holder.log" >&2; exit 1; }
  local addrs=()
  [ "$HOTSPOT_CIDR" = 10.42.0.1/24 ] || addrs=(ipv4.addresses "$HOTSPOT_CIDR")
  nmx connection add type ethernet ifname ap0 con-name Hotspot autoconnect no \
    ipv4.method shared "${addrs[@]}" ipv6.method ignore >/dev/null
  nmx --wait 30 connection up Hotspot >/dev/null
  ln -sf nm/lib/dnsmasq-ap0.leases "$DIR/dnsmasq-ap0.leases"
  laptopx ip addr add fd42:42::1/64 dev ap0 nodad
}

# Stops the laptop's NetworkManager and what it started, leaving ap0 bare.
nm_stop() {
  if [ -f "$DIR/nm-holder.pid" ]; then kill "$(cat "$DIR/nm-holder.pid")" 2>/dev/null || true; fi
  for _ in $(seq 1 50); do
    [ -f "$DIR/nm-holder.pid" ] && kill -0 "$(cat "$DIR/nm-holder.pid")" 2>/dev/null || break
    sleep 0.1
  done
  ip netns pids "$LAPTOP" 2>/dev/null | xargs -r kill 2>/dev/null || true
  rm -rf "$DIR/nm" "$DIR/nm-holder.pid" "$DIR/dnsmasq-ap0.leases"
  nsx "$LAPTOP" ip addr flush dev ap0
}

# A hand-started dnsmasq, where NetworkManager is not installed.
dnsmasq_hotspot() {
  nsx "$LAPTOP" ip addr add 10.42.0.1/24 dev ap0
  nsx "$LAPTOP" ip addr add fd42:42::1/64 dev ap0 nodad
  nsx "$LAPTOP" ip link set ap0 up
  nsx "$LAPTOP" dnsmasq --conf-file=/dev/null --no-hosts "${DNS_NAMES[@]}" \
    --interface=ap0 --bind-interfaces --except-interface=lo \
    --dhcp-range=10.42.0.10,10.42.0.99,255.255.255.0,1h --dhcp-option=option:router,10.42.0.1 \
    --dhcp-option=option:dns-server,10.42.0.1 --dhcp-leasefile="$DIR/dnsmasq-ap0.leases" \
    --pid-file="$DIR/dnsmasq.pid" --log-facility="$DIR/dnsmasq.log"
}

up_servers_and_phone() {
  nsx "$INET" python3 "$HERE/sim/servers.py" "$DIR/server.pem" "$DIR/server.key" 192.0.2.40 > "$DIR/servers.log" 2>&1 &
  echo $! > "$DIR/servers.pid"

  # The phone asks for an address like a phone does, announcing its name.
  nsx "$PHONE" timeout 20 busybox udhcpc -i wlan0 -x "hostname:$PHONE_NAME" -s "$HERE/sim/phone-dhcp.sh" -q -n -t 5 -T 2 >/dev/null 2>&1
  for _ in $(seq 1 50); do
    grep -q "servers ready" "$DIR/servers.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "servers ready" "$DIR/servers.log" || { echo "hotspot-sim: servers did not start" >&2; cat "$DIR/servers.log" >&2; exit 1; }
  local addr
  addr=$(nsx "$PHONE" ip -4 -o addr show wlan0 | awk '{print $4}')
  [ -n "$addr" ] || { echo "hotspot-sim: the phone got no address" >&2; exit 1; }
  echo "hotspot-sim: up ($MODE hotspot $HOTSPOT_CIDR, phone $addr, state in $DIR)"
}

# The hotspot interface disappears for a while and comes back (the user
# toggled the hotspot): the veth pair is deleted and recreated, and the phone
# keeps its address.
relink() {
  local pause="${1:-2}" addr
  addr=$(nsx "$PHONE" ip -4 -o addr show wlan0 | awk '{print $4}')
  [ -n "$addr" ] || { echo "hotspot-sim: phone has no address" >&2; exit 1; }
  nsx "$LAPTOP" ip link del ap0
  sleep "$pause"
  ip link add wlan0 netns "$PHONE" type veth peer name ap0 netns "$LAPTOP"
  if [ "$MODE" = networkmanager ]; then
    # A new device: the connection (autoconnect off) is brought up again.
    for _ in $(seq 1 50); do
      nmx -t -f DEVICE device status 2>/dev/null | grep -qx ap0 && break
      sleep 0.1
    done
    nmx --wait 30 connection up Hotspot >/dev/null
  else
    nsx "$LAPTOP" ip addr add 10.42.0.1/24 dev ap0
    nsx "$LAPTOP" ip link set ap0 up
  fi
  nsx "$PHONE" ip link set wlan0 address 02:42:0a:2a:00:32
  nsx "$PHONE" ip link set wlan0 up
  nsx "$PHONE" ip addr add "$addr" dev wlan0
  nsx "$PHONE" ip route add default via "$GW"
  echo "hotspot-sim: ap0 recreated after ${pause}s (phone $addr)"
}

# A direct-IP HTTPS request: needs neither DNS nor DHCP.
direct() {
  ip netns exec "$PHONE" timeout 10 curl -sS -o /dev/null --cacert "$DIR/ca.pem" "https://$DIRECT_IP/" || true
}

# One round of what a phone does, every call bounded in time.
round() {
  local p=(ip netns exec "$PHONE" timeout 10)
  local ca="$DIR/ca.pem"
  "${p[@]}" dig +short +tries=1 +time=3 release.calyxinstitute.org >/dev/null || true
  "${p[@]}" curl -sS -o /dev/null --cacert "$ca" https://release.calyxinstitute.org/ || true
  "${p[@]}" curl -sS -o /dev/null http://xtrapath3.izatcloud.net/xtra3grc.bin || true
  "${p[@]}" curl -sS -o /dev/null http://connectivitycheck.gstatic.com/generate_204 || true
  "${p[@]}" openssl s_client -connect mtalk.google.com:5228 -servername mtalk.google.com -CAfile "$ca" </dev/null >/dev/null 2>&1 || true
  "${p[@]}" curl -sS -o /dev/null --cacert "$ca" https://beacon.tracker.example.com/ || true
  "${p[@]}" curl -sS -o /dev/null --cacert "$ca" "https://$DIRECT_IP/" || true
  "${p[@]}" python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2);s.sendto(b"\x23"+bytes(47),(socket.gethostbyname("time.android.com"),123));s.recv(64)' 2>/dev/null || true
}

traffic() {
  local rounds="${1:-1}"
  [ "$rounds" -ge 1 ] && [ "$rounds" -le 1000 ] || { echo "hotspot-sim: rounds must be 1..1000" >&2; exit 1; }
  for _ in $(seq 1 "$rounds"); do round; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  traffic) shift; traffic "${1:-1}" ;;
  relink) shift; relink "${1:-2}" ;;
  direct) direct ;;
  nmcli)
    shift
    [ "$MODE" = networkmanager ] || { echo "hotspot-sim: this hotspot has no NetworkManager" >&2; exit 1; }
    nmx "$@" ;;
  laptop) shift; laptopx "$@" ;;
  status) ip netns list | grep "^ts${ID}-" || echo "hotspot-sim: down" ;;
  *) echo "usage: $0 up|traffic [ROUNDS]|relink [SECONDS]|direct|nmcli ARGS|laptop CMD|down|status" >&2; exit 64 ;;
esac
