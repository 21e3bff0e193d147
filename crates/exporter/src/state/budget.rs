//! The label budget: how the `domain` and `owner` label sets stay bounded
//! over months.

use super::hub::Inner;
use super::labels::{DomainLabel, FlowLabels, OTHER, UNKNOWN_OWNER, UNNAMED};
use super::totals::{add_retired, fold_novelty};
use super::Shared;

/// How long a `domain` value may see no traffic before it gives its place
/// back: a day of packet time.
pub const DEFAULT_LABEL_IDLE_NS: u64 = 24 * 3600 * 1_000_000_000;

/// How the `domain` label set is kept bounded over months.
#[derive(Debug, Clone, Copy)]
pub struct LabelPolicy {
    /// Most distinct `domain` values besides `unnamed` and `other`.
    pub max_domains: usize,
    /// Packet time without traffic after which a value gives its place back.
    pub idle_ns: u64,
    /// Registrable domain or full name.
    pub domain: DomainLabel,
    /// Most distinct `owner` values besides `unknown` and `other`.
    pub max_owners: usize,
}

/// Most distinct `owner` values by default: the builtin catalog names a few
/// dozen owners; the rest is room for the user's lists.
pub const DEFAULT_MAX_OWNERS: usize = 100;

impl LabelPolicy {
    /// `max_domains` values, a day of idleness, registrable domains.
    pub fn new(max_domains: usize) -> Self {
        LabelPolicy {
            max_domains,
            idle_ns: DEFAULT_LABEL_IDLE_NS,
            domain: DomainLabel::Registrable,
            max_owners: DEFAULT_MAX_OWNERS,
        }
    }
}

/// What the label budget knows of one admitted `domain` value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DomainSlot {
    /// Packet time of its latest traffic.
    pub(super) last_active_ns: u64,
    /// Some flow under it was unexpected: it is never the one folded.
    pub(super) unexpected: bool,
    /// Packet time the last scrape had reached when the value was admitted.
    /// Flows started before it were reported under `other` and stay there:
    /// a counter held at its last value never gets a flow twice.
    pub(super) admitted_at: u64,
}

impl Shared {
    /// Gives the flow's `domain` value a place in the bounded label set, or
    /// folds it into `other`. `active_ns` is the packet time of the flow's
    /// latest traffic.
    ///
    /// A full set first gives back the places of values idle for longer
    /// than the policy allows; if it is still full, an unexpected
    /// destination takes the place of the least recently active value that
    /// never saw an unexpected flow (or, when there is none, of the least
    /// recently active value): a new unexpected destination is never the one
    /// folded. An expected newcomer takes the place of the least recently
    /// active value only if that one has been quiet for a 24th of the idle
    /// time (an hour by default); otherwise it is folded. Only newcomers
    /// (`may_take_place`: a flow that finished, or started since the last
    /// scrape) take a place: active flows that were folded before stay
    /// folded, so scrapes do not churn the label set.
    pub(super) fn admit(
        &self,
        inner: &mut Inner,
        mut labels: FlowLabels,
        active_ns: u64,
        first_seen: u64,
        may_take_place: bool,
        count_overflow: bool,
    ) -> FlowLabels {
        if is_reserved(&labels.domain) {
            return labels;
        }
        inner.now_ns = inner.now_ns.max(active_ns);
        let unexpected = labels.verdict == "unexpected";
        if let Some(slot) = inner.domains.get_mut(&labels.domain) {
            slot.last_active_ns = slot.last_active_ns.max(active_ns);
            slot.unexpected |= unexpected;
            if first_seen <= slot.admitted_at {
                labels.domain = OTHER.to_owned();
            }
            return labels;
        }
        if inner.domains.len() >= self.labels.max_domains {
            self.release_idle(inner, false);
        }
        if inner.domains.len() >= self.labels.max_domains && may_take_place {
            let now = inner.now_ns;
            let victim = if unexpected {
                // The least recently active expected value, else (every
                // place holds an unexpected one, each already reported) the
                // least recently active of all.
                inner
                    .domains
                    .iter()
                    .min_by_key(|(d, slot)| (slot.unexpected, slot.last_active_ns, d.as_str()))
            } else {
                // An expected newcomer only takes a place quiet for a while,
                // so labels follow what the phone does now without churning.
                inner
                    .domains
                    .iter()
                    .min_by_key(|(d, slot)| (slot.last_active_ns, d.as_str()))
                    .filter(|(_, slot)| {
                        now.saturating_sub(slot.last_active_ns) > self.labels.idle_ns / 24
                    })
            }
            .map(|(d, _)| d.clone());
            if let Some(d) = victim {
                release(inner, &d, self.released_cap());
            }
        }
        if inner.domains.len() < self.labels.max_domains {
            inner.domains.insert(
                labels.domain.clone(),
                DomainSlot {
                    last_active_ns: active_ns,
                    unexpected,
                    admitted_at: inner.scraped_ns,
                },
            );
        } else {
            if count_overflow {
                inner.overflow += 1;
            }
            labels.domain = OTHER.to_owned();
        }
        labels
    }

