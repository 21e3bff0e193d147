//! The cost of the read-only API under load: many active flows, many
//! concurrent requests, a large baseline. The view is computed once per
//! interval and shared, bounded at any table size; `/api/flows` and
//! `/api/baseline` come in bounded pages whose cursors walk every item
//! exactly once; an unchanged view or page answers `304`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tetherscope_baseline::{Baseline, Entry, Settings};
use tetherscope_classify::Catalog;
use tetherscope_exporter::novelty::BaselineHandle;
use tetherscope_exporter::paging::{DEFAULT_LIMIT, MAX_LIMIT};
use tetherscope_exporter::Shared;
use tetherscope_flow::flow::{AppProto, Names};
use tetherscope_flow::{Flow, Pipeline, PipelineConfig, Transport};
use tower::ServiceExt;

const T0: u64 = 1_700_000_000_000_000_000;

/// A TLS flow from one of four phones to its own name and server.
fn flow(i: u32) -> Flow {
    let phone = i % 4;
    let client = format!("10.42.0.{}:{}", 10 + phone, 1024 + (i / 4) % 60_000);
    let server = format!("[2001:db8::{:x}:{:x}]:443", i >> 16, i & 0xffff);
    let mut f = Flow::new(
        Transport::Tcp,
        client.parse().unwrap(),
        server.parse().unwrap(),
        T0 + u64::from(i) * 1000,
    );
    f.last_seen = f.first_seen + 1_000_000;
    f.client_mac = Some([0x02, 0, 0, 0, 0, phone as u8]);
    f.app = AppProto::Tls;
    f.bytes_up = 100 + u64::from(i % 977);
    f.bytes_down = 1000;
    f.names = Some(Box::new(Names {
        sni: Some(format!("host{i}.site{}.example", i % 5000).into()),
        ..Names::default()
    }));
    f
}

/// An exporter whose table holds `active` flows and that retired
/// `finished` more.
fn loaded(active: u32, finished: u32) -> (Pipeline, Shared) {
    let pipeline = Pipeline::new(&PipelineConfig::default());
    let shared = Shared::new(&pipeline, Arc::new(Catalog::builtin()), 500);
    for i in 0..active {
        pipeline.table.insert(flow(i));
    }
    for i in active..active + finished {
        shared.retire(&flow(i));
    }
    (pipeline, shared)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn get(shared: &Arc<Shared>, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder()
        .uri(path)
        .header(header::HOST, "127.0.0.1:9433");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tetherscope_exporter::router(shared.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    Reply {
        status: resp.status(),
        headers: resp.headers().clone(),
        body: resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    }
}

/// The `after` of a `Link: <...>; rel="next"` header.
fn next_after(r: &Reply) -> Option<String> {
    let link = r.headers.get(header::LINK)?.to_str().unwrap();
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    let url = link.strip_prefix('<')?.split('>').next()?;
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("after="))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_views_cost_one_computation() {
    let (_p, shared) = loaded(20_000, 100);
    let shared = Arc::new(shared.with_view_interval(Duration::from_secs(3600)));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = shared.clone();
        let path = if i % 2 == 0 { "/api/view" } else { "/" };
        tasks.push(tokio::spawn(async move { get(&s, path, &[]).await }));
    }
    let mut bodies = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        if r.headers[header::CONTENT_TYPE] == "application/json" {
            bodies.insert(r.body);
        }
    }
    assert_eq!(shared.view_cache().computations(), 1);
    assert_eq!(bodies.len(), 1, "every request got the same view");
}

/// Clients that ask and hang up at once do not start computations side by
/// side: the one started goes on, and the next requests wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_hangs_up_does_not_start_a_second_computation() {
    let (_p, shared) = loaded(60_000, 0);
    let shared = Arc::new(shared.with_view_interval(Duration::from_secs(3600)));
    // The first client hangs up while the view is computed; the next ones
    // may come during that computation or after it (then the cache answers):
    // either way no second computation starts.
    for i in 0..3 {
        let gone =
            tokio::time::timeout(Duration::from_millis(5), get(&shared, "/api/view", &[])).await;
        if i == 0 {
            assert!(gone.is_err(), "the view took less than 5 ms: no test");
        }
    }
    let r = get(&shared, "/api/view", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(shared.view_cache().computations(), 1);
}

