//! The user's whole loop on the simulated hotspot: a real Prometheus scrapes
//! a live tetherscope with the shipped rules, every dashboard query returns
//! data, the unexpected-destination alert fires for the unlisted tracker,
//! and a real Alertmanager (shipped config) delivers it to a webhook.
//!
//! The shipped configs are used as they are, but for three test-speed
//! substitutions: 1 s scrape and evaluation intervals, and a 1 s group_wait.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common;
use crate::common::sim::{skip_without_root, wait_for, Sim};
use crate::deploy::dashboard_queries;

const PROMETHEUS: &str = "127.0.0.1:9090";
const ALERTMANAGER: &str = "127.0.0.1:9093";
const WEBHOOK_PORT: &str = "9099";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// Replaces `from` by `to`, insisting `from` is there (so a change to the
/// shipped file cannot silently void the substitution).
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "shipped config lost {from:?}");
    text.replace(from, to)
}

/// Runs an instant query inside the laptop namespace.
pub(crate) fn query(sim: &Sim, promql: &str) -> Result<Vec<Value>, String> {
    let out = sim.exec(
        "laptop",
        &[
            "curl",
            "-s",
            "-m",
            "5",
            "-G",
            &format!("http://{PROMETHEUS}/api/v1/query"),
            "--data-urlencode",
            &format!("query={promql}"),
        ],
    );
    let body: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stdout)))?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// Grafana's variables, as a dashboard opened on the last 10 minutes would
/// expand them.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__range", "10m")
        .replace("$__interval", "5s")
        .replace("$device", "pixel-7a")
        .replace("$sensor", ".*")
}

/// Starts Prometheus (shipped config and rules), Alertmanager (shipped
/// config) and the webhook receiver in the laptop namespace, with the
/// test-speed substitutions; returns the file the webhook appends
/// notifications to.
pub(crate) fn start_stack(sim: &mut Sim) -> PathBuf {
    let dir = sim.dir.clone();
    // Prometheus with the shipped config and rules.
    let prom_dir = dir.join("prometheus");
    std::fs::create_dir_all(prom_dir.join("rules")).unwrap();
    let config = swap(
        swap(
            shipped("deploy/prometheus/prometheus.yml"),
            "scrape_interval: 15s",
            "scrape_interval: 1s",
        ),
        "evaluation_interval: 15s",
        "evaluation_interval: 1s",
    );
    std::fs::write(prom_dir.join("prometheus.yml"), config).unwrap();
    std::fs::copy(
        root().join("deploy/prometheus/rules/tetherscope.yml"),
        prom_dir.join("rules/tetherscope.yml"),
    )
    .unwrap();
    let arg = |s: String| s;
    let prom_args = [
        arg("prometheus".into()),
        format!(
            "--config.file={}",
            prom_dir.join("prometheus.yml").display()
        ),
        format!("--storage.tsdb.path={}", prom_dir.join("data").display()),
        format!("--web.listen-address={PROMETHEUS}"),
    ];
    sim.spawn_in_laptop(&prom_args.iter().map(OsStr::new).collect::<Vec<_>>());

    // Alertmanager with the shipped config, and the webhook it delivers to.
    let am_dir = dir.join("alertmanager");
    std::fs::create_dir_all(&am_dir).unwrap();
    let am_config = swap(
        shipped("deploy/alertmanager/alertmanager.yml"),
        "group_wait: 10s",
        "group_wait: 1s",
    );
    assert!(am_config.contains(&format!("http://127.0.0.1:{WEBHOOK_PORT}/alerts")));
    std::fs::write(am_dir.join("alertmanager.yml"), am_config).unwrap();
    let am_args = [
        arg("prometheus-alertmanager".into()),
        format!(
            "--config.file={}",
            am_dir.join("alertmanager.yml").display()
        ),
        format!("--storage.path={}", am_dir.join("data").display()),
        format!("--web.listen-address={ALERTMANAGER}"),
        arg("--cluster.listen-address=".into()),
    ];
    sim.spawn_in_laptop(&am_args.iter().map(OsStr::new).collect::<Vec<_>>());
    let received = dir.join("webhook.jsonl");
    let hook_args = [
        arg("python3".into()),
        common::support("webhook.py").display().to_string(),
        arg(WEBHOOK_PORT.into()),
        received.display().to_string(),
    ];
    sim.spawn_in_laptop(&hook_args.iter().map(OsStr::new).collect::<Vec<_>>());

    received
}

