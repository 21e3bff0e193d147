# shellcheck shell=bash
# Sourced by the flow history benchmarks: a clickhouse-server (18.16) of
# their own on loopback ports, its config and data under "$work/ch", with
# deploy/clickhouse/flows.sql applied. Sets ch_pid and http, defines q (one
# query over HTTP). The caller sets work and bin, and stops the server by
# its PID (ch_pid).
# shellcheck disable=SC2154,SC2034

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

q() { curl -sS --fail-with-body "http://127.0.0.1:$http/?allow_experimental_low_cardinality_type=1" --data-binary "$1"; }

clickhouse_start() {
  [ -x /usr/sbin/clickhouse-server ] || { echo "bench: needs clickhouse-server (scripts/setup.sh --test)" >&2; exit 2; }
  local tcp
  http=$(free_port); tcp=$(free_port)
  mkdir -p "$work/ch"
  cat > "$work/ch/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$work/ch/server.log</log><errorlog>$work/ch/error.log</errorlog></logger>
  <http_port>$http</http_port><tcp_port>$tcp</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>$work/ch/data/</path><tmp_path>$work/ch/tmp/</tmp_path>
  <user_files_path>$work/ch/user_files/</user_files_path><format_schema_path>$work/ch/fs/</format_schema_path>
  <users_config>users.xml</users_config><default_profile>default</default_profile>
  <default_database>default</default_database><mark_cache_size>5368709</mark_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat > "$work/ch/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex><profiles><default></default></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default></default></quotas></yandex>
XML
  /usr/sbin/clickhouse-server --config-file="$work/ch/config.xml" >/dev/null 2>&1 &
  ch_pid=$!
  local up=""
  for _ in $(seq 1 300); do q "SELECT 1" >/dev/null 2>&1 && { up=1; break; }; sleep 0.1; done
  [ -n "$up" ] || { echo "bench: clickhouse-server did not start" >&2; exit 1; }
  # The schema, statement by statement (the HTTP interface takes one a request).
  python3 - deploy/clickhouse/flows.sql <<'PY' > "$work/ddl.txt"
import sys
cur = []
for line in open(sys.argv[1]):
    line = line.split("--")[0].rstrip()
    if line.strip():
        cur.append(line)
        if line.endswith(";"):
            s = " ".join(cur).rstrip(";"); cur = []
            if not s.startswith("SET "): print(s)
PY
  while read -r s; do q "$s" >/dev/null; done < "$work/ddl.txt"
}

# One `tetherscope replay` of $1 as fast as it reads, stopped by SIGTERM to
# its own PID once the file is read; the rest are its options. Prints
# "CPU_SECONDS FLOWS".
replay_once() {
  local cap=$1 err port pid cpu flows
  shift
  err=$(mktemp); cpu=$(mktemp)
  port=$(free_port)
  XDG_STATE_HOME="$work" /usr/bin/time -f "%U %S" -o "$cpu" "$bin" replay "$cap" --listen "127.0.0.1:$port" "$@" \
    2>"$err" >/dev/null &
  pid=$!
  for _ in $(seq 1 3000); do
    grep -q " read: " "$err" && break
    sleep 0.1
  done
  local child
  child=$(pgrep -P "$pid" -x tetherscope || true)
  [ -n "$child" ] || { echo "bench: no tetherscope under $pid" >&2; cat "$err" >&2; exit 1; }
  kill -TERM "$child"
  wait "$pid" || true
  flows=$(sed -n 's/.*stopped; [0-9]* packets, \([0-9]*\) flows.*/\1/p' "$err")
  awk -v f="$flows" '{printf "%.2f %s\n", $1 + $2, f}' "$cpu"
  rm -f "$err" "$cpu"
}
