-- tetherscope flow history: one row per finished flow of every sensor.
-- For ClickHouse 18.16 and later (docs/flow-history.md). Run with
--   clickhouse-client --multiquery < flows.sql
-- Statements are separated by ";" at a line's end; tetherscope's tests run
-- them one by one over HTTP with allow_experimental_low_cardinality_type=1.
SET allow_experimental_low_cardinality_type = 1;

CREATE DATABASE IF NOT EXISTS tetherscope;

-- Partitioned by UTC day, so retention drops whole days (retention.sh on
-- 18.16; TTL on 19.6 and later: see docs/flow-history.md).
-- Ordered by sensor, device, time: "what did this device do" reads one
-- contiguous range. Questions by domain scan the day partitions they name;
-- servers of 19.x and later add a token Bloom filter index on domain
-- (docs/flow-history.md, "Newer servers").
CREATE TABLE IF NOT EXISTS tetherscope.flows
(
    sensor LowCardinality(String),
    batch_id String,
    first_seen DateTime('UTC'),
    last_seen DateTime('UTC'),
    first_seen_us UInt64,
    last_seen_us UInt64,
    device String,
    client_mac String,
    client_ip String,
    client_port UInt16,
    server_ip String,
    server_port UInt16,
    transport LowCardinality(String),
    app_protocol LowCardinality(String),
    domain String,
    name_source LowCardinality(String),
    sni String,
    alpn Array(String),
    ech LowCardinality(String),
    quic_version LowCardinality(String),
    http_host String,
    http_method LowCardinality(String),
    http_path String,
    dns_query String,
    cname_chain Array(String),
    cleartext UInt8,
    cleartext_known UInt8,
    truncated_packets UInt32,
    novelty LowCardinality(String),
    purpose LowCardinality(String),
    owner LowCardinality(String),
    rule LowCardinality(String),
    verdict LowCardinality(String),
    site String,
    packets_up UInt64,
    packets_down UInt64,
    bytes_up UInt64,
    bytes_down UInt64,
    tcp_state LowCardinality(String),
    asn UInt32,
    as_org LowCardinality(String),
    country LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toDate(first_seen)
ORDER BY (sensor, device, first_seen);
