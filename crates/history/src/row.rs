//! One flow record's JSON line (docs/reading.md, "Flow records") turned into
//! one row of the ClickHouse table (deploy/clickhouse/flows.sql).
//!
//! The sink knows the record only by its documented keys: it never sees the
//! Rust type that wrote the line. Null becomes the column's empty value
//! (ClickHouse 18.16's JSONEachRow refuses null for a column that is not
//! Nullable), times become Unix seconds (the only DateTime text 18.16 reads
//! without a time zone) plus exact microseconds.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Why a line could not become a row.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// Not a flow record.
    #[error("not a flow record: {0}")]
    Json(#[from] serde_json::Error),
    /// A time that is not RFC 3339 UTC.
    #[error("bad time {0:?}")]
    Time(String),
}

type Text<'a> = Option<Cow<'a, str>>;

/// The keys of a flow record the table keeps.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    transport: Cow<'a, str>,
    #[serde(borrow)]
    client_ip: Cow<'a, str>,
    client_port: Option<u16>,
    #[serde(borrow)]
    server_ip: Cow<'a, str>,
    server_port: Option<u16>,
    #[serde(borrow, default)]
    client_mac: Text<'a>,
    #[serde(borrow)]
    first_seen: Cow<'a, str>,
    #[serde(borrow)]
    last_seen: Cow<'a, str>,
    #[serde(default)]
    packets_up: u64,
    #[serde(default)]
    packets_down: u64,
    #[serde(default)]
    bytes_up: u64,
    #[serde(default)]
    bytes_down: u64,
    #[serde(borrow, default)]
    tcp_state: Text<'a>,
    #[serde(borrow, default)]
    app_protocol: Text<'a>,
    #[serde(borrow, default)]
    domain: Text<'a>,
    #[serde(borrow, default)]
    name_source: Text<'a>,
    #[serde(borrow, default)]
    sni: Text<'a>,
    #[serde(default)]
    alpn: Option<Vec<String>>,
    #[serde(borrow, default)]
    ech: Text<'a>,
    #[serde(borrow, default)]
    quic_version: Text<'a>,
    #[serde(borrow, default)]
    http_host: Text<'a>,
    #[serde(borrow, default)]
    http_method: Text<'a>,
    #[serde(borrow, default)]
    http_path: Text<'a>,
    #[serde(borrow, default)]
    dns_query: Text<'a>,
    #[serde(default)]
    cname_chain: Vec<String>,
    #[serde(default)]
    cleartext: Option<bool>,
    #[serde(default)]
    truncated_packets: u32,
    #[serde(borrow, default)]
    novelty: Text<'a>,
    #[serde(borrow, default)]
    purpose: Text<'a>,
    #[serde(borrow, default)]
    owner: Text<'a>,
    #[serde(borrow, default)]
    rule: Text<'a>,
    #[serde(borrow, default)]
    verdict: Text<'a>,
    #[serde(borrow, default)]
    site: Text<'a>,
    #[serde(default)]
    cleartext_known: Option<bool>,
    #[serde(default)]
    asn: Option<u32>,
    #[serde(borrow, default)]
    as_org: Text<'a>,
    #[serde(borrow, default)]
    country: Text<'a>,
}

/// One row as ClickHouse's JSONEachRow reads it: the columns of
/// deploy/clickhouse/flows.sql, none null. Empty and zero values are left
/// out (the server fills a missing column with its type's empty value), which
/// makes the rows about half as long to write, compress and send.
#[derive(Serialize)]
struct Row<'a> {
    sensor: &'a str,
    batch_id: &'a str,
    first_seen: u64,
    last_seen: u64,
    first_seen_us: u64,
    last_seen_us: u64,
    device: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    client_mac: &'a str,
    client_ip: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    client_port: u16,
    server_ip: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    server_port: u16,
    transport: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    app_protocol: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name_source: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    sni: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    alpn: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    ech: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    quic_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    http_host: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    http_method: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    http_path: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    dns_query: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    cname_chain: &'a [String],
    #[serde(skip_serializing_if = "is_zero")]
    cleartext: u8,
    #[serde(skip_serializing_if = "is_zero")]
    cleartext_known: u8,
    #[serde(skip_serializing_if = "is_zero")]
    truncated_packets: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    novelty: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    purpose: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    owner: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    rule: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    verdict: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    site: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    packets_up: u64,
    #[serde(skip_serializing_if = "is_zero")]
    packets_down: u64,
    #[serde(skip_serializing_if = "is_zero")]
    bytes_up: u64,
    #[serde(skip_serializing_if = "is_zero")]
    bytes_down: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    tcp_state: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    asn: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    as_org: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    country: &'a str,
}

