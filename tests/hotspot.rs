//! End to end on the simulated hotspot (scripts/hotspot-sim.sh): real
//! dnsmasq, real clients, `tetherscope run` capturing live on `ap0`, and
//! assertions from real scrapes of `/metrics`.
//!
//! Needs root (network namespaces). Without it the test says so loudly, and
//! fails under `CI=true`.

use std::process::Command;
use std::time::Duration;

use crate::common::sim::{parse_metrics, skip_without_root, value, wait_for, Sim};

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
