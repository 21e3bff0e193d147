//! Helpers shared by the end-to-end tests.

pub mod frames;
pub mod sim;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path to the built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tetherscope")
}

/// A fixture under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A helper program under `tests/support/`.
pub fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// Runs `tetherscope read --format jsonl FILE` and returns its output.
pub fn read_jsonl(path: &Path, extra: &[&str]) -> Output {
    Command::new(bin())
        .arg("read")
        .arg("--format")
        .arg("jsonl")
        .args(extra)
        .arg(path)
        .output()
        .expect("run tetherscope")
}

/// Parses JSON lines.
pub fn records(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// A port nothing listens on right now, on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://127.0.0.1:PORT/PATH` with curl; the body on success.
pub fn get_local(port: u16, path: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
