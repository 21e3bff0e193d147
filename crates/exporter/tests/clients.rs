//! New software through the exporter: the TLS clients of the seed fixture
//! in `/api/clients` and `tetherscope_new_clients_total`, and the client
//! triage API's contract (token, same origin, 400/404).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_baseline::ClientObservation;
use tetherscope_classify::Catalog;
use tetherscope_exporter::Shared;
use tower::ServiceExt;

mod support;
use support::{call, seeded};

const PHONE: &str = "02:00:5e:00:01:82";

/// The seed fixture retired through an exporter whose baseline learns for
/// `learn_for_ns` (0: every client is new).
fn setup(learn_for_ns: u64) -> Arc<Shared> {
    seeded(Catalog::builtin(), learn_for_ns, |_| {})
}

/// The value of `tetherscope_new_clients_total` for `device` (None: no
/// such series).
fn new_clients(text: &str, device: &str) -> Option<f64> {
    let prefix = format!("tetherscope_new_clients_total{{device=\"{device}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn clients_are_listed_with_their_destinations_and_counted() {
    let shared = setup(0);
    let (status, list) = call(&shared, "GET", "/api/clients", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap().clone();
    assert!(
        !list.is_empty(),
        "the seed fixture's TLS flows have clients"
    );
    for e in &list {
        assert_eq!(e["mac"], PHONE);
        assert_eq!(e["state"], "new", "nothing learned: {e}");
        assert_eq!(e["client"].as_str().unwrap().len(), 36, "a JA4: {e}");
        assert!(!e["destinations"].as_array().unwrap().is_empty(), "{e}");
    }
    // The phone's new clients, counted under its device label.
    let text = tetherscope_exporter::metrics::render(&shared);
    let device = list[0]["device"].as_str().unwrap();
    assert_eq!(
        new_clients(&text, device),
        Some(list.len() as f64),
        "{text}"
    );
    assert!(text.contains("tetherscope_baseline_clients{state=\"new\"} "));

    // Learning: the same clients are the baseline, and nothing is new;
    // the device still has its series, at 0.
    let learned = setup(u64::MAX / 4);
    let (_, list) = call(&learned, "GET", "/api/clients?state=new", &[], "").await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (_, list) = call(&learned, "GET", "/api/clients?state=baseline", &[], "").await;
    assert!(!list.as_array().unwrap().is_empty());
    let text = tetherscope_exporter::metrics::render(&learned);
    assert_eq!(new_clients(&text, device), Some(0.0));
    let (s, _) = call(&learned, "GET", "/api/clients?state=bogus", &[], "").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(&learned, "GET", "/api/clients?device=nobody", &[], "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_triage_needs_token_and_same_origin() {
    let shared = setup(0);
    let (_, list) = call(&shared, "GET", "/api/clients", &[], "").await;
    let fp = list[0]["client"].as_str().unwrap().to_owned();
    let token = shared.token().to_owned();
    let body = format!(r#"{{"device": "{PHONE}", "client": "{fp}"}}"#);
    let path = "/api/clients/accept";
    let host = ("host", "127.0.0.1:9433");
    let tok = ("x-tetherscope-token", token.as_str());

    let (s, _) = call(&shared, "POST", path, &[host], &body).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no token");
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, tok, ("origin", "http://evil.example")],
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cross origin");
    let (s, _) = call(&shared, "POST", path, &[host, tok], "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, tok],
        &format!(r#"{{"device": "{PHONE}", "client": "t13d0000h2_000000000000_000000000000"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&shared, "POST", "/api/clients/trust", &[host, tok], &body).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing changed so far.
    let (_, list) = call(&shared, "GET", "/api/clients?state=new", &[], "").await;
    assert!(list.as_array().unwrap().iter().any(|e| e["client"] == fp));

    let (s, done) = call(
        &shared,
        "POST",
        path,
        &[
            host,
            tok,
            ("origin", "http://127.0.0.1:9433"),
            ("sec-fetch-site", "same-origin"),
        ],
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(done[0]["state"], "accepted");
    assert_eq!(done[0]["client"], fp);
    let (_, list) = call(&shared, "GET", "/api/clients?state=accepted", &[], "").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Flag without a device: every device that used it.
    let (s, done) = call(
        &shared,
        "POST",
        "/api/clients/flag",
        &[host, tok],
        &format!(r#"{{"client": "{fp}"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(done[0]["state"], "flagged");
}

#[tokio::test]
async fn a_hostile_fingerprint_is_data_never_markup() {
    let shared = setup(0);
    let hostile = "<img src=x onerror=alert(1)>\"'";
    {
        let handle = shared.baseline.as_ref().unwrap();
        let mut b = handle.lock();
        let mac = tetherscope_baseline::parse_mac(PHONE).unwrap();
        b.observe_client(&ClientObservation {
            mac,
            fingerprint: hostile,
            destination: "<script>x</script>.example",
            first_seen_ns: 1_700_000_000_000_000_000,
            last_seen_ns: 1_700_000_000_000_000_000,
        })
        .unwrap();
    }
    let (_, list) = call(&shared, "GET", "/api/clients", &[], "").await;
    let e = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["client"] == hostile)
        .expect("kept as given");
    assert_eq!(e["destinations"][0], "<script>x</script>.example");
    // The page draws clients with its script (text nodes only); the
    // server-drawn page never holds them.
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let page = resp.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page);
    assert!(!page.contains("onerror=alert"));
    assert!(page.contains("id=\"clients-body\""));
    // Never a label value: only the device is.
    let text = tetherscope_exporter::metrics::render(&shared);
    assert!(!text.contains("onerror"));
}
