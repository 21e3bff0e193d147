//! New software on a device: the TLS clients (JA4 fingerprints) the
//! baseline learned per device, as metrics and over HTTP.
//!
//! * `tetherscope_new_clients_total{device}`: clients that became `new`
//!   since the monitor started, read from the baseline's device table at
//!   scrape time; every tracked device has its series (0 until one does),
//!   so the first new client is growth Prometheus sees.
//! * `GET /api/clients[?device=D][&state=S]`: every client of the baseline
//!   (of one device, in one state) with the first destinations it
//!   contacted; at most devices × per-device cap entries.
//! * `POST /api/clients/{accept,flag,forget}` with `{"client": JA4,
//!   "device": D}` (`device` left out: every device that used the client):
//!   the same token and same-origin rules as `/api/baseline` (see
//!   [`crate::triage`]); 200 and the clients as they are now, 404 for an
//!   unknown device or client.
//!
//! The fingerprint is whatever the device's ClientHello made it: never a
//! label value (only the device is), always escaped where shown.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use tetherscope_baseline::State as State_;

use crate::metrics::Builder;
use crate::novelty::BaselineHandle;
use crate::page::HostPolicy;
use crate::state::Shared;
use crate::triage::{checked_request, error_response as error};

/// Clients that became new to their device, by device.
pub const NEW_CLIENTS: &str = "tetherscope_new_clients_total";
/// Clients in the baseline, by state.
pub const BASELINE_CLIENTS: &str = "tetherscope_baseline_clients";
/// Clients the baseline dropped or refused, by reason.
pub const BASELINE_CLIENTS_DROPPED: &str = "tetherscope_baseline_clients_dropped_total";

/// The client families, from the baseline's tables (copied under its lock,
/// labelled after it).
pub(crate) fn families(shared: &Shared, handle: &BaselineHandle, b: &mut Builder<'_>) {
    let (per_device, states, dropped) = {
        let bl = handle.lock();
        let mut states: HashMap<&'static str, i64> = HashMap::new();
        let per_device: Vec<([u8; 6], u64)> = bl
            .devices()
            .iter()
            .map(|(mac, d)| {
                for c in d.clients.values() {
                    *states.entry(c.state.as_str()).or_default() += 1;
                }
                (*mac, d.new_clients)
            })
            .collect();
        (
            per_device,
            states,
            (bl.clients_evicted, bl.clients_expired, bl.clients_refused),
        )
    };
    // Devices the device table cannot name share its `other` label.
    let mut by_label: HashMap<String, u64> = HashMap::new();
    for (mac, n) in per_device {
        *by_label.entry(shared.device_name(mac)).or_default() += n;
    }
    let mut rows: Vec<(Vec<String>, u64)> =
        by_label.into_iter().map(|(d, n)| (vec![d], n)).collect();
    rows.sort();
    b.counter(
        NEW_CLIENTS,
        "TLS clients (JA4 fingerprints) first seen on a device after it finished learning: new software on the device.",
        &["device"],
        rows,
    );
    b.state_gauge(
        BASELINE_CLIENTS,
        "TLS clients in the per-device baseline, by state.",
        &states,
    );
    b.reason_counter(
        BASELINE_CLIENTS_DROPPED,
        "TLS clients the baseline forgot (capacity: the device's least recently seen; retention) or refused (malformed fingerprint).",
        &[
            ("capacity", dropped.0),
            ("retention", dropped.1),
            ("malformed", dropped.2),
        ],
    );
}

/// `GET /api/clients[?device=D][&state=S]`: every client, sorted by device
/// then first seen.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(handle) = &shared.baseline else {
        return error(StatusCode::NOT_FOUND, "no state store in use");
    };
    let state = match q.get("state").map(|s| State_::parse(s)) {
        None => None,
        Some(Some(s)) => Some(s.as_str()),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "state must be baseline, accepted, new or flagged",
            )
        }
    };
    let device = q.get("device").cloned();
    // Up to devices × per-device cap entries: off the async workers.
    let baseline = handle.baseline.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let b = baseline.lock().unwrap_or_else(|p| p.into_inner());
        b.client_entries(device.as_deref())
    })
    .await;
    let mut entries = match listed {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"),
    };
    if let Some(state) = state {
        entries.retain(|e| e.state == state);
    }
    let mut resp = Json(entries).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    client: String,
    #[serde(default)]
    device: Option<String>,
}

/// `POST /api/clients/{op}`: accept, flag or forget a client of a device
/// (or of every device that used it).
pub async fn change(
    State(shared): State<Arc<Shared>>,
    Extension(policy): Extension<HostPolicy>,
    Path(op): Path<String>,
    req: Request,
) -> Response {
    let (op, req, handle) = match checked_request::<ChangeBody>(
        &shared,
        &policy,
        &op,
        req,
        "body must be {\"client\": ..., \"device\": ...}",
    )
    .await
    {
        Ok(checked) => checked,
        Err(resp) => return resp,
    };
    let result = handle
        .lock()
        .triage_client(op, req.device.as_deref(), &req.client);
    match result {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}
