//! The HTTP side: the page (`/`), `/metrics`, `/api/flows`, `/api/devices`,
//! `/api/view`, `/healthz`, and the baseline's triage API (`/api/baseline`,
//! `/login`, `/api/session`, see [`crate::triage`]). The accept loop and
//! its limits are [`crate::connections`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tetherscope_flow::devices::format_mac;

use crate::page::{self, HostPolicy};
use crate::paging::{self, FlowCursor, PageQuery};
use crate::state::Shared;

/// The exporter's routes; tests call it with `oneshot`, no socket needed.
/// Answers the loopback names on any port; a listener uses `router_on`.
pub fn router(shared: Arc<Shared>) -> Router {
    with_policy(shared, HostPolicy { listen: None })
}

/// The routes of a listener on `listen`: requests naming another host or
/// port are refused (see `crate::page::guard`).
pub fn router_on(shared: Arc<Shared>, listen: SocketAddr) -> Router {
    with_policy(
        shared,
        HostPolicy {
            listen: Some(listen),
        },
    )
}

fn with_policy(shared: Arc<Shared>, policy: HostPolicy) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/page.css", get(page::css))
        .route("/assets/page.js", get(page::js))
        .route("/api/view", get(page::view_json))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/metrics", get(metrics))
        .route("/api/flows", get(flows))
        .route("/api/devices", get(devices))
        .route("/healthz", get(healthz))
        .route("/api/baseline", get(crate::triage::list))
        .route("/api/baseline/{op}", post(crate::triage::change))
        .route("/api/clients", get(crate::clients::list))
        .route("/api/clients/{op}", post(crate::clients::change))
        .route("/api/session", get(crate::triage::session))
        .route("/login", get(crate::triage::login))
        .with_state(shared)
        .layer(axum::Extension(policy))
        .layer(axum::middleware::from_fn_with_state(policy, page::guard))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    // Rendering reads the flow table; keep it off the async workers.
    let body = tokio::task::spawn_blocking(move || crate::metrics::render(&shared))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /api/flows[?limit=N&after=CURSOR]`: one page of flow records; a
/// `Link: <...>; rel="next"` header names the next page when there is one.
async fn flows(State(shared): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    let limit = match q.limit() {
        Ok(l) => l,
        Err(why) => return bad_request(why),
    };
    let after = match q.after.as_deref().map(FlowCursor::parse) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return bad_request("after must be a cursor from a previous page"),
    };
    let Ok((records, next)) =
        tokio::task::spawn_blocking(move || shared.flow_page(after, limit)).await
    else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut resp = Json(records).into_response();
    if let Some(link) =
        next.and_then(|c| paging::next_link("/api/flows", "", &c.to_string(), limit))
    {
        resp.headers_mut().insert(header::LINK, link);
    }
    resp
}

/// A 400 with a JSON error.
pub(crate) fn bad_request(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": why })),
    )
        .into_response()
}

#[derive(Serialize)]
struct DeviceView {
    mac: String,
    name: Option<String>,
    label: String,
    addresses: Vec<String>,
    /// Seen resolving over DoT, DoQ or DoH: its DNS answers are hidden.
    private_dns: bool,
    /// The profile that judges its flows: its own, else the active one.
    profile: String,
    /// OS, vendor, announced names and model.
    #[serde(flatten)]
    identity: tetherscope_view::identity::Identity,
}

async fn devices(State(shared): State<Arc<Shared>>) -> Json<Vec<DeviceView>> {
    let list = shared
        .devices
        .snapshot()
        .into_iter()
        .map(|d| DeviceView {
            mac: format_mac(&d.mac),
            label: shared
                .devices
                .label(&d.mac)
                .unwrap_or_else(|| format_mac(&d.mac)),
            name: d.name.as_deref().map(str::to_owned),
            private_dns: shared.uses_private_dns(&d.mac),
            identity: tetherscope_view::identity::Identity::of_installed(&d),
            addresses: d.addresses.iter().map(|a| a.to_string()).collect(),
            profile: shared
                .baseline
                .as_ref()
                .and_then(|b| b.own_profile(&d.mac, d.name.as_deref()))
                .unwrap_or(shared.catalog.profile())
                .name
                .clone(),
        })
        .collect();
    Json(list)
}

#[derive(Serialize)]
struct Health {
    capture_attached: bool,
    interface: String,
    last_packet_age_seconds: Option<u64>,
    packets: u64,
    active_flows: usize,
}

async fn healthz(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Health>) {
    let cap = &shared.capture;
    let last = cap.last_packet_unix_ns.load(Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let health = Health {
        capture_attached: cap.attached.load(Relaxed),
        interface: cap.interface.lock().map(|i| i.clone()).unwrap_or_default(),
        last_packet_age_seconds: (last != 0).then(|| now.saturating_sub(last) / 1_000_000_000),
        packets: cap.packets.load(Relaxed),
        active_flows: shared.table.len(),
    };
    let code = if health.capture_attached {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(health))
}
