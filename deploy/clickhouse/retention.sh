#!/bin/sh
# Drops the day partitions of tetherscope.flows older than DAYS (default 90):
# the retention for ClickHouse servers without TTL (18.16). Run daily, e.g.
# from cron: 15 3 * * * clickhouse retention.sh 90
# CLICKHOUSE_CLIENT may name another client command (host, user, password).
set -eu
days=${1:-90}
case $days in ''|*[!0-9]*) echo "usage: retention.sh [DAYS]" >&2; exit 64 ;; esac
client=${CLICKHOUSE_CLIENT:-clickhouse-client}
$client --query "SELECT DISTINCT partition FROM system.parts
    WHERE database = 'tetherscope' AND table = 'flows' AND active
      AND toDate(partition) < today() - $days FORMAT TSV" |
while read -r day; do
    case $day in *[!0-9-]*|'') continue ;; esac
    $client --query "ALTER TABLE tetherscope.flows DROP PARTITION '$day'"
    echo "dropped $day"
done
