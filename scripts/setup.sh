#!/usr/bin/env bash
# Installs what tetherscope needs on Debian/Ubuntu, skipping what is there.
# Safe to run again. Needs root (or sudo) only when something is missing.
#
#   setup.sh          build and run (and the demo)
#   setup.sh --test   also what the test suite runs against: Prometheus,
#                     promtool, Alertmanager and amtool; Chromium, Node.js and
#                     playwright-core (tests/browser) for the page's browser
#                     tests; pdftotext for the printed report
set -euo pipefail

packages=(
  libpcap-dev pkg-config gcc      # build: libpcap bindings, ring's C parts
  iproute2 dnsmasq-base dnsutils curl openssl busybox  # simulated hotspot and its clients
  python3 python3-cryptography    # benchmark capture generator
)
if [ "${1:-}" = "--test" ]; then
  packages+=(prometheus prometheus-alertmanager  # rules, dashboards and alert delivery tests
             time                                 # peak memory of the flood test
             chromium poppler-utils fonts-dejavu-core)  # browser tests of the page and report
  # Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's).
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  browser="$(dirname "$0")/../tests/browser"
  if [ ! -f "$browser/node_modules/playwright-core/package.json" ]; then
    echo "setup: installing playwright-core for the browser tests" >&2
    npm ci --prefix "$browser" --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install a Rust toolchain (https://rustup.rs) and run this again" >&2
  exit 1
fi
echo "setup: all dependencies present" >&2