    /// Gives the flow's `owner` value a place in the bounded owner set, or
    /// folds it into `other`.
    ///
    /// Owners come from rules (the catalog's and the user's lists), so
    /// there are few; the set is filled first come, first served and a place
    /// is never given back. So whether an owner is folded is decided the
    /// first time it is seen and never changes: no flow is ever reported
    /// under `other` first and under its owner later, and the `owner` label
    /// set stays bounded however long the monitor runs.
    pub(super) fn admit_owner(&self, inner: &mut Inner, mut labels: FlowLabels) -> FlowLabels {
        if labels.owner == UNKNOWN_OWNER
            || labels.owner == OTHER
            || inner.owners.contains(&labels.owner)
        {
            return labels;
        }
        if inner.owners.len() < self.labels.max_owners {
            inner.owners.insert(labels.owner.clone());
        } else {
            labels.owner = OTHER.to_owned();
        }
        labels
    }

    /// Distinct `owner` values admitted now (without `unknown`/`other`).
    pub fn owner_values(&self) -> usize {
        self.lock().owners.len()
    }

    /// Gives back the places of values without traffic for the policy's
    /// idle time. Scans at most once a second of packet time unless forced.
    pub(super) fn release_idle(&self, inner: &mut Inner, force: bool) {
        let now = inner.now_ns;
        if !force && now < inner.idle_scan_ns.saturating_add(1_000_000_000) {
            return;
        }
        inner.idle_scan_ns = now;
        let idle: Vec<String> = inner
            .domains
            .iter()
            .filter(|(_, slot)| now.saturating_sub(slot.last_active_ns) > self.labels.idle_ns)
            .map(|(d, _)| d.clone())
            .collect();
        for d in idle {
            release(inner, &d, self.released_cap());
        }
    }

    /// Most released values listed between two scrapes.
    pub(super) fn released_cap(&self) -> usize {
        4 * self.labels.max_domains.max(64)
    }

    /// Distinct `domain` values admitted now (without `unnamed`/`other`).
    pub fn domain_values(&self) -> usize {
        self.lock().domains.len()
    }
}

/// `unnamed` and `other`: the two values that are not DNS names and take
/// no place in the budget.
pub(super) fn is_reserved(domain: &str) -> bool {
    domain == UNNAMED || domain == OTHER
}

