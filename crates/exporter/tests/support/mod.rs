//! What the exporter's integration tests share: feeding a capture file's
//! frames into a real pipeline, an exporter that has seen the seed fixture,
//! and one request through its router.

// Each test binary uses its own part of what is here.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_baseline::{Baseline, Settings};
use tetherscope_classify::Catalog;
use tetherscope_exporter::novelty::BaselineHandle;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tetherscope_testkit::pcap;
use tower::ServiceExt;

/// Feeds a classic pcap into the pipeline.
pub fn feed(pipeline: &mut Pipeline, bytes: &[u8]) {
    let (link, records) = pcap::records(bytes).expect("a classic pcap file");
    for r in records {
        pipeline.ingest(r.ts_nanos, link, r.wire_len, r.data);
    }
}

/// The seed fixture retired through an exporter with `catalog` whose
/// baseline learns for `learn_for_ns` (0: everything it sees is new);
/// `configure` sets the baseline up before the exporter takes it.
pub fn seeded(
    catalog: Catalog,
    learn_for_ns: u64,
    configure: impl FnOnce(&mut BaselineHandle),
) -> Arc<Shared> {
    let mut pipeline = Pipeline::new(&PipelineConfig::default());
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/seed-domains.pcap"
    ))
    .unwrap();
    feed(&mut pipeline, &bytes);
    pipeline.finish();
    let mut handle = BaselineHandle::new(
        Baseline::new(Settings {
            learn_for_ns,
            ..Settings::default()
        }),
        None,
    );
    configure(&mut handle);
    let shared = Arc::new(Shared::new(&pipeline, Arc::new(catalog), 500).with_baseline(handle));
    for (flow, _) in pipeline.take_finished() {
        shared.retire(&flow);
    }
    shared
}

/// One request through the exporter's router: its status and its body as
/// JSON (`Null` when the body is not JSON).
pub async fn call(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
