//! The page's view, computed at most once per interval and shared.
//!
//! Computing the view walks every active flow; with a large table that is
//! the dearest thing a client can ask for. Every `/` and `/api/view` takes
//! the view from here: the first request after the interval computes it
//! (off the async workers), requests arriving meanwhile wait for that one
//! computation, and all of them get the same view, JSON and entity tag.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

use crate::state::Shared;
use crate::view::View;

/// How long a computed view is served before the next request recomputes
/// it.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// One computed view.
#[derive(Debug)]
pub struct Computed {
    /// The view.
    pub view: View,
    /// Its JSON, as `/api/view` sends it.
    pub json: Bytes,
    /// Its entity tag (quoted), a hash of the JSON: an unchanged view keeps
    /// its tag, so a poll that sends it back gets `304 Not Modified`.
    pub etag: String,
    at: Instant,
}

impl Computed {
    /// Whether a request's `If-None-Match` names this view.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        if_none_match(headers, &self.etag)
    }
}

/// Whether `If-None-Match` lists `etag` (weak or strong) or is `*`.
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// A quoted entity tag for a body.
pub fn etag_of(body: &[u8]) -> String {
    // SipHash with fixed keys: the same body gives the same tag for the
    // life of the process, which is all a tag must do.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut h);
    format!("\"{:016x}\"", h.finish())
}

/// The shared slot.
#[derive(Debug)]
pub struct ViewCache {
    interval: Duration,
    slot: tokio::sync::Mutex<Option<Arc<Computed>>>,
    computations: AtomicU64,
}

impl ViewCache {
    /// An empty cache serving each view for `interval`.
    pub fn new(interval: Duration) -> Self {
        ViewCache {
            interval,
            slot: tokio::sync::Mutex::new(None),
            computations: AtomicU64::new(0),
        }
    }

    /// Views computed so far.
    pub fn computations(&self) -> u64 {
        self.computations.load(Relaxed)
    }
}

impl Default for ViewCache {
    fn default() -> Self {
        ViewCache::new(DEFAULT_INTERVAL)
    }
}

/// The current view: the cached one while it is younger than the interval,
/// else a new one (computed once however many requests wait for it).
/// `None` when the computation failed.
pub async fn current(shared: &Arc<Shared>) -> Option<Arc<Computed>> {
    // A task of its own: a client that goes away does not cancel it, so the
    // slot stays locked until the view is in it, and clients that connect
    // and drop cannot start computations side by side.
    let s = shared.clone();
    tokio::spawn(async move { get_or_compute(&s).await })
        .await
        .ok()
        .flatten()
}

async fn get_or_compute(shared: &Arc<Shared>) -> Option<Arc<Computed>> {
    let cache = shared.view_cache();
    // Held across the computation: later requests queue here and then find
    // the fresh view.
    let mut slot = cache.slot.lock().await;
    if let Some(c) = slot.as_ref() {
        if c.at.elapsed() < cache.interval {
            return Some(c.clone());
        }
    }
    // The old view goes before the new one is built, so at most one is held.
    *slot = None;
    let s = shared.clone();
    let computed = tokio::task::spawn_blocking(move || compute(&s))
        .await
        .ok()?;
    let computed = Arc::new(computed);
    *slot = Some(computed.clone());
    Some(computed)
}

fn compute(shared: &Shared) -> Computed {
    shared.view_cache().computations.fetch_add(1, Relaxed);
    let view = crate::page::current_view(shared);
    let json = serde_json::to_vec(&view).unwrap_or_default();
    Computed {
        etag: etag_of(&json),
        json: Bytes::from(json),
        view,
        at: Instant::now(),
    }
}
