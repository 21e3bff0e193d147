//! `/metrics`: Prometheus families built from the flow table at scrape time.
//!
//! Every metric name is a documented constant (docs/metrics.md). Counters
//! are reported monotonically (see [`crate::state`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use tetherscope_flow::Stats;

use tetherscope_flow::BlindSpot;

use crate::state::{sanitize, FlowLabels, Shared, Snapshot, Totals, BLIND_SPOTS};

/// Flows by device, domain, purpose and verdict.
pub const FLOWS: &str = "tetherscope_flows_total";
/// Bytes by device, domain, purpose and direction.
pub const BYTES: &str = "tetherscope_bytes_total";
/// Bytes by device, owner (who runs the destination) and direction.
pub const OWNER_BYTES: &str = "tetherscope_owner_bytes_total";
/// Bytes of cleartext flows.
pub const CLEARTEXT_BYTES: &str = "tetherscope_cleartext_bytes_total";
/// Bytes of cleartext flows the catalog does not document as cleartext.
pub const UNKNOWN_CLEARTEXT_BYTES: &str = "tetherscope_unknown_cleartext_bytes_total";
/// Unexpected flows.
pub const UNEXPECTED_FLOWS: &str = "tetherscope_unexpected_flows_total";
/// When each unexpected (device, domain, purpose) was first seen.
pub const UNEXPECTED_FIRST_SEEN: &str = "tetherscope_unexpected_first_seen_timestamp_seconds";
/// DNS queries by device and queried domain.
pub const DNS_QUERIES: &str = "tetherscope_dns_queries_total";
/// Active flows per device.
pub const ACTIVE_FLOWS: &str = "tetherscope_active_flows";
/// Bytes of flows nothing could name, by device and reason.
pub const UNNAMED_BYTES: &str = "tetherscope_unnamed_bytes_total";
/// Flows nothing could name, by device and reason.
pub const UNNAMED_FLOWS: &str = "tetherscope_unnamed_flows_total";
/// Whether a device resolves over DoT, DoQ or DoH.
pub const PRIVATE_DNS: &str = "tetherscope_device_private_dns";
/// Packets captured.
pub const CAPTURE_PACKETS: &str = "tetherscope_capture_packets_total";
/// Packets dropped, by where.
pub const CAPTURE_DROPPED: &str = "tetherscope_capture_dropped_total";
/// Whether the capture is attached.
pub const CAPTURE_UP: &str = "tetherscope_capture_up";
/// Seconds since the last captured packet.
pub const LAST_PACKET_AGE: &str = "tetherscope_last_packet_age_seconds";
/// Bytes written to the flow log.
pub const FLOW_LOG_BYTES: &str = "tetherscope_flow_log_bytes_total";
/// Rotations of the flow log file.
pub const FLOW_LOG_ROTATIONS: &str = "tetherscope_flow_log_rotations_total";
/// Parse errors by reason.
pub const PARSE_ERRORS: &str = "tetherscope_parse_errors_total";
/// Flow evictions by reason.
pub const EVICTIONS: &str = "tetherscope_flow_evictions_total";
/// Flows in the table.
pub const TABLE_FLOWS: &str = "tetherscope_flow_table_flows";
/// Bytes held by handshake reassembly buffers.
pub const HANDSHAKE_BYTES: &str = "tetherscope_handshake_buffer_bytes";
/// DNS cache entries pushed out by newer ones.
pub const DNS_CACHE_EVICTIONS: &str = "tetherscope_dns_cache_evictions_total";
/// Flows whose domain label was folded into `other`.
pub const LABEL_OVERFLOW: &str = "tetherscope_label_overflow_total";
/// Destinations that became new to their device.
pub const NEW_DESTINATIONS: &str = "tetherscope_new_destinations_total";
/// When each destination still `new` was first seen.
pub const NEW_DESTINATION_FIRST_SEEN: &str =
    "tetherscope_new_destination_first_seen_timestamp_seconds";