/// Whether a count is zero (a column left out of the row).
fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// What the sender needs to know of a row besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowInfo {
    /// `first_seen`, Unix seconds: the row's partition is its UTC day.
    pub first_seen: u64,
}

/// Days since 1970-01-01 of a Unix time: the table's partition.
pub fn day(unix_secs: u64) -> u64 {
    unix_secs / 86_400
}

/// Appends `line` (one flow record) to `out` as one JSONEachRow row of
/// `sensor`'s batch `batch_id`, newline included.
pub fn append_row(
    out: &mut Vec<u8>,
    line: &[u8],
    sensor: &str,
    batch_id: &str,
) -> Result<RowInfo, RowError> {
    let r: Record = serde_json::from_slice(line)?;
    let first_us = micros(&r.first_seen)?;
    let last_us = micros(&r.last_seen)?;
    let t = |v: &Text<'_>| -> String { v.as_deref().unwrap_or("").to_owned() };
    let (mac, domain, sni) = (t(&r.client_mac), t(&r.domain), t(&r.sni));
    let row = Row {
        sensor,
        batch_id,
        first_seen: first_us / 1_000_000,
        last_seen: last_us / 1_000_000,
        first_seen_us: first_us,
        last_seen_us: last_us,
        // The device is its MAC; a flow seen without one (a routed or
        // relayed capture) is named by its address.
        device: if mac.is_empty() { &r.client_ip } else { &mac },
        client_mac: &mac,
        client_ip: &r.client_ip,
        client_port: r.client_port.unwrap_or(0),
        server_ip: &r.server_ip,
        server_port: r.server_port.unwrap_or(0),
        transport: &r.transport,
        app_protocol: r.app_protocol.as_deref().unwrap_or(""),
        domain: &domain,
        name_source: r.name_source.as_deref().unwrap_or(""),
        sni: &sni,
        alpn: r.alpn.as_deref().unwrap_or(&[]),
        ech: r.ech.as_deref().unwrap_or(""),
        quic_version: r.quic_version.as_deref().unwrap_or(""),
        http_host: r.http_host.as_deref().unwrap_or(""),
        http_method: r.http_method.as_deref().unwrap_or(""),
        http_path: r.http_path.as_deref().unwrap_or(""),
        dns_query: r.dns_query.as_deref().unwrap_or(""),
        cname_chain: &r.cname_chain,
        cleartext: u8::from(r.cleartext.unwrap_or(false)),
        cleartext_known: u8::from(r.cleartext_known.unwrap_or(false)),
        truncated_packets: r.truncated_packets,
        novelty: r.novelty.as_deref().unwrap_or(""),
        purpose: r.purpose.as_deref().unwrap_or(""),
        owner: r.owner.as_deref().unwrap_or(""),
        rule: r.rule.as_deref().unwrap_or(""),
        verdict: r.verdict.as_deref().unwrap_or(""),
        site: r.site.as_deref().unwrap_or(""),
        packets_up: r.packets_up,
        packets_down: r.packets_down,
        bytes_up: r.bytes_up,
        bytes_down: r.bytes_down,
        tcp_state: r.tcp_state.as_deref().unwrap_or(""),
        asn: r.asn.unwrap_or(0),
        as_org: r.as_org.as_deref().unwrap_or(""),
        country: r.country.as_deref().unwrap_or(""),
    };
    serde_json::to_writer(&mut *out, &row)?;
    out.push(b'\n');
    Ok(RowInfo {
        first_seen: first_us / 1_000_000,
    })
}

