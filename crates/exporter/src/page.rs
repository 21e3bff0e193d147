//! The live page at `/`, its assets, `/api/view`, and the guard every
//! response of the listener goes through (Host check, security headers).
//!
//! The page is drawn on the server (it reads without JavaScript); its
//! script (`assets/page.js`, served from the binary) then polls
//! `/api/view` and the baseline API and redraws with DOM calls and
//! `textContent` only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::html;
use crate::state::Shared;
use crate::view::{Seen, View};
use crate::view_cache;

/// The page's stylesheet (also inlined into reports).
pub use crate::html::CSS;
/// The page's script.
pub const JS: &str = include_str!("../assets/page.js");

/// The Content-Security-Policy of every response: nothing but this origin's
/// own script, style and JSON; no framing, no forms, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Which `Host` headers the listener answers (DNS rebinding defence: a page
/// on another origin that resolves its name to 127.0.0.1 still sends its
/// own name as `Host`, and is refused).
#[derive(Debug, Clone, Copy)]
pub struct HostPolicy {
    /// The listen address; `None` accepts the loopback names on any port
    /// (for `oneshot` tests that have no socket).
    pub listen: Option<SocketAddr>,
}

impl HostPolicy {
    /// Whether a `Host` header value is this listener's.
    pub fn allows(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        let name = name.to_ascii_lowercase();
        let loopback_name = matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]");
        let Some(listen) = self.listen else {
            return loopback_name;
        };
        let listen_name = match listen.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let name_ok = loopback_name || name == listen_name;
        // A Host without a port means port 80.
        name_ok && port.unwrap_or(80) == listen.port()
    }

    /// The session cookie's name. Browsers send a cookie to every port of
    /// a host, so the port is in the name: two monitors on one laptop keep
    /// their sessions apart.
    pub fn cookie_name(&self) -> String {
        match self.listen {
            Some(listen) => format!("tetherscope-{}", listen.port()),
            None => "tetherscope".to_owned(),
        }
    }
}

/// `name[:port]` or `[v6]:port` into name and port; a malformed port makes
/// the port unparseable (so it never matches).
fn split_host(host: &str) -> (&str, Option<u16>) {
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => (&host[..=end], host[end + 1..].strip_prefix(':')),
            None => (host, None),
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    match port {
        None => (name, None),
        Some(p) => (name, Some(p.parse().unwrap_or(0))),
    }
}

/// Refuses requests not addressed to this listener and adds the security
/// headers to every response: two `Host` headers, or none in HTTP/1.1, are
/// 400; a `Host` or an absolute-form target naming another host or port is
/// 421. (HTTP/1.0 clients without `Host` cannot be a rebinding browser;
/// requests without a socket, from tests, need no `Host`.)
pub async fn guard(State(policy): State<HostPolicy>, req: Request, next: Next) -> Response {
    let mut resp = match addressed_to_us(&policy, &req) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    };
    secure(resp.headers_mut());
    resp
}

const FOREIGN_HOST: &str = "tetherscope answers only to its own address (localhost, 127.0.0.1, [::1] or the listen address, with its port)\n";

fn addressed_to_us(policy: &HostPolicy, req: &Request) -> Result<(), (StatusCode, &'static str)> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err((StatusCode::BAD_REQUEST, "more than one Host header\n"));
    }
    match host {
        Some(h) if !h.to_str().is_ok_and(|h| policy.allows(h)) => {
            return Err((StatusCode::MISDIRECTED_REQUEST, FOREIGN_HOST));
        }
        None if policy.listen.is_some() && req.version() >= Version::HTTP_11 => {
            return Err((StatusCode::BAD_REQUEST, "HTTP/1.1 request without Host\n"));
        }
        _ => {}
    }
    // An absolute-form target (`GET http://host/ HTTP/1.1`) names the host
    // that counts.
    if let Some(authority) = req.uri().authority() {
        if !policy.allows(authority.as_str()) {
            return Err((StatusCode::MISDIRECTED_REQUEST, FOREIGN_HOST));
        }
    }
    Ok(())
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// The whole view now: finished flows folded so far plus the active ones,
/// each destination with its baseline state when a store is in use.
/// Requests take it through [`crate::view_cache`], which computes it at
/// most once per interval.
pub fn current_view(shared: &Shared) -> View {
    let mut builder = shared.view_aggregate().builder();
    // One record at a time: the table's size costs time, not memory.
    let annotator = shared.annotator();
    shared.table.for_each(|f| {
        let a = annotator.active(f);
        builder.add_active(&Seen::of(f, a.blind_spot), &a.record);
    });
    let devices = shared.devices.snapshot();
    let mut view = builder.finish(&devices);
    // The profile that judged each device: its own, else the active one.
    for device in &mut view.devices {
        let mac = tetherscope_baseline::parse_mac(&device.mac);
        let own = shared
            .baseline
            .as_ref()
            .zip(mac)
            .and_then(|(b, mac)| b.own_profile(&mac, device.dhcp_name.as_deref()));
        device.profile = Some(own.unwrap_or(shared.catalog.profile()).name.clone());
    }
    if let Some(handle) = &shared.baseline {
        let baseline = handle.lock();
        for device in &mut view.devices {
            let Some(mac) = tetherscope_baseline::parse_mac(&device.mac) else {
                continue;
            };
            for d in &mut device.destinations {
                d.novelty = baseline.state_of(&mac, &d.destination).map(|s| s.as_str());
            }
        }
    }
    view
}

