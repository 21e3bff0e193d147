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

/// Verdicts by flow (client port, server address, server port) of JSON
/// flow records, one per line or as an array.
fn verdicts(records: &[serde_json::Value]) -> std::collections::BTreeMap<String, String> {
    records
        .iter()
        .map(|r| {
            (
                format!(
                    "{}>{}:{}",
                    r["client_port"],
                    r["server_ip"].as_str().unwrap_or("-"),
                    r["server_port"]
                ),
                r["verdict"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_devices_own_profile_decides_its_verdicts_everywhere_as_read_with_that_profile() {
    let dir = std::env::temp_dir().join(format!("tetherscope-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A profile of the user's own: the tracker it names is expected, the
    // XTRA download (expected by the active profile) is not.
    let catalog = dir.join("mine.toml");
    std::fs::write(
        &catalog,
        r#"[[rule]]
name = "my-beacon"
domains = ["tracker.example.com"]
purpose = "tracking"
owner = "Example"
description = "A beacon this device is allowed to reach."
source = "test"

[[profile]]
name = "mine"
description = "Only the beacon and the hotspot's DNS."
expect_rules = ["my-beacon", "hotspot-dns"]
"#,
    )
    .unwrap();
    let config = dir.join("tetherscope.toml");
    std::fs::write(
        &config,
        "[[device]]\nmac = \"02:00:5e:00:01:82\"\nlabel = \"Test phone\"\nprofile = \"mine\"\n",
    )
    .unwrap();
    let fixture = common::fixture("seed-domains.pcap");

    // What `read` says under that profile, made active.
    let out = common::read_jsonl(
        &fixture,
        &["--catalog", catalog.to_str().unwrap(), "--profile", "mine"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = verdicts(&common::records(&out.stdout));
    assert_eq!(expected.len(), 14);
    assert_eq!(expected["41004>203.0.113.7:443"], "expected");
    assert_eq!(expected["40509>198.51.100.102:443"], "unexpected");

    // `replay` with the profile given to the device alone.
    let log = dir.join("flows.jsonl");
    let port = free_port();
    let mut child = Command::new(common::bin())
        .arg("replay")
        .arg(&fixture)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .arg("--catalog")
        .arg(&catalog)
        .arg("--flow-log")
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let flows = wait_for(Duration::from_secs(15), || {
        let page: serde_json::Value = serde_json::from_str(&get(port, "/api/flows")?).ok()?;
        let flows = page.as_array()?.clone();
        (flows.len() == 14).then_some(flows)
    });
    let view = get(port, "/api/view");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let Some(flows) = flows else {
        panic!("replay never served the fixture's 14 flows");
    };
    assert_eq!(verdicts(&flows), expected, "/api/flows");
    assert!(status.success());
    let logged: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts(&logged), expected, "flow log");

    // The page: each destination under the device's verdict.
    let view: serde_json::Value = serde_json::from_str(&view.expect("/api/view")).unwrap();
    let destinations: std::collections::BTreeMap<&str, &str> = view["devices"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["destinations"].as_array().unwrap())
        .map(|d| {
            (
                d["destination"].as_str().unwrap(),
                d["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(destinations.get("example.com"), Some(&"expected"), "{view}");
    assert_eq!(
        destinations.get("izatcloud.net"),
        Some(&"unexpected"),
        "{view}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
