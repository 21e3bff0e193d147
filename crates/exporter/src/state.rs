//! What the capture side shares with the exporter, and the aggregation of
//! flows into labelled totals.
//!
//! Metrics are built when scraped: active flows are read from the flow table,
//! finished flows were folded into `Retired` totals when they left it. Every
//! series is reported as the maximum of what it was last time and what it is
//! now, so a counter never goes backwards, whatever races a scrape has with
//! the capture thread moving a flow from active to finished.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use tetherscope_classify::{Catalog, Judgement, Purpose, Verdict as ClassVerdict};
use tetherscope_flow::flow::NameSource;
use tetherscope_flow::{BlindSpot, DeviceTable, Flow, FlowTable, Pipeline, Stats};

use crate::annotate::{Annotation, Annotator, Peek};
use crate::facts;
use crate::novelty::BaselineHandle;
use crate::paging::{FlowCursor, Smallest};
use crate::record::FlowRecord;

/// Label value for domains past the cap, or whose place was given back.
pub const OTHER: &str = "other";
/// Label value for flows nothing names.
pub use tetherscope_record::UNNAMED;
/// How long a `domain` value may see no traffic before it gives its place
/// back: a day of packet time.
pub const DEFAULT_LABEL_IDLE_NS: u64 = 24 * 3600 * 1_000_000_000;

/// What the `domain` label holds for a named flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DomainLabel {
    /// The registrable domain (eTLD+1) of the flow's name: `izatcloud.net`.
    #[default]
    Registrable,
    /// The full name: `xtrapath3.izatcloud.net`.
    Fqdn,
}

/// How the `domain` label set is kept bounded over months.
#[derive(Debug, Clone, Copy)]
pub struct LabelPolicy {
    /// Most distinct `domain` values besides `unnamed` and `other`.
    pub max_domains: usize,
    /// Packet time without traffic after which a value gives its place back.
    pub idle_ns: u64,
    /// Registrable domain or full name.
    pub domain: DomainLabel,
}

impl LabelPolicy {
    /// `max_domains` values, a day of idleness, registrable domains.
    pub fn new(max_domains: usize) -> Self {
        LabelPolicy {
            max_domains,
            idle_ns: DEFAULT_LABEL_IDLE_NS,
            domain: DomainLabel::Registrable,
        }
    }
}
/// Label value for flows without a known device.
pub const UNKNOWN_DEVICE: &str = "unknown";

