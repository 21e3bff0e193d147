#!/usr/bin/env bash
# Installs what tetherscope needs on Debian/Ubuntu, skipping what is there.
# Safe to run again. Needs root (or sudo) only when something is missing.
#
#   setup.sh          build and run (and the demo), and the offline IP to
#                     network and country tables (ip-location-db, CC BY 4.0;
#                     see docs/catalog.md) under /usr/local/share/tetherscope
#   setup.sh --test   also what the test suite runs against: Prometheus,
#                     promtool, Alertmanager and amtool, NetworkManager (run
#                     only inside the test namespaces: never started on the
#                     host by this script), shellcheck and cargo-deb; Chromium,
#                     Node.js and playwright-core (tests/browser) for the page's
#                     browser tests; pdftotext for the printed report;
#                     clickhouse-server (started only by the flow history
#                     tests, on loopback or in their namespaces); the ja4plus
#                     Python package (the JA4 oracle test), in a venv
set -euo pipefail

packages=(
  libpcap-dev pkg-config gcc      # build: libpcap bindings, ring's C parts
  iproute2 dnsmasq-base dnsutils curl openssl busybox  # simulated hotspot and its clients
  python3 python3-cryptography    # benchmark capture generator
  sqlite3                         # looking into the state store
  webext-ublock-origin-firefox    # EasyPrivacy and EasyList, loaded by default (read in place)
  ieee-data                       # IEEE MAC block registry: device vendors (read at run time)
)
# npm installs the IP to network tables below. Node.js may come from
# elsewhere than Debian (its npm then conflicts with Debian's).
command -v npm >/dev/null 2>&1 || packages+=(npm)
if [ "${1:-}" = "--test" ]; then
  packages+=(prometheus prometheus-alertmanager  # rules, dashboards and alert delivery tests
             time                                 # peak memory of the flood test
             python3-venv                         # the JA4 oracle's environment
             network-manager dbus                 # the simulated hotspot's NetworkManager
             shellcheck                           # the package's maintainer scripts
             clickhouse-server clickhouse-client  # flow history tests (a server per test, started by it)
             chromium poppler-utils fonts-dejavu-core)  # browser tests of the page and report
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # NetworkManager is installed for the tests, which run it in namespaces of
  # their own; it must not start on (and take over) this machine's network.
  # Debian 12's package has no init script but its udev dependency does, so
  # a deny-all policy-rc.d covers the install, and systemd gets the unit
  # masked when the package was not here before.
  guard=""
  if [[ " ${missing[*]} " == *" network-manager "* ]]; then
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
      $sudo chmod 755 /usr/sbin/policy-rc.d
      guard=/usr/sbin/policy-rc.d
    fi
    if [ -d /run/systemd/system ]; then
      $sudo systemctl mask NetworkManager.service NetworkManager-wait-online.service >/dev/null 2>&1 || true
    fi
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || $sudo rm -f "$guard"
fi

# The offline IP to AS/organisation and country tables, a dated snapshot
# pinned here (the version's last part is its date and hour: 2026-06-17).
# tetherscope finds them in this directory (or /usr/share/..., or
# $TETHERSCOPE_NETWORK_DB_DIR); to update, change the versions and run again.
netdb_dir=/usr/local/share/tetherscope/ip-location-db
netdb_packages=(@ip-location-db/asn@2.3.2026061719
                @ip-location-db/geo-whois-asn-country-mmdb@2.3.2026061719)
netdb_missing=()
for p in "${netdb_packages[@]}"; do
  grep -q "\"version\": *\"${p##*@}\"" "$netdb_dir/node_modules/${p%@*}/package.json" 2>/dev/null ||
    netdb_missing+=("$p")
done
if ((${#netdb_missing[@]})); then
  echo "setup: installing ${netdb_missing[*]} into $netdb_dir" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo mkdir -p "$netdb_dir"
  $sudo npm install --prefix "$netdb_dir" --no-audit --no-fund --loglevel=error "${netdb_packages[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  browser="$(dirname "$0")/../tests/browser"
  if [ ! -f "$browser/node_modules/playwright-core/package.json" ]; then
    echo "setup: installing playwright-core for the browser tests" >&2
    npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi

# The independent JA4 implementation the oracle test compares against
# (tests/ja4_oracle.rs), pinned with its dependencies, in an environment of
# its own so the system Python is left alone.
if [ "${1:-}" = "--test" ]; then
  oracle=/usr/local/lib/tetherscope-test/ja4-oracle
  if ! "$oracle/bin/python" -c 'import ja4plus, scapy' 2>/dev/null ||
     ! "$oracle/bin/pip" freeze 2>/dev/null | grep -qx 'ja4plus==1.4.0'; then
    echo "setup: installing ja4plus 1.4.0 into $oracle" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo python3 -m venv "$oracle"
    $sudo "$oracle/bin/pip" install --quiet --disable-pip-version-check \
      ja4plus==1.4.0 scapy==2.8.0 cryptography==51.0.1 cffi==2.1.1 pycparser==3.12
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install a Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 1
fi
# The package build of the test suite (cargo deb --strip); about a minute to
# build on two cores.
if [ "${1:-}" = "--test" ] && ! cargo deb --version >/dev/null 2>&1; then
  echo "setup: installing cargo-deb" >&2
  cargo install --locked --version 3.8.0 cargo-deb
fi
echo "setup: all dependencies present" >&2
