//! Pipeline counters. Plain atomics, updated by the capture thread and read
//! by anyone; monotonic, so a scrape never sees them go backwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// A fragmented datagram that is not UDP (not reassembled).
pub const FRAGMENT_NOT_UDP: &str = "fragment_not_udp";
/// A ClientHello longer than the per-flow buffer.
pub const CLIENT_HELLO_TOO_LONG: &str = "client_hello_too_long";
/// An HTTP request head longer than the per-flow buffer.
pub const HTTP_HEAD_TOO_LONG: &str = "http_head_too_long";
/// A handshake given up because all reassembly buffers together were full.
pub const HANDSHAKE_MEMORY_FULL: &str = "handshake_memory_full";
/// A TCP flow whose dissector state was missing (an internal invariant; its
/// dissection stops). Not in [`PIPELINE_REASONS`]: a series appears only if
/// it ever happens.
pub const DISSECTOR_STATE_MISSING: &str = "dissector_state_missing";
/// A DHCP client message whose client hardware address is not the
/// frame's source MAC: it names and identifies no one.
pub const DHCP_CLIENT_MISMATCH: &str = "dhcp_client_mismatch";
/// A name or model announced over mDNS that was not kept: not UTF-8,
/// control characters, or longer than a DNS label.
pub const MDNS_NAME_REJECTED: &str = "mdns_name_rejected";
/// Reasons the pipeline itself counts, beside the dissectors' errors.
pub const PIPELINE_REASONS: [&str; 6] = [
    FRAGMENT_NOT_UDP,
    CLIENT_HELLO_TOO_LONG,
    HTTP_HEAD_TOO_LONG,
    HANDSHAKE_MEMORY_FULL,
    DHCP_CLIENT_MISMATCH,
    MDNS_NAME_REJECTED,
];

/// Counters of what the pipeline saw and skipped.
///
/// Every known reason starts at zero, so its series exists (and dashboards
/// and `rate()` see it) before the first occurrence.
#[derive(Debug)]
pub struct Stats {
    /// Frames ingested.
    pub packets: AtomicU64,
    /// Wire bytes ingested.
    pub bytes: AtomicU64,
    /// Frames captured shorter than on the wire.
    pub truncated: AtomicU64,
    /// Frames that were not IP (ARP, LLDP, ...).
    pub not_ip: AtomicU64,
    /// IP fragments seen.
    pub fragments: AtomicU64,
    /// Fragmented datagrams given up.
    pub fragments_dropped: AtomicU64,
    /// Flows created.
    pub flows_created: AtomicU64,
    /// Entries in the DNS answer cache now (a gauge).
    pub dns_cache_entries: AtomicU64,
    /// DNS cache entries pushed out because the cache was full.
    pub dns_cache_evictions: AtomicU64,
    /// Bytes held by handshake reassembly buffers now (a gauge).
    pub handshake_bytes: Arc<AtomicU64>,
    parse_errors: Mutex<BTreeMap<&'static str, u64>>,
    evictions: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump(m: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str, n: u64) {
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    *g.entry(key).or_default() += n;
}

fn read(m: &Mutex<BTreeMap<&'static str, u64>>) -> Vec<(&'static str, u64)> {
    m.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

impl Default for Stats {
    fn default() -> Self {
        let zeros = |keys: &mut dyn Iterator<Item = &'static str>| {
            Mutex::new(keys.map(|k| (k, 0)).collect::<BTreeMap<_, _>>())
        };
        Stats {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            not_ip: AtomicU64::new(0),
            fragments: AtomicU64::new(0),
            fragments_dropped: AtomicU64::new(0),
            flows_created: AtomicU64::new(0),
            dns_cache_entries: AtomicU64::new(0),
            dns_cache_evictions: AtomicU64::new(0),
            handshake_bytes: Arc::default(),
            parse_errors: zeros(
                &mut tetherscope_wire::Error::ALL
                    .iter()
                    .map(|e| e.reason())
                    .chain(PIPELINE_REASONS),
            ),
            evictions: zeros(&mut crate::table::EvictReason::ALL.iter().map(|r| r.name())),
        }
    }
}

impl Stats {
    /// Counts a parse error by reason.
    pub fn parse_error(&self, reason: &'static str) {
        bump(&self.parse_errors, reason, 1);
    }
    /// Counts evicted flows by reason.
    pub fn evicted(&self, reason: &'static str, n: u64) {
        if n > 0 {
            bump(&self.evictions, reason, n);
        }
    }
    /// Parse errors by reason.
    pub fn parse_errors(&self) -> Vec<(&'static str, u64)> {
        read(&self.parse_errors)
    }
    /// Evictions by reason.
    pub fn evictions(&self) -> Vec<(&'static str, u64)> {
        read(&self.evictions)
    }
    /// Total parse errors.
    pub fn parse_errors_total(&self) -> u64 {
        self.parse_errors().iter().map(|(_, n)| n).sum()
    }
    /// Loads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
}
