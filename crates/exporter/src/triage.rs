//! The baseline over HTTP: reading is open (the listener is loopback by
//! default); changing a destination's state needs the per-process token
//! and a same-origin request.
//!
//! * `GET /api/baseline[?device=D][&state=S]`: one object per (device,
//!   destination), paged (see [`crate::paging`]).
//! * `POST /api/baseline/{accept,flag,forget}` with `{"device": D,
//!   "destination": X}`: 200 and the destination as it is now; 403 without
//!   the token (`X-Tetherscope-Token`) or from another origin; 400 for a
//!   bad body; 404 for an unknown device or destination.
//!
//! The token stops other local programs' and web pages' requests: a page
//! of another origin can neither read it nor send a matching `Origin`, and
//! comparing `Origin` with `Host` stops DNS rebinding.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tetherscope_baseline::{State as State_, Triage, TriageError};

use crate::paging::{self, PageQuery};
use crate::view_cache;

use crate::state::Shared;

/// Header carrying the token.
pub const TOKEN_HEADER: &str = "x-tetherscope-token";

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
    let etag = view_cache::etag_of(&body);
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

/// `POST /api/baseline/{op}`.
pub async fn change(
    State(shared): State<Arc<Shared>>,
    Path(op): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(op) = Triage::parse(&op) else {
        return error(StatusCode::NOT_FOUND, "no such operation");
    };
    if !token_matches(shared.token(), &headers) {
        return error(
            StatusCode::FORBIDDEN,
            "missing or wrong X-Tetherscope-Token",
        );
    }
    if let Err(why) = same_origin(&headers) {
        return error(StatusCode::FORBIDDEN, why);
    }
    let Ok(req) = serde_json::from_slice::<ChangeBody>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be {\"device\": ..., \"destination\": ...}",
        );
    };
    let Some(handle) = &shared.baseline else {
        return error(StatusCode::NOT_FOUND, "no state store in use");
    };
    let result = handle.lock().triage(op, &req.device, &req.destination);
    match result {
        Ok(Some(entry)) => Json(entry).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "gone"),
        Err(e) => not_found(&e),
    }
}

/// Compares the token without stopping at the first differing byte.
fn token_matches(token: &str, headers: &HeaderMap) -> bool {
    let Some(given) = headers.get(TOKEN_HEADER).map(|v| v.as_bytes()) else {
        return false;
    };
    !token.is_empty()
        && given.len() == token.len()
        && given
            .iter()
            .zip(token.as_bytes())
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
        assert!(token_matches("abcd", &headers(&[(TOKEN_HEADER, "abcd")])));
        assert!(!token_matches("abcd", &headers(&[(TOKEN_HEADER, "abce")])));
        assert!(!token_matches("abcd", &headers(&[])));
        assert!(!token_matches("", &headers(&[(TOKEN_HEADER, "")])));
    }
}
