//! JA4 against an independent implementation: every ClientHello in the
//! repository's fixtures and the nDPI corpus (`../shared/corpus/ndpi`, or
//! `TETHERSCOPE_NDPI_CORPUS`), TLS over TCP and QUIC, fingerprinted by the
//! `ja4plus` package (`tests/support/ja4_oracle.py`, installed pinned into
//! its own virtual environment by `scripts/setup.sh --test`) and by
//! `tetherscope read`: the first fingerprint of each connection must be the
//! same. Without the package or the corpus the test says so loudly, and
//! fails under `CI=true`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use crate::common;

/// Where `scripts/setup.sh --test` puts the package's environment.
const ORACLE_PYTHON: &str = "/usr/local/lib/tetherscope-test/ja4-oracle/bin/python";

/// ClientHellos the package fingerprints and tetherscope refuses: both lie
/// about their own length, so there is no complete ClientHello to read (the
/// package reads what bytes there are).
const REFUSED_AS_MALFORMED: &[(&str, u16)] = &[
    ("blind-spots.pcap", 42003),      // the fixture's length-lying hello
    ("tls_invalid_reads.pcap", 3967), // session id runs past the record
];

/// Captures in which tetherscope fingerprints hellos the package cannot
/// read at all, and why.
const BEYOND_THE_PACKAGE: &[(&str, &str)] = &[
    ("dlt_ppp.pcap", "PPP link layer"),
    (
        "ja3_lots_of_cipher_suites_2_anon.pcap",
        "hello over many segments",
    ),
    (
        "quic-v2.pcapng",
        "QUIC v1 Initial upgraded to v2 (RFC 9368)",
    ),
    (
        "quic_frags_different_dcid.pcapng",
        "hello over Initials with different DCIDs",
    ),
    ("quic_t51.pcap", "Google QUIC T051"),
];

fn corpus_pcaps() -> Option<Vec<PathBuf>> {
    let dir = std::env::var_os("TETHERSCOPE_NDPI_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/ndpi"));
    let entries = std::fs::read_dir(dir.join("pcap")).ok()?;
    Some(entries.map(|e| e.unwrap().path()).collect())
}

