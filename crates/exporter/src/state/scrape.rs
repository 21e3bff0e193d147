//! The scrape: one consistent [`Snapshot`] of every label set's totals.

use std::collections::{HashMap, HashSet};

use tetherscope_classify::Purpose;

use super::budget::is_reserved;
use super::class_memo::ClassMemo;
use super::hub::{NoveltyCounts, NoveltyLabels};
use super::labels::{sanitize, FlowLabels, OTHER, UNNAMED};
use super::totals::Totals;
use super::Shared;

/// A consistent view for one scrape.
pub struct Snapshot {
    /// Totals per label set.
    pub totals: HashMap<FlowLabels, Totals>,
    /// Active flows per device.
    pub active: HashMap<String, u64>,
    /// Flows whose domain was folded into `other`.
    pub overflow: u64,
    /// `domain` values that gave their place back since the last scrape.
    pub released: HashSet<String>,
    /// Destinations that became new, per (device, domain, purpose, owner).
    pub new_destinations: NoveltyCounts,
    /// Flows to flagged destinations, per (device, domain, purpose, owner).
    pub flagged_flows: NoveltyCounts,
    /// `domain` values admitted at this snapshot: baseline series outside
    /// it say `other`, so one exposition never holds more than the budget.
    pub admitted: HashSet<String>,
    /// When too many gave their place back to list them: the values whose
    /// earlier series may still be reported (the others are gone).
    pub kept: Option<HashSet<String>>,
}

impl Snapshot {
    /// The `domain` label a destination's series carry in a scrape: itself
    /// while it holds a place in this snapshot's label set, else `other`.
    pub fn admitted_or_other(&self, domain: &str) -> String {
        let domain = sanitize(domain);
        if is_reserved(&domain) || self.admitted.contains(&domain) {
            domain
        } else {
            OTHER.to_owned()
        }
    }
}

/// Active flows are summed by client MAC and label id.
type ActiveKey = (Option<[u8; 6]>, u32);

