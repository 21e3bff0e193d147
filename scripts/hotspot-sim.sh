#!/usr/bin/env bash
# A simulated NetworkManager hotspot in network namespaces, with real programs.
#
#   phone  (wlan0, DHCP from the laptop, resolver 10.42.0.1)
#     |  veth
#   laptop (ap0 = 10.42.0.1/24 + fd42:42::1/64, dnsmasq for DHCP and DNS;
#     |     up0 = 203.0.113.253/30, forwards between the two)
#     |  veth
#   internet (eth0 = 203.0.113.254/30; servers on documentation addresses)
#
# Usage: hotspot-sim.sh up|traffic [ROUNDS]|down|status     (as root)
# Environment: TS_SIM_ID (namespace suffix, default "0"), TS_SIM_DIR (state
# directory, default /tmp/tetherscope-sim-$TS_SIM_ID).
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

need() {
  for c in ip dnsmasq dig curl openssl busybox python3; do
    command -v "$c" >/dev/null || { echo "hotspot-sim: $c is missing (run scripts/setup.sh)" >&2; exit 1; }
  done
  [ "$(id -u)" -eq 0 ] || { echo "hotspot-sim: needs root (network namespaces)" >&2; exit 1; }
}

down() {
  for pidfile in "$DIR"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
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

  nsx "$LAPTOP" ip addr add 10.42.0.1/24 dev ap0
  nsx "$LAPTOP" ip addr add fd42:42::1/64 dev ap0 nodad
  nsx "$LAPTOP" ip link set ap0 up
  nsx "$LAPTOP" ip addr add 203.0.113.253/30 dev up0
  nsx "$LAPTOP" ip link set up0 up
  nsx "$LAPTOP" ip route add default via 203.0.113.254
  nsx "$LAPTOP" sysctl -qw net.ipv4.ip_forward=1

  nsx "$INET" ip addr add 203.0.113.254/30 dev eth0
  nsx "$INET" ip link set eth0 up
  for a in $SERVER_IPS; do nsx "$INET" ip addr add "$a/32" dev lo; done
  nsx "$INET" ip route add 10.42.0.0/24 via 203.0.113.253

  nsx "$PHONE" ip link set wlan0 address 02:42:0a:2a:00:32
  nsx "$PHONE" ip link set wlan0 up
  mkdir -p "/etc/netns/$PHONE"
  echo "nameserver 10.42.0.1" > "/etc/netns/$PHONE/resolv.conf"

  certs
  printf '%s\n' "$HOSTS" > "$DIR/hosts"
  nsx "$LAPTOP" dnsmasq --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$DIR/hosts" \
    --interface=ap0 --bind-interfaces --except-interface=lo \
    --dhcp-range=10.42.0.10,10.42.0.99,255.255.255.0,1h --dhcp-option=option:router,10.42.0.1 \
    --dhcp-option=option:dns-server,10.42.0.1 --dhcp-leasefile="$DIR/dnsmasq-ap0.leases" \
    --cname=xtrapath3.izatcloud.net,xtrapath3.qcomgeo2.com \
    --cname=xtrapath3.qcomgeo2.com,xp3.gpsonextra.net \
    --cname=xp3.gpsonextra.net,d3nj9ptoklgw8o.cloudfront.net \
    --pid-file="$DIR/dnsmasq.pid" --log-facility="$DIR/dnsmasq.log"

  nsx "$INET" python3 "$HERE/sim/servers.py" "$DIR/server.pem" "$DIR/server.key" 192.0.2.40 > "$DIR/servers.log" 2>&1 &
  echo $! > "$DIR/servers.pid"

  # The phone asks for an address like a phone does, announcing its name.
  nsx "$PHONE" timeout 20 busybox udhcpc -i wlan0 -x "hostname:$PHONE_NAME" -s "$HERE/sim/phone-dhcp.sh" -q -n -t 5 -T 2 >/dev/null 2>&1
  for _ in $(seq 1 50); do
    grep -q "servers ready" "$DIR/servers.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "servers ready" "$DIR/servers.log" || { echo "hotspot-sim: servers did not start" >&2; cat "$DIR/servers.log" >&2; exit 1; }
  echo "hotspot-sim: up (phone $(nsx "$PHONE" ip -4 -o addr show wlan0 | awk '{print $4}'), state in $DIR)"
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
  nsx "$LAPTOP" ip addr add 10.42.0.1/24 dev ap0
  nsx "$LAPTOP" ip link set ap0 up
  nsx "$PHONE" ip link set wlan0 address 02:42:0a:2a:00:32
  nsx "$PHONE" ip link set wlan0 up
  nsx "$PHONE" ip addr add "$addr" dev wlan0
  nsx "$PHONE" ip route add default via 10.42.0.1
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
  status) ip netns list | grep "^ts${ID}-" || echo "hotspot-sim: down" ;;
  *) echo "usage: $0 up|traffic [ROUNDS]|relink [SECONDS]|direct|down|status" >&2; exit 64 ;;
esac
