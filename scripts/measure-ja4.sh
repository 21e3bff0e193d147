#!/usr/bin/env bash
# Measures the JA4 fingerprint of each TLS client installed here and writes
# the label table (crates/classify/data/ja4.toml by default).
#
#   sudo scripts/measure-ja4.sh [OUTPUT]
#
# Each client fetches https://ja4.example:4433/ from an openssl s_server on
# 127.0.0.1 inside a network namespace this script creates (tsja4-PID; the
# name resolves through the namespace's own hosts file), while tcpdump
# records the namespace's loopback; `tetherscope read` then fingerprints the
# capture. Nothing leaves the namespace. Every client run is bounded by a
# timeout, and the namespace, its hosts file and the processes started here
# are removed on exit. A client that is not installed is left out.
#
# Needs root, iproute2, openssl, tcpdump and a release build of tetherscope
# (TETHERSCOPE_BIN overrides where it is).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${TETHERSCOPE_BIN:-$root/target/release/tetherscope}"
out="${1:-$root/crates/classify/data/ja4.toml}"
ns="tsja4-$$"
port=4433
url="https://ja4.example:$port/"
work="$(mktemp -d)"
server=""

cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT

for tool in ip openssl tcpdump timeout; do
  command -v "$tool" >/dev/null || { echo "measure-ja4: $tool is missing" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "measure-ja4: no tetherscope at $bin (cargo build --release)" >&2; exit 1; }

ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "/etc/netns/$ns"
echo "127.0.0.1 ja4.example" >"/etc/netns/$ns/hosts"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=ja4.example -addext subjectAltName=DNS:ja4.example \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
ip netns exec "$ns" openssl s_server -quiet -www -accept "127.0.0.1:$port" \
  -cert "$work/cert.pem" -key "$work/key.pem" >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do
  ip netns exec "$ns" bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
  sleep 0.1
done

# measure NAME VERSION COMMAND...: the first fingerprint of a connection to
# the server while COMMAND runs, appended to the table.
rows="$work/rows"
: >"$rows"
measure() {
  # The capture misses a client's connection now and then (seen on a busy
  # machine): up to three tries.
  for _ in 1 2 3; do
    measure_once "$@" && return
  done
  echo "measure-ja4: $1: no ClientHello captured" >&2
}
measure_once() {
  local name="$1" version="$2"
  shift 2
  local pcap="$work/$name.pcap"
  # Started directly (not through a function) so that $! is tcpdump itself:
  # `ip netns exec` runs it in place.
  ip netns exec "$ns" tcpdump -i lo -U -s 0 -w "$pcap" "tcp port $port" \
    >/dev/null 2>&1 &
  local dump=$!
  # The file appears before the capture is attached: knock (a plain TCP
  # connection, no ClientHello) until the capture shows packets.
  for _ in $(seq 100); do
    ip netns exec "$ns" bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null || true
    [ "$(stat -c %s "$pcap" 2>/dev/null || echo 0)" -gt 24 ] && break
    sleep 0.2
  done
  timeout 30 ip netns exec "$ns" "$@" >/dev/null 2>&1 || true
  sleep 0.5
  kill "$dump" 2>/dev/null || true
  wait "$dump" 2>/dev/null || true
  local ja4
  ja4="$("$bin" read --format jsonl --quiet "$pcap" 2>/dev/null |
    grep "\"server_port\":$port," | grep -o '"ja4":"[^"]*"' | head -1 | cut -d'"' -f4 || true)"
  [ -n "$ja4" ] || return 1
  echo "measure-ja4: $name $version: $ja4" >&2
  printf '\n[[client]]\nja4 = "%s"\nprogram = "%s"\nversion = "%s"\n' \
    "$ja4" "$name" "$version" >>"$rows"
}

# One throwaway measurement first: the first client measured after the
# server starts was seen to leave no ClientHello in its capture.
measure_once warm-up - sh -c "openssl s_client -connect 127.0.0.1:$port </dev/null" || true
: >"$rows"

if command -v curl >/dev/null; then
  measure curl "$(curl --version | head -1 | cut -d' ' -f2)" curl -sk --max-time 10 "$url"
fi
if command -v wget >/dev/null; then
  measure wget "$(wget --version | head -1 | cut -d' ' -f3)" \
    wget -q --no-check-certificate --timeout=10 --tries=1 -O /dev/null "$url"
fi
if [ -x /usr/bin/python3 ]; then
  measure "python3 urllib" "$(/usr/bin/python3 -c 'import platform; print(platform.python_version())')" \
    /usr/bin/python3 -c "import ssl, urllib.request
urllib.request.urlopen('$url', context=ssl._create_unverified_context(), timeout=10).read()"
fi
measure "openssl s_client" "$(openssl version | cut -d' ' -f2)" \
  sh -c "openssl s_client -connect ja4.example:$port -servername ja4.example </dev/null"
if command -v chromium >/dev/null; then
  measure chromium "$(chromium --version | cut -d' ' -f2)" \
    chromium --headless --no-sandbox --disable-gpu --ignore-certificate-errors \
    --user-data-dir="$work/chromium" --dump-dom "$url"
fi
if command -v javac >/dev/null && command -v java >/dev/null; then
  cat >"$work/Get.java" <<'EOF'
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class Get {
    public static void main(String[] args) throws Exception {
        TrustManager any = new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] c, String a) {}
            public void checkServerTrusted(X509Certificate[] c, String a) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        };
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] { any }, null);
        HttpClient client = HttpClient.newBuilder().sslContext(ctx).build();
        client.send(HttpRequest.newBuilder(URI.create(args[0])).build(),
                HttpResponse.BodyHandlers.discarding());
    }
}
EOF
  measure "OpenJDK HttpClient" "$(java -version 2>&1 | head -1 | cut -d'"' -f2)" \
    java -Djdk.internal.httpclient.disableHostnameVerification=true "$work/Get.java" "$url"
fi
if command -v go >/dev/null; then
  mkdir -p "$work/goget"
  cat >"$work/goget/main.go" <<'EOF'
package main

import (
	"crypto/tls"
	"net/http"
	"os"
)

func main() {
	t := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	resp, err := (&http.Client{Transport: t}).Get(os.Args[1])
	if err == nil {
		resp.Body.Close()
	}
}
EOF
  measure "Go net/http" "$(go version | cut -d' ' -f3)" go run "$work/goget/main.go" "$url"
fi

# shellcheck source=/dev/null
system="$(. /etc/os-release && echo "$PRETTY_NAME")"
{
  echo "# JA4 fingerprints of TLS clients, measured by scripts/measure-ja4.sh"
  echo "# on $system: each client fetched $url from a loopback"
  echo "# server inside a network namespace, and tetherscope read the capture."
  echo "# Generated: regenerate with the script rather than editing by hand."
  echo "measured_on = \"$system\""
  cat "$rows"
} >"$out"
echo "measure-ja4: wrote $(grep -c '^\[\[client\]\]' "$out") fingerprints to $out" >&2