#[tokio::test]
async fn the_view_is_recomputed_after_its_interval() {
    let (p, shared) = loaded(10, 0);
    // An interval long enough that the second request falls inside it even
    // on a loaded machine.
    let shared = Arc::new(shared.with_view_interval(Duration::from_secs(2)));
    let first = get(&shared, "/api/view", &[]).await;
    p.table.insert(flow(10));
    let cached = get(&shared, "/api/view", &[]).await;
    assert!(first.body == cached.body, "served from the cache");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let fresh = get(&shared, "/api/view", &[]).await;
    assert!(
        first.body != fresh.body,
        "the new flow shows after the interval"
    );
    assert_eq!(shared.view_cache().computations(), 2);
}

#[tokio::test]
async fn an_unchanged_view_answers_304() {
    let (_p, shared) = loaded(50, 50);
    let shared = Arc::new(shared.with_view_interval(Duration::ZERO));
    let first = get(&shared, "/api/view", &[]).await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_owned();
    let again = get(&shared, "/api/view", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.headers[header::ETAG].to_str().unwrap(), etag);
    // Recomputed (interval zero), same data, same tag.
    assert_eq!(shared.view_cache().computations(), 2);
    let other = get(&shared, "/api/view", &[("if-none-match", "\"0\"")]).await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.body == first.body);
}