/// Unix microseconds of the record's time format, `YYYY-MM-DDThh:mm:ss.ffffffZ`
/// (fewer fraction digits allowed).
pub fn micros(s: &str) -> Result<u64, RowError> {
    let bad = || RowError::Time(s.chars().take(40).collect());
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(bad());
    }
    if b[16] != b':' || *b.last().unwrap_or(&0) != b'Z' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u64, RowError> {
        s.get(r)
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut us = 0;
    if b.len() > 20 {
        if b[19] != b'.' || b.len() > 27 {
            return Err(bad());
        }
        let frac = num(20..b.len() - 1)?;
        us = frac * 10u64.pow(6 - (b.len() - 21) as u32);
    } else if b[19] != b'Z' {
        return Err(bad());
    }
    let days = days_from_civil(y, mo, d);
    Ok(((days * 86_400) + h * 3600 + mi * 60 + sec) * 1_000_000 + us)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the civil-from-days
/// inverse given in H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_exact_microseconds() {
        assert_eq!(
            micros("2023-11-14T22:13:20.123456Z").unwrap(),
            1_700_000_000_123_456
        );
        assert_eq!(micros("1970-01-01T00:00:00.000000Z").unwrap(), 0);
        assert_eq!(micros("2000-03-01T00:00:00Z").unwrap(), 951_868_800_000_000);
        assert_eq!(
            micros("2024-02-29T12:00:00.5Z").unwrap(),
            1_709_208_000_500_000
        );
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-13-01T00:00:00Z",
            "x023-11-14T22:13:20.1Z",
            "2023-11-14T22:13:20.1234567Z",
            "2023-11-14T22:13:20.12+01:00",
            "é023-11-14T22:13:20Z",
        ] {
            assert!(micros(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nulls_become_empty_values_and_the_device_is_the_mac_or_the_address() {
        let line = br#"{"transport":"udp","client_ip":"10.42.0.50","client_port":1234,"server_ip":"192.0.2.1","server_port":53,"client_mac":null,"first_seen":"2026-01-02T03:04:05.000006Z","last_seen":"2026-01-02T03:04:06.000000Z","packets_up":1,"packets_down":1,"bytes_up":70,"bytes_down":90,"tcp_state":null,"app_protocol":"dns","domain":"example.com","name_source":"dns","sni":null,"alpn":null,"ech":null,"quic_version":null,"http_host":null,"http_method":null,"http_path":null,"dns_query":"example.com","cname_chain":[],"cleartext":true,"truncated_packets":0,"novelty":null,"purpose":"dns","owner":null,"rule":null,"verdict":"expected","site":"example.com","cleartext_known":null}"#;
        let mut out = Vec::new();
        let info = append_row(&mut out, line, "laptop-1", "b1").unwrap();
        assert_eq!(info.first_seen, 1_767_323_045);
        assert_eq!(day(info.first_seen), 20_455);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["sensor"], "laptop-1");
        assert_eq!(v["batch_id"], "b1");
        assert_eq!(v["device"], "10.42.0.50");
        assert_eq!(v["first_seen_us"], 1_767_323_045_000_006u64);
        assert!(v.get("tcp_state").is_none(), "empty columns are left out");
        assert!(v.get("alpn").is_none());
        assert!(v.get("client_mac").is_none());
        assert_eq!(v["client_port"], 1234);
        assert_eq!(v["cleartext"], 1);
        assert!(v.as_object().unwrap().values().all(|x| !x.is_null()));
        let with_mac = String::from_utf8_lossy(line).replace(
            "\"client_mac\":null",
            "\"client_mac\":\"02:00:00:00:00:01\"",
        );
        out.clear();
        append_row(&mut out, with_mac.as_bytes(), "s", "b").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["device"], "02:00:00:00:00:01");
        assert!(append_row(&mut out, b"{\"n\":1}", "s", "b").is_err());
        assert!(append_row(&mut out, b"\xff", "s", "b").is_err());
    }
}
