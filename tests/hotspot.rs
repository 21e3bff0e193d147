//! End to end on the simulated hotspot (scripts/hotspot-sim.sh): real
//! dnsmasq, real clients, `tetherscope run` capturing live on `ap0`, and
//! assertions from real scrapes of `/metrics`.
//!
//! Needs root (network namespaces). Without it the test says so loudly, and
//! fails under `CI=true`.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for, Sim};
use crate::monitoring::{query, start_stack};

#[test]
fn live_hotspot_end_to_end() {
    if skip_without_root("simulated-hotspot") {
        return;
    }
    let id = format!("e{}", std::process::id() % 10_000);
    let mut sim = Sim::up(&id);
    let flow_log = sim.dir.join("flows.jsonl");
    sim.start_monitor(&["--flow-log".as_ref(), flow_log.as_os_str()]);

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
    // Seed destinations with their purpose, bytes and flows, labelled by
    // the DHCP name: `domain` is the registrable domain, `service` the
    // catalog's name for it.
    for (domain, service, purpose) in [
        ("calyxinstitute.org", "CalyxOS updates", "os-update"),
        ("izatcloud.net", "Qualcomm XTRA", "gnss-assistance"),
        (
            "gstatic.com",
            "Android connectivity check",
            "connectivity-check",
        ),
        ("google.com", "Google push (microG)", "push"),
        ("android.com", "Android time", "time-sync"),
    ] {
        let labels = [
            phone[0],
            ("domain", domain),
            ("service", service),
            ("purpose", purpose),
        ];
        assert!(
            value(&metrics, "tetherscope_flows_total", &labels) >= 2.0,
            "{domain}: flows"
        );
        assert!(
            value(&metrics, "tetherscope_bytes_total", &labels) > 0.0,
            "{domain}: bytes"
        );
        assert_eq!(
            value(&metrics, "tetherscope_unexpected_flows_total", &labels),
            0.0,
            "{domain}: expected"
        );
        // The phone asked its resolver for each of them.
        assert!(
            value(
                &metrics,
                "tetherscope_dns_queries_total",
                &[phone[0], ("domain", domain), ("rcode", "noerror")]
            ) >= 2.0,
            "{domain}: DNS questions"
        );
    }
    // The XTRA download is cleartext (and known to be).
    let xtra = [phone[0], ("domain", "izatcloud.net")];
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

/// How long the phone learns in the new-software test: long enough for a
/// round of the harness's traffic, whose TLS clients (curl, openssl
/// s_client) enter the baseline.
const LEARN_FOR_SECS: f64 = 45.0;

/// A TLS connection from the phone made with Python's ssl module (its own
/// cipher list and ALPN: another JA4 than curl's or s_client's) to a
/// destination the phone already knows.
const PYTHON_CLIENT: &str = "import socket, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(['http/1.1'])
with socket.create_connection(('release.calyxinstitute.org', 443), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname='release.calyxinstitute.org') as tls:
        tls.sendall(b'GET / HTTP/1.1\\r\\nHost: release.calyxinstitute.org\\r\\nConnection: close\\r\\n\\r\\n')
        tls.recv(1024)
";

/// The phone's clients from `/api/clients`.
fn phone_clients(sim: &Sim) -> Option<Vec<Value>> {
    let list: Vec<Value> = serde_json::from_str(&sim.get("/api/clients")?).ok()?;
    Some(
        list.into_iter()
            .filter(|c| c["device"] == "pixel-7a")
            .collect(),
    )
}

#[test]
fn new_software_on_the_phone_fires_its_alert_through_alertmanager() {
    if skip_without_root("simulated-hotspot") {
        return;
    }
    let id = format!("n{}", std::process::id() % 10_000);
    let mut sim = Sim::up(&id);
    sim.start_monitor(&[
        OsStr::new("--learn-for"),
        OsStr::new(&format!("{LEARN_FOR_SECS}s")),
    ]);
    let received = start_stack(&mut sim);

    // Learning: a round of the usual traffic; its TLS clients are learned.
    let out = sim.script(&["traffic", "1"]);
    assert!(
        out.status.success(),
        "traffic failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let learned = wait_for(Duration::from_secs(30), || {
        let clients = phone_clients(&sim)?;
        (clients.len() >= 2).then_some(clients)
    })
    .expect("the phone's TLS clients never reached the baseline");
    assert!(
        learned.iter().all(|c| c["state"] == "baseline"),
        "{learned:#?}"
    );
    let metrics = parse_metrics(&sim.get("/metrics").unwrap());
    assert_eq!(
        value(
            &metrics,
            "tetherscope_new_clients_total",
            &[("device", "pixel-7a")]
        ),
        0.0
    );

    // Learning ends LEARN_FOR_SECS of packet time after the phone's first
    // flow (its earliest destination, as the baseline API says).
    let baseline: Vec<Value> = serde_json::from_str(&sim.get("/api/baseline").unwrap()).unwrap();
    let first_flow = baseline
        .iter()
        .filter(|d| d["device"] == "pixel-7a")
        .filter_map(|d| d["first_seen"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert!(first_flow.is_finite(), "no destination of the phone");
    let learning_over = wait_for(Duration::from_secs(90), || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        (now > first_flow + LEARN_FOR_SECS + 1.0).then_some(())
    });
    assert!(learning_over.is_some(), "learning never ended");

    // New software: another TLS stack, to a destination the phone knows.
    let out = sim.exec("phone", &["python3", "-c", PYTHON_CLIENT]);
    assert!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = wait_for(Duration::from_secs(30), || {
        phone_clients(&sim)?
            .into_iter()
            .find(|c| c["state"] == "new")
    })
    .expect("the python client never showed as new");
    let fingerprint = fresh["client"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 36, "a JA4: {fresh}");
    assert!(
        !learned.iter().any(|c| c["client"] == fingerprint.as_str()),
        "learned already: {fingerprint}"
    );
    assert_eq!(
        fresh["destinations"],
        serde_json::json!(["calyxinstitute.org"])
    );
    let metrics = parse_metrics(&sim.get("/metrics").unwrap());
    assert_eq!(
        value(
            &metrics,
            "tetherscope_new_clients_total",
            &[("device", "pixel-7a")]
        ),
        1.0
    );

    // Prometheus (shipped rules) fires NewSoftwareOnDevice for the phone,
    // and Alertmanager (shipped config) delivers it.
    wait_for(Duration::from_secs(60), || {
        query(
            &sim,
            "ALERTS{alertname=\"NewSoftwareOnDevice\",alertstate=\"firing\",device=\"pixel-7a\"}",
        )
        .ok()
        .filter(|r| !r.is_empty())
    })
    .expect("NewSoftwareOnDevice never fired for the phone");
    let delivered = wait_for(Duration::from_secs(60), || {
        let text = std::fs::read_to_string(&received).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| a["labels"]["alertname"] == "NewSoftwareOnDevice")
    })
    .expect("Alertmanager never delivered NewSoftwareOnDevice to the webhook");
    assert_eq!(delivered["labels"]["device"], "pixel-7a");
    assert_eq!(delivered["status"], "firing");

    // Accepted from the command line while `run` holds the store: the
    // running process takes it at its next batch.
    let out = Command::new(crate::common::bin())
        .args(["baseline", "accept", "--client", &fingerprint])
        .args(["--device", "pixel-7a", "--state"])
        .arg(sim.dir.join("state.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "baseline accept --client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let accepted = wait_for(Duration::from_secs(15), || {
        phone_clients(&sim)?
            .into_iter()
            .find(|c| c["client"] == fingerprint.as_str() && c["state"] == "accepted")
    });
    assert!(
        accepted.is_some(),
        "the running monitor never took the accept"
    );
}
