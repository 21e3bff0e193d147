//! End to end on the simulated hotspot (scripts/hotspot-sim.sh): real
//! dnsmasq, real clients, `tetherscope run` capturing live on `ap0`, and
//! assertions from real scrapes of `/metrics`.
//!
//! Needs root (network namespaces). Without it the test says so loudly, and
//! fails under `CI=true`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/hotspot-sim.sh")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The harness, torn down on drop (also when an assertion fails).
struct Sim {
    id: String,
    dir: PathBuf,
    monitor: Option<Child>,
}

impl Sim {
    fn up(id: &str) -> Sim {
        let dir = std::env::temp_dir().join(format!("tetherscope-sim-{id}"));
        let sim = Sim {
            id: id.to_owned(),
            dir,
            monitor: None,
        };
        let out = sim.script(&["up"]);
        assert!(
            out.status.success(),
            "harness up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        sim
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("TS_SIM_ID", &self.id)
            .env("TS_SIM_DIR", &self.dir)
            .output()
            .expect("run hotspot-sim.sh")
    }

    fn ns(&self, which: &str) -> String {
        format!("ts{}-{which}", self.id)
    }

    /// Runs a command in a namespace with a time bound.
    fn exec(&self, which: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(which), "timeout", "10"])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    fn get(&self, path: &str) -> Option<String> {
        let out = self.exec(
            "laptop",
            &[
                "curl",
                "-sf",
                "-m",
                "5",
                &format!("http://127.0.0.1:9433{path}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(mut child) = self.monitor.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.script(&["down"]);
    }
}

/// Waits for `cond`, polling, at most `limit`.
fn wait_for<T>(limit: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = cond() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// Series → value from the Prometheus text format.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.iter()
        .filter(|(series, _)| {
            series.starts_with(&format!("{name}{{"))
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .sum()
}

#[test]
fn live_hotspot_end_to_end() {
    if !is_root() {
        let msg = "simulated-hotspot test NOT RUN: it needs root (network namespaces)";
        eprintln!("\n!!! {msg} !!!\n");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        return;
    }
    let id = format!("e{}", std::process::id() % 10_000);
    let mut sim = Sim::up(&id);
    let leases = sim.dir.join("dnsmasq-ap0.leases");
    let flow_log = sim.dir.join("flows.jsonl");
    let monitor = Command::new("ip")
        .args([
            "netns",
            "exec",
            &sim.ns("laptop"),
            common::bin(),
            "run",
            "--interface",
            "ap0",
        ])
        .arg("--leases")
        .arg(&leases)
        .arg("--flow-log")
        .arg(&flow_log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tetherscope run");
    sim.monitor = Some(monitor);

    // Capture attached and exporter up.
    let health = wait_for(Duration::from_secs(20), || {
        sim.get("/healthz")
            .filter(|h| h.contains("\"capture_attached\":true"))
    });
    assert!(health.is_some(), "exporter never became healthy");

    let out = sim.script(&["traffic", "2"]);
    assert!(
        out.status.success(),
        "traffic failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wait until every flow of the rounds is visible.
    let metrics = wait_for(Duration::from_secs(20), || {
        let m = parse_metrics(&sim.get("/metrics")?);
        let ready = value(&m, "tetherscope_flows_total", &[("purpose", "gnss-assistance")]) >= 2.0
            && value(&m, "tetherscope_unexpected_flows_total", &[("domain", "unnamed")]) >= 2.0
            && value(&m, "tetherscope_flows_total", &[("purpose", "time-sync")]) >= 2.0
            && value(&m, "tetherscope_flows_total", &[("purpose", "push")]) >= 2.0
            // libpcap's counters are sampled once a second.
            && value(&m, "tetherscope_capture_packets_total", &[("interface", "ap0")]) > 50.0;
        ready.then_some(m)
    })
    .expect("metrics never showed the harness traffic");

    let phone = [("device", "pixel-7a")];
    // Seed domains with their purpose, bytes and flows, labelled by the DHCP name.
    for (site, purpose) in [
        ("CalyxOS updates", "os-update"),
        ("Qualcomm XTRA", "gnss-assistance"),
        ("Android connectivity check", "connectivity-check"),
        ("Google push (microG)", "push"),
        ("Android time", "time-sync"),
    ] {
        let labels = [phone[0], ("domain", site), ("purpose", purpose)];
        assert!(
            value(&metrics, "tetherscope_flows_total", &labels) >= 2.0,
            "{site}: flows"
        );
        assert!(
            value(&metrics, "tetherscope_bytes_total", &labels) > 0.0,
            "{site}: bytes"
        );
        assert_eq!(
            value(&metrics, "tetherscope_unexpected_flows_total", &labels),
            0.0,
            "{site}: expected"
        );
    }
    // The XTRA download is cleartext (and known to be).
    let xtra = [phone[0], ("domain", "Qualcomm XTRA")];
    assert!(value(&metrics, "tetherscope_cleartext_bytes_total", &xtra) > 16_000.0);
    assert_eq!(
        value(&metrics, "tetherscope_unknown_cleartext_bytes_total", &xtra),
        0.0
    );
    // The unlisted tracker and the direct-IP connection are unexpected.
    assert!(
        value(
            &metrics,
            "tetherscope_unexpected_flows_total",
            &[phone[0], ("domain", "example.com")]
        ) >= 2.0
    );
    assert!(
        value(
            &metrics,
            "tetherscope_unexpected_flows_total",
            &[phone[0], ("domain", "unnamed")]
        ) >= 2.0
    );
    assert!(value(&metrics, "tetherscope_unnamed_bytes_total", &phone) > 0.0);
    // DNS queries counted, for the phone.
    assert!(value(&metrics, "tetherscope_dns_queries_total", &phone) >= 10.0);
    // Capture counters.
    assert!(
        value(
            &metrics,
            "tetherscope_capture_packets_total",
            &[("interface", "ap0")]
        ) > 50.0
    );
    assert_eq!(
        value(
            &metrics,
            "tetherscope_capture_dropped_total",
            &[("where", "kernel")]
        ),
        0.0
    );
    assert_eq!(
        value(&metrics, "tetherscope_capture_up", &[("interface", "ap0")]),
        1.0
    );

    // The XTRA connection carries its CNAME chain in the flows API.
    let flows: Vec<serde_json::Value> =
        serde_json::from_str(&sim.get("/api/flows").unwrap()).unwrap();
    let xtra_flow = flows
        .iter()
        .find(|f| f["server_ip"] == "198.51.100.102")
        .expect("XTRA flow");
    assert_eq!(xtra_flow["domain"], "xtrapath3.izatcloud.net");
    assert_eq!(xtra_flow["purpose"], "gnss-assistance");

    // The phone cannot read the exporter.
    let from_phone = sim.exec(
        "phone",
        &["curl", "-sf", "-m", "3", "http://10.42.0.1:9433/metrics"],
    );
    assert!(
        !from_phone.status.success(),
        "the exporter answered the phone"
    );

    // SIGTERM: drain, flush the flow log, exit 0.
    let mut child = sim.monitor.take().unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_for(Duration::from_secs(15), || child.try_wait().ok().flatten())
        .expect("did not stop on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let logged = std::fs::read_to_string(&flow_log).unwrap();
    assert!(
        logged.lines().count() >= 20,
        "flow log has {} lines",
        logged.lines().count()
    );
    assert!(logged.contains("\"domain\":\"release.calyxinstitute.org\""));
}