fn oracle_python() -> Option<PathBuf> {
    let p = std::env::var_os("TETHERSCOPE_JA4_ORACLE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(ORACLE_PYTHON));
    p.is_file().then_some(p)
}

fn not_checked(what: &str) {
    let msg = format!("{what} NOT FOUND; JA4 NOT CHECKED against the independent implementation");
    eprintln!("\n!!! {msg} !!!\n");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
}

/// (capture, transport, lower endpoint, higher endpoint).
type Key = (String, String, (String, u64), (String, u64));

fn key(pcap: &str, transport: &str, a: (String, u64), b: (String, u64)) -> Key {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    (pcap.to_owned(), transport.to_owned(), a, b)
}

fn endpoint(ip: &serde_json::Value, port: &serde_json::Value) -> Option<(String, u64)> {
    Some((ip.as_str()?.to_owned(), port.as_u64()?))
}

#[test]
fn ja4_matches_an_independent_implementation() {
    let Some(python) = oracle_python() else {
        return not_checked("ja4plus (scripts/setup.sh --test)");
    };
    let Some(corpus) = corpus_pcaps() else {
        return not_checked("nDPI corpus (TETHERSCOPE_NDPI_CORPUS)");
    };
    let fixtures = std::fs::read_dir(common::fixture(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    let mut pcaps: Vec<PathBuf> = fixtures.chain(corpus).collect();
    pcaps.sort();
    assert!(
        pcaps.len() >= 84,
        "expected the fixtures and 80 corpus captures"
    );

    // The package's first fingerprint per connection, and what it says of it.
    let out = Command::new(&python)
        .arg(common::support("ja4_oracle.py"))
        .args(&pcaps)
        .output()
        .expect("run the JA4 oracle");
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs: BTreeMap<Key, serde_json::Value> = BTreeMap::new();
    for row in common::records(&out.stdout) {
        assert!(row.get("error").is_none(), "oracle could not read {row}");
        let ja4 = row["ja4"].as_str().unwrap();
        let transport = if ja4.starts_with('q') { "udp" } else { "tcp" };
        let (Some(a), Some(b)) = (
            endpoint(&row["src"], &row["sport"]),
            endpoint(&row["dst"], &row["dport"]),
        ) else {
            panic!("oracle row without endpoints: {row}");
        };
        let pcap = row["pcap"].as_str().unwrap();
        theirs.entry(key(pcap, transport, a, b)).or_insert(row);
    }

    let mut ours: BTreeMap<Key, String> = BTreeMap::new();
    for pcap in &pcaps {
        let name = pcap.file_name().unwrap().to_string_lossy().into_owned();
        let out = common::read_jsonl(pcap, &["--quiet"]);
        assert!(out.status.success(), "{name}: {:?}", out.status);
        for f in common::records(&out.stdout) {
            let Some(ja4) = f["ja4"].as_str() else {
                continue;
            };
            let (Some(a), Some(b)) = (
                endpoint(&f["client_ip"], &f["client_port"]),
                endpoint(&f["server_ip"], &f["server_port"]),
            ) else {
                panic!("{name}: a fingerprinted flow without ports: {f}");
            };
            let transport = f["transport"].as_str().unwrap();
            ours.insert(key(&name, transport, a, b), ja4.to_owned());
        }
    }

    let (mut same, mut grease, mut ech, mut split, mut quic) = (0, 0, 0, 0, 0);
    let mut mismatches = Vec::new();
    let mut refused = BTreeSet::new();
    for (k, row) in &theirs {
        let want = row["ja4"].as_str().unwrap();
        match ours.get(k) {
            Some(got) if got == want => {
                same += 1;
                grease += usize::from(row["grease"] == true);
                ech += usize::from(row["ech"] == true);
                split += usize::from(row["reassembled"] == true);
                quic += usize::from(want.starts_with('q'));
            }
            Some(got) => mismatches.push(format!("{k:?}: ours {got}, theirs {want}")),
            None => {
                let port = |e: &(String, u64)| u16::try_from(e.1).unwrap();
                let listed = REFUSED_AS_MALFORMED
                    .iter()
                    .any(|(p, c)| *p == k.0 && (*c == port(&k.2) || *c == port(&k.3)));
                if listed {
                    refused.insert(k.0.clone());
                } else {
                    mismatches.push(format!("{k:?}: ours none, theirs {want}"));
                }
            }
        }
    }
    let mut beyond: BTreeMap<&str, usize> = BTreeMap::new();
    for k in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        match BEYOND_THE_PACKAGE.iter().find(|(p, _)| *p == k.0) {
            Some((p, _)) => *beyond.entry(p).or_default() += 1,
            None => mismatches.push(format!("{k:?}: ours {}, theirs none", ours[k])),
        }
    }
    eprintln!(
        "JA4: {same} ClientHellos identical over {} captures ({grease} with GREASE, \
         {ech} with ECH, {split} over several segments or packets, {quic} QUIC); \
         {} refused as malformed; {} only here",
        pcaps.len(),
        refused.len(),
        beyond.values().sum::<usize>()
    );
    for (p, n) in &beyond {
        let why = BEYOND_THE_PACKAGE.iter().find(|(q, _)| q == p).unwrap().1;
        eprintln!("  only here: {p}: {n} ({why})");
    }
    for m in &mismatches {
        eprintln!("  MISMATCH {m}");
    }
    assert!(mismatches.is_empty(), "{} JA4 mismatches", mismatches.len());
    assert_eq!(refused.len(), REFUSED_AS_MALFORMED.len(), "{refused:?}");
    // Every kind named above was compared, not only plain hellos (floors a
    // little under what the fixtures and corpus hold today).
    assert!(same >= 400 && grease >= 20 && ech >= 20 && split >= 2 && quic >= 190);
}