/// Gives `domain`'s place back: its finished totals move to `other` (so
/// sums never go backwards) and its series leave the exposition.
pub(super) fn release(inner: &mut Inner, domain: &str, cap: usize) {
    inner.domains.remove(domain);
    for labels in inner.retired_keys.remove(domain).unwrap_or_default() {
        if let Some(t) = inner.retired.remove(&labels) {
            let folded = FlowLabels {
                domain: OTHER.to_owned(),
                ..labels
            };
            add_retired(inner, folded, &t);
        }
    }
    fold_novelty(&mut inner.new_destinations, domain);
    fold_novelty(&mut inner.flagged_flows, domain);
    // Between scrapes the list stays bounded: past a few budgets' worth the
    // next scrape keeps only the series of values admitted then.
    if inner.released.len() < cap {
        inner.released.insert(domain.to_owned());
    } else {
        inner.released.clear();
        inner.released_overflow = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::*;
    use std::collections::HashSet;
    use tetherscope_flow::Transport;

    fn verdict(s: &Shared, sni: &str) -> &'static str {
        s.measure(&tls_flow(sni, 0), true).0.verdict
    }

    #[test]
    fn idle_domains_give_their_place_back_and_their_totals_fold_into_other() {
        let s = shared(3);
        for (i, d) in ["alpha", "bravo", "charlie"].iter().enumerate() {
            s.retire(&tls_flow(&format!("www.{d}.org"), i as u64));
        }
        let before = crate::metrics::render(&s);
        assert_eq!(domains(&before).len(), 3, "{before}");
        // Two hours later, in packet time: the three are idle.
        s.retire(&tls_flow("www.delta.org", 2 * HOUR));
        let after = crate::metrics::render(&s);
        let now = domains(&after);
        assert!(
            now.contains("delta.org") && now.contains("other"),
            "{now:?}"
        );
        assert!(!now.contains("alpha.org"), "{after}");
        assert_eq!(flows_sum(&after), 4.0, "{after}");
        assert!(flows_sum(&after) >= flows_sum(&before));
        assert_eq!(s.domain_values(), 1);
    }

    #[test]
    fn an_unexpected_destination_takes_the_place_of_the_least_recent_expected_one() {
        let s = shared(2);
        let (old, recent) = (
            "release.calyxinstitute.org",
            "connectivitycheck.gstatic.com",
        );
        assert_eq!(verdict(&s, old), "expected");
        assert_eq!(verdict(&s, recent), "expected");
        assert_eq!(verdict(&s, "beacon.tracker.example.com"), "unexpected");
        s.retire(&tls_flow(old, 1));
        s.retire(&tls_flow(recent, 2));
        s.retire(&tls_flow("beacon.tracker.example.com", 3));
        // An expected newcomer finds no place and is folded.
        s.retire(&tls_flow("mtalk.google.com", 4));
        let text = crate::metrics::render(&s);
        let now = domains(&text);
        assert!(now.contains("example.com"), "{now:?}");
        assert!(now.contains("gstatic.com"), "{now:?}");
        assert!(!now.contains("calyxinstitute.org"), "{now:?}");
        assert!(!now.contains("google.com"), "{now:?}");
        assert_eq!(flows_sum(&text), 4.0);
        // A new unexpected destination is never the one folded: with only
        // unexpected values left, it takes the least recent one's place.
        s.retire(&tls_flow("ads.other-tracker.net", 5));
        s.retire(&tls_flow("x.third-tracker.net", 6));
        let text = crate::metrics::render(&s);
        let now = domains(&text);
        assert!(now.contains("third-tracker.net"), "{now:?}");
        assert!(now.contains("other-tracker.net"), "{now:?}");
        assert!(!now.contains("example.com"), "{now:?}");
        assert_eq!(flows_sum(&text), 6.0);
    }

    #[test]
    fn an_expected_newcomer_takes_only_a_place_quiet_for_a_while() {
        let s = shared(1);
        let second = 1_000_000_000;
        s.retire(&tls_flow("beacon.tracker.example.com", 0));
        // The idle time is an hour: a place quiet for 150 s can be taken.
        s.retire(&tls_flow("release.calyxinstitute.org", 60 * second));
        let now = domains(&crate::metrics::render(&s));
        assert!(
            now.contains("example.com") && !now.contains("calyxinstitute.org"),
            "{now:?}"
        );
        s.retire(&tls_flow("connectivitycheck.gstatic.com", 200 * second));
        let text = crate::metrics::render(&s);
        let now = domains(&text);
        assert!(
            now.contains("gstatic.com") && !now.contains("example.com"),
            "{now:?}"
        );
        assert_eq!(flows_sum(&text), 3.0);
    }

    #[test]
    fn released_values_stay_bounded_without_scrapes() {
        let s = shared(5);
        for i in 0..20_000u64 {
            s.retire(&flow_at(
                Some(&format!("www.d{i}.org")),
                Transport::Tcp,
                443,
                9,
                i * 2 * HOUR,
            ));
        }
        let held = s.lock().released.len();
        assert!(held <= s.released_cap(), "released holds {held} names");
        let text = crate::metrics::render(&s);
        assert!(domains(&text).len() <= 6, "{:?}", domains(&text));
        assert_eq!(flows_sum(&text), 20_000.0);
    }

    /// `tetherscope_owner_bytes_total` of an exposition, by (owner, direction).
    fn owner_bytes(text: &str) -> std::collections::HashMap<(String, String), f64> {
        let label = |l: &str, name: &str| -> String {
            l.split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or("")
                .to_owned()
        };
        let mut out = std::collections::HashMap::new();
        for l in text
            .lines()
            .filter(|l| l.starts_with("tetherscope_owner_bytes_total{"))
        {
            let v: f64 = l
                .rsplit_once(' ')
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(f64::NAN);
            *out.entry((label(l, "owner"), label(l, "direction")))
                .or_default() += v;
        }
        out
    }

    #[test]
    fn owner_bytes_are_reported_by_device_owner_and_direction() {
        let s = shared(10);
        let mut xtra = tls_flow("xtrapath3.izatcloud.net", 0);
        xtra.bytes_down = 7;
        s.retire(&xtra);
        s.retire(&flow_at(None, Transport::Udp, 5000, 7, 1));
        let text = crate::metrics::render(&s);
        let bytes = owner_bytes(&text);
        let at = |o: &str, d: &str| bytes.get(&(o.to_owned(), d.to_owned())).copied();
        assert_eq!(at("Qualcomm", "up"), Some(100.0), "{text}");
        assert_eq!(at("Qualcomm", "down"), Some(7.0), "{text}");
        assert_eq!(at("unknown", "up"), Some(100.0), "{text}");
        assert!(
            text.contains("tetherscope_owner_bytes_total{device=\"unknown\",direction=\"up\",owner=\"Qualcomm\"} 100"),
            "{text}"
        );
        assert!(text.contains("tetherscope_owner_labels 1"), "{text}");
    }

    #[test]
    fn owners_past_the_budget_fold_into_other_and_list_names_are_made_safe() {
        use tetherscope_classify::{Catalog, ListFormat, Purpose};
        use tetherscope_flow::{Pipeline, PipelineConfig};
        let mut catalog = Catalog::builtin();
        for (file, domain) in [
            ("alpha-list.txt", "tracker-a.example"),
            ("evil\"\u{202e}list.txt", "tracker-e.example"),
            ("beta-list.txt", "tracker-b.example"),
        ] {
            let path = std::path::Path::new(file);
            catalog.import_list_str(path, domain, Purpose::Tracking, ListFormat::Domains);
        }
        let pipeline = Pipeline::new(&PipelineConfig::default());
        let s = Shared::with_labels(
            &pipeline,
            std::sync::Arc::new(catalog),
            LabelPolicy {
                max_owners: 2,
                ..LabelPolicy::new(10)
            },
        );
        for (i, d) in ["tracker-a", "tracker-e", "tracker-b"].iter().enumerate() {
            s.retire(&tls_flow(&format!("www.{d}.example"), i as u64));
        }
        let text = crate::metrics::render(&s);
        let owners: HashSet<String> = owner_bytes(&text).into_keys().map(|(o, _)| o).collect();
        // The list's name loses its quote and shows its invisible character
        // (the exposition writes the escape's backslash as `\\`).
        let want: HashSet<String> = ["alpha-list", "evil\\\\u{202e}list", "other"]
            .map(str::to_owned)
            .into();
        assert_eq!(owners, want, "{text}");
        assert_eq!(s.owner_values(), 2);
        // An owner that found no place stays folded, active or finished, and
        // no byte is counted twice across scrapes.
        s.table.insert(flow_at(
            Some("x.tracker-b.example"),
            Transport::Tcp,
            443,
            5,
            10,
        ));
        for _ in 0..2 {
            let text = crate::metrics::render(&s);
            let bytes = owner_bytes(&text);
            assert_eq!(bytes.values().sum::<f64>(), 400.0, "{text}");
            assert_eq!(
                bytes[&("other".to_owned(), "up".to_owned())],
                200.0,
                "{text}"
            );
        }
    }
}
