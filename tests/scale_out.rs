//! Several hotspots, one Prometheus: `scripts/scale-out-demo.sh` builds two
//! simulated hotspots with a sensor each (tetherscope + Prometheus in agent
//! mode, shipped `agent.yml`), a central Prometheus (shipped `central.yml`,
//! rules evaluated centrally), plays traffic, stops the central Prometheus
//! for a minute and checks the agents' write-ahead logs fill the gap.

use std::process::Command;

use crate::common;
use crate::common::sim::skip_without_root;

#[test]
fn two_sensors_one_central_prometheus_survive_an_outage() {
    if skip_without_root("scale-out") {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/scale-out-demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("TETHERSCOPE_BIN", common::bin())
        .env("SCALE_OUT_ID", format!("{}", std::process::id() % 100_000))
        .output()
        .expect("run scale-out-demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scale-out demo failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stderr}{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    // scale-out: N sensors, M series, gap-free: yes|no, alerts: K
    let fields: Vec<&str> = last.trim_start_matches("scale-out: ").split(", ").collect();
    assert_eq!(fields.len(), 4, "closing line: {last}");
    assert_eq!(fields[0], "2 sensors", "{last}");
    let series: u64 = fields[1].trim_end_matches(" series").parse().unwrap_or(0);
    assert!(
        series >= 2 * 40,
        "too few series centrally: {last}\n{stderr}"
    );
    assert_eq!(fields[2], "gap-free: yes", "{last}\n{stderr}");
    let alerts: u64 = fields[3]
        .trim_start_matches("alerts: ")
        .parse()
        .unwrap_or(0);
    assert!(alerts >= 2, "{last}\n{stderr}");
    assert!(
        stderr.contains("UnexpectedDestination fires for a device on each sensor"),
        "{stderr}"
    );
}