/// Flows to destinations the user flagged.
pub const FLAGGED_FLOWS: &str = "tetherscope_flagged_flows_total";
/// Destinations in the baseline, by state.
pub const BASELINE_DESTINATIONS: &str = "tetherscope_baseline_destinations";
/// Destinations the baseline dropped, by reason.
pub const BASELINE_DROPPED: &str = "tetherscope_baseline_dropped_total";
pub use crate::clients::{BASELINE_CLIENTS, BASELINE_CLIENTS_DROPPED, NEW_CLIENTS};
/// Size of the state store on disk.
pub const STORE_BYTES: &str = "tetherscope_state_store_bytes";
/// Distinct `domain` label values in use.
pub const DOMAIN_LABELS: &str = "tetherscope_domain_labels";
/// Distinct `owner` label values in use.
pub const OWNER_LABELS: &str = "tetherscope_owner_labels";
/// HTTP connections the listener's limits closed, by reason.
pub const HTTP_CONNECTIONS_CLOSED: &str = "tetherscope_http_connections_closed_total";
/// Build information.
pub const BUILD_INFO: &str = "tetherscope_build_info";

type Reported = HashMap<(&'static str, Vec<String>), u64>;

pub(crate) struct Builder<'a> {
    registry: Registry,
    previous: &'a Reported,
    next: Reported,
    /// `domain` values that gave their place back: their series are gone,
    /// their totals count under `other`.
    released: &'a std::collections::HashSet<String>,
    /// When set, the only `domain` values whose series may carry over
    /// (the released list overflowed between two scrapes).
    kept: Option<&'a std::collections::HashSet<String>>,
}

impl Builder<'_> {
    pub(crate) fn counter(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&str],
        rows: Vec<(Vec<String>, u64)>,
    ) {
        let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
        let domain_at = labels.iter().position(|l| *l == "domain");
        let released = |values: &[String]| {
            domain_at.is_some_and(|i| {
                values.get(i).is_some_and(|d| {
                    self.released.contains(d) || self.kept.is_some_and(|kept| !kept.contains(d))
                })
            })
        };
        for (values, v) in rows {
            let key = (name, values);
            let before = if released(&key.1) {
                0
            } else {
                self.previous.get(&key).copied().unwrap_or(0)
            };
            let v = before.max(v);
            let refs: Vec<&str> = key.1.iter().map(String::as_str).collect();
            vec.with_label_values(&refs).inc_by(v);
            self.next.insert(key, v);
        }
        // Series seen before but gone now (device renamed, verdict changed)
        // keep their value; those of released domains leave.
        for ((metric, values), v) in self.previous {
            if *metric == name
                && !released(values)
                && !self.next.contains_key(&(name, values.clone()))
            {
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                vec.with_label_values(&refs).inc_by(*v);
                self.next.insert((name, values.clone()), *v);
            }
        }
        self.register(vec);
    }

    pub(crate) fn gauge(
        &mut self,
        name: &'static str,
        help: &str,
        labels: &[&str],
        rows: Vec<(Vec<String>, i64)>,
    ) {
        let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        for (values, v) in rows {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            vec.with_label_values(&refs).set(v);
        }
        self.register(vec);
    }

    /// A gauge labelled `state` with one series per baseline state, 0 for
    /// a state nothing is in (so every series exists from the start).
    pub(crate) fn state_gauge(
        &mut self,
        name: &'static str,
        help: &str,
        states: &HashMap<&'static str, i64>,
    ) {
        self.gauge(
            name,
            help,
            &["state"],
            ["baseline", "accepted", "new", "flagged"]
                .iter()
                .map(|st| (vec![(*st).to_owned()], states.get(st).copied().unwrap_or(0)))
                .collect(),
        );
    }

    /// A counter labelled `reason`, one series per (reason, count).
    pub(crate) fn reason_counter(
        &mut self,
        name: &'static str,
        help: &str,
        reasons: &[(&str, u64)],
    ) {
        self.counter(
            name,
            help,
            &["reason"],
            reasons
                .iter()
                .map(|(reason, n)| (vec![(*reason).to_owned()], *n))
                .collect(),
        );
    }

    fn register(&self, c: impl Collector + 'static) {
        self.registry
            .register(Box::new(c))
            .expect("unique metric names");
    }
}

