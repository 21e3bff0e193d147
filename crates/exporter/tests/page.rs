//! The page, its JSON and its guard through the router, fed by the real
//! pipeline with the committed fixtures.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tetherscope_flow::{Pipeline, PipelineConfig};
use tower::ServiceExt;

mod support;
use support::feed;

const LISTEN: &str = "127.0.0.1:9433";

/// The fixture's flows: half retired (folded into the view), half active.
fn shared(fixture: &str) -> (Pipeline, Arc<Shared>) {
    let bytes = std::fs::read(format!(
        "{}/../../tests/fixtures/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut pipeline = Pipeline::new(&PipelineConfig::default());
    let shared = Arc::new(Shared::new(&pipeline, Arc::new(Catalog::builtin()), 500));
    feed(&mut pipeline, &bytes);
    pipeline.finish();
    let finished: Vec<_> = pipeline.take_finished().collect();
    for (i, (flow, _)) in finished.into_iter().enumerate() {
        if i % 2 == 0 {
            shared.retire(&flow);
        } else {
            pipeline.table.insert(*flow);
        }
    }
    (pipeline, shared)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(shared: &Arc<Shared>, path: &str, host: &str) -> Reply {
    let resp = tetherscope_exporter::server::router_on(shared.clone(), LISTEN.parse().unwrap())
        .oneshot(
            Request::builder()
                .uri(path)
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn assert_secure(r: &Reply) {
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
}

#[tokio::test]
async fn page_shows_destinations_with_purpose_cleartext_and_cname_chain() {
    let (_p, shared) = shared("seed-domains.pcap");
    let r = get(&shared, "/", LISTEN).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_secure(&r);
    for expected in [
        r#"data-destination="izatcloud.net""#,
        "gnss-assistance",
        "GET xtrapath3.izatcloud.net/xtra3grc.bin",
        "CNAME → xtrapath3.qcomgeo2.com → xp3.gpsonextra.net → d3nj9ptoklgw8o.cloudfront.net",
        r#"data-destination="example.com""#,
        "beacon.tracker.example.com",
        "verdict-unexpected",
        r#"<script src="/assets/page.js" defer></script>"#,
    ] {
        assert!(r.body.contains(expected), "{expected:?} missing");
    }
    // The only script is the page's own file.
    assert_eq!(r.body.matches("<script").count(), 1);
}

#[tokio::test]
async fn view_json_folds_finished_and_active_flows() {
    let (_p, shared) = shared("seed-domains.pcap");
    let r = get(&shared, "/api/view", "localhost:9433").await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["flows"], 14);
    let device = &v["devices"][0];
    assert_eq!(device["mac"], "02:00:5e:00:01:82");
    assert_eq!(device["randomised"], true);
    let xtra = device["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "izatcloud.net")
        .expect("XTRA destination");
    assert_eq!(xtra["purpose"], "gnss-assistance");
    assert_eq!(xtra["flows"], 2);
    assert_eq!(xtra["cname_chain"][0], "xtrapath3.qcomgeo2.com");
    assert_eq!(xtra["cleartext_requests"][0]["path"], "/xtra3grc.bin");
    let unnamed = v["blind_spots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["reason"] == "no_dns_seen")
        .unwrap();
    assert_eq!(unnamed["flows"], 1, "the direct-IP connection");
    let asked: Vec<&str> = v["dns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["question"].as_str())
        .collect();
    assert!(asked.contains(&"xtrapath3.izatcloud.net"), "{asked:?}");
}

#[tokio::test]
async fn blind_spots_by_the_metrics_reasons() {
    let (_p, shared) = shared("blind-spots.pcap");
    let r = get(&shared, "/api/view", LISTEN).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let by_reason: Vec<(String, u64)> = v["blind_spots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["reason"].as_str().unwrap().to_owned(),
                b["flows"].as_u64().unwrap(),
            )
        })
        .collect();
    // One flow per reason; the second phone's unnamed connection counts as
    // encrypted DNS because that phone resolves over DNS over TLS.
    let expected: Vec<(String, u64)> = [
        "ech",
        "encrypted_dns",
        "no_dns_seen",
        "no_handshake_seen",
        "malformed",
    ]
    .iter()
    .map(|r| (r.to_string(), 1))
    .collect();
    assert_eq!(by_reason, expected);
}

#[tokio::test]
async fn foreign_host_is_refused_everywhere() {
    let (_p, shared) = shared("seed-domains.pcap");
    for path in [
        "/",
        "/metrics",
        "/api/flows",
        "/api/view",
        "/assets/page.js",
    ] {
        for host in [
            "rebind.example:9433",
            "127.0.0.1:9434",
            "localhost",
            "127.0.0.1.nip.example:9433",
        ] {
            let r = get(&shared, path, host).await;
            assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST, "{path} {host}");
            assert!(!r.body.contains("izatcloud"));
            assert_secure(&r);
        }
        for host in [LISTEN, "localhost:9433", "[::1]:9433"] {
            let r = get(&shared, path, host).await;
            assert_eq!(r.status, StatusCode::OK, "{path} {host}");
        }
    }
}

#[tokio::test]
async fn hostile_names_are_escaped_in_page_and_json() {
    let (_p, shared) = shared("hostile-names.pcap");
    let r = get(&shared, "/", LISTEN).await;
    assert_eq!(r.status, StatusCode::OK);
    for raw in ["<script>window", "<img src", "<svg onload", "<b>phone"] {
        assert!(!r.body.contains(raw), "{raw:?} reached the page unescaped");
    }
    assert!(r
        .body
        .contains("&lt;script&gt;window.__pwned=3&lt;/script&gt;&#39;"));
    assert!(r
        .body
        .contains("&quot;&gt;&lt;img src=x onerror=window.__pwned=2&gt;"));
    assert!(!r.body.contains('\u{1b}') && !r.body.contains('\u{7}'));
    // JSON is served as JSON, which the page's script reads as data.
    let j = get(&shared, "/api/view", LISTEN).await;
    assert_eq!(j.headers[header::CONTENT_TYPE], "application/json");
    serde_json::from_str::<serde_json::Value>(&j.body).unwrap();
}

#[tokio::test]
async fn assets_are_served_from_the_binary() {
    let (_p, shared) = shared("seed-domains.pcap");
    let js = get(&shared, "/assets/page.js", LISTEN).await;
    assert_eq!(
        js.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    // Data from the wire is only ever set as text.
    assert!(!js.body.contains("innerHTML") && !js.body.contains("insertAdjacentHTML"));
    // No address but the SVG namespace name (an identifier, never fetched).
    let without_ns = js.body.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    let css = get(&shared, "/assets/page.css", LISTEN).await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(!css.body.contains("url("), "the stylesheet fetches nothing");
}
