//! One flow record's JSON line (docs/reading.md, "Flow records") turned into
//! one row of the ClickHouse table (deploy/clickhouse/flows.sql).
//!
//! The sink knows the record only by its documented keys: it never sees the
//! Rust type that wrote the line. Null becomes the column's empty value
//! (ClickHouse 18.16's JSONEachRow refuses null for a column that is not
//! Nullable), times become Unix seconds (the only DateTime text 18.16 reads
//! without a time zone) plus exact microseconds.

use serde::Deserialize;
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

/// The keys of a flow record the table keeps (a new column's key goes
/// here, and its line in [`Parsed::write`]).
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
    #[serde(borrow, default)]
    alpn: Option<Vec<Cow<'a, str>>>,
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
    #[serde(borrow, default)]
    cname_chain: Vec<Cow<'a, str>>,
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

/// One flow record, parsed once: what its row is made of. The strings are
/// borrowed from the line where it holds them unescaped.
pub struct Parsed<'a> {
    record: Record<'a>,
    first_us: u64,
    last_us: u64,
}

/// Parses one flow record's JSON line (without its newline).
pub fn parse(line: &[u8]) -> Result<Parsed<'_>, RowError> {
    let record: Record = serde_json::from_slice(line)?;
    let first_us = micros(&record.first_seen)?;
    let last_us = micros(&record.last_seen)?;
    Ok(Parsed {
        record,
        first_us,
        last_us,
    })
}

impl Parsed<'_> {
    /// What the sender needs to know of the row.
    pub fn info(&self) -> RowInfo {
        RowInfo {
            first_seen: self.first_us / 1_000_000,
        }
    }

    /// Appends the row (one JSONEachRow object and its newline) to `out`,
    /// for `sensor`'s batch `batch_id`.
    ///
    /// The columns of deploy/clickhouse/flows.sql, one line each. Null,
    /// empty and zero values are left out (the server fills a missing
    /// column with its type's empty value), which makes the rows about half
    /// as long to write, compress and send. A new column is one field of
    /// [`Record`] and one line here, named as in the table.
    pub fn write(&self, out: &mut Vec<u8>, sensor: &str, batch_id: &str) {
        let r = &self.record;
        let mut w = RowWriter::start(out);
        w.text("sensor", sensor);
        w.text("batch_id", batch_id);
        w.uint("first_seen", self.first_us / 1_000_000);
        w.uint("last_seen", self.last_us / 1_000_000);
        w.uint("first_seen_us", self.first_us);
        w.uint("last_seen_us", self.last_us);
        // The device is its MAC; a flow seen without one (a routed or
        // relayed capture) is named by its address.
        w.text("device", r.client_mac.as_deref().unwrap_or(&r.client_ip));
        w.text("client_mac", t(&r.client_mac));
        w.text("client_ip", &r.client_ip);
        w.uint("client_port", r.client_port.unwrap_or(0).into());
        w.text("server_ip", &r.server_ip);
        w.uint("server_port", r.server_port.unwrap_or(0).into());
        w.text("transport", &r.transport);
        w.text("app_protocol", t(&r.app_protocol));
        w.text("domain", t(&r.domain));
        w.text("name_source", t(&r.name_source));
        w.text("sni", t(&r.sni));
        w.texts("alpn", r.alpn.as_deref().unwrap_or(&[]));
        w.text("ech", t(&r.ech));
        w.text("quic_version", t(&r.quic_version));
        w.text("http_host", t(&r.http_host));
        w.text("http_method", t(&r.http_method));
        w.text("http_path", t(&r.http_path));
        w.text("dns_query", t(&r.dns_query));
        w.texts("cname_chain", &r.cname_chain);
        w.uint("cleartext", r.cleartext.unwrap_or(false).into());
        w.uint("cleartext_known", r.cleartext_known.unwrap_or(false).into());
        w.uint("truncated_packets", r.truncated_packets.into());
        w.text("novelty", t(&r.novelty));
        w.text("purpose", t(&r.purpose));
        w.text("owner", t(&r.owner));
        w.text("rule", t(&r.rule));
        w.text("verdict", t(&r.verdict));
        w.text("site", t(&r.site));
        w.uint("packets_up", r.packets_up);
        w.uint("packets_down", r.packets_down);
        w.uint("bytes_up", r.bytes_up);
        w.uint("bytes_down", r.bytes_down);
        w.text("tcp_state", t(&r.tcp_state));
        w.uint("asn", r.asn.unwrap_or(0).into());
        w.text("as_org", t(&r.as_org));
        w.text("country", t(&r.country));
        w.end();
    }
}

