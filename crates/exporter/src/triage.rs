//! The baseline over HTTP: reading is open (the listener is loopback by
//! default); changing a destination's state needs the per-process token
//! and a same-origin request.
//!
//! * `GET /api/baseline[?device=D][&state=S]`: one object per (device,
//!   destination), paged (see [`crate::paging`]).
//! * `POST /api/baseline/{accept,flag,forget}` with `{"device": D,
//!   "destination": X}`: 200 and the destination as it is now; 403 without
//!   the token or from another origin; 413 for a body over
//!   [`MAX_TRIAGE_BODY`]; 400 for a bad body; 404 for an unknown device or
//!   destination.
//! * `GET /login?token=T`: with the right token, sets the session cookie
//!   and redirects (303) to `/`; 403 otherwise.
//! * `GET /api/session`: `{"triage": bool}`, whether this request may triage.
//!
//! The token is a secret of the monitor's owner: it is in the token file
//! next to the store (0600) and in the login address `run` prints, never in
//! a response. A request proves it holds the token with the
//! `X-Tetherscope-Token` header (scripts) or with the HttpOnly,
//! SameSite=Strict cookie the login address sets (the page). Other local
//! users can read the page but not triage; a page of another origin can
//! neither send the cookie (SameSite) nor a matching `Origin`, and comparing
//! `Origin` with `Host` stops DNS rebinding.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tetherscope_baseline::{State as State_, Triage, TriageError};

use crate::paging::{self, PageQuery};
use crate::view_cache;

use crate::novelty::BaselineHandle;
use crate::page::HostPolicy;
use crate::state::Shared;

/// Header carrying the token (scripts, `curl`).
pub const TOKEN_HEADER: &str = "x-tetherscope-token";

/// The largest triage body read: a device and a destination fit many
/// times over; anything bigger is refused (413) without being kept.
pub const MAX_TRIAGE_BODY: usize = 4 << 10;

/// How long an authorised client may take to send its triage body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

fn not_found(e: &TriageError) -> Response {
    error(StatusCode::NOT_FOUND, &e.to_string())
}

/// `GET /api/baseline[?device=D][&state=S][&limit=N][&after=CURSOR]`: one
/// page of entries ordered by (MAC, destination), with an `ETag` (`304`
/// when `If-None-Match` names it) and a `Link: <...>; rel="next"` header
/// when more follow.
pub async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(handle) = &shared.baseline else {
        return error(StatusCode::NOT_FOUND, "no state store in use");
    };
    let paging = PageQuery {
        limit: q.get("limit").cloned(),
        after: q.get("after").cloned(),
    };
    let limit = match paging.limit() {
        Ok(l) => l,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let after = match paging.after.as_deref().map(paging::parse_baseline_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "after must be a cursor from a previous page",
            )
        }
    };
    let state = match q.get("state").map(|s| State_::parse(s)) {
        None => None,
        Some(Some(s)) => Some(s),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "state must be baseline, accepted, new or flagged",
            )
        }
    };
    let device = q.get("device").cloned();
    // The scan walks the whole baseline: off the async workers.
    let baseline = handle.baseline.clone();
    let page = tokio::task::spawn_blocking(move || {
        let b = baseline.lock().unwrap_or_else(|p| p.into_inner());
        b.entries_page(
            device.as_deref(),
            state,
            after.as_ref().map(|(m, d)| (m, d.as_str())),
            limit,
        )
    })
    .await;
    let (entries, more) = match page {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return not_found(&e),
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "listing failed"),
    };
    let next = entries
        .last()
        .filter(|_| more)
        .map(|e| paging::baseline_cursor(&e.mac, &e.destination));
    let body = serde_json::to_vec(&entries).unwrap_or_default();
    // Whether a next page follows is part of what the client holds: a full
    // page that stays the same while entries arrive after it is not "304".
    let etag = view_cache::etag_of(&body);
    let etag = if more {
        etag.replacen('"', "\"n", 1)
    } else {
        etag
    };
    let mut resp = if view_cache::if_none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(cursor) = next {
        let mut extra = String::new();
        for key in ["device", "state"] {
            if let Some(v) = q.get(key) {
                if !extra.is_empty() {
                    extra.push('&');
                }
                extra.push_str(&format!("{key}={}", paging::query_escape(v)));
            }
        }
        if let Some(link) = paging::next_link("/api/baseline", &extra, &cursor, limit) {
            h.insert(header::LINK, link);
        }
    }
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    device: String,
    destination: String,
}

