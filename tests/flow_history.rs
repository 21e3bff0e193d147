//! Every flow of two hotspots in one ClickHouse: `scripts/flow-history-demo.sh`
//! builds two simulated hotspots, each with tetherscope writing its flow log
//! and its flow history to one clickhouse-server (18.16, started by the
//! script in its own namespace), stops ClickHouse for a minute while both
//! see traffic, and compares each sensor's flow log with the stored rows.

use std::process::Command;

use crate::common;
use crate::common::sim::skip_without_root;

#[test]
fn two_sensors_store_every_flow_once_across_an_outage() {
    if skip_without_root("flow-history") {
        return;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/flow-history-demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("TETHERSCOPE_BIN", common::bin())
        .env(
            "FLOW_HISTORY_ID",
            format!("{}", std::process::id() % 100_000),
        )
        .output()
        .expect("run flow-history-demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "flow history demo failed:\n{stdout}\n{stderr}"
    );
    eprintln!("{stderr}{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    // flow-history: N sensors, M flows logged, M stored, lost 0, duplicated 0, outage 60 s
    let fields: Vec<&str> = last
        .trim_start_matches("flow-history: ")
        .split(", ")
        .collect();
    assert_eq!(fields.len(), 6, "closing line: {last}");
    assert_eq!(fields[0], "2 sensors", "{last}");
    let logged: u64 = fields[1]
        .trim_end_matches(" flows logged")
        .parse()
        .unwrap_or(0);
    let stored: u64 = fields[2].trim_end_matches(" stored").parse().unwrap_or(0);
    assert!(logged >= 2 * 20, "too few flows: {last}\n{stderr}");
    assert_eq!(logged, stored, "{last}\n{stderr}");
    assert_eq!(fields[3], "lost 0", "{last}");
    assert_eq!(fields[4], "duplicated 0", "{last}");
    assert_eq!(fields[5], "outage 60 s", "{last}");
}
