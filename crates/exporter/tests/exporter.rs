//! The exporter through its router, fed by the real pipeline with the
//! committed seed fixture.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tower::ServiceExt;

mod support;
use support::feed;

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/seed-domains.pcap"
    ))
    .unwrap()
}

fn setup(max_domains: usize) -> (Pipeline, Arc<Shared>) {
    setup_with(&PipelineConfig::default(), max_domains)
}

/// The fixture fed through a pipeline built from `config`, and its exporter.
fn setup_with(config: &PipelineConfig, max_domains: usize) -> (Pipeline, Arc<Shared>) {
    let mut pipeline = Pipeline::new(config);
    feed(&mut pipeline, &fixture());
    let shared = Arc::new(Shared::new(
        &pipeline,
        Arc::new(Catalog::builtin()),
        max_domains,
    ));
    (pipeline, shared)
}

async fn get(shared: &Arc<Shared>, path: &str) -> (StatusCode, String) {
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn series(text: &str, name: &str, must_contain: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && must_contain.iter().all(|c| l.contains(c)))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_from_active_flows_and_after_eviction_never_go_back() {
    let (mut pipeline, shared) = setup(500);
    let (status, before) = get(&shared, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let xtra = series(
        &before,
        "tetherscope_flows_total{",
        &[
            "domain=\"izatcloud.net\"",
            "service=\"Qualcomm XTRA\"",
            "purpose=\"gnss-assistance\"",
        ],
    );
    assert_eq!(xtra, 2.0, "{before}");
    assert_eq!(
        series(
            &before,
            "tetherscope_unexpected_flows_total{",
            &["domain=\"unnamed\""]
        ),
        1.0
    );
    assert_eq!(
        series(
            &before,
            "tetherscope_unexpected_flows_total{",
            &["domain=\"example.com\""]
        ),
        1.0
    );
    let bytes_before = series(&before, "tetherscope_bytes_total{", &[]);
    assert!(bytes_before > 0.0);
    // When the unexpected destination was first seen: a capture timestamp.
    let first_seen = |text: &str| {
        series(
            text,
            "tetherscope_unexpected_first_seen_timestamp_seconds{",
            &["domain=\"example.com\""],
        )
    };
    let (start, end) = capture_span(&fixture());
    assert!(
        (start..=end).contains(&first_seen(&before)),
        "{} not in {start}..{end}",
        first_seen(&before)
    );
    // Reasons nothing happened for yet exist at zero, for rate() and dashboards.
    assert!(before.contains("tetherscope_flow_evictions_total{reason=\"capacity\"} 0"));
    assert!(before.contains("tetherscope_parse_errors_total{reason=\"quic_decrypt\"} 0"));

    // Every flow leaves the table and is folded into the totals.
    pipeline.finish();
    for (flow, _) in pipeline.take_finished() {
        shared.retire(&flow);
    }
    assert_eq!(shared.table.len(), 0);
    let (_, after) = get(&shared, "/metrics").await;
    assert_eq!(
        series(&after, "tetherscope_bytes_total{", &[]),
        bytes_before
    );
    assert_eq!(
        series(
            &after,
            "tetherscope_flows_total{",
            &["domain=\"izatcloud.net\"", "purpose=\"gnss-assistance\""]
        ),
        2.0
    );
    assert!(
        after.contains("tetherscope_flow_evictions_total{reason=\"shutdown\"} 14"),
        "{after}"
    );
    assert_eq!(first_seen(&after), first_seen(&before));
    // The resolver's answers count under the queried name's domain.
    assert_eq!(
        series(
            &after,
            "tetherscope_dns_queries_total{",
            &["domain=\"izatcloud.net\"", "rcode=\"noerror\""]
        ),
        1.0,
        "{after}"
    );
}

/// First and last record timestamps of a classic pcap, whole seconds.
fn capture_span(bytes: &[u8]) -> (f64, f64) {
    let (mut first, mut last, mut at) = (None, 0u32, 24);
    while at + 16 <= bytes.len() {
        let sec = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        first.get_or_insert(sec);
        last = sec;
        at += 16 + u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    (f64::from(first.unwrap()), f64::from(last))
}

#[tokio::test]
async fn domain_labels_are_capped_into_other() {
    let (mut pipeline, shared) = setup(3);
    pipeline.finish();
    for (flow, _) in pipeline.take_finished() {
        shared.retire(&flow);
    }
    let (_, text) = get(&shared, "/metrics").await;
    let domains: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("tetherscope_flows_total{"))
        .filter_map(|l| l.split("domain=\"").nth(1)?.split('"').next())
        .collect();
    // At most 3 DNS names, besides `unnamed` and `other`.
    let names = domains
        .iter()
        .filter(|d| !["unnamed", "other"].contains(d))
        .count();
    assert!(names <= 3 && domains.contains("other"), "{domains:?}");
    assert!(series(&text, "tetherscope_label_overflow_total", &[]) > 0.0);
    // Totals are not lost by folding.
    assert_eq!(series(&text, "tetherscope_flows_total{", &[]), 14.0);
}

#[tokio::test]
async fn api_and_health() {
    let (_pipeline, shared) = setup(500);
    let (status, flows) = get(&shared, "/api/flows").await;
    assert_eq!(status, StatusCode::OK);
    let flows: Vec<serde_json::Value> = serde_json::from_str(&flows).unwrap();
    assert_eq!(flows.len(), 14);
    assert!(flows
        .iter()
        .any(|f| f["domain"] == "xtrapath3.izatcloud.net" && f["purpose"] == "gnss-assistance"));
    let (_, devices) = get(&shared, "/api/devices").await;
    assert!(devices.contains("02:00:5e:00:01:82"), "{devices}");
    // No capture attached in this test: health says so.
    let (status, _) = get(&shared, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn device_labels_stay_bounded_when_the_device_table_is_full() {
    let (_pipeline, shared) = setup_with(
        &PipelineConfig {
            max_devices: 0,
            ..PipelineConfig::default()
        },
        500,
    );
    let (_, text) = get(&shared, "/metrics").await;
    // The phone's MAC is not tracked: its flows fold into device="other".
    assert!(!text.contains("02:00:5e:00:01:82"), "{text}");
    assert_eq!(
        series(&text, "tetherscope_flows_total{", &["device=\"other\""]),
        14.0
    );
}