/// `POST /api/baseline/{op}`. The body is read only once the token and
/// the origin are checked, and at most [`MAX_TRIAGE_BODY`] of it (a larger
/// declared length is refused unread).
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
        "body must be {\"device\": ..., \"destination\": ...}",
    )
    .await
    {
        Ok(checked) => checked,
        Err(resp) => return resp,
    };
    let result = handle.lock().triage(op, &req.device, &req.destination);
    match result {
        Ok(Some(entry)) => Json(entry).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "gone"),
        Err(e) => not_found(&e),
    }
}

/// The checks every triage request (destination or client) goes through,
/// in this order: a known operation (404), the token and the origin
/// ([`authorised_body`]), a body of the shape `T` (400 with `shape_error`),
/// a state store in use (404). The operation, the body and the baseline to
/// change; the refusal otherwise.
pub(crate) async fn checked_request<'a, T: DeserializeOwned>(
    shared: &'a Shared,
    policy: &HostPolicy,
    op: &str,
    req: Request,
    shape_error: &str,
) -> Result<(Triage, T, &'a BaselineHandle), Response> {
    let Some(op) = Triage::parse(op) else {
        return Err(error(StatusCode::NOT_FOUND, "no such operation"));
    };
    let body = authorised_body(shared, policy, req).await?;
    let Ok(body) = serde_json::from_slice::<T>(&body) else {
        return Err(error(StatusCode::BAD_REQUEST, shape_error));
    };
    let Some(handle) = &shared.baseline else {
        return Err(error(StatusCode::NOT_FOUND, "no state store in use"));
    };
    Ok((op, body, handle))
}

/// The body of a state-changing request, read only once the token and the
/// origin are checked, and at most [`MAX_TRIAGE_BODY`] of it (a larger
/// declared length is refused unread); the refusal otherwise.
async fn authorised_body(
    shared: &Shared,
    policy: &HostPolicy,
    req: Request,
) -> Result<axum::body::Bytes, Response> {
    let headers = req.headers();
    if !authorised(shared.token(), headers, &policy.cookie_name()) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "triage needs the login address `tetherscope open` prints (or the X-Tetherscope-Token header)",
        ));
    }
    if let Err(why) = same_origin(headers) {
        return Err(error(StatusCode::FORBIDDEN, why));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_TRIAGE_BODY as u64) {
        return Err(too_large());
    }
    read_body(req.into_body()).await
}

/// A JSON error answer: `{"error": message}`.
pub(crate) fn error_response(code: StatusCode, message: &str) -> Response {
    error(code, message)
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "triage bodies are at most 4 KiB",
    )
}

/// At most [`MAX_TRIAGE_BODY`] bytes within [`BODY_TIMEOUT`]; 413 or 408
/// otherwise.
async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_TRIAGE_BODY)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "body too slow")),
    }
}

#[derive(serde::Serialize)]
struct Session {
    /// Whether this request carries the token (cookie or header).
    triage: bool,
}

/// `GET /api/session`: whether the page may offer triage (it cannot read
/// the HttpOnly cookie itself).
pub async fn session(
    State(shared): State<Arc<Shared>>,
    Extension(policy): Extension<HostPolicy>,
    headers: HeaderMap,
) -> Response {
    let triage = authorised(shared.token(), &headers, &policy.cookie_name());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Session { triage }),
    )
        .into_response()
}