/// The page document. It holds no secret: every loopback user may fetch
/// it (triage access is the session cookie's, see `crate::triage`).
pub fn document(view: &View, footer: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>tetherscope</title>"#,
    );
    out.push_str(
        r#"<link rel="stylesheet" href="/assets/page.css"><script src="/assets/page.js" defer></script></head><body>"#,
    );
    out.push_str(&body(view));
    out.push_str(footer);
    out.push_str("</body></html>");
    out
}

fn body(view: &View) -> String {
    format!(
        r##"<a class="skip" href="#devices">Skip to devices</a>
<header><h1>tetherscope</h1><p class="meta" id="status" role="status">{flows} flows · {devices} devices · drawn {now}</p>
<nav aria-label="Sections"><ul><li><a href="#triage">Triage</a></li><li><a href="#clients">New software</a></li><li><a href="#charts">Charts</a></li><li><a href="#devices">Devices</a></li><li><a href="#active">Active now</a></li><li><a href="#blind">Blind spots</a></li></ul></nav></header>
<main>
<section id="triage" aria-labelledby="triage-h"><h2 id="triage-h">New destinations awaiting triage</h2><p id="triage-status" class="meta" role="status"></p><div id="triage-body"><p class="empty">Needs the page's script and the baseline store.</p></div></section>
<section id="clients" aria-labelledby="clients-h"><h2 id="clients-h">New software awaiting triage</h2><p id="clients-status" class="meta" role="status"></p><div id="clients-body"><p class="empty">Needs the page's script and the baseline store.</p></div></section>
<section id="charts" aria-labelledby="charts-h"><h2 id="charts-h">Traffic</h2><div class="charts"><figure><figcaption>Bytes by purpose over time</figcaption><div id="timeline-body">{timeline}</div></figure><figure><figcaption>Busiest destinations</figcaption><div id="top-body">{top}</div></figure></div></section>
<section id="devices" aria-labelledby="devices-h"><h2 id="devices-h">Devices and their destinations</h2><div id="devices-body">{devices_html}</div></section>
<section id="active" aria-labelledby="active-h"><h2 id="active-h">Active now</h2><div id="active-body">{active}</div></section>
<section id="blind" aria-labelledby="blind-h"><h2 id="blind-h">Blind spots</h2><div id="blind-body">{blind}</div></section>
</main>"##,
        flows = view.flows,
        devices = view.devices.len(),
        now = html::text(&html::time(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        )),
        active = html::active(view),
        timeline = html::timeline_svg(&view.timeline),
        top = html::top_svg(view),
        devices_html = html::devices(view, false),
        blind = html::blind_spots(view),
    )
}

/// `GET /`.
pub async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let Some(computed) = view_cache::current(&shared).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let footer = tetherscope_view::sources::footer(&tetherscope_view::sources::data_sources(
        &shared.catalog,
        &shared.network,
    ));
    let doc = tokio::task::spawn_blocking(move || document(&computed.view, &footer))
        .await
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        doc,
    )
        .into_response()
}

/// `GET /api/view`: the shared view's JSON with its `ETag`; `304 Not
/// Modified` when `If-None-Match` names the current one.
pub async fn view_json(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(computed) = view_cache::current(&shared).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let etag = HeaderValue::from_str(&computed.etag).ok();
    let mut resp = if computed.matches(&headers) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            computed.json.clone(),
        )
            .into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(etag) = etag {
        h.insert(header::ETAG, etag);
    }
    resp
}

/// `GET /assets/page.css`.
pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// `GET /assets/page.js`.
pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_policy() {
        let p = HostPolicy {
            listen: Some("127.0.0.1:9433".parse().unwrap()),
        };
        for ok in [
            "127.0.0.1:9433",
            "localhost:9433",
            "[::1]:9433",
            "LOCALHOST:9433",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:9433",
            "127.0.0.1:9434",
            "127.0.0.1",
            "localhost.evil.example:9433",
            "127.0.0.1:9433:1",
            "[::1]",
            "",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let v6 = HostPolicy {
            listen: Some("[2001:db8::1]:80".parse().unwrap()),
        };
        assert!(v6.allows("[2001:db8::1]"));
        assert!(!v6.allows("[2001:db8::2]"));
        let any_port = HostPolicy { listen: None };
        assert!(any_port.allows("127.0.0.1:1234"));
        assert!(!any_port.allows("rebind.example:1234"));
    }
}
