//! Per-label-set totals: what one flow adds, and finished flows folded
//! into them.

use std::collections::HashMap;

use tetherscope_classify::Purpose;
use tetherscope_flow::{BlindSpot, Flow};

use super::hub::{Inner, NoveltyLabels};
use super::labels::{FlowLabels, OTHER};
use crate::facts;

/// Per-label-set totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Flows.
    pub flows: u64,
    /// Bytes client → server.
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// Bytes of cleartext flows.
    pub cleartext_bytes: u64,
    /// Bytes of cleartext flows the catalog does not document.
    pub unknown_cleartext_bytes: u64,
    /// Bytes of flows nothing could name.
    pub unnamed_bytes: u64,
    /// Unnamed flows by reason, indexed like [`BlindSpot::ALL`].
    pub blind_flows: [u64; BLIND_SPOTS],
    /// Their bytes, likewise.
    pub blind_bytes: [u64; BLIND_SPOTS],
    /// DNS questions asked.
    pub dns_queries: u64,
    /// Capture time of the latest packet, Unix nanoseconds.
    pub last_seen_ns: u64,
    /// Capture time of the earliest flow, Unix nanoseconds (0: none).
    pub first_seen_ns: u64,
    /// Capture time at which the newest flow started, Unix nanoseconds.
    pub newest_start_ns: u64,
}

impl Totals {
    /// Unnamed for lack of a DNS answer, from a device known to resolve
    /// privately: the reason is its encrypted DNS ([`crate::blind::refine`]).
    /// Decided when the flow is measured, never for history, so no flow
    /// counts under both reasons.
    pub(super) fn hidden_by_private_dns(&mut self) {
        let (from, to) = (
            blind_index(BlindSpot::NoDnsSeen),
            blind_index(crate::blind::refine(BlindSpot::NoDnsSeen, true)),
        );
        self.blind_flows[to] += std::mem::take(&mut self.blind_flows[from]);
        self.blind_bytes[to] += std::mem::take(&mut self.blind_bytes[from]);
    }

    pub(super) fn add(&mut self, o: &Totals) {
        self.flows += o.flows;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.cleartext_bytes += o.cleartext_bytes;
        self.unknown_cleartext_bytes += o.unknown_cleartext_bytes;
        self.unnamed_bytes += o.unnamed_bytes;
        for i in 0..BLIND_SPOTS {
            self.blind_flows[i] += o.blind_flows[i];
            self.blind_bytes[i] += o.blind_bytes[i];
        }
        self.dns_queries += o.dns_queries;
        self.last_seen_ns = self.last_seen_ns.max(o.last_seen_ns);
        self.newest_start_ns = self.newest_start_ns.max(o.newest_start_ns);
        self.first_seen_ns = match (self.first_seen_ns, o.first_seen_ns) {
            (0, t) | (t, 0) => t,
            (a, b) => a.min(b),
        };
    }
}

/// Number of blind-spot reasons.
pub const BLIND_SPOTS: usize = BlindSpot::ALL.len();

