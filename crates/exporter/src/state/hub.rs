//! The hub: what the capture thread and the HTTP side share, and the
//! capture thread's entry points.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};

use tetherscope_classify::{Catalog, Purpose, Verdict as ClassVerdict};
use tetherscope_flow::{DeviceTable, Flow, FlowTable, Pipeline, Stats};

use super::budget::{DomainSlot, LabelPolicy};
use super::labels::{
    domain_label, label_name, owner_label, rcode_label, sanitize, service_label, verdict_label,
    FlowLabels, OTHER, UNKNOWN_DEVICE,
};
use super::totals::{add_retired, totals, Totals};
use crate::annotate::{Annotation, Annotator, Peek};
use crate::novelty::BaselineHandle;
use crate::paging::{FlowCursor, Smallest};
use crate::record::FlowRecord;

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
pub(super) struct Inner {
    /// Classifications the last scrape made: the next one reserves room
    /// for as many, rather than growing its tables step by step.
    pub(super) last_classes: usize,
    pub(super) retired: HashMap<FlowLabels, Totals>,
    /// The keys of `retired` by `domain`, so a value's place is given back
    /// without a pass over every label set.
    pub(super) retired_keys: HashMap<String, Vec<FlowLabels>>,
    /// Admitted `domain` values.
    pub(super) domains: HashMap<String, DomainSlot>,
    /// Values that gave their place back since the last scrape: their
    /// series leave the exposition, their totals now count under `other`.
    pub(super) released: HashSet<String>,
    /// Latest packet time seen by the label set.
    pub(super) now_ns: u64,
    /// Packet time of the last scan for idle values.
    pub(super) idle_scan_ns: u64,
    /// `released` overflowed since the last scrape.
    pub(super) released_overflow: bool,
    /// Packet time the last scrape had reached: flows started after it are
    /// newcomers to the next one.
    pub(super) scraped_ns: u64,
    pub(super) overflow: u64,
    pub(super) recent: VecDeque<(FlowCursor, FlowRecord)>,
    /// Destinations that became `new`, per (device, domain, purpose, owner).
    pub(super) new_destinations: HashMap<NoveltyLabels, u64>,
    /// Flows to flagged destinations, per (device, domain, purpose, owner).
    pub(super) flagged_flows: HashMap<NoveltyLabels, u64>,
    /// Admitted `owner` values.
    pub(super) owners: HashSet<String>,
    /// Tracked devices seen resolving over DoT, DoQ or DoH.
    pub(super) private_dns: HashSet<[u8; 6]>,
}

/// Device, domain, purpose and owner labels of a baseline event.
pub type NoveltyLabels = (String, String, &'static str, String);

/// Baseline events per label set.
pub type NoveltyCounts = Vec<(NoveltyLabels, u64)>;

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

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device label of a flow's client MAC. Untracked MACs (the device
    /// table is full) share one label.
    pub(super) fn device_label(&self, mac: Option<[u8; 6]>) -> String {
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
    pub(super) fn note_private_dns(&self, inner: &mut Inner, mac: Option<[u8; 6]>) {
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
    pub(super) fn measure(&self, flow: &Flow, finished: bool) -> (FlowLabels, Totals) {
        self.measure_as(flow, &self.annotator().classify(flow), finished)
    }

    /// [`Shared::measure`] of a flow classified as `class`.
    pub(super) fn measure_as(
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
            owner: owner_label(class.rule),
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
        let labels = self.admit_owner(&mut inner, labels);
        if let Some(o) = outcome {
            let key = (
                labels.device.clone(),
                labels.domain.clone(),
                labels.purpose,
                labels.owner.clone(),
            );
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
