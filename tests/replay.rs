//! `tetherscope replay`: the fixture through the live path, its final state
//! served until SIGTERM, the flow log complete at exit; `--domain-label
//! fqdn` names series by the full name.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::sim::{parse_metrics, value, wait_for};
use crate::common::{free_port, get_local as get};

#[test]
fn replay_serves_the_final_state_until_sigterm_with_full_names() {
    let dir = std::env::temp_dir().join(format!("tetherscope-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("flows.jsonl");
    let port = free_port();
    let mut child = Command::new(common::bin())
        .arg("replay")
        .arg(common::fixture("seed-domains.pcap"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--domain-label", "fqdn"])
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--flow-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_for(Duration::from_secs(15), || {
        let m = parse_metrics(&get(port, "/metrics")?);
        (value(&m, "tetherscope_pipeline_packets_total", &[]) >= 65.0).then_some(m)
    });
    let Some(m) = m else {
        let _ = child.kill();
        panic!("replay never served the fixture's packets");
    };
    // The XTRA download, in the clear, under its full name.
    let xtra = [
        ("domain", "xtrapath3.izatcloud.net"),
        ("service", "Qualcomm XTRA"),
        ("purpose", "gnss-assistance"),
    ];
    assert!(value(&m, "tetherscope_cleartext_bytes_total", &xtra) > 0.0);
    assert!(
        value(
            &m,
            "tetherscope_dns_queries_total",
            &[("domain", "xtrapath3.izatcloud.net"), ("rcode", "noerror")]
        ) >= 1.0
    );
    // A file needs no privilege: started as root, no thread keeps any.
    for (thread, caps) in crate::hardening::thread_caps(child.id()) {
        assert_eq!(
            caps, 0,
            "thread {thread} of replay holds capabilities {caps:#x}"
        );
    }
    // Still serving after the end of the file: flows are the capture's.
    std::thread::sleep(Duration::from_millis(500));
    let flows = get(port, "/api/flows").unwrap_or_default();
    assert!(flows.contains("xtrapath3.izatcloud.net"), "{flows}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "replay ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 14, "{logged}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_of_something_that_is_not_a_capture_is_one_line_and_exit_2() {
    let out = Command::new(common::bin())
        .args(["replay", "Cargo.toml", "--listen", "127.0.0.1:1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a capture file"), "{err}");
}