/// Labels of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowLabels {
    /// DHCP name or MAC.
    pub device: String,
    /// The bounded DNS-name label: registrable domain (or full name) of
    /// what the flow was attributed to, `unnamed` or `other`.
    pub domain: String,
    /// The catalog's display name of the matching rule ("" when none).
    pub service: String,
    /// Purpose.
    pub purpose: &'static str,
    /// Expected or not.
    pub verdict: &'static str,
    /// DNS flows: the response code of the first answer ("" for others).
    pub rcode: &'static str,
}

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
    fn hidden_by_private_dns(&mut self) {
        let (from, to) = (
            blind_index(BlindSpot::NoDnsSeen),
            blind_index(crate::blind::refine(BlindSpot::NoDnsSeen, true)),
        );
        self.blind_flows[to] += std::mem::take(&mut self.blind_flows[from]);
        self.blind_bytes[to] += std::mem::take(&mut self.blind_bytes[from]);
    }

    fn add(&mut self, o: &Totals) {
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

/// Live capture status.
#[derive(Debug, Default)]
pub struct CaptureStatus {
    /// Interface name.
    pub interface: Mutex<String>,
    /// Whether a capture handle is open.
    pub attached: AtomicBool,
    /// Packets seen by libpcap (cumulative across re-attachments).
    pub packets: AtomicU64,
    /// Dropped in the kernel buffer (cumulative).
    pub dropped_kernel: AtomicU64,
    /// Dropped by the interface (cumulative).
    pub dropped_interface: AtomicU64,
    /// Wall-clock time of the last packet, Unix nanoseconds.
    pub last_packet_unix_ns: AtomicU64,
    /// Times the capture was (re)attached.
    pub attachments: AtomicU64,
    /// Bytes written to the flow log.
    pub flow_log_bytes: AtomicU64,
    /// Times the flow log file was rotated.
    pub flow_log_rotations: AtomicU64,
}

/// Everything the exporter reads.
pub struct Shared {
    /// Active flows.
    pub table: Arc<FlowTable>,
    /// Devices.
    pub devices: Arc<DeviceTable>,
    /// Pipeline counters.
    pub stats: Arc<Stats>,
    /// The catalog and active profile.
    pub catalog: Arc<Catalog>,
    /// Capture status.
    pub capture: CaptureStatus,
    /// How the `domain` label set stays bounded.
    pub labels: LabelPolicy,
    /// The per-device baseline, when a state store is in use.
    pub baseline: Option<BaselineHandle>,
    /// The offline network tables each record's server address is looked
    /// up in (empty: no lookups).
    pub network: Arc<tetherscope_netinfo::NetInfo>,
    /// Connections the HTTP listener's limits closed.
    pub connections: Arc<crate::connections::ConnectionStats>,
    /// The flow history sink's counters, when `--history-url` is given.
    pub history: std::sync::OnceLock<Arc<tetherscope_history::SinkStats>>,
    /// Per-process secret that state-changing API requests must carry.
    token: String,
    inner: Mutex<Inner>,
    /// Serialises scrapes and holds what the last one reported per series,
    /// so counters never go backwards.
    pub(crate) reported: Mutex<HashMap<(&'static str, Vec<String>), u64>>,
    /// Finished flows folded for the page (`crate::view`).
    view: Mutex<crate::view::Aggregate>,
    /// The last computed view, shared by `/` and `/api/view`.
    view_cache: crate::view_cache::ViewCache,
}

#[derive(Default)]
struct Inner {
    /// Classifications the last scrape made: the next one reserves room
    /// for as many, rather than growing its tables step by step.
    last_classes: usize,
    retired: HashMap<FlowLabels, Totals>,
    /// The keys of `retired` by `domain`, so a value's place is given back
    /// without a pass over every label set.
    retired_keys: HashMap<String, Vec<FlowLabels>>,
    /// Admitted `domain` values.
    domains: HashMap<String, DomainSlot>,
    /// Values that gave their place back since the last scrape: their
    /// series leave the exposition, their totals now count under `other`.
    released: HashSet<String>,
    /// Latest packet time seen by the label set.
    now_ns: u64,
    /// Packet time of the last scan for idle values.
    idle_scan_ns: u64,
    /// `released` overflowed since the last scrape.
    released_overflow: bool,
    /// Packet time the last scrape had reached: flows started after it are
    /// newcomers to the next one.
    scraped_ns: u64,
    overflow: u64,
    recent: VecDeque<(FlowCursor, FlowRecord)>,
    /// Destinations that became `new`, per (device, domain, purpose).
    new_destinations: HashMap<NoveltyLabels, u64>,
    /// Flows to flagged destinations, per (device, domain, purpose).
    flagged_flows: HashMap<NoveltyLabels, u64>,
    /// Tracked devices seen resolving over DoT, DoQ or DoH.
    private_dns: HashSet<[u8; 6]>,
}

/// Device, domain and purpose labels of a baseline event.
pub type NoveltyLabels = (String, String, &'static str);

/// Baseline events per label set.
pub type NoveltyCounts = Vec<(NoveltyLabels, u64)>;

/// What the label budget knows of one admitted `domain` value.
#[derive(Debug, Clone, Copy, Default)]
struct DomainSlot {
    /// Packet time of its latest traffic.
    last_active_ns: u64,
    /// Some flow under it was unexpected: it is never the one folded.
    unexpected: bool,
    /// Packet time the last scrape had reached when the value was admitted.
    /// Flows started before it were reported under `other` and stay there:
    /// a counter held at its last value never gets a flow twice.
    admitted_at: u64,
}

/// Finished flows kept for `/api/flows`.
const RECENT: usize = 1000;

impl Shared {
    /// Shares a pipeline's tables with the exporter.
    pub fn new(pipeline: &Pipeline, catalog: Arc<Catalog>, max_domains: usize) -> Self {
        Self::with_labels(pipeline, catalog, LabelPolicy::new(max_domains))
    }

    /// Shares a pipeline's tables, with a label policy.
    pub fn with_labels(pipeline: &Pipeline, catalog: Arc<Catalog>, labels: LabelPolicy) -> Self {
        Shared {
            table: pipeline.table.clone(),
            devices: pipeline.devices.clone(),
            stats: pipeline.stats.clone(),
            catalog,
            capture: CaptureStatus::default(),
            labels,
            baseline: None,
            network: Arc::default(),
            connections: Arc::default(),
            history: std::sync::OnceLock::new(),
            token: new_token(),
            inner: Mutex::new(Inner::default()),
            reported: Mutex::new(HashMap::new()),
            view: Mutex::new(crate::view::Aggregate::live()),
            view_cache: crate::view_cache::ViewCache::default(),
        }
    }

    /// Serves each computed view for `interval` (one second by default).
    pub fn with_view_interval(mut self, interval: std::time::Duration) -> Self {
        self.view_cache = crate::view_cache::ViewCache::new(interval);
        self
    }

    /// The shared view slot.
    pub fn view_cache(&self) -> &crate::view_cache::ViewCache {
        &self.view_cache
    }

    /// Adds the per-device baseline: finished flows are judged against it.
    pub fn with_baseline(mut self, handle: BaselineHandle) -> Self {
        self.baseline = Some(handle);
        self
    }

    /// Sets the per-device baseline (before the exporter is shared).
    pub fn set_baseline(&mut self, handle: BaselineHandle) {
        self.baseline = Some(handle);
    }

    /// The one step from a flow to its classification, record and novelty,
    /// under this monitor's catalog, devices and baseline.
    pub fn annotator(&self) -> Annotator<'_> {
        Annotator::new(&self.catalog, &self.devices, self.baseline.as_ref())
            .with_network(&self.network)
    }

    /// The token state-changing API requests must carry (the
    /// `X-Tetherscope-Token` header or the login address's cookie): 32
    /// random bytes, hex, new per process. Never part of a response.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `domain` label a destination's series carry in a scrape: itself
    /// while it holds a place in the snapshot's label set, else `other`.
    pub fn domain_label(snapshot: &Snapshot, domain: &str) -> String {
        let domain = sanitize(domain);
        if is_reserved(&domain) || snapshot.admitted.contains(&domain) {
            domain
        } else {
            OTHER.to_owned()
        }
    }

    /// The device label for a MAC (DHCP name, else the MAC).
    pub fn device_name(&self, mac: [u8; 6]) -> String {
        self.device_label(Some(mac))
    }

    /// Finished flows folded for the page so far.
    pub fn view_aggregate(&self) -> MutexGuard<'_, crate::view::Aggregate> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token of the login address the owner is shown, when there is a
    /// baseline to triage.
    pub fn triage_token(&self) -> Option<&str> {
        self.baseline.as_ref().map(|_| self.token.as_str())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device label of a flow's client MAC. Untracked MACs (the device
    /// table is full) share one label.
    fn device_label(&self, mac: Option<[u8; 6]>) -> String {
        match mac {
            None => UNKNOWN_DEVICE.to_owned(),
            Some(m) => self
                .devices
                .label(&m)
                .map_or_else(|| OTHER.to_owned(), |l| sanitize(&l)),
        }
    }

    /// Notes that the device behind `mac` uses private DNS, if the device
    /// table tracks it (so the set stays as bounded as the table).
    fn note_private_dns(&self, inner: &mut Inner, mac: Option<[u8; 6]>) {
        if let Some(mac) = mac {
            if self.devices.label(&mac).is_some() {
                inner.private_dns.insert(mac);
            }
        }
    }

    /// Whether the device behind `mac` was seen resolving over DoT, DoQ or
    /// DoH (a flow the catalog calls `encrypted-dns`).
    pub fn uses_private_dns(&self, mac: &[u8; 6]) -> bool {
        self.lock().private_dns.contains(mac)
    }

    /// Labels (domain not yet folded) and totals of one flow.
    #[cfg(test)]
    fn measure(&self, flow: &Flow, finished: bool) -> (FlowLabels, Totals) {
        self.measure_as(flow, &self.annotator().classify(flow), finished)
    }

    /// [`Shared::measure`] of a flow classified as `class`.
    fn measure_as(
        &self,
        flow: &Flow,
        class: &tetherscope_classify::Classification<'_>,
        finished: bool,
    ) -> (FlowLabels, Totals) {
        let domain = flow.domain().map(|(d, _)| d);
        let labels = FlowLabels {
            device: self.device_label(flow.client_mac),
            domain: domain_label(label_name(flow, domain), self.labels.domain),
            service: service_label(class.rule),
            purpose: class.purpose.as_str(),
            verdict: verdict_label(class.verdict == ClassVerdict::Unexpected),
            rcode: rcode_label(flow),
        };
        (
            labels,
            totals(
                flow,
                class.purpose,
                class.cleartext_known,
                finished,
                domain.is_some(),
            ),
        )
    }

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
    fn admit(
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

    /// Gives back the places of values without traffic for the policy's
    /// idle time. Scans at most once a second of packet time unless forced.
    fn release_idle(&self, inner: &mut Inner, force: bool) {
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

    /// Folds a finished flow into the retired totals and the recent list;
    /// returns its record (for the flow log).
    pub fn retire(&self, flow: &Flow) -> FlowRecord {
        let Annotation {
            class,
            record,
            blind_spot,
            outcome,
        } = self.annotator().finished(flow);
        let (labels, mut totals) = self.measure_as(flow, &class, true);
        let mut inner = self.lock();
        if class.purpose == Purpose::EncryptedDns {
            self.note_private_dns(&mut inner, flow.client_mac);
        }
        if flow
            .client_mac
            .is_some_and(|m| inner.private_dns.contains(&m))
        {
            totals.hidden_by_private_dns();
        }
        // A flow a scrape already reported under `other` cannot take a place.
        let newcomer = flow.first_seen > inner.scraped_ns;
        let labels = self.admit(
            &mut inner,
            labels,
            flow.last_seen,
            flow.first_seen,
            newcomer,
            true,
        );
        if let Some(o) = outcome {
            let key = (labels.device.clone(), labels.domain.clone(), labels.purpose);
            if o.became_new {
                *inner.new_destinations.entry(key.clone()).or_default() += 1;
            }
            if o.novelty == tetherscope_baseline::Novelty::Flagged {
                *inner.flagged_flows.entry(key).or_default() += 1;
            }
        }
        add_retired(&mut inner, labels, &totals);
        if inner.recent.len() >= RECENT {
            inner.recent.pop_front();
        }
        inner
            .recent
            .push_back((FlowCursor::of(flow), record.clone()));
        drop(inner);
        self.view_aggregate()
            .add(&crate::view::Seen::of(flow, blind_spot), &record);
        record
    }

    /// One page of `/api/flows`: active flows and recently finished ones,
    /// as records ordered by [`FlowCursor`], at most `limit` of them after
    /// `after`, and the cursor to continue from when more follow. Only the
    /// page's records are held, however many flows the table has.
    pub fn flow_page(
        &self,
        after: Option<FlowCursor>,
        limit: usize,
    ) -> (Vec<FlowRecord>, Option<FlowCursor>) {
        let past = |c: &FlowCursor| after.is_none_or(|a| *c > a);
        let annotator = self.annotator();
        let mut page: Smallest<FlowCursor, (FlowRecord, Option<Option<Peek>>)> =
            Smallest::new(limit);
        for (cursor, record) in self.lock().recent.iter() {
            if past(cursor) && page.wants(cursor) {
                page.offer(*cursor, (record.clone(), None));
            }
        }
        self.table.for_each(|f| {
            let cursor = FlowCursor::of(f);
            if !past(&cursor) || !page.wants(&cursor) {
                return;
            }
            let a = annotator.active(f);
            // Judged against the baseline after the table walk, so the
            // baseline's lock is never held while walking the table.
            let peek = annotator.peek(f, &a.class);
            page.offer(cursor, (a.record, Some(peek)));
        });
        let (items, next) = page.finish();
        let baseline = self.baseline.as_ref().map(|b| b.lock());
        let records = items
            .into_iter()
            .map(|(_, (mut record, peek))| {
                if let (Some(b), Some(peek)) = (&baseline, peek) {
                    record.novelty = peek.map(|p| p.novelty(b).as_str());
                }
                record
            })
            .collect();
        (records, next)
    }

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

    /// Most released values listed between two scrapes.
    fn released_cap(&self) -> usize {
        4 * self.labels.max_domains.max(64)
    }

    /// Distinct `domain` values admitted now (without `unnamed`/`other`).
    pub fn domain_values(&self) -> usize {
        self.lock().domains.len()
    }
}

/// `unnamed` and `other`: the two values that are not DNS names and take
/// no place in the budget.
fn is_reserved(domain: &str) -> bool {
    domain == UNNAMED || domain == OTHER
}

/// Gives `domain`'s place back: its finished totals move to `other` (so
/// sums never go backwards) and its series leave the exposition.
fn release(inner: &mut Inner, domain: &str, cap: usize) {
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

/// Moves the baseline event counts of a released domain under `other`.
fn fold_novelty(counts: &mut HashMap<NoveltyLabels, u64>, domain: &str) {
    let gone: Vec<NoveltyLabels> = counts.keys().filter(|k| k.1 == domain).cloned().collect();
    for key in gone {
        let n = counts.remove(&key).unwrap_or(0);
        *counts.entry((key.0, OTHER.to_owned(), key.2)).or_default() += n;
    }
}

/// Adds finished totals under `labels`, indexing a new label set by domain.
fn add_retired(inner: &mut Inner, labels: FlowLabels, totals: &Totals) {
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

/// Active flows are summed by client MAC and label id.
type ActiveKey = (Option<[u8; 6]>, u32);

/// The labels a classification gives, besides the device, as small ids:
/// hashed and compared once per new classification, so free of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LabelKey {
    /// Index into [`ClassMemo::domains`].
    domain: u32,
    /// Index into [`ClassMemo::services`].
    service: u32,
    purpose: Purpose,
    unexpected: bool,
    /// The `rcode` label itself ([`rcode_name`]): response codes that
    /// share a label share a label set.
    rcode: &'static str,
}

/// The totals one flow contributes. `named`: the flow has a domain (so it
/// is no blind spot); the caller knows it already.
fn totals(
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
    fn add_flow(
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

/// The name the `domain` label is made of: the flow's domain (given, as
/// the caller has it), or for a DNS flow the name it asked about.
fn label_name<'f>(flow: &'f Flow, domain: Option<&'f str>) -> Option<&'f str> {
    domain.or_else(|| {
        flow.names
            .as_deref()
            .and_then(|n| n.dns_query.as_deref())
            .filter(|q| !q.is_empty())
    })
}

/// The `domain` label of a name: its registrable domain or the full name,
/// made safe as a label value.
pub fn domain_label(name: Option<&str>, mode: DomainLabel) -> String {
    domain_label_ref(name, mode).into_owned()
}

/// [`domain_label`], borrowed from the name when it is safe as it is (most
/// names): a scrape looks up many more names than it keeps.
fn domain_label_ref(name: Option<&str>, mode: DomainLabel) -> Cow<'_, str> {
    match name {
        None => Cow::Borrowed(UNNAMED),
        Some(n) => {
            let n = match mode {
                DomainLabel::Registrable => tetherscope_classify::registrable_domain(n),
                DomainLabel::Fqdn => n,
            };
            if is_safe_label(n) {
                Cow::Borrowed(n)
            } else {
                Cow::Owned(sanitize(n))
            }
        }
    }
}

/// Whether [`sanitize`] would return the value unchanged.
fn is_safe_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= SANITIZED_MAX_CHARS
        && !s.chars().any(|c| {
            if c.is_ascii() {
                c.is_ascii_control() || c == '"' || c == '\\'
            } else {
                crate::visible::is_hidden(c)
            }
        })
}

/// What decides the `rcode` label, as a number: 0 for flows that are not
/// DNS, [`RCODE_NONE`] for no answer yet, else 0x100 | the response code.
fn rcode_key(flow: &Flow) -> u16 {
    match flow.names.as_deref().filter(|n| n.dns_query.is_some()) {
        None => 0,
        Some(n) => n.dns_rcode.map_or(RCODE_NONE, |r| 0x100 | u16::from(r)),
    }
}

/// [`rcode_key`] of a DNS flow without an answer.
const RCODE_NONE: u16 = 0x200;

/// The `rcode` of a DNS flow: the first answer's response code, `none`
/// when no answer was seen; "" for flows that are not DNS.
fn rcode_label(flow: &Flow) -> &'static str {
    rcode_name(rcode_key(flow))
}

/// The `rcode` label of an [`rcode_key`].
fn rcode_name(key: u16) -> &'static str {
    match key {
        0 => "",
        RCODE_NONE => "none",
        0x100 => "noerror",
        0x102 => "servfail",
        0x103 => "nxdomain",
        0x105 => "refused",
        _ => "other",
    }
}

/// The `service` label of a classification: its rule's display name.
fn service_label(rule: Option<&tetherscope_classify::Rule>) -> String {
    rule.map(|r| sanitize_or_empty(r.display.as_deref().unwrap_or(&r.name)))
        .unwrap_or_default()
}

/// The `verdict` label.
fn verdict_label(unexpected: bool) -> &'static str {
    if unexpected {
        "unexpected"
    } else {
        "expected"
    }
}

/// What classification and labelling read from a flow, to recognise
/// repeats. Strings live in [`ClassMemo::text`], so a new classification
/// costs no allocation of its own.
struct ClassInputs {
    transport: tetherscope_flow::Transport,
    server_port: u16,
    server_is_local: bool,
    app: tetherscope_flow::AppProto,
    name: Option<TextRange>,
    /// Identity of the shared DNS answer (its CNAME chain matters too).
    resolution: Option<*const tetherscope_flow::dns_cache::Resolution>,
    http_path: Option<TextRange>,
    rcode: u16,
    /// Identity of the device's own profile, if it has one.
    profile: Option<*const tetherscope_classify::Profile>,
}

/// A string kept in [`ClassMemo::text`]: start and end.
type TextRange = (u32, u32);

/// Classifications of one scrape, by the inputs that decide them.
///
/// Ids whose inputs share a hash are chained through `next`, so a new
/// destination costs one push per vector rather than an allocation of its
/// own. Classifications that end in the same labels share a label id, and
/// once the `domain` label set is full an expected domain outside it is
/// `other` from the start: a flood of distinct names aggregates into a
/// handful of label sets during the pass over the table, not after it.
#[derive(Default)]
struct ClassMemo {
    /// First classification id per input hash.
    by_hash: ahash::HashMap<u64, u32>,
    /// Per id: its inputs and the next id with the same hash.
    inputs: Vec<(ClassInputs, u32)>,
    /// The strings of `inputs`, end to end.
    text: String,
    /// Per id: what the flows of that classification are labelled.
    classes: Vec<Class>,
    /// Label sets by label id, and the reverse.
    labels: Vec<LabelKey>,
    label_ids: ahash::HashMap<LabelKey, u32>,
    /// `domain` values by [`LabelKey::domain`] (`other` first), and the
    /// reverse. Only values that keep their name are here.
    domains: Vec<String>,
    domain_ids: ahash::HashMap<String, u32>,
    /// `service` values by [`LabelKey::service`] (`""` first), the
    /// matching rule's address to its id, and the reverse.
    services: Vec<String>,
    service_ids: ahash::HashMap<*const tetherscope_classify::Rule, u32>,
    service_by_value: ahash::HashMap<String, u32>,
    /// `domain` label values admitted when the scrape began, with their
    /// admission times.
    admitted: ahash::HashMap<String, u64>,
    /// How many more classifications of values without a place may keep
    /// their name for admission to decide; after that, newcomers fold here,
    /// so a burst of new names costs at most this many label sets.
    newcomer_places: usize,
    /// Packet time of the previous scrape: flows started later are
    /// newcomers, which admission may give a place.
    since: u64,
    domain_label: DomainLabel,
    hasher: ahash::RandomState,
}

/// How the flows of one classification are labelled.
#[derive(Debug, Clone, Copy)]
struct Class {
    /// Label id under the flow's own domain.
    label: u32,
    /// Label id under `other`.
    folded: u32,
    purpose: Purpose,
    cleartext_known: bool,
    /// When the domain was admitted, if it holds a place.
    admitted_at: Option<u64>,
}

/// End of a chain of ids.
const NO_CLASS: u32 = u32::MAX;

/// [`LabelKey::domain`] of `other`.
const OTHER_ID: u32 = 0;

impl ClassMemo {
    /// A memo for one scrape.
    fn new(
        admitted: ahash::HashMap<String, u64>,
        newcomer_places: usize,
        since: u64,
        domain_label: DomainLabel,
        expected_classes: usize,
    ) -> Self {
        let mut memo = ClassMemo {
            admitted,
            newcomer_places,
            since,
            domain_label,
            ..ClassMemo::default()
        };
        memo.by_hash.reserve(expected_classes);
        memo.inputs.reserve(expected_classes);
        memo.classes.reserve(expected_classes);
        memo.domains.push(OTHER.to_owned());
        memo.domain_ids.insert(OTHER.to_owned(), OTHER_ID);
        memo.services.push(String::new());
        memo.service_by_value.insert(String::new(), 0);
        memo
    }

    /// The classification id of a flow whose domain is `domain`
    /// ([`Flow::domain`], which the caller needs too).
    fn class_of(
        &mut self,
        annotator: &Annotator<'_>,
        f: &Flow,
        domain: Option<(&str, NameSource)>,
    ) -> u32 {
        let names = f.names.as_deref();
        // A device's own profile decides its verdicts, as in its records.
        let profile = annotator.own_profile(f.client_mac);
        let profile_id = profile.map(std::ptr::from_ref);
        let name = label_name(f, domain.map(|(d, _)| d));
        let resolution = names
            .and_then(|n| n.resolution.as_ref())
            .map(std::sync::Arc::as_ptr);
        let http_path = names.and_then(|n| n.http_path.as_deref());
        let server_is_local = facts::is_local(f.server.ip());
        // Enums and numbers, not strings: this runs for every flow.
        let app = f.app;
        let rcode = rcode_key(f);
        let hash = self.hasher.hash_one((
            f.transport,
            f.server.port(),
            server_is_local,
            app,
            name,
            resolution,
            http_path,
            rcode,
            profile_id,
        ));
        let text = &self.text;
        let stored = |r: Option<TextRange>| r.map(|(a, b)| &text[a as usize..b as usize]);
        let same = |k: &ClassInputs| {
            k.transport == f.transport
                && k.server_port == f.server.port()
                && k.server_is_local == server_is_local
                && k.app == app
                && k.resolution == resolution
                && k.rcode == rcode
                && k.profile == profile_id
                && stored(k.name) == name
                && stored(k.http_path) == http_path
        };
        let head = self.by_hash.get(&hash).copied().unwrap_or(NO_CLASS);
        let mut at = head;
        while at != NO_CLASS {
            let (inputs, next) = &self.inputs[at as usize];
            if same(inputs) {
                return at;
            }
            at = *next;
        }
        let mut class = facts::judge(annotator.catalog(), f, domain);
        if let Some(p) = profile {
            class.verdict = crate::annotate::verdict_under(p, class.rule);
        }
        let id = self.classes.len() as u32;
        let value = domain_label_ref(name, self.domain_label);
        let admitted_at = self.admitted.get(&*value).copied();
        let mut own = true;
        if admitted_at.is_none() && !is_reserved(&value) {
            // Past a budget of names without a place, newcomers fold here.
            own = self.newcomer_places > 0;
            self.newcomer_places = self.newcomer_places.saturating_sub(1);
        }
        let key = LabelKey {
            domain: OTHER_ID,
            service: self.service_id(&class),
            purpose: class.purpose,
            unexpected: class.verdict == ClassVerdict::Unexpected,
            rcode: rcode_name(rcode),
        };
        let folded = self.label_id(key);
        let label = if own {
            let domain = self.domain_id(value);
            self.label_id(LabelKey { domain, ..key })
        } else {
            folded
        };
        self.classes.push(Class {
            label,
            folded,
            purpose: class.purpose,
            cleartext_known: class.cleartext_known,
            admitted_at,
        });
        let name = name.map(|n| self.keep(n));
        let http_path = http_path.map(|p| self.keep(p));
        self.inputs.push((
            ClassInputs {
                transport: f.transport,
                server_port: f.server.port(),
                server_is_local,
                app,
                name,
                resolution,
                http_path,
                rcode,
                profile: profile_id,
            },
            head,
        ));
        self.by_hash.insert(hash, id);
        id
    }

    /// Appends a string to `text`.
    fn keep(&mut self, s: &str) -> TextRange {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    /// The id of a `domain` value, new or known.
    fn domain_id(&mut self, value: Cow<'_, str>) -> u32 {
        if let Some(&id) = self.domain_ids.get(&*value) {
            return id;
        }
        let id = self.domains.len() as u32;
        self.domains.push(value.clone().into_owned());
        self.domain_ids.insert(value.into_owned(), id);
        id
    }

    /// The id of a classification's `service` value; rules with the same
    /// display name share it.
    fn service_id(&mut self, class: &Judgement<'_>) -> u32 {
        let Some(rule) = class.rule else { return 0 };
        if let Some(&id) = self.service_ids.get(&(rule as *const _)) {
            return id;
        }
        let value = service_label(Some(rule));
        let services = &mut self.services;
        let id = *self
            .service_by_value
            .entry(value.clone())
            .or_insert_with(|| {
                services.push(value);
                (services.len() - 1) as u32
            });
        self.service_ids.insert(rule as *const _, id);
        id
    }

    /// The id of a label set, new or known.
    fn label_id(&mut self, key: LabelKey) -> u32 {
        let labels = &mut self.labels;
        *self.label_ids.entry(key).or_insert_with(|| {
            labels.push(key);
            (labels.len() - 1) as u32
        })
    }

    /// The labels of a label id, with the device's.
    fn flow_labels(&self, label: u32, device: String) -> FlowLabels {
        let key = self.labels[label as usize];
        FlowLabels {
            device,
            domain: self.domains[key.domain as usize].clone(),
            service: self.services[key.service as usize].clone(),
            purpose: key.purpose.as_str(),
            verdict: verdict_label(key.unexpected),
            rcode: key.rcode,
        }
    }
}

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
    /// Destinations that became new, per (device, domain, purpose).
    pub new_destinations: NoveltyCounts,
    /// Flows to flagged destinations, per (device, domain, purpose).
    pub flagged_flows: NoveltyCounts,
    /// `domain` values admitted at this snapshot: baseline series outside
    /// it say `other`, so one exposition never holds more than the budget.
    pub admitted: HashSet<String>,
    /// When too many gave their place back to list them: the values whose
    /// earlier series may still be reported (the others are gone).
    pub kept: Option<HashSet<String>>,
}

/// Makes a label value safe: control characters and quotes removed, length
/// capped. (The Prometheus text encoder escapes too; this keeps values short
/// and readable.)
pub fn sanitize(s: &str) -> String {
    let clean = sanitize_or_empty(s);
    if clean.is_empty() {
        UNNAMED.to_owned()
    } else {
        clean
    }
}

/// 32 random bytes from the kernel, hex.
fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)) {
        // Without randomness no token can be trusted: refuse every change.
        tracing::error!(
            "no random source for the API token ({e}); state changes over HTTP are refused"
        );
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// [`sanitize`], but an empty result stays empty.
fn sanitize_or_empty(s: &str) -> String {
    let mut out = String::new();
    for c in s
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(SANITIZED_MAX_CHARS)
    {
        // Characters that draw nothing or reorder the text are written out,
        // as on the page: `gsta\u{200b}tic.com` never passes for
        // `gstatic.com` in a dashboard.
        if crate::visible::is_hidden(c) {
            crate::visible::push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest label value [`sanitize`] keeps, in characters.
const SANITIZED_MAX_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;
    use tetherscope_flow::{AppProto, Names, PipelineConfig, Transport};

    #[test]
    fn label_values_show_invisible_characters() {
        for (name, shown) in [
            ("gsta\u{200b}tic.com", "gsta\\u{200b}tic.com"),
            ("\u{202e}moc.elgoog", "\\u{202e}moc.elgoog"),
            ("plain.example", "plain.example"),
            ("b\"a\\d\n.example", "bad.example"),
        ] {
            assert!(!is_safe_label(name) || name == "plain.example", "{name:?}");
            assert_eq!(sanitize(name), shown, "{name:?}");
            assert_eq!(
                domain_label_ref(Some(name), DomainLabel::Fqdn),
                shown,
                "{name:?}"
            );
        }
    }

    const HOUR: u64 = 3600 * 1_000_000_000;

    fn shared(max_domains: usize) -> Shared {
        let pipeline = Pipeline::new(&PipelineConfig::default());
        Shared::with_labels(
            &pipeline,
            Arc::new(Catalog::builtin()),
            LabelPolicy {
                max_domains,
                idle_ns: HOUR,
                domain: DomainLabel::Registrable,
            },
        )
    }

    /// A finished TLS flow to `sni` whose last packet was at `at`.
    fn tls_flow(sni: &str, at: u64) -> Flow {
        let mut f = Flow::new(
            Transport::Tcp,
            "10.42.0.23:40000".parse().unwrap(),
            "203.0.113.9:443".parse().unwrap(),
            at,
        );
        f.app = AppProto::Tls;
        f.bytes_up = 100;
        f.names = Some(Box::new(Names {
            sni: Some(sni.into()),
            ..Names::default()
        }));
        f
    }

    fn domains(text: &str) -> HashSet<String> {
        text.lines()
            .filter(|l| l.starts_with("tetherscope_flows_total{"))
            .filter_map(|l| Some(l.split("domain=\"").nth(1)?.split('"').next()?.to_owned()))
            .collect()
    }

    fn flows_sum(text: &str) -> f64 {
        text.lines()
            .filter(|l| l.starts_with("tetherscope_flows_total{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    fn verdict(s: &Shared, sni: &str) -> &'static str {
        s.measure(&tls_flow(sni, 0), true).0.verdict
    }

    #[test]
    fn domain_label_is_the_registrable_domain_and_the_display_name_is_the_service() {
        let s = shared(10);
        let (labels, _) = s.measure(&tls_flow("xtrapath3.izatcloud.net", 0), true);
        assert_eq!(labels.domain, "izatcloud.net");
        assert_eq!(labels.service, "Qualcomm XTRA");
        let fqdn = Shared {
            labels: LabelPolicy {
                domain: DomainLabel::Fqdn,
                ..s.labels
            },
            ..shared(10)
        };
        let (labels, _) = fqdn.measure(&tls_flow("xtrapath3.izatcloud.net", 0), true);
        assert_eq!(labels.domain, "xtrapath3.izatcloud.net");
        let (labels, _) = s.measure(&tls_flow("beacon.tracker.example.com", 0), true);
        assert_eq!(
            (labels.domain.as_str(), labels.service.as_str()),
            ("example.com", "")
        );
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

    /// A flow from the phone at `at`, named `sni` (TLS) or unnamed.
    fn flow_at(sni: Option<&str>, transport: Transport, port: u16, sport: u16, at: u64) -> Flow {
        let mut f = Flow::new(
            transport,
            format!("10.42.0.23:{sport}").parse().unwrap(),
            format!("203.0.113.9:{port}").parse().unwrap(),
            at,
        );
        f.bytes_up = 100;
        if let Some(sni) = sni {
            f.app = AppProto::Tls;
            f.names = Some(Box::new(Names {
                sni: Some(sni.into()),
                ..Names::default()
            }));
        }
        f
    }

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
}