/// Appends `line` (one flow record) to `out` as one JSONEachRow row of
/// `sensor`'s batch `batch_id`, newline included: [`parse`] then
/// [`Parsed::write`].
pub fn append_row(
    out: &mut Vec<u8>,
    line: &[u8],
    sensor: &str,
    batch_id: &str,
) -> Result<RowInfo, RowError> {
    let parsed = parse(line)?;
    parsed.write(out, sensor, batch_id);
    Ok(parsed.info())
}

/// A text value, empty when null.
fn t<'v>(v: &'v Text<'_>) -> &'v str {
    v.as_deref().unwrap_or("")
}

/// Writes one JSON object, key by key, straight into the batch: no
/// intermediate value, each string escaped once.
struct RowWriter<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> RowWriter<'o> {
    fn start(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        RowWriter { out, empty: true }
    }

    fn key(&mut self, name: &str) {
        if !std::mem::replace(&mut self.empty, false) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string column; left out when empty.
    fn text(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.key(name);
            json_string(self.out, value);
        }
    }

    /// An integer column; left out when zero.
    fn uint(&mut self, name: &str, value: u64) {
        if value != 0 {
            self.key(name);
            let mut digits = [0u8; 20];
            let mut i = digits.len();
            let mut v = value;
            while v > 0 {
                i -= 1;
                digits[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
            self.out.extend_from_slice(&digits[i..]);
        }
    }

    /// An `Array(String)` column; left out when empty.
    fn texts<S: AsRef<str>>(&mut self, name: &str, values: &[S]) {
        if !values.is_empty() {
            self.key(name);
            self.out.push(b'[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                json_string(self.out, v.as_ref());
            }
            self.out.push(b']');
        }
    }

    fn end(self) {
        self.out.extend_from_slice(b"}\n");
    }
}

/// Appends `s` as a JSON string (RFC 8259, section 7): the quote, the
/// backslash and the control characters escaped, everything else as it is
/// (the input is UTF-8 already). Runs without an escape are copied whole.
fn json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut run = 0;
    for (i, &c) in b.iter().enumerate() {
        let escape: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[],
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
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

    /// Hostile names from the wire come back out of the row exactly as
    /// they went in: the escaping is JSON's, whatever the bytes.
    #[test]
    fn strings_are_escaped_so_the_row_reads_back_as_the_record() {
        let hostile = [
            "plain.example",
            "quote\"d",
            "back\\slash\\",
            "new\nline\r\ttab",
            "\u{0}nul\u{1}\u{1f}\u{7f}",
            "ümlaut-日本.example",
            "\\u0041 not an escape",
            "",
        ];
        for name in hostile {
            let record = serde_json::json!({
                "transport": "tcp", "client_ip": "10.42.0.50", "server_ip": "192.0.2.1",
                "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z",
                "domain": name, "http_path": name, "cname_chain": [name, "x"],
                "alpn": [name],
            });
            let line = serde_json::to_vec(&record).unwrap();
            let mut out = b"before\n".to_vec();
            append_row(
                &mut out,
                &line,
                name.chars().next().map_or("s", |_| name),
                "b",
            )
            .unwrap();
            assert!(out.starts_with(b"before\n"), "appended, not overwritten");
            let row = &out[7..];
            assert_eq!(
                row.iter().filter(|&&c| c == b'\n').count(),
                1,
                "one line: {row:?}"
            );
            let v: serde_json::Value = serde_json::from_slice(row).unwrap();
            if name.is_empty() {
                assert!(v.get("domain").is_none());
            } else {
                assert_eq!(v["domain"], name);
                assert_eq!(v["http_path"], name);
                assert_eq!(v["sensor"], name);
                assert_eq!(v["alpn"], serde_json::json!([name]));
            }
            assert_eq!(v["cname_chain"], serde_json::json!([name, "x"]));
        }
    }

    #[test]
    fn every_count_is_written_in_full() {
        let line = br#"{"transport":"tcp","client_ip":"10.42.0.50","client_port":65535,"server_ip":"192.0.2.1","server_port":443,"first_seen":"2026-01-02T03:04:05.5Z","last_seen":"2026-01-02T03:04:06Z","packets_up":18446744073709551615,"bytes_up":1000000,"bytes_down":9,"truncated_packets":4294967295,"cleartext":false,"cleartext_known":true}"#;
        let mut out = Vec::new();
        append_row(&mut out, line, "s", "b").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["packets_up"], u64::MAX);
        assert!(v.get("packets_down").is_none());
        assert_eq!(v["bytes_up"], 1_000_000);
        assert_eq!(v["bytes_down"], 9);
        assert_eq!(v["client_port"], 65535);
        assert_eq!(v["truncated_packets"], u32::MAX);
        assert!(v.get("cleartext").is_none());
        assert_eq!(v["cleartext_known"], 1);
        assert_eq!(v["first_seen_us"], 1_767_323_045_500_000u64);
        assert_eq!(v["last_seen"], 1_767_323_046u64);
    }
}