/// `GET /login?token=T`: the right token sets the session cookie and sends
/// the browser on to `/`, so the token leaves the address bar; anything
/// else is 403 and sets nothing.
pub async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(policy): Extension<HostPolicy>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = shared.token();
    let given = q.get("token").map_or(&[][..], |t| t.as_bytes());
    if !constant_time_eq(token.as_bytes(), given) {
        return error(StatusCode::FORBIDDEN, "wrong or missing token");
    }
    let cookie = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/",
        policy.cookie_name()
    );
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "unusable token");
    };
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    let h = resp.headers_mut();
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether the request carries the token, in [`TOKEN_HEADER`] or in the
/// cookie `cookie_name`.
pub fn authorised(token: &str, headers: &HeaderMap, cookie_name: &str) -> bool {
    let by_header = headers
        .get_all(TOKEN_HEADER)
        .iter()
        .any(|v| constant_time_eq(token.as_bytes(), v.as_bytes()));
    by_header || cookie_values(headers, cookie_name).any(|v| constant_time_eq(token.as_bytes(), v))
}

/// The values of every cookie named `name` in the `Cookie` headers.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter_map(move |pair| {
            let at = pair.iter().position(|&b| b == b'=')?;
            let (k, v) = (pair[..at].trim_ascii(), pair[at + 1..].trim_ascii());
            (k == name.as_bytes()).then_some(v)
        })
}

/// Compares without stopping at the first differing byte; an empty token
/// (no random source) matches nothing.
fn constant_time_eq(token: &[u8], given: &[u8]) -> bool {
    !token.is_empty()
        && given.len() == token.len()
        && given
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `host:port`, with the scheme's default port when none is given.
fn authority(host: &str, default_port: u16) -> String {
    let host = host.trim().to_ascii_lowercase();
    let has_port = match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        host
    } else {
        format!("{host}:{default_port}")
    }
}

/// Refuses cross-origin requests: an `Origin` whose host:port is not the
/// request's `Host`, or a `Sec-Fetch-Site` other than `same-origin`/`none`.
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err("cross-site request refused");
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| "bad Origin")?;
    let (scheme, rest) = origin
        .split_once("://")
        .ok_or("cross-origin request refused")?;
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return Err("cross-origin request refused"),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or("request without Host refused")?;
    if authority(rest.trim_end_matches('/'), default_port) == authority(host, default_port) {
        Ok(())
    } else {
        Err("cross-origin request refused")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origin_rules() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:9433")])).is_ok());
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9433"),
            ("origin", "http://127.0.0.1:9433")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:9433"),
            ("origin", "http://evil.example:9433")
        ]))
        .is_err());
        // DNS rebinding: the page's origin is the attacker's name.
        assert!(same_origin(&headers(&[
            ("host", "rebind.example:9433"),
            ("origin", "http://127.0.0.1:9433")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[
            ("host", "localhost"),
            ("origin", "http://localhost:80")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[("origin", "null"), ("host", "x")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")])).is_ok());
    }

    #[test]
    fn token_compare() {
        let ok = |h: &[(&'static str, &str)]| authorised("abcd", &headers(h), "ts-9433");
        assert!(ok(&[(TOKEN_HEADER, "abcd")]));
        assert!(!ok(&[(TOKEN_HEADER, "abce")]));
        assert!(!ok(&[]));
        assert!(!authorised("", &headers(&[(TOKEN_HEADER, "")]), "ts-9433"));
        assert!(ok(&[("cookie", "a=b; ts-9433=abcd; c=d")]));
        assert!(ok(&[("cookie", "ts-9433 = abcd")]));
        // Another listener's cookie, or a prefix of the token, is not it.
        assert!(!ok(&[("cookie", "ts-9434=abcd")]));
        assert!(!ok(&[("cookie", "ts-9433=abc")]));
        assert!(!ok(&[("cookie", "xts-9433=abcd")]));
        assert!(!authorised(
            "",
            &headers(&[("cookie", "ts-9433=")]),
            "ts-9433"
        ));
    }
}
