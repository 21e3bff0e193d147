//! Conformance with the nDPI regression corpus: for every DNS/TLS/QUIC/HTTP
//! row nDPI names, tetherscope must name the flow with the same endpoints the
//! same way (issue: offline pipeline, "Conformance").
//!
//! The corpus lives outside the repository (`../shared/corpus/ndpi`, or
//! `TETHERSCOPE_NDPI_CORPUS`). Without it the test says so loudly, and fails
//! under `CI=true`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::common;

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TETHERSCOPE_NDPI_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ndpi"));
    dir.join("expected.jsonl").is_file().then_some(dir)
}

/// nDPI keeps the last 79 bytes of a name.
fn last79(s: &str) -> String {
    let b = s.as_bytes();
    String::from_utf8_lossy(&b[b.len().saturating_sub(79)..]).into_owned()
}

/// nDPI's rewrite of DNS names: bytes outside [A-Za-z0-9_-.] become `_` when
/// printable and `?` otherwise.
fn ndpi_dns_rewrite(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => b as char,
            0x20..=0x7e => '_',
            _ => '?',
        })
        .collect()
}

fn norm(s: &str) -> String {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    last79(&s)
}

type Endpoint = (IpAddr, u16);

fn endpoint(ip: &serde_json::Value, port: &serde_json::Value) -> Option<Endpoint> {
    Some((
        ip.as_str()?.parse().ok()?,
        u16::try_from(port.as_u64()?).ok()?,
    ))
}

#[test]
fn ndpi_corpus_names() {
    let Some(dir) = corpus_dir() else {
        let msg = "nDPI conformance corpus NOT FOUND (set TETHERSCOPE_NDPI_CORPUS); conformance NOT CHECKED";
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        return;
    };
    let expected = std::fs::read_to_string(dir.join("expected.jsonl")).unwrap();
    let mut rows_by_pcap: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    for line in expected.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        rows_by_pcap
            .entry(row["pcap"].as_str().unwrap().to_owned())
            .or_default()
            .push(row);
    }
    let mut pcaps: Vec<_> = std::fs::read_dir(dir.join("pcap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pcaps.sort();
    let (mut scored, mut matched) = (0usize, 0usize);
    let mut misses = Vec::new();
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        let out = common::read_jsonl(pcap, &["--quiet"]);
        assert!(
            out.status.success(),
            "{name}: exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let flows = common::records(&out.stdout);
        if name == "fuzz-2006-06-26-2594.pcap" {
            continue; // robustness only: it must not crash (checked above)
        }
        // Index our flows by (transport, unordered endpoints).
        let mut ours: HashMap<(String, Endpoint, Endpoint), Vec<&serde_json::Value>> =
            HashMap::new();
        for f in &flows {
            let (Some(c), Some(s)) = (
                endpoint(&f["client_ip"], &f["client_port"]),
                endpoint(&f["server_ip"], &f["server_port"]),
            ) else {
                continue;
            };
            let (a, b) = if c <= s { (c, s) } else { (s, c) };
            ours.entry((f["transport"].as_str().unwrap().to_owned(), a, b))
                .or_default()
                .push(f);
        }
        for row in rows_by_pcap.get(&name).into_iter().flatten() {
            let kind = row["hostname_kind"].as_str().unwrap();
            let field = match kind {
                "tls" | "quic" => "sni",
                "http" => "http_host",
                "dns" => "dns_query",
                _ => continue,
            };
            scored += 1;
            let want = row["hostname"].as_str().unwrap().to_owned();
            let (Some(c), Some(s)) = (
                endpoint(&row["src_ip"], &row["src_port"]),
                endpoint(&row["dst_ip"], &row["dst_port"]),
            ) else {
                misses.push(format!("{name}: unparseable endpoints in {row}"));
                continue;
            };
            let (a, b) = if c <= s { (c, s) } else { (s, c) };
            let transport = row["proto"].as_str().unwrap().to_ascii_lowercase();
            let candidates = ours.get(&(transport, a, b)).cloned().unwrap_or_default();
            let got: Vec<String> = candidates
                .iter()
                .filter_map(|f| f[field].as_str())
                .map(|n| {
                    if kind == "dns" {
                        ndpi_dns_rewrite(&norm(n))
                    } else {
                        norm(n)
                    }
                })
                .collect();
            if got.iter().any(|g| *g == norm(&want)) {
                matched += 1;
            } else {
                misses.push(format!(
                    "{name}: {kind} {} <-> {} want {want:?} got {got:?}",
                    row["src"], row["dst"]
                ));
            }
        }
    }
    let share = 100.0 * matched as f64 / scored as f64;
    eprintln!(
        "nDPI corpus: {matched}/{scored} rows named ({share:.2}%), {} captures read",
        pcaps.len()
    );
    for m in &misses {
        eprintln!("  miss: {m}");
    }
    assert!(
        pcaps.len() >= 80,
        "expected the 80 corpus captures, found {}",
        pcaps.len()
    );
    assert!(
        share >= 99.0,
        "conformance {share:.2}% < 99%: {matched}/{scored}"
    );
}