#[test]
fn prometheus_alertmanager_and_dashboards_on_live_hotspot() {
    if skip_without_root("monitoring-stack") {
        return;
    }
    let mut sim = Sim::up(&format!("m{}", std::process::id() % 10_000));
    // No learning: the unlisted tracker is new at once, so the dashboards'
    // new-destination panel has data too.
    sim.start_monitor(&[OsStr::new("--learn-for"), OsStr::new("0")]);

    let received = start_stack(&mut sim);

    // Prometheus scrapes tetherscope.
    let up = wait_for(Duration::from_secs(30), || {
        query(&sim, "up{job=\"tetherscope\"} == 1")
            .ok()
            .filter(|r| !r.is_empty())
    });
    assert!(up.is_some(), "Prometheus never scraped tetherscope");

    let out = sim.script(&["traffic", "2"]);
    assert!(
        out.status.success(),
        "traffic: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every dashboard query evaluates, and returns data.
    let queries = dashboard_queries();
    assert!(queries.len() >= 25, "{} queries", queries.len());
    let mut empty = Vec::new();
    let all_answer = wait_for(Duration::from_secs(45), || {
        empty.clear();
        for (dash, panel, expr) in &queries {
            match query(&sim, &expand(expr)) {
                Err(e) => panic!("{dash} / {panel}: {expr}: {e}"),
                Ok(r) if r.is_empty() => empty.push(format!("{dash} / {panel}: {expr}")),
                Ok(_) => {}
            }
        }
        empty.is_empty().then_some(())
    });
    assert!(all_answer.is_some(), "queries without data: {empty:#?}");

    // The device variable's own query lists the phone.
    let devices = query(&sim, "group by (device) (tetherscope_bytes_total)").unwrap();
    assert!(devices.iter().any(|d| d["metric"]["device"] == "pixel-7a"));

    // The unexpected-destination alert fires for the unlisted tracker.
    let firing = wait_for(Duration::from_secs(30), || {
        query(
            &sim,
            "ALERTS{alertname=\"UnexpectedDestination\",alertstate=\"firing\"}",
        )
        .ok()
        .filter(|r| r.iter().any(|a| a["metric"]["domain"] == "example.com"))
    })
    .expect("UnexpectedDestination never fired for example.com");
    let alert = firing
        .iter()
        .find(|a| a["metric"]["domain"] == "example.com")
        .unwrap();
    assert_eq!(alert["metric"]["device"], "pixel-7a");
    // Expected destinations raise nothing.
    assert!(!firing
        .iter()
        .any(|a| a["metric"]["domain"] == "calyxinstitute.org"
            || a["metric"]["domain"] == "izatcloud.net"));
    // The direct-IP connection has its own alert.
    let direct = wait_for(Duration::from_secs(20), || {
        query(
            &sim,
            "ALERTS{alertname=\"DirectIPConnection\",alertstate=\"firing\"}",
        )
        .ok()
        .filter(|r| !r.is_empty())
    });
    assert!(direct.is_some(), "DirectIPConnection never fired");

    // Alertmanager delivers it to the webhook, device and domain included.
    let delivered = wait_for(Duration::from_secs(45), || {
        let text = std::fs::read_to_string(&received).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
            .find(|a| {
                a["labels"]["alertname"] == "UnexpectedDestination"
                    && a["labels"]["domain"] == "example.com"
            })
    })
    .expect("Alertmanager never delivered UnexpectedDestination to the webhook");
    assert_eq!(delivered["labels"]["device"], "pixel-7a");
    assert_eq!(delivered["status"], "firing");
    let summary = delivered["annotations"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("pixel-7a") && summary.contains("example.com"),
        "{summary}"
    );
    // The notification alone says what the destination is for and who runs
    // it (no rule names example.com's owner).
    assert!(
        summary.contains("purpose unknown, owner unknown"),
        "{summary}"
    );
}
