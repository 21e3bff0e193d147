//! Paging of `/api/flows` and `/api/baseline`: `limit` (bounded, with a
//! default) and `after` (an opaque cursor from the previous page). Lists
//! come in a stable order, so walking the cursor returns every item once;
//! a page that has a successor says so in a `Link: <...>; rel="next"`
//! header, and the body stays the JSON array it always was.

use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};

use axum::http::HeaderValue;
use tetherscope_flow::Flow;

/// Items per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` honoured; larger ones are clipped to it. A baseline
/// entry is a few kilobytes: a page stays a few megabytes, whoever asks.
pub const MAX_LIMIT: usize = 2_000;

/// `limit` and `after` of a request, as given.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    /// Items wanted.
    pub limit: Option<String>,
    /// The cursor of the previous page.
    pub after: Option<String>,
}

impl PageQuery {
    /// The limit to apply: the default, or the given one clipped to
    /// `MAX_LIMIT`; an error for zero or a non-number.
    pub fn limit(&self) -> Result<usize, &'static str> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(l) => match l.parse::<usize>() {
                Ok(0) | Err(_) => Err("limit must be a positive number"),
                Ok(n) => Ok(n.min(MAX_LIMIT)),
            },
        }
    }
}

/// Where a flow sits in `/api/flows`: first packet, then a hash of its
/// transport and endpoints (two flows starting in the same nanosecond
/// between the same endpoints are one flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowCursor {
    first_seen: u64,
    id: u64,
}

impl FlowCursor {
    /// The cursor of a flow.
    pub fn of(flow: &Flow) -> Self {
        // SipHash with fixed keys: stable for the life of the process,
        // which is as long as a cursor is meant to live.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (flow.transport, flow.client, flow.server).hash(&mut h);
        FlowCursor {
            first_seen: flow.first_seen,
            id: h.finish(),
        }
    }

    /// Parses the text form (`FIRSTSEEN-ID`, both hexadecimal).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        if a.is_empty() || a.len() > 16 || b.len() != 16 {
            return None;
        }
        Some(FlowCursor {
            first_seen: u64::from_str_radix(a, 16).ok()?,
            id: u64::from_str_radix(b, 16).ok()?,
        })
    }
}

impl std::fmt::Display for FlowCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}-{:016x}", self.first_seen, self.id)
    }
}

/// The cursor of a baseline entry: its MAC and destination, hexadecimal
/// (a destination is whatever the phone sent; hex keeps it URL-safe).
pub fn baseline_cursor(mac: &str, destination: &str) -> String {
    let mut out = String::with_capacity(2 * (mac.len() + 1 + destination.len()));
    for b in mac.bytes().chain([b'/']).chain(destination.bytes()) {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Parses a baseline cursor into MAC and destination.
pub fn parse_baseline_cursor(s: &str) -> Option<([u8; 6], String)> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * 2048 {
        return None;
    }
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let text = String::from_utf8(bytes).ok()?;
    let (mac, destination) = text.split_once('/')?;
    Some((
        tetherscope_baseline::parse_mac(mac)?,
        destination.to_owned(),
    ))
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Link` header pointing at the next page of `path`; `extra` is the
/// rest of the query (already URL-safe), kept from the request.
pub fn next_link(path: &str, extra: &str, cursor: &str, limit: usize) -> Option<HeaderValue> {
    let sep = if extra.is_empty() { "" } else { "&" };
    HeaderValue::from_str(&format!(
        "<{path}?{extra}{sep}limit={limit}&after={cursor}>; rel=\"next\""
    ))
    .ok()
}

/// Keeps the `limit` smallest items offered (by their key), in memory
/// proportional to `limit`, plus whether more were offered.
pub struct Smallest<K: Ord, T> {
    limit: usize,
    heap: BinaryHeap<Keyed<K, T>>,
}

struct Keyed<K, T>(K, T);

impl<K: Ord, T> PartialEq for Keyed<K, T> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl<K: Ord, T> Eq for Keyed<K, T> {}
impl<K: Ord, T> PartialOrd for Keyed<K, T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<K: Ord, T> Ord for Keyed<K, T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

impl<K: Ord + Copy, T> Smallest<K, T> {
    /// Keeps `limit` (plus one, to know whether more follow).
    pub fn new(limit: usize) -> Self {
        Smallest {
            limit,
            heap: BinaryHeap::with_capacity(limit + 2),
        }
    }

    /// Whether an item with this key would be kept: check before building
    /// a costly item.
    pub fn wants(&self, key: &K) -> bool {
        self.heap.len() <= self.limit || self.heap.peek().is_some_and(|top| *key < top.0)
    }

    /// Offers an item.
    pub fn offer(&mut self, key: K, item: T) {
        if !self.wants(&key) {
            return;
        }
        self.heap.push(Keyed(key, item));
        if self.heap.len() > self.limit + 1 {
            self.heap.pop();
        }
    }

    /// The kept items in key order (one per key), and the key of the last
    /// one when more items followed it.
    pub fn finish(self) -> (Vec<(K, T)>, Option<K>) {
        let mut items: Vec<(K, T)> = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|Keyed(k, t)| (k, t))
            .collect();
        // Counted before duplicates go: at worst a last, empty page.
        let more = items.len() > self.limit;
        items.dedup_by(|a, b| a.0 == b.0);
        items.truncate(self.limit);
        let next = if more {
            items.last().map(|(k, _)| *k)
        } else {
            None
        };
        (items, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = FlowCursor {
            first_seen: 1_700_000_000_123_456_789,
            id: 0xdead_beef,
        };
        assert_eq!(FlowCursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "-",
            "12-34",
            "zz-00000000deadbeef",
            "1-00000000deadbeefx",
        ] {
            assert_eq!(FlowCursor::parse(bad), None, "{bad}");
        }
        let b = baseline_cursor("02:00:00:00:00:01", "evil&<>.example");
        assert!(b.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            parse_baseline_cursor(&b),
            Some(([2, 0, 0, 0, 0, 1], "evil&<>.example".to_owned()))
        );
        assert_eq!(parse_baseline_cursor("zz"), None);
        assert_eq!(parse_baseline_cursor("abc"), None);
    }

    #[test]
    fn smallest_keeps_the_first_page_and_says_more_follow() {
        let mut s = Smallest::new(3);
        for k in [9u32, 4, 7, 1, 8, 4, 2] {
            s.offer(k, k * 10);
        }
        let (items, next) = s.finish();
        assert_eq!(items, vec![(1, 10), (2, 20), (4, 40)]);
        assert_eq!(next, Some(4));
        let mut s = Smallest::new(5);
        for k in [3u32, 1] {
            s.offer(k, ());
        }
        assert_eq!(s.finish().1, None);
    }
}