/// Where a reason sits in [`Totals::blind_flows`].
pub fn blind_index(reason: BlindSpot) -> usize {
    BlindSpot::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

/// Moves the baseline event counts of a released domain under `other`.
pub(super) fn fold_novelty(counts: &mut HashMap<NoveltyLabels, u64>, domain: &str) {
    let gone: Vec<NoveltyLabels> = counts.keys().filter(|k| k.1 == domain).cloned().collect();
    for key in gone {
        let n = counts.remove(&key).unwrap_or(0);
        *counts
            .entry((key.0, OTHER.to_owned(), key.2, key.3))
            .or_default() += n;
    }
}

/// Adds finished totals under `labels`, indexing a new label set by domain.
pub(super) fn add_retired(inner: &mut Inner, labels: FlowLabels, totals: &Totals) {
    match inner.retired.get_mut(&labels) {
        Some(t) => t.add(totals),
        None => {
            inner
                .retired_keys
                .entry(labels.domain.clone())
                .or_default()
                .push(labels.clone());
            inner.retired.insert(labels, *totals);
        }
    }
}

/// The totals one flow contributes. `named`: the flow has a domain (so it
/// is no blind spot); the caller knows it already.
pub(super) fn totals(
    flow: &Flow,
    purpose: Purpose,
    cleartext_known: bool,
    finished: bool,
    named: bool,
) -> Totals {
    let mut t = Totals::default();
    t.add_flow(flow, purpose, cleartext_known, finished, named);
    t
}

impl Totals {
    /// Adds what one flow contributes, in place: this runs for every
    /// active flow at every scrape.
    /// An active DNS flow counts its questions once answered; a finished one
    /// counts them in any case (`rcode="none"` without an answer). So a
    /// question is never reported under `none` first and under its answer
    /// later.
    pub(super) fn add_flow(
        &mut self,
        flow: &Flow,
        purpose: Purpose,
        cleartext_known: bool,
        finished: bool,
        named: bool,
    ) {
        let bytes = flow.bytes_up + flow.bytes_down;
        self.flows += 1;
        self.bytes_up += flow.bytes_up;
        self.bytes_down += flow.bytes_down;
        if flow.cleartext() == Some(true) {
            self.cleartext_bytes += bytes;
            if !cleartext_known {
                self.unknown_cleartext_bytes += bytes;
            }
        }
        if !named {
            if let Some(reason) = facts::blind_spot(flow, purpose) {
                let i = blind_index(reason);
                self.unnamed_bytes += bytes;
                self.blind_flows[i] += 1;
                self.blind_bytes[i] += bytes;
            }
        }
        if let Some(n) = flow.names.as_deref() {
            // Local names asked over mDNS/LLMNR are not DNS lookups.
            if n.dns_query.is_some()
                && flow.app != tetherscope_flow::AppProto::Mdns
                && (finished || n.dns_rcode.is_some())
            {
                self.dns_queries += u64::from(n.dns_questions.max(1));
            }
        }
        self.last_seen_ns = self.last_seen_ns.max(flow.last_seen);
        self.newest_start_ns = self.newest_start_ns.max(flow.first_seen);
        self.first_seen_ns = match (self.first_seen_ns, flow.first_seen) {
            (0, t) | (t, 0) => t,
            (a, b) => a.min(b),
        };
    }
}

#[cfg(test)]
mod tests {
    use crate::state::test_support::*;
    use tetherscope_flow::Transport;

    #[test]
    fn noticing_private_dns_never_counts_an_unnamed_flow_twice() {
        let s = shared(10);
        let mac = [2, 0, 0, 0, 0, 1];
        s.devices.observe(mac, "10.42.0.23".parse().unwrap());
        let unnamed_sum = |t: &str| -> f64 {
            t.lines()
                .filter(|l| l.starts_with("tetherscope_unnamed_flows_total{"))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum()
        };
        let mut f = flow_at(None, Transport::Udp, 5000, 7, 0);
        f.client_mac = Some(mac);
        s.retire(&f);
        assert_eq!(unnamed_sum(&crate::metrics::render(&s)), 1.0);
        let mut dot = flow_at(None, Transport::Tcp, 853, 8, 1);
        dot.client_mac = Some(mac);
        s.retire(&dot);
        assert!(s.uses_private_dns(&mac));
        assert_eq!(unnamed_sum(&crate::metrics::render(&s)), 1.0);
        // From now on, its flows without a DNS answer are hidden by it.
        let mut later = flow_at(None, Transport::Udp, 5000, 9, 2);
        later.client_mac = Some(mac);
        s.retire(&later);
        let text = crate::metrics::render(&s);
        assert_eq!(unnamed_sum(&text), 2.0, "{text}");
        assert!(text.contains("reason=\"encrypted_dns\"} 1"), "{text}");
    }
}
