//! What the monitor cannot see, and why: the crafted blind-spots capture
//! through the pipeline and the exporter's router.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tower::ServiceExt;

mod support;
use support::feed;

async fn get(shared: &Arc<Shared>, path: &str) -> String {
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(Request::builder().uri(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&body).into_owned()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit_once(' ')?.1.parse().ok())
}

const PHONE: &str = "02:00:5e:00:01:82";
const SECOND_PHONE: &str = "02:00:5e:00:01:83";

#[tokio::test]
async fn unnamed_flows_and_bytes_are_counted_by_reason_per_device() {
    let mut pipeline = Pipeline::new(&PipelineConfig::default());
    let capture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/blind-spots.pcap"
    ))
    .unwrap();
    feed(&mut pipeline, &capture);
    let shared = Arc::new(Shared::new(&pipeline, Arc::new(Catalog::builtin()), 500));
    // Half the flows still active, half finished: both are counted. The
    // second phone's DoT flow is measured first, as in the capture, so its
    // flows measured after it count as hidden by its private DNS.
    pipeline.finish();
    let mut flows: Vec<_> = pipeline.take_finished().map(|(f, _)| f).collect();
    flows.sort_by_key(|f| (f.server.port() != 853, f.first_seen, f.client.port()));
    for (i, flow) in flows.into_iter().enumerate() {
        if i % 2 == 0 {
            shared.retire(&flow);
        } else {
            shared.table.insert(*flow);
        }
    }
    let metrics = get(&shared, "/metrics").await;
    for (device, reason) in [
        (PHONE, "ech"),
        (PHONE, "no_dns_seen"),
        (PHONE, "no_handshake_seen"),
        (PHONE, "malformed"),
        (SECOND_PHONE, "encrypted_dns"),
    ] {
        let flows =
            format!("tetherscope_unnamed_flows_total{{device=\"{device}\",reason=\"{reason}\"}}");
        assert_eq!(value(&metrics, &flows), Some(1.0), "{flows}\n{metrics}");
        let bytes =
            format!("tetherscope_unnamed_bytes_total{{device=\"{device}\",reason=\"{reason}\"}}");
        assert!(
            value(&metrics, &bytes).is_some_and(|b| b > 100.0),
            "{bytes}"
        );
    }
    // The second phone's direct-IP flow is not also counted as no_dns_seen.
    assert_eq!(
        value(
            &metrics,
            &format!(
                "tetherscope_unnamed_flows_total{{device=\"{SECOND_PHONE}\",reason=\"no_dns_seen\"}}"
            )
        ),
        None
    );
    assert_eq!(
        value(
            &metrics,
            &format!("tetherscope_device_private_dns{{device=\"{SECOND_PHONE}\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &metrics,
            &format!("tetherscope_device_private_dns{{device=\"{PHONE}\"}}")
        ),
        Some(0.0)
    );
    let devices: serde_json::Value =
        serde_json::from_str(&get(&shared, "/api/devices").await).unwrap();
    let private: Vec<(String, bool)> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["mac"] == PHONE || d["mac"] == SECOND_PHONE)
        .map(|d| {
            (
                d["mac"].as_str().unwrap().to_owned(),
                d["private_dns"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        private,
        [(PHONE.to_owned(), false), (SECOND_PHONE.to_owned(), true)]
    );
    // Without per-device profiles the active one judges every device.
    let devices = devices.as_array().unwrap();
    assert!(!devices.is_empty());
    assert!(
        devices.iter().all(|d| d["profile"] == "calyxos"),
        "{devices:?}"
    );
}