fn sum_by<K: Ord + Clone + std::hash::Hash>(rows: impl Iterator<Item = (K, u64)>) -> Vec<(K, u64)> {
    let mut m: HashMap<K, u64> = HashMap::new();
    for (k, v) in rows {
        *m.entry(k).or_default() += v;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

/// What a passive monitor cannot see, and why: unnamed flows and bytes by
/// device and reason, and which devices hide their lookups.
fn blind_spots(b: &mut Builder<'_>, snap: &Snapshot, shared: &Shared) {
    let by_reason = |pick: fn(&Totals) -> &[u64; BLIND_SPOTS]| {
        sum_by(snap.totals.iter().flat_map(|(l, v)| {
            BlindSpot::ALL
                .iter()
                .zip(pick(v))
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| (vec![l.device.clone(), r.name().to_owned()], *n))
                .collect::<Vec<_>>()
        }))
    };
    b.counter(
        UNNAMED_FLOWS,
        "Flows nothing could name, by device and reason (ech, encrypted_dns, no_dns_seen, no_handshake_seen, malformed).",
        &["device", "reason"],
        by_reason(|t| &t.blind_flows),
    );
    b.counter(
        UNNAMED_BYTES,
        "Bytes of flows nothing could name, by device and reason.",
        &["device", "reason"],
        by_reason(|t| &t.blind_bytes),
    );
    let mut devices: Vec<(Vec<String>, i64)> = shared
        .devices
        .snapshot()
        .iter()
        .filter_map(|d| shared.devices.label(&d.mac).map(|l| (sanitize(&l), d.mac)))
        .map(|(label, mac)| (vec![label], i64::from(shared.uses_private_dns(&mac))))
        .collect();
    devices.sort();
    devices.dedup_by(|a, b| a.0 == b.0);
    b.gauge(
        PRIVATE_DNS,
        "1 when the device was seen resolving over DoT, DoQ or DoH: the monitor cannot see its DNS answers.",
        &["device"],
        devices,
    );
}

/// The flow history sink's families (docs/flow-history.md).
fn flow_sink(b: &mut Builder<'_>, h: &tetherscope_history::SinkStats) {
    use tetherscope_history as th;
    b.counter(
        th::ROWS_SENT,
        "Flow records ClickHouse acknowledged (or was found to hold after a lost answer).",
        &[],
        vec![(vec![], h.rows_sent.load(Relaxed))],
    );
    b.counter(
        th::ROWS_RETRIED,
        "Flow records of batches sent to ClickHouse again after an attempt without success.",
        &[],
        vec![(vec![], h.rows_retried.load(Relaxed))],
    );
    b.counter(
        th::DROPPED,
        "Flow records the history sink dropped, by reason (spool_full: the oldest of a full spool).",
        &["reason"],
        h.dropped()
            .into_iter()
            .map(|(r, n)| (vec![r.to_owned()], n))
            .collect(),
    );
    b.gauge(
        th::SPOOL_BYTES,
        "Bytes of flow record batches waiting in the history spool.",
        &[],
        vec![(
            vec![],
            i64::try_from(h.spool_bytes.load(Relaxed)).unwrap_or(i64::MAX),
        )],
    );
    b.gauge(
        th::UP,
        "1 when the last request to ClickHouse succeeded.",
        &[],
        vec![(vec![], i64::from(h.up.load(Relaxed)))],
    );
}

/// Renders the Prometheus text exposition.
pub fn render(shared: &Shared) -> String {
    let mut reported = shared.reported.lock().unwrap_or_else(|p| p.into_inner());
    let snap = shared.snapshot();
    let mut b = Builder {
        registry: Registry::new(),
        previous: &reported,
        next: HashMap::new(),
        released: &snap.released,
        kept: snap.kept.as_ref(),
    };
    let t = &snap.totals;
    let s = |x: &str| x.to_owned();

    // device, domain, service, purpose: the common label prefix.
    let dsp = |l: &FlowLabels| vec![s(&l.device), s(&l.domain), s(&l.service), s(l.purpose)];
    let with = |mut v: Vec<String>, last: &str| {
        v.push(s(last));
        v
    };
    b.counter(
        FLOWS,
        "Flows, by device, domain (DNS name), service (catalog name), purpose and verdict.",
        &["device", "domain", "service", "purpose", "verdict"],
        sum_by(t.iter().map(|(l, v)| (with(dsp(l), l.verdict), v.flows))),
    );
    b.counter(
        BYTES,
        "Wire bytes, by device, domain, service, purpose and direction (up = from the phone).",
        &["device", "domain", "service", "purpose", "direction"],
        sum_by(t.iter().flat_map(|(l, v)| {
            [
                (with(dsp(l), "up"), v.bytes_up),
                (with(dsp(l), "down"), v.bytes_down),
            ]
        })),
    );
    b.counter(
        OWNER_BYTES,
        "Wire bytes, by device, owner (who runs the destination: the catalog's or a list's entity; unknown: no rule names one) and direction (up = from the phone).",
        &["device", "owner", "direction"],
        sum_by(t.iter().flat_map(|(l, v)| {
            let row = |dir: &str| vec![s(&l.device), s(&l.owner), s(dir)];
            [(row("up"), v.bytes_up), (row("down"), v.bytes_down)]
        })),
    );
    b.counter(
        CLEARTEXT_BYTES,
        "Bytes of unencrypted flows (HTTP, DNS, NTP, ...).",
        &["device", "domain", "service", "purpose"],
        sum_by(
            t.iter()
                .filter(|(_, v)| v.cleartext_bytes > 0)
                .map(|(l, v)| (dsp(l), v.cleartext_bytes)),
        ),
    );
    b.counter(
        UNKNOWN_CLEARTEXT_BYTES,
        "Bytes of unencrypted flows the catalog does not document as cleartext.",
        &["device", "domain", "service", "purpose"],
        sum_by(
            t.iter()
                .filter(|(_, v)| v.unknown_cleartext_bytes > 0)
                .map(|(l, v)| (dsp(l), v.unknown_cleartext_bytes)),
        ),
    );
    b.counter(
        UNEXPECTED_FLOWS,
        "Flows the active profile does not expect; owner: who runs the destination (the alerts name it).",
        &["device", "domain", "service", "purpose", "owner"],
        sum_by(
            t.iter()
                .filter(|(l, _)| l.verdict == "unexpected")
                .map(|(l, v)| (with(dsp(l), &l.owner), v.flows)),
        ),
    );
    let mut first_seen: HashMap<Vec<String>, i64> = HashMap::new();
    for (l, v) in t
        .iter()
        .filter(|(l, v)| l.verdict == "unexpected" && v.first_seen_ns > 0)
    {
        let secs = (v.first_seen_ns / 1_000_000_000) as i64;
        first_seen
            .entry(dsp(l))
            .and_modify(|t| *t = (*t).min(secs))
            .or_insert(secs);
    }
    let mut first_seen: Vec<_> = first_seen.into_iter().collect();
    first_seen.sort();
    b.gauge(
        UNEXPECTED_FIRST_SEEN,
        "Capture time (Unix seconds) of the first unexpected flow per device, domain, service and purpose.",
        &["device", "domain", "service", "purpose"],
        first_seen,
    );
    b.counter(
        DNS_QUERIES,
        "DNS questions, by device, the queried name's domain and the response code \
         (noerror, nxdomain, servfail, refused, other; none: no answer seen).",
        &["device", "domain", "rcode"],
        sum_by(
            t.iter()
                .filter(|(_, v)| v.dns_queries > 0)
                .map(|(l, v)| (vec![s(&l.device), s(&l.domain), s(l.rcode)], v.dns_queries)),
        ),
    );
    blind_spots(&mut b, &snap, shared);
    b.gauge(
        crate::device_info::DEVICE_INFO,
        crate::device_info::HELP,
        &crate::device_info::LABELS,
        crate::device_info::rows(shared),
    );
    let mut active: Vec<_> = snap
        .active
        .iter()
        .map(|(d, n)| (vec![d.clone()], *n as i64))
        .collect();
    active.sort();
    b.gauge(
        ACTIVE_FLOWS,
        "Flows active now, by device.",
        &["device"],
        active,
    );

    let cap = &shared.capture;
    let iface = cap.interface.lock().map(|i| i.clone()).unwrap_or_default();
    b.counter(
        CAPTURE_PACKETS,
        "Packets that reached the capture filter (on Linux, including those the kernel then dropped).",
        &["interface"],
        vec![(vec![iface.clone()], cap.packets.load(Relaxed))],
    );
    b.counter(
        CAPTURE_DROPPED,
        "Packets dropped before tetherscope saw them: in the kernel buffer or by the interface.",
        &["interface", "where"],
        vec![
            (
                vec![iface.clone(), s("kernel")],
                cap.dropped_kernel.load(Relaxed),
            ),
            (
                vec![iface.clone(), s("interface")],
                cap.dropped_interface.load(Relaxed),
            ),
        ],
    );
    b.gauge(
        CAPTURE_UP,
        "1 while the capture is attached to its interface.",
        &["interface"],
        vec![(vec![iface.clone()], i64::from(cap.attached.load(Relaxed)))],
    );
    let last = cap.last_packet_unix_ns.load(Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let age = if last == 0 {
        -1
    } else {
        (now.saturating_sub(last) / 1_000_000_000) as i64
    };
    b.gauge(
        LAST_PACKET_AGE,
        "Seconds since the last captured packet (-1: none yet).",
        &["interface"],
        vec![(vec![iface], age)],
    );
    b.counter(
        FLOW_LOG_BYTES,
        "Bytes written to the flow log (--flow-log), across rotations.",
        &[],
        vec![(vec![], cap.flow_log_bytes.load(Relaxed))],
    );
    b.counter(
        FLOW_LOG_ROTATIONS,
        "Times the flow log file was rotated.",
        &[],
        vec![(vec![], cap.flow_log_rotations.load(Relaxed))],
    );

    if let Some(h) = shared.history.get() {
        flow_sink(&mut b, h);
    }

    let stats = &shared.stats;
    b.counter(
        PARSE_ERRORS,
        "Packets or messages skipped, by reason.",
        &["reason"],
        stats
            .parse_errors()
            .into_iter()
            .map(|(r, n)| (vec![s(r)], n))
            .collect(),
    );
    b.counter(
        EVICTIONS,
        "Flows that left the flow table, by reason.",
        &["reason"],
        stats
            .evictions()
            .into_iter()
            .map(|(r, n)| (vec![s(r)], n))
            .collect(),
    );
    b.gauge(
        TABLE_FLOWS,
        "Entries in tetherscope's bounded tables: flows, and the DNS answer cache.",
        &["table"],
        vec![
            (vec![s("flows")], shared.table.len() as i64),
            (
                vec![s("dns_cache")],
                Stats::get(&stats.dns_cache_entries) as i64,
            ),
        ],
    );
    b.gauge(
        HANDSHAKE_BYTES,
        "Bytes held by all flows' handshake reassembly buffers (bounded by handshake_memory).",
        &[],
        vec![(vec![], Stats::get(&stats.handshake_bytes) as i64)],
    );
    b.counter(
        DNS_CACHE_EVICTIONS,
        "DNS answers forgotten early because the DNS cache was full.",
        &[],
        vec![(vec![], Stats::get(&stats.dns_cache_evictions))],
    );
    let conns = &shared.connections;
    b.counter(
        HTTP_CONNECTIONS_CLOSED,
        "HTTP connections the listener's limits closed: at the connection cap (the longest silent one evicted for a newcomer, or a newcomer refused), a client that read nothing of an answer for the write timeout, or a large answer refused because others already wait to be sent.",
        &["reason"],
        vec![
            (vec![s("evicted")], conns.evicted.load(Relaxed)),
            (vec![s("refused")], conns.refused.load(Relaxed)),
            (vec![s("write_timeout")], conns.write_timeout.load(Relaxed)),
            (vec![s("over_budget")], conns.over_budget.load(Relaxed)),
        ],
    );
    b.counter(
        LABEL_OVERFLOW,
        "Flows whose domain label was folded into \"other\".",
        &[],
        vec![(vec![], snap.overflow)],
    );
    b.gauge(
        DOMAIN_LABELS,
        "Distinct domain label values in use (at most --max-domains, besides unnamed and other).",
        &[],
        vec![(vec![], shared.domain_values() as i64)],
    );
    b.gauge(
        OWNER_LABELS,
        "Distinct owner label values in use (at most the owner budget, besides unknown and other).",
        &[],
        vec![(vec![], shared.owner_values() as i64)],
    );
    b.counter(
        "tetherscope_pipeline_packets_total",
        "Packets the pipeline ingested.",
        &[],
        vec![(vec![], Stats::get(&stats.packets))],
    );
    if shared.baseline.is_some() {
        baseline_families(shared, &snap, &mut b);
    }
    b.gauge(
        BUILD_INFO,
        "Build information.",
        &["version"],
        vec![(vec![s(env!("CARGO_PKG_VERSION"))], 1)],
    );

    let mut out = Vec::new();
    let families = b.registry.gather();
    TextEncoder::new()
        .encode(&families, &mut out)
        .expect("encode metrics");
    *reported = b.next;
    String::from_utf8(out).unwrap_or_default()
}

/// The baseline's families: novelty events, new destinations with their
/// first-seen time, states, drops, and the store's size.
fn baseline_families(shared: &Shared, snap: &crate::state::Snapshot, b: &mut Builder<'_>) {
    let Some(handle) = &shared.baseline else {
        return;
    };
    let rows = |v: &crate::state::NoveltyCounts| {
        sum_by(v.iter().map(|((d, dom, p, owner), n)| {
            (
                vec![
                    d.clone(),
                    snap.admitted_or_other(dom),
                    (*p).to_owned(),
                    owner.clone(),
                ],
                *n,
            )
        }))
    };
    let (new, flagged) = (&snap.new_destinations, &snap.flagged_flows);
    b.counter(
        NEW_DESTINATIONS,
        "Destinations first seen by a device after it finished learning, neither in its baseline nor expected by its profile; owner: who runs it.",
        &["device", "domain", "purpose", "owner"],
        rows(new),
    );
    b.counter(
        FLAGGED_FLOWS,
        "Flows to destinations the user flagged; owner: who runs them.",
        &["device", "domain", "purpose", "owner"],
        rows(flagged),
    );
    // Copy what is needed under the lock; label work happens after it.
    let (pending, states, dropped) = {
        let bl = handle.lock();
        let mut states: HashMap<&'static str, i64> = HashMap::new();
        let mut pending = Vec::new();
        for (mac, device) in bl.devices() {
            for (name, d) in &device.destinations {
                *states.entry(d.state.as_str()).or_default() += 1;
                if d.state == tetherscope_baseline::State::New {
                    pending.push((
                        *mac,
                        crate::novelty::label_of(name).to_owned(),
                        d.labels.purpose.to_string(),
                        (d.first_seen_ns / 1_000_000_000) as i64,
                    ));
                }
            }
        }
        (pending, states, (bl.evicted, bl.expired))
    };
    let mut first_seen: HashMap<Vec<String>, i64> = HashMap::new();
    for (mac, site, purpose, secs) in pending {
        let key = vec![
            shared.device_name(mac),
            snap.admitted_or_other(&site),
            purpose,
        ];
        first_seen
            .entry(key)
            .and_modify(|t| *t = (*t).min(secs))
            .or_insert(secs);
    }
    let mut first_seen: Vec<_> = first_seen.into_iter().collect();
    first_seen.sort();
    b.gauge(
        NEW_DESTINATION_FIRST_SEEN,
        "Packet time (Unix seconds) each destination still new (not triaged) was first seen.",
        &["device", "domain", "purpose"],
        first_seen,
    );
    b.state_gauge(
        BASELINE_DESTINATIONS,
        "Destinations in the per-device baseline, by state.",
        &states,
    );
    b.reason_counter(
        BASELINE_DROPPED,
        "Destinations the baseline forgot: capacity (the device's least recently seen) or retention.",
        &[("capacity", dropped.0), ("retention", dropped.1)],
    );
    crate::clients::families(shared, handle, b);
    b.gauge(
        STORE_BYTES,
        "Bytes the state store takes on disk (database and write-ahead log).",
        &[],
        vec![(
            vec![],
            handle
                .path
                .as_deref()
                .map_or(0, tetherscope_baseline::Store::size_bytes) as i64,
        )],
    );
}
