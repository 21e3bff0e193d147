//! Inputs shared by the criterion benchmarks.

use std::path::PathBuf;

/// The capture the dissector benchmarks take their packets from:
/// `TETHERSCOPE_BENCH_PCAP` (bench/run.sh points it at a generated phone
/// capture with QUIC), else the committed seed fixture.
pub fn capture_path() -> PathBuf {
    std::env::var_os("TETHERSCOPE_BENCH_PCAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-domains.pcap")
        })
}

/// Every frame of the capture, with its link type (at most `limit`).
pub fn frames(limit: usize) -> Vec<(u32, Vec<u8>)> {
    let path = capture_path();
    let mut src = tetherscope_capture::file::FileSource::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    while out.len() < limit {
        match src.next_packet() {
            Ok(Some(p)) => out.push((p.link_type, p.data.to_vec())),
            Ok(None) => break,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
    out
}
