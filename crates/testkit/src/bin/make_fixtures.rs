//! Writes the checked-in capture fixtures:
//! `cargo run -p tetherscope-testkit --bin make-fixtures tests/fixtures`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    for (name, capture) in tetherscope_testkit::fixtures::all() {
        let path = dir.join(name);
        if let Err(e) = std::fs::write(&path, capture.to_pcap()) {
            eprintln!("make-fixtures: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