/// 150,000 active flows to 150,000 names under 5,000 registrable domains
/// on four phones: the view lists 200 active flows and each device's 256
/// busiest destinations, and counts the rest.
#[tokio::test]
async fn the_view_stays_bounded_at_150k_active_flows() {
    let (_p, shared) = loaded(150_000, 0);
    let shared = Arc::new(shared);
    let r = get(&shared, "/api/view", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["flows"], 150_000);
    assert_eq!(v["active"].as_array().unwrap().len(), 200);
    assert_eq!(v["active_more"], 150_000 - 200);
    // The most recent first.
    let last: Vec<f64> = v["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["last_seen"].as_f64().unwrap())
        .collect();
    assert!(last.windows(2).all(|w| w[0] >= w[1]));
    assert!((last[0] - (T0 as f64 + 149_999_000.0 + 1_000_000.0) / 1e9).abs() < 1e-3);
    let devices = v["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 4);
    for d in devices {
        assert_eq!(
            d["destinations"].as_array().unwrap().len(),
            256,
            "{}",
            d["mac"]
        );
        // 1,250 domains per phone, 512 kept, 256 listed.
        assert_eq!(d["destinations_more"], 512 - 256);
    }
    assert!(r.body.len() < 4_000_000, "{} bytes", r.body.len());
    let page = get(&shared, "/", &[]).await;
    assert!(page.body.len() < 4_000_000, "{} bytes", page.body.len());
    let html = String::from_utf8_lossy(&page.body);
    assert!(html.contains("149800 more active connections"));
    assert!(html.contains("256 more destinations"));
}

#[tokio::test]
async fn flows_come_in_pages_that_walk_every_flow_once() {
    let (_p, shared) = loaded(2_500, 300);
    let shared = Arc::new(shared);
    let first = get(&shared, "/api/flows", &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    let records: Vec<serde_json::Value> = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(records.len(), DEFAULT_LIMIT);
    assert!(next_after(&first).is_some());

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            None => "/api/flows?limit=700".to_owned(),
            Some(a) => format!("/api/flows?limit=700&after={a}"),
        };
        let r = get(&shared, &path, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let page: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
        assert!(page.len() <= 700);
        seen.extend(page.iter().map(|f| {
            (
                f["server_ip"].as_str().unwrap().to_owned(),
                f["client_port"].as_u64().unwrap(),
            )
        }));
        pages += 1;
        match next_after(&r) {
            Some(a) => after = Some(a),
            None => break,
        }
        assert!(pages < 10, "the cursor does not advance");
    }
    assert_eq!(pages, 4);
    let distinct: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 2_800, "active and finished flows, each once");
    assert_eq!(distinct.len(), 2_800);

    let huge = get(&shared, "/api/flows?limit=1000000", &[]).await;
    let huge: Vec<serde_json::Value> = serde_json::from_slice(&huge.body).unwrap();
    assert_eq!(huge.len(), 2_800.min(MAX_LIMIT));
    for bad in ["limit=0", "limit=x", "after=nonsense", "after=1-2"] {
        let r = get(&shared, &format!("/api/flows?{bad}"), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

/// Two phones with 3,000 destinations each.
/// Destination `i` of phone `phone`: every tenth one `new`.
fn entry(phone: u8, i: i32) -> Entry {
    let mac = format!("02:00:00:00:00:{phone:02x}");
    Entry {
        device: mac.clone(),
        mac,
        randomised: true,
        destination: format!("dest{i}.example"),
        state: if i % 10 == 0 { "new" } else { "baseline" }.into(),
        purpose: "unknown".into(),
        owner: None,
        service: None,
        first_seen: 1_700_000_000.0,
        last_seen: 1_700_000_100.0,
        flows: 1,
        bytes_up: 1,
        bytes_down: 1,
        cleartext_bytes: 0,
        names: vec![],
    }
}

fn with_baseline() -> Arc<Shared> {
    let pipeline = Pipeline::new(&PipelineConfig::default());
    let mut baseline = Baseline::new(Settings::default());
    let mut entries = Vec::new();
    for phone in 1..=2u8 {
        for i in 0..3_000 {
            entries.push(entry(phone, i));
        }
    }
    baseline.import(&entries).unwrap();
    let handle = BaselineHandle::new(baseline, None);
    Arc::new(Shared::new(&pipeline, Arc::new(Catalog::builtin()), 500).with_baseline(handle))
}

async fn walk(shared: &Arc<Shared>, query: &str) -> (Vec<(String, String)>, usize) {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            None => format!("/api/baseline?{query}"),
            Some(a) => format!("/api/baseline?{query}&after={a}"),
        };
        let r = get(shared, &path, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let page: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
        seen.extend(page.iter().map(|e| {
            (
                e["mac"].as_str().unwrap().to_owned(),
                e["destination"].as_str().unwrap().to_owned(),
            )
        }));
        pages += 1;
        match next_after(&r) {
            Some(a) => after = Some(a),
            None => break,
        }
        assert!(pages < 100, "the cursor does not advance");
    }
    (seen, pages)
}

#[tokio::test]
async fn baseline_comes_in_pages_that_walk_every_entry_once() {
    let shared = with_baseline();
    let first = get(&shared, "/api/baseline", &[]).await;
    let page: Vec<serde_json::Value> = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(page.len(), DEFAULT_LIMIT);

    let (seen, pages) = walk(&shared, "limit=1000").await;
    assert_eq!(pages, 6);
    assert_eq!(seen.len(), 6_000);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ordered by (MAC, destination), each once");

    let (new, _) = walk(&shared, "state=new&limit=250").await;
    assert_eq!(new.len(), 600);
    let (one, _) = walk(&shared, "device=02%3A00%3A00%3A00%3A00%3A02&limit=999").await;
    assert_eq!(one.len(), 3_000);
    assert!(one.iter().all(|(mac, _)| mac == "02:00:00:00:00:02"));
    for bad in ["state=odd", "limit=-1", "after=zz"] {
        let r = get(&shared, &format!("/api/baseline?{bad}"), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn an_unchanged_baseline_page_answers_304() {
    let shared = with_baseline();
    let first = get(&shared, "/api/baseline?state=new", &[]).await;
    let etag = first.headers[header::ETAG].to_str().unwrap().to_owned();
    let again = get(
        &shared,
        "/api/baseline?state=new",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
}

/// A full page that stays the same while an entry arrives after it is not
/// "unchanged": the client must learn that a next page now exists.
#[tokio::test]
async fn a_full_page_with_a_new_successor_is_not_304() {
    let shared = with_baseline();
    let query = "/api/baseline?state=new&limit=600";
    let first = get(&shared, query, &[]).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(
        !first.headers.contains_key(header::LINK),
        "600 new entries: one page"
    );
    let etag = first.headers[header::ETAG].to_str().unwrap().to_owned();
    let late = entry(3, 0);
    assert_eq!(late.state, "new");
    shared
        .baseline
        .as_ref()
        .unwrap()
        .lock()
        .import(&[late])
        .unwrap();
    let again = get(&shared, query, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, StatusCode::OK, "a next page appeared");
    assert!(again.headers.contains_key(header::LINK));
    assert!(again.body == first.body, "the page itself is the same");
}
