//! The baseline through the exporter: novelty metrics after the seed
//! fixture, and the triage API's contract (token, same origin, 400/404).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_classify::Catalog;
use tetherscope_exporter::novelty::BaselineHandle;
use tetherscope_exporter::Shared;
use tower::ServiceExt;

mod support;
use support::{call, seeded};

const PHONE: &str = "02:00:5e:00:01:82";

/// The seed fixture retired through an exporter whose baseline has
/// finished learning: the unlisted tracker and the direct-IP server are new.
fn setup() -> Arc<Shared> {
    setup_with(Catalog::builtin(), |_| {})
}

fn setup_with(catalog: Catalog, configure: impl FnOnce(&mut BaselineHandle)) -> Arc<Shared> {
    seeded(catalog, 0, configure)
}

fn state_of(list: &serde_json::Value, destination: &str) -> String {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e["destination"] == destination)
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn baseline_lists_new_destinations_and_counts_them() {
    let shared = setup();
    let (status, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state_of(&list, "example.com"), "new");
    assert_eq!(state_of(&list, "203.0.113.50"), "new");
    assert_eq!(state_of(&list, "izatcloud.net"), "baseline");
    let xtra = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["destination"] == "izatcloud.net")
        .unwrap();
    assert_eq!(xtra["mac"], PHONE);
    assert_eq!(xtra["randomised"], true);
    assert_eq!(xtra["service"], "Qualcomm XTRA");
    assert!(xtra["names"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("xtrapath3.izatcloud.net")));
    for key in [
        "device",
        "owner",
        "purpose",
        "first_seen",
        "last_seen",
        "flows",
        "bytes_up",
        "bytes_down",
        "cleartext_bytes",
    ] {
        assert!(xtra.get(key).is_some(), "{key} missing: {xtra}");
    }

    let text = tetherscope_exporter::metrics::render(&shared);
    let new_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tetherscope_new_destinations_total{"))
        .collect();
    assert_eq!(new_lines.len(), 2, "{new_lines:?}");
    assert!(new_lines.iter().all(|l| l.ends_with(" 1")), "{new_lines:?}");
    assert!(text.contains("tetherscope_new_destination_first_seen_timestamp_seconds{"));
    assert!(text.contains("tetherscope_baseline_destinations{state=\"new\"} 2"));

    let (status, _) = call(&shared, "GET", "/api/baseline?device=nobody", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn changes_need_token_and_same_origin() {
    let shared = setup();
    let token = shared.token().to_owned();
    assert_eq!(token.len(), 64);
    let body = format!(r#"{{"device": "{PHONE}", "destination": "example.com"}}"#);
    let path = "/api/baseline/accept";
    let host = ("host", "127.0.0.1:9433");

    let (s, _) = call(&shared, "POST", path, &[host], &body).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no token");
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, ("x-tetherscope-token", "00")],
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "wrong token");
    let tok = ("x-tetherscope-token", token.as_str());
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, tok, ("origin", "http://evil.example")],
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cross origin");
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, tok, ("sec-fetch-site", "cross-site")],
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "cross site");
    let (s, _) = call(&shared, "POST", path, &[host, tok], "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = call(
        &shared,
        "POST",
        path,
        &[host, tok],
        &format!(r#"{{"device": "{PHONE}", "destination": "nowhere.example"}}"#),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, entry) = call(
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
    assert_eq!(entry["state"], "accepted");
    assert_eq!(entry["destination"], "example.com");
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(state_of(&list, "example.com"), "accepted");

    let (s, entry) = call(
        &shared,
        "POST",
        "/api/baseline/flag",
        &[host, tok],
        &format!(r#"{{"device": "{PHONE}", "destination": "203.0.113.50"}}"#),
    )
    .await;
    assert_eq!(
        (s, entry["state"].as_str()),
        (StatusCode::OK, Some("flagged"))
    );
    let (s, _) = call(&shared, "POST", "/api/baseline/forget", &[host, tok], &body).await;
    assert_eq!(s, StatusCode::OK);
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(state_of(&list, "example.com"), "");
}

#[tokio::test]
async fn a_device_profile_of_its_own_decides_what_is_expected() {
    let mut catalog = Catalog::builtin();
    catalog
        .load_str(
            std::path::Path::new("strict.toml"),
            "[[profile]]\nname = \"strict\"\nexpect_rules = []\n",
            tetherscope_classify::RuleOrigin::User("strict.toml".into()),
            None,
        )
        .unwrap();
    let strict = catalog.named_profile("strict").unwrap().clone();
    let shared = setup_with(catalog, |h| {
        let mut profiles = tetherscope_exporter::novelty::DeviceProfiles::default();
        profiles
            .by_mac
            .insert(tetherscope_baseline::parse_mac(PHONE).unwrap(), strict);
        h.profiles = Arc::new(profiles);
    });
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    // Under the active profile XTRA is expected; under the phone's own, new.
    assert_eq!(state_of(&list, "izatcloud.net"), "new");
    assert_eq!(state_of(&list, "example.com"), "new");
}

/// A request through the loopback router, its status, headers and body.
async fn raw(
    shared: &Arc<Shared>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

const HOST: (&str, &str) = ("host", "127.0.0.1:9433");

#[tokio::test]
async fn no_response_of_any_get_route_holds_the_token() {
    let shared = setup();
    let token = shared.token().to_owned();
    for path in [
        "/",
        "/assets/page.js",
        "/assets/page.css",
        "/api/view",
        "/api/flows",
        "/api/devices",
        "/api/baseline",
        "/api/session",
        "/metrics",
        "/healthz",
        "/login",
        "/login?token=00",
    ] {
        let (status, headers, body) = raw(&shared, "GET", path, &[HOST], Body::empty()).await;
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        if path == "/" {
            assert!(body.contains("example.com"), "the page was not drawn");
        }
        assert!(!body.contains(&token), "{path} hands out the token");
        for (name, value) in &headers {
            assert!(
                !value.to_str().unwrap_or("").contains(&token),
                "{path}: header {name} holds the token"
            );
        }
    }
}

#[tokio::test]
async fn login_address_sets_a_strict_http_only_cookie_and_leaves_the_address_bar() {
    let shared = setup();
    let token = shared.token().to_owned();
    let (status, headers, _) = raw(
        &shared,
        "GET",
        &format!("/login?token={token}"),
        &[HOST],
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/");
    let cookie = headers["set-cookie"].to_str().unwrap();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(attrs[0], format!("tetherscope={token}"));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&attr), "{attr} missing: {cookie}");
    }

    let wrong = format!("/login?token={}", "0".repeat(64));
    for path in [wrong.as_str(), "/login", "/login?token=", "/login?tok=x"] {
        let (status, headers, _) = raw(&shared, "GET", path, &[HOST], Body::empty()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(headers.get("set-cookie").is_none(), "{path} set a cookie");
    }
}

#[tokio::test]
async fn the_session_cookie_allows_triage_from_the_same_origin_only() {
    let shared = setup();
    let token = shared.token().to_owned();
    let cookie = format!("other=1; tetherscope={token}");
    let body = || {
        Body::from(format!(
            r#"{{"device": "{PHONE}", "destination": "example.com"}}"#
        ))
    };
    let session = |headers: &'static [(&'static str, &'static str)]| {
        let shared = shared.clone();
        async move {
            let (_, _, s) = raw(&shared, "GET", "/api/session", headers, Body::empty()).await;
            serde_json::from_str::<serde_json::Value>(&s).unwrap()
        }
    };
    assert_eq!(session(&[HOST]).await["triage"], false);
    let (_, _, s) = raw(
        &shared,
        "GET",
        "/api/session",
        &[HOST, ("cookie", &cookie)],
        Body::empty(),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s).unwrap()["triage"],
        true
    );

    // Without it: refused. A cookie of another value, or of another
    // listener's name, is not it.
    let stale = format!("tetherscope={}", "0".repeat(64));
    let elsewhere = format!("tetherscope-9434={token}");
    for headers in [
        vec![HOST],
        vec![HOST, ("cookie", stale.as_str())],
        vec![HOST, ("cookie", elsewhere.as_str())],
        vec![
            HOST,
            ("cookie", cookie.as_str()),
            ("origin", "http://evil.example"),
        ],
        vec![
            HOST,
            ("cookie", cookie.as_str()),
            ("sec-fetch-site", "same-site"),
        ],
    ] {
        let (status, _, _) = raw(&shared, "POST", "/api/baseline/accept", &headers, body()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(state_of(&list, "example.com"), "new");

    let (status, _, entry) = raw(
        &shared,
        "POST",
        "/api/baseline/accept",
        &[
            HOST,
            ("cookie", &cookie),
            ("origin", "http://127.0.0.1:9433"),
            ("sec-fetch-site", "same-origin"),
        ],
        body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{entry}");
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(state_of(&list, "example.com"), "accepted");
}

#[tokio::test]
async fn triage_bodies_are_small() {
    let shared = setup();
    let token = shared.token().to_owned();
    let tok = ("x-tetherscope-token", token.as_str());
    // A valid body padded past 4 KiB.
    let padded = format!(
        r#"{{"device": "{PHONE}", "destination": "example.com"{}}}"#,
        " ".repeat(5000)
    );
    let (status, _, _) = raw(
        &shared,
        "POST",
        "/api/baseline/accept",
        &[HOST, tok],
        Body::from(padded.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The same without a declared length (a stream): still 413.
    let stream = Body::from_stream(futures_stream(padded.into_bytes()));
    let (status, _, _) = raw(
        &shared,
        "POST",
        "/api/baseline/accept",
        &[HOST, tok],
        stream,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, list) = call(&shared, "GET", "/api/baseline", &[], "").await;
    assert_eq!(state_of(&list, "example.com"), "new");
}

/// `bytes` as a body of unknown length, 1 KiB at a time.
fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Chunks(std::vec::IntoIter<Vec<u8>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Chunks(
        bytes
            .chunks(1024)
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>()
            .into_iter(),
    )
}