impl Shared {
    /// Totals per label set (finished + active flows), active flows per
    /// device, and the overflow count. Active flows are measured without
    /// holding any lock the capture thread needs.
    ///
    /// Flows with the same classification inputs share one classification,
    /// and classifications with the same label values one label set, so a
    /// scrape classifies each distinct destination once, allocates nothing
    /// per flow, and aggregates per label set.
    pub fn snapshot(&self) -> Snapshot {
        // Read before the lock: it visits every shard of the table.
        let flows = self.table.len();
        let annotator = self.annotator();
        let mut memo = {
            let mut inner = self.lock();
            self.release_idle(&mut inner, true);
            ClassMemo::new(
                inner
                    .domains
                    .iter()
                    .map(|(d, slot)| (d.clone(), slot.admitted_at))
                    .collect(),
                self.labels.max_domains,
                inner.scraped_ns,
                self.labels.domain,
                inner.last_classes.min(flows),
            )
        };
        // (client MAC, label id) → (totals, active flows)
        let mut per_key: HashMap<ActiveKey, (Totals, u64), ahash::RandomState> = HashMap::default();
        let mut private_dns: HashSet<Option<[u8; 6]>> = HashSet::new();
        self.table.for_each_batch(|flows| {
            // The domain of every flow of the batch first: that reads each
            // flow, its names and its name, whose memory the processor then
            // fetches for all of them at once.
            let domains: Vec<_> = flows.iter().map(|f| f.domain()).collect();
            for (f, domain) in flows.iter().zip(domains) {
                let class = memo.class_of(&annotator, f, domain);
                let c = memo.classes[class as usize];
                if c.purpose == Purpose::EncryptedDns {
                    private_dns.insert(f.client_mac);
                }
                // Under its domain only if it was never reported under
                // `other`: started after the value was admitted, or, for a
                // value without a place, a newcomer since the last scrape
                // (admission decides).
                let label = match c.admitted_at {
                    Some(at) if f.first_seen > at => c.label,
                    None if f.first_seen > memo.since => c.label,
                    _ => c.folded,
                };
                let entry = per_key.entry((f.client_mac, label)).or_default();
                entry
                    .0
                    .add_flow(f, c.purpose, c.cleartext_known, false, domain.is_some());
                entry.1 += 1;
            }
        });
        // Admit the most recently active first: when places are short, the
        // destinations seen last are the ones kept.
        let mut per_key: Vec<_> = per_key.into_iter().collect();
        per_key.sort_by_key(|(_, (t, _))| std::cmp::Reverse(t.last_seen_ns));
        let mut devices: HashMap<Option<[u8; 6]>, String> = HashMap::new();
        let mut inner = self.lock();
        for mac in private_dns {
            self.note_private_dns(&mut inner, mac);
        }
        let mut admitted = Vec::with_capacity(per_key.len());
        let mut newest = 0;
        for ((mac, label), (t, flows)) in per_key {
            let device = devices
                .entry(mac)
                .or_insert_with(|| self.device_label(mac))
                .clone();
            let labels = memo.flow_labels(label, device);
            // Overflow is counted once per flow, when it finishes. Flows
            // were already sorted into `other` or not (see above), so no
            // start time is checked again here.
            let newcomer = t.newest_start_ns > memo.since;
            newest = newest.max(t.newest_start_ns);
            let labels = self.admit(
                &mut inner,
                labels,
                t.last_seen_ns,
                u64::MAX,
                newcomer,
                false,
            );
            let labels = self.admit_owner(&mut inner, labels);
            let mut t = t;
            if mac.is_some_and(|m| inner.private_dns.contains(&m)) {
                t.hidden_by_private_dns();
            }
            admitted.push((labels, t, flows));
        }
        // Admission may have folded retired totals: copy them after it.
        let mut totals = inner.retired.clone();
        let mut active: HashMap<String, u64> = HashMap::new();
        for (mut labels, t, flows) in admitted {
            // A value admitted earlier in this pass may have given its
            // place to an unexpected one since.
            if !is_reserved(&labels.domain) && !inner.domains.contains_key(&labels.domain) {
                labels.domain = OTHER.to_owned();
            }
            *active.entry(labels.device.clone()).or_default() += flows;
            totals.entry(labels).or_default().add(&t);
        }
        inner.scraped_ns = inner.scraped_ns.max(newest);
        inner.last_classes = memo.classes.len();
        let list =
            |m: &HashMap<NoveltyLabels, u64>| m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        Snapshot {
            totals,
            active,
            overflow: inner.overflow,
            released: std::mem::take(&mut inner.released),
            new_destinations: list(&inner.new_destinations),
            flagged_flows: list(&inner.flagged_flows),
            admitted: inner.domains.keys().cloned().collect(),
            kept: std::mem::take(&mut inner.released_overflow).then(|| {
                let mut kept: HashSet<String> = inner.domains.keys().cloned().collect();
                kept.extend([OTHER.to_owned(), UNNAMED.to_owned()]);
                kept
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::state::test_support::*;
    use tetherscope_flow::Transport;

    #[test]
    fn a_flow_reported_under_other_is_never_counted_again_under_its_domain() {
        let s = shared(1);
        let second = 1_000_000_000;
        s.retire(&flow_at(
            Some("release.calyxinstitute.org"),
            Transport::Tcp,
            443,
            1,
            0,
        ));
        // Active, expected, the set full and its place not quiet for long:
        // reported under `other`.
        let early = flow_at(
            Some("connectivitycheck.gstatic.com"),
            Transport::Tcp,
            443,
            2,
            10 * second,
        );
        s.table.insert(early);
        let first = crate::metrics::render(&s);
        assert!(!domains(&first).contains("gstatic.com"), "{first}");
        // A later newcomer to the same domain takes the quiet place: only it
        // counts under the domain, the early flow stays under `other`.
        s.table.insert(flow_at(
            Some("connectivitycheck.gstatic.com"),
            Transport::Tcp,
            443,
            3,
            1000 * second,
        ));
        for _ in 0..2 {
            let text = crate::metrics::render(&s);
            assert!(domains(&text).contains("gstatic.com"), "{text}");
            assert_eq!(flows_sum(&text), 3.0, "{text}");
        }
        // And when the early flow finishes, still once.
        let mut finished = Vec::new();
        s.table.drain(&mut finished);
        for (flow, _) in finished {
            s.retire(&flow);
        }
        assert_eq!(flows_sum(&crate::metrics::render(&s)), 3.0);
    }
}
